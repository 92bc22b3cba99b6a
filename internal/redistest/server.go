package redistest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SkipServerTestsEnv names the environment variable that, set to 1, turns a
// missing redis-server binary into a skip instead of a failure. By default a
// missing binary fails the test, so that it is never a silent pass;
// scripts/with-redis.sh installs it when WXMASS_NEED_REDIS_SERVER=1.
const SkipServerTestsEnv = "WXMASS_SKIP_REDIS_SERVER_TESTS"

// ServerStartTimeout bounds how long StartServer and Restart wait for a
// redis-server to answer PING and finish loading its data.
const ServerStartTimeout = 15 * time.Second

// ServerConfig configures a redis-server started by StartServer. The zero
// value is a plain server without persistence.
type ServerConfig struct {
	// AOF turns on the append-only file (appendonly yes, appendfsync
	// everysec) in the server's own directory, so that Restart after Kill
	// loads what was written up to about a second before the kill.
	AOF bool
	// Args are extra redis-server arguments, such as "--cluster-enabled",
	// "yes". When they turn on cluster mode, StartServer also picks a free
	// cluster bus port (--cluster-port) unless Args set one.
	Args []string
}

// Server is a redis-server process owned by one test. It listens on
// 127.0.0.1 on a port chosen when it is started, keeps its files in a
// directory under the test's TempDir, and is killed when the test ends.
// Its methods are safe for concurrent use.
type Server struct {
	bin  string
	port int
	dir  string
	conf string   // config file given before the options, or "" (sentinels)
	args []string // every option, port and dir included
	ping func(ctx context.Context, addr string) error

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// StartServer starts a redis-server on a free port of 127.0.0.1 with its
// directory in tb.TempDir() and RDB snapshots off (--save ""). It returns
// once the server answers PING and has finished loading its data, and kills
// the server when the test ends. It fails the test if the server does not
// come up, with the tail of the server's log in the message.
func StartServer(tb testing.TB, cfg ServerConfig) *Server {
	tb.Helper()
	var args []string
	if cfg.AOF {
		args = append(args, "--appendonly", "yes", "--appendfsync", "everysec")
	}
	args = append(args, cfg.Args...)
	return startServer(tb, "", args, pingData)
}

// startServer starts redis-server with an optional config file (which the
// server may rewrite, as sentinels do) and extra options, and waits until
// ping succeeds. A port grabbed by someone else between choosing and binding
// it is retried with another one.
func startServer(tb testing.TB, conf string, extra []string, ping func(context.Context, string) error) *Server {
	tb.Helper()
	bin := serverBinary(tb)
	dir, err := os.MkdirTemp(tb.TempDir(), "redis-")
	if err != nil {
		tb.Fatalf("redis-server dir: %v", err)
	}
	clusterBus := clusterEnabled(extra) && !slices.Contains(extra, "--cluster-port")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := freePort()
		if err != nil {
			tb.Fatalf("redis-server: %v", err)
		}
		args := []string{
			"--port", strconv.Itoa(port),
			"--bind", "127.0.0.1",
			"--dir", dir,
			"--logfile", filepath.Join(dir, "redis.log"),
			"--daemonize", "no",
			"--save", "",
		}
		if clusterBus {
			bus, err := freePort()
			if err != nil {
				tb.Fatalf("redis-server: %v", err)
			}
			args = append(args, "--cluster-port", strconv.Itoa(bus),
				"--cluster-config-file", filepath.Join(dir, "nodes.conf"))
		}
		s := &Server{bin: bin, port: port, dir: dir, conf: conf, args: append(args, extra...), ping: ping}
		tb.Cleanup(s.stop)
		if lastErr = s.start(); lastErr == nil {
			return s
		}
		s.stop()
		if !errors.Is(lastErr, errAddrInUse) {
			break
		}
	}
	tb.Fatalf("%v", lastErr)
	return nil
}

// serverBinary finds redis-server, or fails (skips when
// SkipServerTestsEnv=1) the test.
func serverBinary(tb testing.TB) string {
	tb.Helper()
	if testing.Short() {
		tb.Skip("starts redis-server; skipped under -short")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv(SkipServerTestsEnv) == "1" {
			tb.Skipf("redis-server not found and %s=1: skipping", SkipServerTestsEnv)
		}
		tb.Fatalf("redis-server not found in PATH: install it (apt-get install redis-server; scripts/with-redis.sh does "+
			"with WXMASS_NEED_REDIS_SERVER=1), or set %s=1 to skip the tests that launch their own: %v", SkipServerTestsEnv, err)
	}
	return bin
}

