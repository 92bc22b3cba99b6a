package reliability

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// binary is the wxmass binary Main builds; the fleets run it.
var binary string

// Main builds the wxmass binary once into a temporary directory, starts the
// report file, runs the tests and prints the report. TestMain calls it:
//
//	func TestMain(m *testing.M) { os.Exit(reliability.Main(m)) }
func Main(m *testing.M) int {
	dir, err := os.MkdirTemp("", "wxmass-reliability-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "reliability: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "wxmass")
	// Built without -race, like the process tests of cmd/wxmass: the
	// scenarios measure rates, and the detector's slowdown would measure
	// the detector.
	build := exec.Command("go", "build", "-o", binary, "github.com/wxmass/wxmass/cmd/wxmass")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "reliability: build wxmass: %v\n%s", err, out)
		return 1
	}
	if err := startReport(); err != nil {
		fmt.Fprintf(os.Stderr, "reliability: %v\n", err)
		return 1
	}
	// The test's own Redis clients would log every failed dial while a
	// scenario has Redis down; the scenario reports what matters.
	redis.SetLogger(quietLogger{})
	start := time.Now()
	code := m.Run()
	appendReport(fmt.Sprintf("# suite: %s, exit %d\n", time.Since(start).Round(time.Second), code))
	if b, err := os.ReadFile(ReportPath()); err == nil {
		fmt.Printf("\n=== reliability report (%s)\n%s", ReportPath(), b)
	}
	return code
}

// ReportPath is the report file: reliability.txt in $WXMASS_ARTIFACTS, or
// else in .artifacts/ at the repository's root.
func ReportPath() string {
	dir := os.Getenv("WXMASS_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(), ".artifacts")
	}
	return filepath.Join(dir, "reliability.txt")
}

// repoRoot is the directory of go.mod above the working directory (the
// package's directory under go test), or the working directory.
func repoRoot() string {
	wd, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return wd
		}
	}
}

var reportMu sync.Mutex

// startReport truncates the report file and writes its header: one file
// per run of the suite.
func startReport() error {
	p := ReportPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("report dir: %w", err)
	}
	load, _ := os.ReadFile("/proc/loadavg")
	head := fmt.Sprintf("# wxmass reliability suite, %s, %s %s/%s, %d CPUs, load average %s\n%s\n",
		time.Now().UTC().Format("2006-01-02 15:04 MST"), runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(),
		strings.Join(strings.Fields(string(load))[:min(3, len(strings.Fields(string(load))))], " "), summaryHeader())
	return os.WriteFile(p, []byte(head), 0o644)
}

func appendReport(s string) {
	reportMu.Lock()
	defer reportMu.Unlock()
	f, err := os.OpenFile(ReportPath(), os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
	if err != nil {
		return // the line is in the test log as well
	}
	defer f.Close()
	_, _ = f.WriteString(s)
}

// quietLogger drops go-redis's internal log lines.
type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...any) {}
