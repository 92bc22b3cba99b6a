package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ClusterTimeout bounds how long StartCluster waits for the cluster to form.
const ClusterTimeout = 30 * time.Second

// ClusterConfig configures a cluster started by StartClusterConfig.
type ClusterConfig struct {
	// Primaries is the number of primaries; Redis needs at least 3. The
	// cluster has no replicas.
	Primaries int
	// AOF turns on the append-only file on every node, as in ServerConfig.
	AOF bool
}

// Cluster is a Redis Cluster owned by one test: primaries only, the 16384
// slots spread over them by redis-cli. Its methods are safe for concurrent
// use.
type Cluster struct {
	nodes []*Server
}

// StartCluster starts a cluster of primaries nodes without persistence. See
// StartClusterConfig.
func StartCluster(tb testing.TB, primaries int) *Cluster {
	tb.Helper()
	return StartClusterConfig(tb, ClusterConfig{Primaries: primaries})
}

// StartClusterConfig starts cfg.Primaries redis-servers in cluster mode (each
// with its own nodes.conf and bus port), joins them with `redis-cli --cluster
// create`, and returns once every node reports cluster_state:ok, all 16384
// slots assigned and every other node known. Everything is killed when the
// test ends.
func StartClusterConfig(tb testing.TB, cfg ClusterConfig) *Cluster {
	tb.Helper()
	if cfg.Primaries < 3 {
		tb.Fatalf("redis cluster needs at least 3 primaries, got %d", cfg.Primaries)
	}
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		serverBinary(tb) // skips or fails with the same advice when Redis is missing altogether
		tb.Fatalf("redis-cli not found in PATH (it comes with redis-server): %v", err)
	}
	c := &Cluster{}
	for range cfg.Primaries {
		c.nodes = append(c.nodes, StartServer(tb, ServerConfig{
			AOF:  cfg.AOF,
			Args: []string{"--cluster-enabled", "yes", "--cluster-node-timeout", "5000"},
		}))
	}

	ctx, cancel := context.WithTimeout(context.Background(), ClusterTimeout)
	defer cancel()
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		tb.Fatalf("redis-cli %s: %v\n%s%s", strings.Join(args, " "), err, out, c.logTails())
	}

	want := strconv.Itoa(cfg.Primaries)
	waitFor(tb, ClusterTimeout, "the cluster to be ok on every node", func(ctx context.Context) error {
		for _, n := range c.nodes {
			info, err := probe(ctx, n.Addr(), "CLUSTER", "INFO")
			if err != nil {
				return fmt.Errorf("%s: %w", n.Addr(), err)
			}
			f := infoFields(info)
			if f["cluster_state"] != "ok" || f["cluster_slots_assigned"] != "16384" ||
				f["cluster_slots_ok"] != "16384" || f["cluster_known_nodes"] != want {
				return fmt.Errorf("%s not ready:\n%s", n.Addr(), info)
			}
		}
		return nil
	})
	return c
}

// URL returns the cluster's URL: "redis-cluster://127.0.0.1:a,127.0.0.1:b,...".
func (c *Cluster) URL() string { return "redis-cluster://" + strings.Join(c.Addrs(), ",") }

// Addrs returns the nodes' addresses.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.Addr()
	}
	return addrs
}

// Nodes returns the cluster's servers, for tests that kill and restart them.
func (c *Cluster) Nodes() []*Server { return c.nodes }

func (c *Cluster) logTails() string {
	var b strings.Builder
	for _, n := range c.nodes {
		fmt.Fprintf(&b, "--- tail of %s log ---\n%s", n.Addr(), n.logTail())
	}
	return b.String()
}

// infoFields parses "name:value" lines of INFO-style output.
func infoFields(info string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}
