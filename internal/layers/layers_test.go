package layers_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/wxmass/wxmass"

// rank is each package's layer; a package imports only packages of lower
// layers (or those sameLayer allows). Every package of the module must be
// listed here or in harness, so that a new one gets a place.
var rank = map[string]int{
	"internal/task":      0,
	"internal/logfield":  0,
	"internal/secret":    0,
	"internal/redisconn": 0,
	"internal/rdb":       0,
	"internal/layers":    0,
	"internal/httpserve": 0,
	"internal/media":     2,
	"wechat":             1,
	"wechat/callback":    1,
	"retry":              1,
	"ratelimit":          1,
	"campaigns":          1,
	"monitoring":         1,
	"account":            2,
	"producer":           3,
	"worker":             3,
	"api":                3,
	"api/console":        3,
	"internal/i18n":      0,
	"cmd/wxmass":         4,
}

// sameLayer are the imports allowed within a layer.
var sameLayer = map[string][]string{
	"retry":           {"wechat"},          // it classifies wechat's errors
	"campaigns":       {"wechat"},          // messages are wechat's types
	"account":         {},                  //
	"worker":          {"producer"},        // it runs the producer's handlers
	"api":             {"producer"},        // it starts runs
	"wechat":          {"wechat/callback"}, //
	"producer":        {},                  //
	"wechat/callback": {},
	"internal/media":  {"account"}, // it uploads with an account's token
}

// harness packages may import anything; only tests, other harnesses and
// the binary (which ships `wxmass fakewechat` and `wxmass bench`) import
// them.
var harness = []string{"internal/bench", "internal/fairness", "internal/reliability", "internal/redistest", "internal/tlstest", "internal/truth", "wechat/wechattest"}

// noRDB may not import internal/rdb: they reach runs and outcomes through
// campaigns.Store, and everything else through their own packages' APIs.
var noRDB = []string{"producer", "worker", "api", "api/console"}

// noAsynq are the domain packages, which never import asynq (STYLE 5).
var noAsynq = []string{"campaigns", "wechat", "wechat/callback", "ratelimit", "retry"}

func TestImportDirection(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-tags", "reliability", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"/...").Output()
	require.NoError(t, err, "go list")
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, ok := strings.CutPrefix(fields[0], module+"/")
		if !ok {
			continue
		}
		seen++
		r, ranked := rank[pkg]
		isHarness := slices.Contains(harness, pkg)
		require.True(t, ranked || isHarness, "package %s has no place in layers_test.go: give it a rank or call it a harness", pkg)
		for _, imp := range fields[1:] {
			if strings.HasPrefix(imp, "github.com/hibiken/asynq") && slices.Contains(noAsynq, pkg) {
				t.Errorf("%s imports %s: the domain packages never import asynq", pkg, imp)
			}
			dep, ours := strings.CutPrefix(imp, module+"/")
			if !ours {
				continue
			}
			if slices.Contains(harness, dep) && !isHarness && pkg != "cmd/wxmass" {
				t.Errorf("%s imports the harness %s", pkg, dep)
			}
			if isHarness {
				continue
			}
			if dep == "internal/rdb" && slices.Contains(noRDB, pkg) {
				t.Errorf("%s imports internal/rdb: runs and outcomes go through campaigns.Store", pkg)
			}
			dr, ok := rank[dep]
			switch {
			case !ok:
				// A harness: reported above.
			case dr > r:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports go down cmd → api/producer/worker → account → campaigns/wechat/ratelimit/retry/monitoring → internal", pkg, r, dep, dr)
			case dr == r && !slices.Contains(sameLayer[pkg], dep):
				t.Errorf("%s imports %s of its own layer %d: add it to sameLayer with the reason, or move one of them", pkg, dep, r)
			}
		}
	}
	require.Greater(t, seen, 15, "go list listed the module's packages")
}
