package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// freeAddr returns a loopback address that nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// allProcess is a running `wxmass all`.
type allProcess struct {
	addr string
	out  *syncBuffer // its stdout and stderr
	cmd  *exec.Cmd
}

// syncBuffer is a process's output, written by os/exec's copying goroutine
// and read by the test while the process runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns what was written so far.
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startAll starts `wxmass all --listen addr args...` with env and returns
// once it answers /readyz. The test's cleanup kills it.
func startAll(t *testing.T, addr string, env []string, args ...string) *allProcess {
	t.Helper()
	return startServer(t, "all", addr, env, args...)
}

// startServer starts `wxmass sub --listen addr args...` (sub is serve or
// all) with env and returns once it answers /readyz. The test's cleanup
// kills it.
func startServer(t *testing.T, sub, addr string, env []string, args ...string) *allProcess {
	t.Helper()
	cmd := exec.Command(binary, append([]string{sub, "--listen", addr, "--log-format", "json"}, args...)...)
	cmd.Dir = "../.."
	cmd.Env = env
	p := &allProcess{addr: addr, out: &syncBuffer{}, cmd: cmd}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	pollUntil(t, 30*time.Second, 20*time.Millisecond, func() bool {
		res, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, "wxmass %s does not answer: %s", sub, p.out)
	return p
}

// apiCall sends a JSON request with the API key and decodes the JSON
// answer; it also returns the raw answer.
func apiCall(t *testing.T, addr, key, method, path, body string) (int, map[string]any, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, "http://"+addr+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m), "%s", raw)
	return res.StatusCode, m, raw
}

// pollUntil calls cond on the test's goroutine (so cond may use require)
// every interval until it holds, and fails the test after timeout.
func pollUntil(t *testing.T, timeout, every time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("timed out after %s: %s", timeout, fmt.Sprintf(format, args...))
		case <-tick.C:
		}
	}
}
