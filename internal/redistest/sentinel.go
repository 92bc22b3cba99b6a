package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// SentinelMaster is the master name the sentinels of StartSentinel monitor.
const SentinelMaster = "wxmass"

// SentinelTimeout bounds how long the sentinel launcher waits for the
// sentinels to agree: at startup, and for a failover to complete.
const SentinelTimeout = 30 * time.Second

// Sentinel is a Redis Sentinel deployment owned by one test: a primary, one
// replica and three sentinels monitoring them as SentinelMaster with a quorum
// of 2. The sentinels consider a silent primary down after one second, so a
// killed primary is replaced within a few seconds. Its methods are safe for
// concurrent use.
type Sentinel struct {
	sentinels []*Server

	mu    sync.Mutex
	nodes map[string]*Server // data nodes by address
}

// StartSentinel starts a primary, a replica of it and three sentinels, and
// returns once the replica is in sync and every sentinel knows the primary,
// the replica and the two other sentinels (so that a failover can be
// authorized). Everything is killed when the test ends.
func StartSentinel(tb testing.TB) *Sentinel {
	tb.Helper()
	// Without the delay a primary waits 5s for more replicas before a
	// diskless full sync; both nodes get it since either may be primary.
	fast := []string{"--repl-diskless-sync-delay", "0"}
	primary := StartServer(tb, ServerConfig{Args: fast})
	_, port, _ := net.SplitHostPort(primary.Addr())
	replica := StartServer(tb, ServerConfig{Args: append([]string{"--replicaof", "127.0.0.1", port}, fast...)})
	s := &Sentinel{nodes: map[string]*Server{primary.Addr(): primary, replica.Addr(): replica}}
	waitFor(tb, SentinelTimeout, "replica "+replica.Addr()+" in sync with "+primary.Addr(), func(ctx context.Context) error {
		return replicaInSync(ctx, replica.Addr(), primary.Addr())
	})

	confDir := tb.TempDir()
	for i := range 3 {
		conf := filepath.Join(confDir, fmt.Sprintf("sentinel-%d.conf", i))
		body := fmt.Sprintf("sentinel monitor %[1]s 127.0.0.1 %[2]s 2\n"+
			"sentinel down-after-milliseconds %[1]s 1000\n"+
			"sentinel failover-timeout %[1]s 3000\n"+
			"sentinel parallel-syncs %[1]s 1\n", SentinelMaster, port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			tb.Fatalf("write %s: %v", conf, err)
		}
		s.sentinels = append(s.sentinels, startServer(tb, conf, []string{"--sentinel"}, pingAny))
	}

	waitFor(tb, SentinelTimeout, "sentinels to know the primary, the replica and each other", func(ctx context.Context) error {
		for _, sen := range s.sentinels {
			if err := sentinelKnows(ctx, sen.Addr(), primary.Addr(), replica.Addr(), len(s.sentinels)-1); err != nil {
				return fmt.Errorf("sentinel %s: %w", sen.Addr(), err)
			}
		}
		return nil
	})
	return s
}

// URL returns the deployment's URL with database 0:
// "redis-sentinel://127.0.0.1:a,127.0.0.1:b,127.0.0.1:c/0?master=wxmass".
func (s *Sentinel) URL() string {
	return "redis-sentinel://" + strings.Join(s.Addrs(), ",") + "/0?master=" + SentinelMaster
}

// Addrs returns the sentinels' addresses.
func (s *Sentinel) Addrs() []string {
	addrs := make([]string, len(s.sentinels))
	for i, sen := range s.sentinels {
		addrs[i] = sen.Addr()
	}
	return addrs
}

// Primary returns the address of the current primary as the first sentinel
// that answers reports it.
func (s *Sentinel) Primary(tb testing.TB) string {
	tb.Helper()
	var addr string
	waitFor(tb, SentinelTimeout, "a sentinel to report the primary", func(ctx context.Context) error {
		var err error
		for _, sen := range s.sentinels {
			if addr, err = masterAddr(ctx, sen.Addr()); err == nil {
				return nil
			}
		}
		return err
	})
	return addr
}

