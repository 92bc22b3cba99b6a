// Package redisconn turns one Redis URL into both clients wxmass needs: a
// go-redis client for its own state (internal/rdb) and an asynq connection
// option for the queues, for a single Redis, Redis Sentinel or Redis
// Cluster alike.
//
// The URL forms are:
//
//	redis://[user:password@]host:port[/db][?option=value&...]
//	rediss://...                         (the same, over TLS)
//	redis-sentinel://[user:password@]host:port,host:port,.../db?master=NAME[&sentinel_password=...]
//	rediss-sentinel://...                (the same, over TLS)
//	redis-cluster://[user:password@]host:port,host:port,...[?option=value&...]
//	rediss-cluster://...                 (the same, over TLS)
//
// The options are go-redis's URL options (dial_timeout, read_timeout,
// write_timeout, pool_size, max_retries, ...; see redis.ParseURL,
// redis.ParseFailoverURL and redis.ParseClusterURL for each topology's
// list). In a sentinel URL the user:password part is the data nodes' ACL
// user and password; sentinel_username and sentinel_password authenticate
// to the sentinels. A cluster has only database 0, so its URL has no path or
// /0.
//
// The user name, the password and query values must be percent-encoded where
// they hold '%', '/', '?', '#', '@' or spaces: '@' may appear only once,
// between the credentials and the hosts. Errors never contain a password.
package redisconn

