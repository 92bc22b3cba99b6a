package check

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// parseRedisConf reads deploy/redis.conf's directives (the last of a
// repeated one wins, as in Redis).
func parseRedisConf(t *testing.T) map[string]string {
	t.Helper()
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, deployPath("redis.conf"))))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, _ := strings.Cut(line, " ")
		out[strings.ToLower(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	require.NoError(t, sc.Err())
	return out
}

// redisServer is a redis-server running deploy/redis.conf.
type redisServer struct {
	addr string
	dir  string
	cmd  *exec.Cmd
	out  *bytes.Buffer
	// exited is closed when the process has exited.
	exited chan struct{}
}

// startRedis starts redis-server with deploy/redis.conf unchanged, only
// overriding what a test must: the port and the address (a free port on
// loopback instead of 6379 on every interface) and the data directory
// (dir, in the container the image's /data). It stops at the test's end.
func startRedis(t *testing.T, dir string, port int) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	require.NoError(t, err, "redis-server is needed to check deploy/redis.conf: apt-get install redis-server")
	if port == 0 {
		port = freePort(t)
	}
	s := &redisServer{addr: "127.0.0.1:" + strconv.Itoa(port), dir: dir, out: &bytes.Buffer{}}
	s.cmd = exec.Command(bin, deployPath("redis.conf"), "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir)
	s.cmd.Dir = dir
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	require.NoError(t, s.cmd.Start())
	exited := make(chan struct{})
	s.exited = exited
	go func() { _ = s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill() // an error: it has exited already
		<-exited
	})
	c := s.client(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.Ping(context.Background()).Err(); err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("redis-server %s exited:\n%s", deployPath("redis.conf"), s.out)
		case <-time.After(20 * time.Millisecond):
		}
		require.Truef(t, time.Now().Before(deadline), "redis-server does not answer:\n%s", s.out)
	}
	return s
}

func (s *redisServer) client(t *testing.T) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.addr, MaxRetries: -1, DialTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// kill stops redis-server with SIGKILL, as a crash or an OOM kill would,
// and waits for it.
func (s *redisServer) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, s.cmd.Process.Kill())
	<-s.exited
}

// TestRedisConf starts a real redis-server with deploy/redis.conf, checks
// the settings wxmass relies on with CONFIG GET, then writes queue-like
// data, kills Redis with SIGKILL and starts it again on the same data
// directory: the data must be there (AOF), and no RDB snapshot is made.
func TestRedisConf(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	port := freePort(t)
	s := startRedis(t, dir, port)
	c := s.client(t)
	want := map[string]string{
		"appendonly":           "yes",
		"appendfsync":          "everysec",
		"maxmemory-policy":     "noeviction",
		"aof-use-rdb-preamble": "yes",
		"save":                 "",
		"protected-mode":       "no",
		"aof-load-truncated":   "yes",
		"daemonize":            "no",
	}
	for k, v := range want {
		got, err := c.ConfigGet(ctx, k).Result()
		require.NoError(t, err)
		require.Equalf(t, v, got[k], "CONFIG GET %s", k)
	}
	maxmem, err := c.ConfigGet(ctx, "maxmemory").Result()
	require.NoError(t, err)
	require.NotEqual(t, "0", maxmem["maxmemory"], "maxmemory set below the container's memory limit")

	// A queue, a dedupe marker with a TTL and a counter, as asynq and
	// wxmass write them; then a crash.
	require.NoError(t, c.RPush(ctx, "deploycheck:queue", "send:c1:1:o1", "send:c1:1:o2").Err())
	require.NoError(t, c.Set(ctx, "deploycheck:sent:o1", "1", time.Hour).Err())
	require.NoError(t, c.HIncrBy(ctx, "deploycheck:counters", "sent", 1).Err())
	// With appendfsync everysec Redis writes the AOF at the end of each
	// event loop and fsyncs it every second; it may hold writes back for up
	// to 2 s while a slow fsync runs, so a crash can lose that much. Wait
	// until the last command is in the file, then crash.
	waitAOF(t, dir, "deploycheck:counters")
	s.kill(t)

	s = startRedis(t, dir, port)
	c = s.client(t)
	q, err := c.LRange(ctx, "deploycheck:queue", 0, -1).Result()
	require.NoError(t, err)
	require.Equal(t, []string{"send:c1:1:o1", "send:c1:1:o2"}, q, "the queue after a crash")
	ttl, err := c.TTL(ctx, "deploycheck:sent:o1").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0), "the dedupe marker and its TTL after a crash")
	n, err := c.HGet(ctx, "deploycheck:counters", "sent").Int()
	require.NoError(t, err)
	require.Equal(t, 1, n)

	manifest := filepath.Join(dir, "appendonlydir", "appendonly.aof.manifest")
	_, err = os.Stat(manifest)
	require.NoError(t, err, "the AOF is where redis.conf names it")
	_, err = os.Stat(filepath.Join(dir, "dump.rdb"))
	require.True(t, os.IsNotExist(err), "no RDB snapshot (save \"\")")
	_ = c.Shutdown(ctx).Err() // the connection ends with it
	<-s.exited
}

// waitAOF waits until the AOF in dir holds key.
func waitAOF(t *testing.T, dir, key string) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		files, err := filepath.Glob(filepath.Join(dir, "appendonlydir", "*.incr.aof"))
		require.NoError(t, err)
		for _, f := range files {
			if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte(key)) {
				return
			}
		}
		select {
		case <-deadline.C:
			t.Fatalf("%s never reached the AOF in %s", key, dir)
		case <-tick.C:
		}
	}
}
