package redistest_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redistest"
)

func TestStartServer(t *testing.T) {
	t.Parallel()

	t.Run("AOFSurvivesKill", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := redistest.StartServer(t, redistest.ServerConfig{AOF: true})
		require.Equal(t, "redis://"+s.Addr()+"/0", s.URL())

		opt, err := redis.ParseURL(s.URL())
		require.NoError(t, err)
		opt.MaxRetries = -1
		c := redis.NewClient(opt)
		t.Cleanup(func() { _ = c.Close() })
		require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
		// With appendfsync everysec, Redis may postpone writing its AOF
		// buffer (up to 2 s) while a background fsync runs, and answer
		// meanwhile: the write is on its way to the file once the buffer
		// is empty.
		require.Eventually(t, func() bool {
			return strings.Contains(c.Info(ctx, "persistence").Val(), "aof_buffer_length:0\r\n")
		}, 10*time.Second, 10*time.Millisecond, "the AOF buffer is written")
		require.Equal(t, "yes", c.ConfigGet(ctx, "appendonly").Val()["appendonly"])
		require.Equal(t, "", c.ConfigGet(ctx, "save").Val()["save"])

		s.Kill(t)
		require.Error(t, c.Ping(ctx).Err(), "killed server still answers")
		s.Restart(t)
		// A new client: the old one's pool remembers its failed dials for a
		// while and would answer with them.
		c2 := redis.NewClient(opt)
		t.Cleanup(func() { _ = c2.Close() })
		v, err := c2.Get(ctx, "k").Result()
		require.NoError(t, err)
		require.Equal(t, "v", v)
		_, err = os.Stat(filepath.Join(s.Dir(), "appendonlydir"))
		require.NoError(t, err)
	})

	t.Run("NoAOF", func(t *testing.T) {
		t.Parallel()
		ctx := t.Context()
		s := redistest.StartServer(t, redistest.ServerConfig{Args: []string{"--maxmemory", "64mb"}})
		c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
		t.Cleanup(func() { _ = c.Close() })
		require.Equal(t, "no", c.ConfigGet(ctx, "appendonly").Val()["appendonly"])
		require.Equal(t, "67108864", c.ConfigGet(ctx, "maxmemory").Val()["maxmemory"])
		require.NoError(t, c.Set(ctx, "k", "v", 0).Err())
		s.Kill(t)
		s.Restart(t)
		require.Equal(t, redis.Nil, c.Get(ctx, "k").Err(), "without AOF or RDB nothing survives")
	})
}

// fatalTB records the first Fatal and ends the goroutine that called it, as
// testing.T does, so that a launcher's failure path can be checked.
type fatalTB struct {
	testing.TB
	msg chan string
}

func (f *fatalTB) Helper() {}

func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg <- fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalTB) Skip(args ...any) {
	f.msg <- "skip: " + fmt.Sprint(args...)
	runtime.Goexit()
}

func (f *fatalTB) Skipf(format string, args ...any) {
	f.msg <- "skip: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestStartServerFailureShowsLog(t *testing.T) {
	t.Parallel()
	f := &fatalTB{TB: t, msg: make(chan string, 1)}
	go func() {
		redistest.StartServer(f, redistest.ServerConfig{Args: []string{"--no-such-option", "x"}})
		f.msg <- "StartServer returned"
	}()
	msg := <-f.msg
	if skip, ok := strings.CutPrefix(msg, "skip: "); ok {
		t.Skip(skip)
	}
	require.Contains(t, msg, "exited during startup")
	require.Contains(t, msg, "no-such-option", "the failure names the server's complaint")
}