import (
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// Topologies, as Options.Topology reports them.
const (
	TopologySingle   = "single"
	TopologySentinel = "sentinel"
	TopologyCluster  = "cluster"
)

// Default ports for addresses given without one.
const (
	PortDefault         = "6379"
	SentinelPortDefault = "26379"
)

// Options is a parsed Redis URL. It is immutable: NewClient and AsynqOpt
// may be called any number of times, concurrently, and each returns a fresh
// client or option.
type Options struct {
	topology string
	redacted string
	single   *redis.Options
	failover *redis.FailoverOptions
	cluster  *redis.ClusterOptions
}

// Parse parses a Redis URL of one of the forms in the package doc. Its
// errors start with "redis URL: ", name what is wrong, and never contain
// the password (nor the sentinel password).
func Parse(raw string) (*Options, error) {
	p, err := split(raw)
	if err != nil {
		return nil, err
	}
	o := &Options{topology: p.topology, redacted: p.redact()}
	switch p.topology {
	case TopologySingle:
		o.single, err = p.parseSingle()
	case TopologySentinel:
		o.failover, err = p.parseSentinel()
	case TopologyCluster:
		o.cluster, err = p.parseCluster()
	}
	if err != nil {
		return nil, err
	}
	return o, nil
}

// Topology returns TopologySingle, TopologySentinel or TopologyCluster.
func (o *Options) Topology() string { return o.topology }

// Redacted returns the URL with the password and the sentinel password
// replaced by "xxxxx", for messages and logs.
func (o *Options) Redacted() string { return o.redacted }

// String returns Redacted, so that formatting Options never shows a secret.
func (o *Options) String() string { return o.redacted }

// Addrs returns the addresses the URL lists: the server, the sentinels or
// the cluster's seed nodes.
func (o *Options) Addrs() []string {
	switch o.topology {
	case TopologySentinel:
		return slices.Clone(o.failover.SentinelAddrs)
	case TopologyCluster:
		return slices.Clone(o.cluster.Addrs)
	default:
		return []string{o.single.Addr}
	}
}

// NewClient returns a new go-redis client: a *redis.Client for a single
// server, a failover *redis.Client (redis.NewFailoverClient) for Sentinel,
// or a *redis.ClusterClient. It does not connect until first used. The
// caller closes it.
func (o *Options) NewClient() redis.UniversalClient {
	switch o.topology {
	case TopologySentinel:
		opt := *o.failover
		opt.SentinelAddrs = slices.Clone(opt.SentinelAddrs)
		opt.TLSConfig = cloneTLS(opt.TLSConfig)
		return redis.NewFailoverClient(&opt)
	case TopologyCluster:
		opt := *o.cluster
		opt.Addrs = slices.Clone(opt.Addrs)
		opt.TLSConfig = cloneTLS(opt.TLSConfig)
		return redis.NewClusterClient(&opt)
	default:
		opt := *o.single
		opt.TLSConfig = cloneTLS(opt.TLSConfig)
		return redis.NewClient(&opt)
	}
}

// AsynqOpt returns the asynq connection option for the same Redis:
// asynq.RedisClientOpt, asynq.RedisFailoverClientOpt or
// asynq.RedisClusterClientOpt. It carries every setting asynq's options
// have, with the values NewClient's client gets: credentials, database,
// dial, read and write timeouts, pool size (not for a cluster, whose asynq
// option has none), the cluster's max_redirects, and TLS. Other URL options
// (max_retries, pool_timeout, ...) reach only NewClient's client, because
// asynq has no field for them.
func (o *Options) AsynqOpt() asynq.RedisConnOpt {
	switch o.topology {
	case TopologySentinel:
		f := o.failover
		return asynq.RedisFailoverClientOpt{
			MasterName:       f.MasterName,
			SentinelAddrs:    slices.Clone(f.SentinelAddrs),
			SentinelUsername: f.SentinelUsername,
			SentinelPassword: f.SentinelPassword,
			Username:         f.Username,
			Password:         f.Password,
			DB:               f.DB,
			DialTimeout:      f.DialTimeout,
			ReadTimeout:      f.ReadTimeout,
			WriteTimeout:     f.WriteTimeout,
			PoolSize:         f.PoolSize,
			TLSConfig:        cloneTLS(f.TLSConfig),
		}
	case TopologyCluster:
		c := o.cluster
		return asynq.RedisClusterClientOpt{
			Addrs:        slices.Clone(c.Addrs),
			MaxRedirects: c.MaxRedirects,
			Username:     c.Username,
			Password:     c.Password,
			DialTimeout:  c.DialTimeout,
			ReadTimeout:  c.ReadTimeout,
			WriteTimeout: c.WriteTimeout,
			TLSConfig:    cloneTLS(c.TLSConfig),
		}
	default:
		s := o.single
		return asynq.RedisClientOpt{
			Network:      s.Network,
			Addr:         s.Addr,
			Username:     s.Username,
			Password:     s.Password,
			DB:           s.DB,
			DialTimeout:  s.DialTimeout,
			ReadTimeout:  s.ReadTimeout,
			WriteTimeout: s.WriteTimeout,
			PoolSize:     s.PoolSize,
			TLSConfig:    cloneTLS(s.TLSConfig),
		}
	}
}

func cloneTLS(c *tls.Config) *tls.Config {
	if c == nil {
		return nil
	}
	return c.Clone()
}

// schemes maps each URL scheme to its topology and whether it uses TLS.
var schemes = map[string]struct {
	topology string
	tls      bool
}{
	"redis":           {TopologySingle, false},
	"rediss":          {TopologySingle, true},
	"redis-sentinel":  {TopologySentinel, false},
	"rediss-sentinel": {TopologySentinel, true},
	"redis-cluster":   {TopologyCluster, false},
	"rediss-cluster":  {TopologyCluster, true},
}

const wantSchemes = "want redis, rediss, redis-sentinel, rediss-sentinel, redis-cluster or rediss-cluster"

var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]{0,30}$`)

// parts is a URL split into its pieces. Everything but user and password
// may appear in error messages.
type parts struct {
	topology string
	tls      bool
	scheme   string // lower case
	rawUser  string // userinfo as written, "" if none
	hasUser  bool   // an '@' separated credentials from the hosts
	user     *url.Userinfo
	rawHosts string   // host list as written
	addrs    []string // host:port, defaults applied
	rawPath  string   // path as written
	path     string   // decoded, "" or "/..."
	rawQuery string
	query    url.Values
}

// split takes a URL apart without ever putting the credentials into an
// error. It splits the authority itself (url.Parse cannot parse a list of
// IPv6 addresses, and its errors quote the whole URL, password included),
// and it rejects an '@' after the hosts: that is what a password holding
// an unencoded '/', '?' or '#' looks like, and going on would put parts of
// the password into the path, the query or the host list, which errors may
// quote.
func split(raw string) (*parts, error) {
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return nil, fmt.Errorf("redis URL: missing scheme (%s), as in redis://host:port/0", wantSchemes)
	}
	if !schemeRE.MatchString(scheme) {
		return nil, fmt.Errorf("redis URL: malformed scheme (%s)", wantSchemes)
	}
	scheme = strings.ToLower(scheme)
	kind, ok := schemes[scheme]
	if !ok {
		return nil, fmt.Errorf("redis URL: unknown scheme %q (%s)", scheme, wantSchemes)
	}
	p := &parts{topology: kind.topology, tls: kind.tls, scheme: scheme}

	authority, tail := rest, ""
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, tail = rest[:i], rest[i:]
	}
	if strings.Contains(tail, "@") {
		return nil, errors.New("redis URL: '@' after the host list: percent-encode '/', '?', '#' and '@' " +
			"in the user name and password (%2F, %3F, %23, %40) and '@' in query values (%40)")
	}
	if strings.Contains(tail, "#") {
		return nil, errors.New("redis URL: unexpected '#' (percent-encode it as %23 in a password)")
	}
	hosts := authority
	if i := strings.LastIndex(authority, "@"); i >= 0 {
		p.rawUser, p.hasUser, hosts = authority[:i], true, authority[i+1:]
	}

	// Let url.Parse decode the credentials, path and query, with a
	// placeholder host. None of its error text is used: it would quote the
	// URL.
	probe := "x://"
	if p.hasUser {
		probe += p.rawUser + "@"
	}
	u, err := url.Parse(probe + "h" + tail)
	if err != nil {
		return nil, urlError(err)
	}
	p.user, p.path, p.rawQuery, p.rawHosts = u.User, u.Path, u.RawQuery, hosts
	p.rawPath, _, _ = strings.Cut(tail, "?")
	if p.query, err = url.ParseQuery(u.RawQuery); err != nil {
		return nil, errors.New("redis URL: bad percent-escape in the query (write '%' as %25)")
	}

	defPort := PortDefault
	if p.topology == TopologySentinel {
		defPort = SentinelPortDefault
	}
	if hosts != "" {
		for i, h := range strings.Split(hosts, ",") {
			addr, err := splitAddr(h, defPort)
			if err != nil {
				return nil, fmt.Errorf("redis URL: address %d %q: %w", i+1, h, err)
			}
			p.addrs = append(p.addrs, addr)
		}
	}
	return p, nil
}

// urlError describes a url.Parse error without its text, which quotes the
// input.
func urlError(err error) error {
	var esc url.EscapeError
	if errors.As(err, &esc) {
		return errors.New("redis URL: bad percent-escape in the user name, password or path (write '%' as %25)")
	}
	return errors.New("redis URL: malformed user name, password or path: percent-encode '%', '/', '?', '#', '@', " +
		"spaces and control characters in them")
}

var hostRE = regexp.MustCompile(`^[A-Za-z0-9._~-]+$`)

// splitAddr validates "host", "host:port", "[v6]" or "[v6]:port" and
// returns it as host:port.
func splitAddr(s, defPort string) (string, error) {
	host, port := s, ""
	switch {
	case strings.HasPrefix(s, "["):
		end := strings.Index(s, "]")
		if end < 0 {
			return "", errors.New("missing ']' after an IPv6 address")
		}
		host = s[1:end]
		switch after := s[end+1:]; {
		case after == "":
		case strings.HasPrefix(after, ":"):
			port = after[1:]
		default:
			return "", errors.New("want [ipv6]:port")
		}
		if net.ParseIP(host) == nil {
			return "", errors.New("not an IPv6 address in brackets")
		}
	case strings.Contains(s, ":"):
		var err error
		if host, port, err = net.SplitHostPort(s); err != nil {
			return "", errors.New("want host:port (write an IPv6 address in brackets)")
		}
		if !hostRE.MatchString(host) {
			return "", errors.New("bad host name")
		}
	default:
		if !hostRE.MatchString(host) {
			return "", errors.New("bad host name")
		}
	}
	if port == "" {
		port = defPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
		return "", errors.New("port is not a number from 1 to 65535")
	}
	return net.JoinHostPort(host, port), nil
}

// db parses the path: "" and "/" are database 0, "/N" is database N.
func (p *parts) db() (int, error) {
	s := strings.TrimPrefix(p.path, "/")
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("redis URL: path must be /N with N a database number, got %q", p.path)
	}
	return n, nil
}

// password returns the password, "" if none.
func (p *parts) password() string {
	if p.user == nil {
		return ""
	}
	pw, _ := p.user.Password()
	return pw
}

// goRedisError turns an error of go-redis's URL parsing (whose input this
// package built from the parts) into ours, with every secret scrubbed.
func (p *parts) goRedisError(err error) error {
	msg := strings.TrimPrefix(err.Error(), "redis: ")
	_, rawPassword, _ := strings.Cut(p.rawUser, ":")
	secrets := []string{rawPassword, p.password(), p.query.Get("sentinel_password")}
	if p.user != nil {
		if _, hasPw := p.user.Password(); hasPw {
			secrets = append(secrets, p.user.String()) // as go-redis's url.URL writes it
		}
	}
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "xxxxx")
		}
	}
	return errors.New("redis URL: " + msg)
}

const readsFromPrimary = "wxmass reads its own writes, so every command goes to the primary"

// forbid rejects query options that go-redis knows but that this URL form
// sets elsewhere.
func (p *parts) forbid(where map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(where)) {
		if p.query.Has(name) {
			return fmt.Errorf("redis URL: option %s is not allowed here: %s", name, where[name])
		}
	}
	return nil
}

// goRedisURL builds the URL go-redis's parsers take.
func (p *parts) goRedisURL(user *url.Userinfo, host, path string, q url.Values) string {
	scheme := "redis"
	if p.tls {
		scheme = "rediss"
	}
	u := url.URL{Scheme: scheme, User: user, Host: host, Path: path, RawQuery: q.Encode()}
	return u.String()
}

func (p *parts) parseSingle() (*redis.Options, error) {
	if len(p.addrs) > 1 {
		return nil, fmt.Errorf("redis URL: %s:// takes one host, got %d; use redis-sentinel:// or redis-cluster:// for several",
			p.scheme, len(p.addrs))
	}
	host := ""
	if len(p.addrs) == 1 {
		host = p.addrs[0]
	}
	db, err := p.db()
	if err != nil {
		return nil, err
	}
	opt, err := redis.ParseURL(p.goRedisURL(p.user, host, "/"+strconv.Itoa(db), p.query))
	if err != nil {
		return nil, p.goRedisError(err)
	}
	return opt, nil
}

func (p *parts) parseSentinel() (*redis.FailoverOptions, error) {
	if len(p.addrs) == 0 {
		return nil, errors.New("redis URL: sentinel needs at least one sentinel address")
	}
	if err := p.forbid(map[string]string{
		"master_name": "name the master with ?master=NAME",
		"addr":        "list the sentinels in the host part, separated by commas",
		"username":    "put the data nodes' user in the user:password part",
		"password":    "put the data nodes' password in the user:password part",
		// go-redis's failover client panics on these two (they are for
		// its FailoverClusterClient), and replicas lag the primary.
		"route_by_latency": readsFromPrimary,
		"route_randomly":   readsFromPrimary,
		"replica_only":     readsFromPrimary,
	}); err != nil {
		return nil, err
	}
	q := cloneValues(p.query)
	master := q.Get("master")
	if master == "" {
		return nil, errors.New("redis URL: sentinel needs ?master=NAME")
	}
	db, err := p.db()
	if err != nil {
		return nil, err
	}
	var sentinelUser *url.Userinfo
	if q.Has("sentinel_username") || q.Has("sentinel_password") {
		sentinelUser = url.UserPassword(q.Get("sentinel_username"), q.Get("sentinel_password"))
	}
	for _, k := range []string{"master", "sentinel_username", "sentinel_password"} {
		q.Del(k)
	}
	q.Set("master_name", master)
	for _, a := range p.addrs[1:] {
		q.Add("addr", a)
	}
	if p.user != nil {
		q.Set("username", p.user.Username())
		if pw, ok := p.user.Password(); ok {
			q.Set("password", pw)
		}
	}
	opt, err := redis.ParseFailoverURL(p.goRedisURL(sentinelUser, p.addrs[0], "/"+strconv.Itoa(db), q))
	if err != nil {
		return nil, p.goRedisError(err)
	}
	// go-redis pins the TLS server name to the first sentinel's host, but
	// the same config dials the other sentinels and the data nodes: leave
	// it empty so that each connection verifies its own host.
	if opt.TLSConfig != nil {
		opt.TLSConfig.ServerName = ""
	}
	return opt, nil
}

func (p *parts) parseCluster() (*redis.ClusterOptions, error) {
	if len(p.addrs) == 0 {
		return nil, errors.New("redis URL: cluster needs at least one node address")
	}
	if db, err := p.db(); err != nil {
		return nil, err
	} else if db != 0 {
		return nil, fmt.Errorf("redis URL: cluster has no database numbers, got %s", p.path)
	}
	if err := p.forbid(map[string]string{
		"addr": "list the nodes in the host part, separated by commas",
		"db":   "a cluster has only database 0",
		// Replica reads would see stale state.
		"read_only":        readsFromPrimary,
		"route_by_latency": readsFromPrimary,
		"route_randomly":   readsFromPrimary,
	}); err != nil {
		return nil, err
	}
	q := cloneValues(p.query)
	// go-redis's cluster URLs have no skip_verify; take it here so that
	// every TLS scheme accepts the same options.
	skipVerify := q.Get("skip_verify")
	q.Del("skip_verify")
	if skipVerify != "" && !p.tls {
		return nil, errors.New("redis URL: skip_verify needs a TLS scheme (rediss-cluster)")
	}
	for _, a := range p.addrs[1:] {
		q.Add("addr", a)
	}
	opt, err := redis.ParseClusterURL(p.goRedisURL(p.user, p.addrs[0], "", q))
	if err != nil {
		return nil, p.goRedisError(err)
	}
	if p.tls {
		// As for sentinels: one config dials every node, so no fixed
		// server name; and the same minimum version as the other schemes.
		opt.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		switch skipVerify {
		case "", "false", "0":
		case "true", "1":
			opt.TLSConfig.InsecureSkipVerify = true
		default:
			return nil, fmt.Errorf("redis URL: invalid skip_verify boolean: want true, false, 1 or 0, got %q", skipVerify)
		}
	}
	return opt, nil
}

func cloneValues(v url.Values) url.Values {
	c := make(url.Values, len(v))
	for k, vs := range v {
		c[k] = slices.Clone(vs)
	}
	return c
}

// redact returns the URL with the password and the sentinel_password query
// value replaced by xxxxx. The rest reads as the operator wrote it.
func (p *parts) redact() string {
	var b strings.Builder
	b.WriteString(p.scheme)
	b.WriteString("://")
	if p.hasUser {
		if user, _, hasPw := strings.Cut(p.rawUser, ":"); hasPw {
			b.WriteString(user + ":xxxxx@")
		} else {
			b.WriteString(p.rawUser + "@")
		}
	}
	b.WriteString(p.rawHosts)
	b.WriteString(p.rawPath)
	if p.rawQuery != "" {
		items := strings.Split(p.rawQuery, "&")
		for i, it := range items {
			k, _, _ := strings.Cut(it, "=")
			if name, err := url.QueryUnescape(k); err == nil && isSecretOption(name) {
				items[i] = k + "=xxxxx"
			}
		}
		b.WriteString("?" + strings.Join(items, "&"))
	}
	return b.String()
}

func isSecretOption(name string) bool {
	return name == "sentinel_password" || name == "password"
}
