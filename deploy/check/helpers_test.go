package check

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// repoRoot is the wxmass repository, two levels up from deploy/check.
var repoRoot = func() string {
	p, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		panic(err)
	}
	return p
}()

// deployPath names a file under deploy/.
func deployPath(elem ...string) string {
	return filepath.Join(append([]string{repoRoot, "deploy"}, elem...)...)
}

// wxmassSubcommands are the subcommands deploy/ runs.
var wxmassSubcommands = []string{"serve", "worker", "all", "fakewechat"}

// cliFacts is what wxmass's own --help says, per subcommand.
type cliFacts struct {
	// env maps a subcommand to every WXMASS_ variable its help names: the
	// flags' twins and the secret-only ones ("or set WXMASS_API_KEYS").
	env map[string]map[string]bool
	// defaults maps a subcommand and a flag name to its default value.
	defaults map[string]map[string]string
}

var (
	helpOnce  sync.Once
	helpFacts cliFacts
	helpErr   error
)

var (
	envRE     = regexp.MustCompile(`\bWXMASS_[A-Z0-9_]+\b`)
	flagRE    = regexp.MustCompile(`^\s+--([a-z0-9-]+)\b`)
	defaultRE = regexp.MustCompile(`\(default: "?([^")]*?)"?\)`)
)

// wxmassHelp runs the wxmass binary (built as deploy/Dockerfile builds it)
// with --help for every subcommand deploy/ uses, and returns what it says.
func wxmassHelp(t *testing.T) cliFacts {
	t.Helper()
	bin := dockerBuiltBinary(t)
	helpOnce.Do(func() {
		helpFacts = cliFacts{env: map[string]map[string]bool{}, defaults: map[string]map[string]string{}}
		for _, sub := range wxmassSubcommands {
			out, err := exec.Command(bin, sub, "--help").CombinedOutput()
			if err != nil {
				helpErr = fmt.Errorf("wxmass %s --help: %v\n%s", sub, err, out)
				return
			}
			env := map[string]bool{}
			for _, m := range envRE.FindAllString(string(out), -1) {
				env[m] = true
			}
			defs := map[string]string{}
			for _, line := range strings.Split(string(out), "\n") {
				m := flagRE.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				if d := defaultRE.FindStringSubmatch(line); d != nil {
					defs[m[1]] = d[1]
				} else {
					defs[m[1]] = ""
				}
			}
			helpFacts.env[sub], helpFacts.defaults[sub] = env, defs
		}
	})
	require.NoError(t, helpErr)
	return helpFacts
}

// flagValue returns the value of --name in args (as "--name v" or
// "--name=v"), or of its environment twin in env, or its default.
func flagValue(t *testing.T, sub string, args []string, env map[string]string, name string) string {
	t.Helper()
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	if v, ok := env["WXMASS_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))]; ok {
		return v
	}
	defs := wxmassHelp(t).defaults[sub]
	v, ok := defs[name]
	require.Truef(t, ok, "wxmass %s has no flag --%s", sub, name)
	return v
}

// checkEnvNames fails for every variable of env that wxmass sub does not
// read. where names the file and service for the message.
func checkEnvNames(t *testing.T, where, sub string, env []string) {
	t.Helper()
	known := wxmassHelp(t).env[sub]
	require.NotNilf(t, known, "%s: wxmass has no subcommand %q", where, sub)
	for _, name := range env {
		if !strings.HasPrefix(name, "WXMASS_") {
			t.Errorf("%s: environment variable %s: wxmass reads only WXMASS_ variables (and GOMEMLIMIT/GOMAXPROCS)", where, name)
			continue
		}
		if !known[name] {
			t.Errorf("%s: environment variable %s is not one of `wxmass %s --help`'s: %s", where, name, sub, strings.Join(sortedKeys(known), " "))
		}
	}
}

// shutdownGrace is how long a wxmass process may take to stop after
// SIGTERM: --shutdown-timeout plus the 5 s cmd/wxmass adds for the HTTP
// server and Redis.
func shutdownGrace(t *testing.T, sub string, args []string, env map[string]string) time.Duration {
	t.Helper()
	d, err := time.ParseDuration(flagValue(t, sub, args, env, "shutdown-timeout"))
	require.NoError(t, err)
	return d + 5*time.Second
}

// portOf returns the port of a listen address such as ":8080" or
// "0.0.0.0:9010".
func portOf(t *testing.T, addr string) string {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	require.NoErrorf(t, err, "listen address %q", addr)
	return port
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// freePort returns a TCP port free on 127.0.0.1 just now.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// runCmd runs a command with a deadline and returns its combined output.
func runCmd(t *testing.T, dir string, env []string, name string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoErrorf(t, cmd.Run(), "%s %s (in %s):\n%s", name, strings.Join(args, " "), dir, out.String())
	return out.Bytes()
}

// readFile reads a file of the repository.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}