// Failover asks a sentinel to fail over (SENTINEL FAILOVER wxmass), retrying
// while a previous failover is still in progress, then waits until every
// sentinel reports a new primary and that server answers ROLE as master. It
// returns the new primary's address.
//
// The sentinels turn the old primary into a replica of the new one only
// when they notice it still acts as a primary, about 8 s later; until then
// the deployment has no replica to fail over to. So Failover does that
// itself (REPLICAOF, as the sentinels would) and waits until the old
// primary is in sync, so that KillPrimary or another Failover can follow at
// once without losing writes.
func (s *Sentinel) Failover(tb testing.TB) string {
	tb.Helper()
	old := s.Primary(tb)
	waitFor(tb, SentinelTimeout, "SENTINEL FAILOVER to be accepted", func(ctx context.Context) error {
		var err error
		for _, sen := range s.sentinels {
			if _, err = command(ctx, sen.Addr(), "SENTINEL", "FAILOVER", SentinelMaster); err == nil {
				return nil
			}
		}
		return err // -INPROG or -NOGOODSLAVE while the last failover settles
	})
	primary := s.waitNewPrimary(tb, old)
	host, port, _ := net.SplitHostPort(primary)
	waitFor(tb, SentinelTimeout, "old primary "+old+" to replicate "+primary, func(ctx context.Context) error {
		if _, err := command(ctx, old, "REPLICAOF", host, port); err != nil {
			return err
		}
		return replicaInSync(ctx, old, primary)
	})
	return primary
}

// KillPrimary kills the current primary with SIGKILL. The sentinels notice
// within about a second and promote the replica; call Primary, or poll, to
// see the new one. The killed server stays down.
func (s *Sentinel) KillPrimary(tb testing.TB) {
	tb.Helper()
	addr := s.Primary(tb)
	s.mu.Lock()
	srv := s.nodes[addr]
	s.mu.Unlock()
	if srv == nil {
		tb.Fatalf("sentinels report primary %s, which is not one of this deployment's servers", addr)
	}
	srv.Kill(tb)
}

// Rejoin starts the data node at addr again after KillPrimary killed it,
// empty (the deployment's servers have no persistence), makes it a replica
// of the current primary (REPLICAOF, as the sentinels would once they
// notice it) and waits until it is in sync and every sentinel sees it as a
// healthy replica, so that a Failover can follow. It returns the primary.
func (s *Sentinel) Rejoin(tb testing.TB, addr string) string {
	tb.Helper()
	s.mu.Lock()
	srv := s.nodes[addr]
	s.mu.Unlock()
	if srv == nil {
		tb.Fatalf("%s is not one of this deployment's data nodes", addr)
	}
	primary := s.Primary(tb)
	if primary == addr {
		tb.Fatalf("%s is still the primary", addr)
	}
	srv.Restart(tb)
	host, port, _ := net.SplitHostPort(primary)
	waitFor(tb, SentinelTimeout, addr+" to replicate "+primary, func(ctx context.Context) error {
		if _, err := command(ctx, addr, "REPLICAOF", host, port); err != nil {
			return err
		}
		return replicaInSync(ctx, addr, primary)
	})
	waitFor(tb, SentinelTimeout, "sentinels to see "+addr+" as a healthy replica", func(ctx context.Context) error {
		for _, sen := range s.sentinels {
			if err := sentinelKnows(ctx, sen.Addr(), primary, addr, len(s.sentinels)-1); err != nil {
				return fmt.Errorf("sentinel %s: %w", sen.Addr(), err)
			}
		}
		return nil
	})
	return primary
}

// WaitPrimaryChange waits until every sentinel reports a primary other than
// old that answers ROLE as master, and returns its address. Use it after
// KillPrimary.
func (s *Sentinel) WaitPrimaryChange(tb testing.TB, old string) string {
	tb.Helper()
	return s.waitNewPrimary(tb, old)
}

