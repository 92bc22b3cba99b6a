package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redistest"
)

// StartRedis starts a private redis-server for one scenario (its own port
// and directory; killed when the test ends), so that nothing is shared with
// other tests.
func StartRedis(tb testing.TB, cfg redistest.ServerConfig) *redistest.Server {
	tb.Helper()
	return redistest.StartServer(tb, cfg)
}

// ShutdownRedis stops s cleanly with SHUTDOWN (which, with AOF on, writes
// and fsyncs the AOF before exiting) and waits until the server has logged
// that it is ready to exit. s.Restart then starts it again on its files.
func ShutdownRedis(tb testing.TB, s *redistest.Server) {
	tb.Helper()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	byes := func() int {
		b, _ := os.ReadFile(filepath.Join(s.Dir(), "redis.log"))
		return strings.Count(string(b), "ready to exit, bye bye")
	}
	before := byes()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The server closes the connection instead of answering: an error is
	// expected. Whether it worked is read from the log.
	_ = c.Shutdown(ctx).Err()
	pollUntil(tb, 20*time.Second, 10*time.Millisecond, func() bool { return byes() > before }, "redis-server at %s did not shut down", s.Addr())
}

// AOFSize is the length of a server's incremental AOF file at a moment.
type AOFSize struct {
	At   time.Time
	File string // path of the file
	Size int64
}

// ReadAOFSize returns the length of the incremental AOF file that s writes
// now (the last "type i" file of its manifest; Redis 7's multi-part AOF).
func ReadAOFSize(s *redistest.Server) (AOFSize, error) {
	dir := filepath.Join(s.Dir(), "appendonlydir")
	m, err := os.ReadFile(filepath.Join(dir, "appendonly.aof.manifest"))
	if err != nil {
		return AOFSize{}, err
	}
	var name string
	for _, line := range strings.Split(string(m), "\n") {
		f := strings.Fields(line)
		if len(f) == 6 && f[0] == "file" && f[4] == "type" && f[5] == "i" {
			name = f[1]
		}
	}
	if name == "" {
		return AOFSize{}, fmt.Errorf("no incremental AOF file in %s", filepath.Join(dir, "appendonly.aof.manifest"))
	}
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return AOFSize{}, err
	}
	return AOFSize{At: time.Now(), File: path, Size: fi.Size()}, nil
}

// TruncateAOF cuts a killed server's incremental AOF file back to the
// length it had at an earlier moment, as a host crash loses what the
// server had written but the disk had not yet stored (up to about a second
// with appendfsync everysec; a killed process loses nothing, since Redis
// writes the AOF before it answers). A command cut in half at the end is
// dropped when the server loads the file (aof-load-truncated yes, the
// default). It returns the bytes cut.
func TruncateAOF(tb testing.TB, s *redistest.Server, back AOFSize) int64 {
	tb.Helper()
	now, err := ReadAOFSize(s)
	require.NoError(tb, err)
	require.Equal(tb, back.File, now.File, "the AOF was rewritten meanwhile (run the server with --auto-aof-rewrite-percentage 0)")
	require.NoError(tb, os.Truncate(back.File, back.Size))
	return now.Size - back.Size
}