func clusterEnabled(args []string) bool {
	i := slices.Index(args, "--cluster-enabled")
	return i >= 0 && i+1 < len(args) && args[i+1] == "yes"
}

// freePort asks the kernel for a free TCP port on 127.0.0.1. Another process
// may take it before redis-server binds it; startServer retries then.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Addr returns the server's address, "127.0.0.1:port".
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// URL returns the server's URL with database 0, "redis://127.0.0.1:port/0".
func (s *Server) URL() string { return "redis://" + s.Addr() + "/0" }

// Dir returns the server's working directory, where its log (redis.log),
// AOF and, in cluster mode, nodes.conf live.
func (s *Server) Dir() string { return s.dir }

// Kill sends SIGKILL to the server and waits until it has exited. Killing a
// server that is not running does nothing.
func (s *Server) Kill(tb testing.TB) {
	tb.Helper()
	s.stop()
}

// Restart starts the server again after Kill, with the same port, directory
// and arguments, so that it loads its AOF (and, in cluster mode, its
// nodes.conf). It waits until the server answers and has finished loading.
// It kills the server first if it is still running.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.stop()
	// The port was ours a moment ago; only a foreign process grabbing it in
	// between makes the bind fail, so retry briefly.
	deadline := time.Now().Add(ServerStartTimeout)
	for {
		err := s.start()
		if err == nil {
			return
		}
		if !errors.Is(err, errAddrInUse) || time.Now().After(deadline) {
			tb.Fatalf("restart %v", err)
		}
	}
}

// errAddrInUse marks a start that failed because the port was taken.
var errAddrInUse = errors.New("address already in use")

// start launches the process and waits until it is ready. On failure the
// process is stopped and the error carries what it logged; it wraps
// errAddrInUse when the server could not bind its port.
func (s *Server) start() error {
	logPath := filepath.Join(s.dir, "redis.log")
	var logStart int64 // a restart appends to the log of the runs before
	if fi, err := os.Stat(logPath); err == nil {
		logStart = fi.Size()
	}
	var args []string
	if s.conf != "" {
		args = append(args, s.conf)
	}
	args = append(args, s.args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	var out bytes.Buffer // startup errors before the log file is opened
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redis-server on port %d: %w", s.port, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()

	err := s.waitReady(done)
	if err == nil {
		return nil
	}
	s.stop()
	logged := readFrom(logPath, logStart)
	if strings.Contains(logged, "Address already in use") {
		err = fmt.Errorf("%w (%w)", err, errAddrInUse)
	}
	return fmt.Errorf("redis-server on port %d: %w\n--- output ---\n%s--- tail of %s ---\n%s",
		s.port, err, out.String(), logPath, tailLines(logged, 40))
}

// waitReady polls until s.ping succeeds, the process exits, or
// ServerStartTimeout passes.
func (s *Server) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), ServerStartTimeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		err = s.ping(pctx, s.Addr())
		pcancel()
		if err == nil {
			return nil
		}
		select {
		case <-exited:
			return errors.New("exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", ServerStartTimeout, err)
		case <-tick.C:
		}
	}
}

// stop kills the process if it runs and waits for it to exit.
func (s *Server) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd, s.done = nil, nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// logTail returns the last lines of the server's log file.
func (s *Server) logTail() string {
	return tailLines(readFrom(filepath.Join(s.dir, "redis.log"), 0), 40)
}

// readFrom returns the file's content from byte off on.
func readFrom(path string, off int64) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)\n", err)
	}
	if off > int64(len(b)) {
		off = 0
	}
	return string(b[off:])
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	all := strings.SplitAfter(s, "\n")
	if len(all) > n {
		all = all[len(all)-n:]
	}
	return strings.Join(all, "")
}

// pingData reports whether the data server at addr answers PING and has
// finished loading its data set (INFO persistence says loading:0).
func pingData(ctx context.Context, addr string) error {
	info, err := probe(ctx, addr, "INFO", "persistence")
	if err != nil {
		return err
	}
	if !strings.Contains(info, "loading:0") {
		return errors.New("still loading its data")
	}
	return nil
}

// pingAny reports whether the server at addr answers PING, for sentinels,
// which have no persistence.
func pingAny(ctx context.Context, addr string) error {
	_, err := probe(ctx, addr, "PING")
	return err
}

// probe sends one command whose reply is a string (simple or bulk) and
// returns that reply.
func probe(ctx context.Context, addr string, args ...string) (string, error) {
	v, err := command(ctx, addr, args...)
	if err != nil {
		return "", err
	}
	str, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%s: reply %v is not a string", args[0], v)
	}
	return str, nil
}