func (s *Sentinel) waitNewPrimary(tb testing.TB, old string) string {
	tb.Helper()
	var addr string
	waitFor(tb, SentinelTimeout, "sentinels to agree on a primary other than "+old, func(ctx context.Context) error {
		addr = ""
		for _, sen := range s.sentinels {
			a, err := masterAddr(ctx, sen.Addr())
			if err != nil {
				return fmt.Errorf("sentinel %s: %w", sen.Addr(), err)
			}
			if a == old || (addr != "" && a != addr) {
				return fmt.Errorf("sentinel %s reports %s", sen.Addr(), a)
			}
			addr = a
		}
		role, err := command(ctx, addr, "ROLE")
		if err != nil {
			return fmt.Errorf("ROLE on %s: %w", addr, err)
		}
		if r, ok := role.([]any); !ok || len(r) == 0 || r[0] != "master" {
			return fmt.Errorf("%s answers ROLE %v", addr, role)
		}
		return nil
	})
	return addr
}

// masterAddr asks the sentinel at addr for the primary's address.
func masterAddr(ctx context.Context, addr string) (string, error) {
	v, err := command(ctx, addr, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
	if err != nil {
		return "", err
	}
	hp, ok := v.([]any)
	if !ok || len(hp) != 2 {
		return "", fmt.Errorf("GET-MASTER-ADDR-BY-NAME answered %v", v)
	}
	host, _ := hp[0].(string)
	port, _ := hp[1].(string)
	return net.JoinHostPort(host, port), nil
}

// sentinelKnows reports whether the sentinel at addr monitors primary, sees
// replica as a healthy replica and knows the other sentinels.
func sentinelKnows(ctx context.Context, addr, primary, replica string, others int) error {
	got, err := masterAddr(ctx, addr)
	if err != nil {
		return err
	}
	if got != primary {
		return fmt.Errorf("reports primary %s, want %s", got, primary)
	}
	v, err := command(ctx, addr, "SENTINEL", "REPLICAS", SentinelMaster)
	if err != nil {
		return err
	}
	found := false
	for _, r := range asList(v) {
		f := fields(r)
		if net.JoinHostPort(f["ip"], f["port"]) == replica && !strings.Contains(f["flags"], "down") &&
			!strings.Contains(f["flags"], "disconnected") {
			found = true
		}
	}
	if !found {
		return fmt.Errorf("does not see replica %s yet", replica)
	}
	v, err = command(ctx, addr, "SENTINEL", "SENTINELS", SentinelMaster)
	if err != nil {
		return err
	}
	if n := len(asList(v)); n < others {
		return fmt.Errorf("knows %d other sentinels, want %d", n, others)
	}
	return nil
}

// replicaInSync reports whether the server at addr is a replica of primary
// with a live link and no sync in progress.
func replicaInSync(ctx context.Context, addr, primary string) error {
	info, err := probe(ctx, addr, "INFO", "replication")
	if err != nil {
		return err
	}
	f := infoFields(info)
	if net.JoinHostPort(f["master_host"], f["master_port"]) != primary ||
		f["master_link_status"] != "up" || f["master_sync_in_progress"] != "0" {
		return fmt.Errorf("not in sync with %s:\n%s", primary, info)
	}
	return nil
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// fields turns a flat [name, value, ...] reply into a map.
func fields(v any) map[string]string {
	l := asList(v)
	m := make(map[string]string, len(l)/2)
	for i := 0; i+1 < len(l); i += 2 {
		k, _ := l[i].(string)
		val, _ := l[i+1].(string)
		m[k] = val
	}
	return m
}

// waitFor polls cond every 20ms until it returns nil, and fails the test with
// cond's last error if that does not happen within timeout.
func waitFor(tb testing.TB, timeout time.Duration, what string, cond func(ctx context.Context) error) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		cctx, ccancel := context.WithTimeout(ctx, 2*time.Second)
		err := cond(cctx)
		ccancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("waiting for %s: gave up after %v: %v", what, timeout, err)
		case <-tick.C:
		}
	}
}
