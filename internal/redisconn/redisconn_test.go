package redisconn_test

import (
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/internal/redisconn"
)

func TestParse(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name     string
		url      string
		topology string
		redacted string
		asynq    asynq.RedisConnOpt
		check    func(t *testing.T, c redis.UniversalClient)
	}{
		{
			name:     "SingleMinimal",
			url:      "redis://127.0.0.1:6379",
			topology: "single",
			redacted: "redis://127.0.0.1:6379",
			asynq:    asynq.RedisClientOpt{Network: "tcp", Addr: "127.0.0.1:6379"},
		},
		{
			name:     "SingleDefaultPort",
			url:      "redis://cache.internal/2",
			topology: "single",
			redacted: "redis://cache.internal/2",
			asynq:    asynq.RedisClientOpt{Network: "tcp", Addr: "cache.internal:6379", DB: 2},
		},
		{
			name:     "SingleEverything",
			url:      "redis://app:s3cr%40t@10.0.0.5:6380/7?dial_timeout=2s&read_timeout=4&write_timeout=1500ms&pool_size=33&max_retries=5&client_name=wx",
			topology: "single",
			redacted: "redis://app:xxxxx@10.0.0.5:6380/7?dial_timeout=2s&read_timeout=4&write_timeout=1500ms&pool_size=33&max_retries=5&client_name=wx",
			asynq: asynq.RedisClientOpt{
				Network: "tcp", Addr: "10.0.0.5:6380", Username: "app", Password: "s3cr@t", DB: 7,
				DialTimeout: 2 * time.Second, ReadTimeout: 4 * time.Second, WriteTimeout: 1500 * time.Millisecond, PoolSize: 33,
			},
			check: func(t *testing.T, c redis.UniversalClient) {
				opt := c.(*redis.Client).Options()
				require.Equal(t, 5, opt.MaxRetries)
				require.Equal(t, "wx", opt.ClientName)
				require.Equal(t, 33, opt.PoolSize)
			},
		},
		{
			name:     "SinglePasswordOnlyUpperScheme",
			url:      "REDIS://:pw@[::1]:7000/0",
			topology: "single",
			redacted: "redis://:xxxxx@[::1]:7000/0",
			asynq:    asynq.RedisClientOpt{Network: "tcp", Addr: "[::1]:7000", Password: "pw"},
		},
		{
			name:     "SingleTimeoutDisabled",
			url:      "redis://h:1?read_timeout=0",
			topology: "single",
			redacted: "redis://h:1?read_timeout=0",
			asynq:    asynq.RedisClientOpt{Network: "tcp", Addr: "h:1", ReadTimeout: -1},
		},
		{
			name:     "SingleTLS",
			url:      "rediss://:pw@redis.example.com:6380/1?skip_verify=true",
			topology: "single",
			redacted: "rediss://:xxxxx@redis.example.com:6380/1?skip_verify=true",
			asynq: asynq.RedisClientOpt{Network: "tcp", Addr: "redis.example.com:6380", Password: "pw", DB: 1,
				TLSConfig: &tls.Config{ServerName: "redis.example.com", MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}},
		},
		{
			name:     "Sentinel",
			url:      "redis-sentinel://:data%2Fpw@10.0.0.1:26379,10.0.0.2:26380,sentinel-3/4?master=wxmass&sentinel_password=sent&dial_timeout=3s&pool_size=7",
			topology: "sentinel",
			redacted: "redis-sentinel://:xxxxx@10.0.0.1:26379,10.0.0.2:26380,sentinel-3/4?master=wxmass&sentinel_password=xxxxx&dial_timeout=3s&pool_size=7",
			asynq: asynq.RedisFailoverClientOpt{
				MasterName:       "wxmass",
				SentinelAddrs:    []string{"10.0.0.1:26379", "10.0.0.2:26380", "sentinel-3:26379"},
				SentinelPassword: "sent", Password: "data/pw", DB: 4,
				DialTimeout: 3 * time.Second, PoolSize: 7,
			},
			check: func(t *testing.T, c redis.UniversalClient) {
				opt := c.(*redis.Client).Options()
				require.Equal(t, 4, opt.DB)
				require.Equal(t, "data/pw", opt.Password)
				require.Equal(t, 7, opt.PoolSize)
			},
		},
		{
			name:     "SentinelUsers",
			url:      "redis-sentinel://app:pw@s1:1,s2:2?master=m&sentinel_username=watch&sentinel_password=spw",
			topology: "sentinel",
			redacted: "redis-sentinel://app:xxxxx@s1:1,s2:2?master=m&sentinel_username=watch&sentinel_password=xxxxx",
			asynq: asynq.RedisFailoverClientOpt{
				MasterName: "m", SentinelAddrs: []string{"s1:1", "s2:2"},
				SentinelUsername: "watch", SentinelPassword: "spw", Username: "app", Password: "pw",
			},
		},
		{
			name:     "SentinelTLS",
			url:      "rediss-sentinel://s1:1,s2:2/0?master=m",
			topology: "sentinel",
			redacted: "rediss-sentinel://s1:1,s2:2/0?master=m",
			asynq: asynq.RedisFailoverClientOpt{MasterName: "m", SentinelAddrs: []string{"s1:1", "s2:2"},
				TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12}},
		},
		{
			name:     "Cluster",
			url:      "redis-cluster://:pw@10.0.0.1:7000,10.0.0.2:7001,[fe80::1]:7002?read_timeout=2s&max_redirects=3&pool_size=20",
			topology: "cluster",
			redacted: "redis-cluster://:xxxxx@10.0.0.1:7000,10.0.0.2:7001,[fe80::1]:7002?read_timeout=2s&max_redirects=3&pool_size=20",
			asynq: asynq.RedisClusterClientOpt{
				Addrs:    []string{"10.0.0.1:7000", "10.0.0.2:7001", "[fe80::1]:7002"},
				Password: "pw", ReadTimeout: 2 * time.Second, MaxRedirects: 3,
			},
			check: func(t *testing.T, c redis.UniversalClient) {
				opt := c.(*redis.ClusterClient).Options()
				require.Equal(t, 20, opt.PoolSize)
				require.Equal(t, 3, opt.MaxRedirects)
			},
		},
		{
			name:     "ClusterDB0",
			url:      "redis-cluster://n1:7000/0",
			topology: "cluster",
			redacted: "redis-cluster://n1:7000/0",
			asynq:    asynq.RedisClusterClientOpt{Addrs: []string{"n1:7000"}},
		},
		{
			name:     "ClusterTLS",
			url:      "rediss-cluster://n1:7000,n2:7000?skip_verify=1",
			topology: "cluster",
			redacted: "rediss-cluster://n1:7000,n2:7000?skip_verify=1",
			asynq: asynq.RedisClusterClientOpt{Addrs: []string{"n1:7000", "n2:7000"},
				TLSConfig: &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := redisconn.Parse(tt.url)
			require.NoError(t, err)
			require.Equal(t, tt.topology, o.Topology())
			require.Equal(t, tt.redacted, o.Redacted())
			require.Equal(t, tt.redacted, o.String())
			require.Equal(t, tt.asynq, o.AsynqOpt())

			c := o.NewClient()
			t.Cleanup(func() { _ = c.Close() })
			switch tt.topology {
			case "cluster":
				require.IsType(t, &redis.ClusterClient{}, c)
			default:
				require.IsType(t, &redis.Client{}, c)
			}
			if tt.check != nil {
				tt.check(t, c)
			}
		})
	}
}

func TestParseSharesNothing(t *testing.T) {
	t.Parallel()
	o, err := redisconn.Parse("rediss-cluster://n1:7000,n2:7000")
	require.NoError(t, err)
	a := o.AsynqOpt().(asynq.RedisClusterClientOpt)
	a.Addrs[0] = "changed"
	a.TLSConfig.InsecureSkipVerify = true
	b := o.AsynqOpt().(asynq.RedisClusterClientOpt)
	require.Equal(t, "n1:7000", b.Addrs[0])
	require.False(t, b.TLSConfig.InsecureSkipVerify)
	require.Equal(t, []string{"n1:7000", "n2:7000"}, o.Addrs())
}

func TestParseErrors(t *testing.T) {
	t.Parallel()

	const secret = "Sup3rS3cret"
	tests := []struct {
		name string
		url  string
		want string
	}{
		{"Empty", "", "missing scheme"},
		{"NoScheme", "127.0.0.1:6379", "missing scheme"},
		{"UnknownScheme", "http://h:1", `unknown scheme "http" (want redis, rediss, redis-sentinel`},
		{"UnixNotSupported", "unix:///tmp/redis.sock", `unknown scheme "unix"`},
		{"BadScheme", "re dis://:" + secret + "@h:1", "malformed scheme"},
		{"SentinelNoMaster", "redis-sentinel://:" + secret + "@s1:1,s2:2/0", "redis URL: sentinel needs ?master=NAME"},
		{"SentinelEmptyMaster", "redis-sentinel://s1:1/0?master=", "sentinel needs ?master=NAME"},
		{"SentinelNoHosts", "redis-sentinel:///0?master=m", "at least one sentinel address"},
		{"SentinelMasterName", "redis-sentinel://s1:1/0?master=m&master_name=x", "option master_name is not allowed here"},
		{"SentinelPasswordOption", "redis-sentinel://s1:1/0?master=m&password=" + secret, "option password is not allowed here"},
		{"SentinelAddrOption", "redis-sentinel://s1:1/0?master=m&addr=s2:2", "option addr is not allowed here"},
		{"SentinelBadDB", "redis-sentinel://s1:1/x?master=m", `path must be /N with N a database number, got "/x"`},
		{"ClusterDB", "redis-cluster://:" + secret + "@n1:1,n2:2/3", "redis URL: cluster has no database numbers, got /3"},
		{"ClusterDBOption", "redis-cluster://n1:1?db=2", "option db is not allowed here"},
		{"ClusterNoHosts", "redis-cluster://", "at least one node address"},
		{"ClusterSkipVerifyPlain", "redis-cluster://n1:1?skip_verify=true", "skip_verify needs a TLS scheme"},
		{"ClusterSkipVerifyBad", "rediss-cluster://n1:1?skip_verify=maybe", "invalid skip_verify boolean"},
		{"SingleManyHosts", "redis://:" + secret + "@h1:1,h2:2", "redis:// takes one host, got 2"},
		{"SingleBadDB", "redis://h:1/abc", `path must be /N with N a database number, got "/abc"`},
		{"SingleSignedDB", "redis://h:1/+3", "path must be /N"},
		{"SingleDeepPath", "redis://h:1/1/2", "path must be /N"},
		{"UnknownOption", "redis://:" + secret + "@h:1?dial_timeot=1s", "unexpected option: dial_timeot"},
		{"BadDuration", "redis://:" + secret + "@h:1?dial_timeout=soon", "invalid dial_timeout duration"},
		{"BadNumber", "redis-cluster://:" + secret + "@n:1?pool_size=many", "invalid pool_size number"},
		{"BadPort", "redis://h:http", `address 1 "h:http": port is not a number`},
		{"PortRange", "redis-cluster://n1:1,n2:70000", `address 2 "n2:70000": port is not a number from 1 to 65535`},
		{"EmptyHostInList", "redis-cluster://n1:1,,n3:3", `address 2 "": bad host name`},
		{"BadHost", "redis://h^:1", `address 1 "h^:1": bad host name`},
		{"BadIPv6", "redis://[zz]:1", "not an IPv6 address"},
		{"UnclosedIPv6", "redis://[::1:1", "missing ']'"},
		{"SlashInPassword", "redis://:" + secret + "/x@h:1/0", "'@' after the host list"},
		{"QuestionInPassword", "redis://u:12?" + secret + "@h:1", "'@' after the host list"},
		{"HashInPassword", "redis://:1#" + secret + "@h:1", "'@' after the host list"},
		{"Fragment", "redis://:" + secret + "@h:1/0#frag", "unexpected '#'"},
		{"BadEscapeInPassword", "redis://:" + secret + "%zz@h:1", "bad percent-escape in the user name, password or path"},
		{"SpaceInPassword", "redis://:" + secret + " x@h:1", "malformed user name, password or path"},
		{"BadEscapeInQuery", "redis-sentinel://s:1/0?master=m&sentinel_password=" + secret + "%zz", "bad percent-escape in the query"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o, err := redisconn.Parse(tt.url)
			require.Error(t, err, "parsed as %v", o)
			require.Contains(t, err.Error(), tt.want)
			require.True(t, strings.HasPrefix(err.Error(), "redis URL: "), err.Error())
			require.NotContains(t, err.Error(), secret)
			require.NotContains(t, err.Error(), secret[:4], "no fragment of the password either")
		})
	}
}

func ExampleParse() {
	o, err := redisconn.Parse("redis-sentinel://:hunter2@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/0?master=wxmass")
	if err != nil {
		panic(err)
	}
	fmt.Println(o.Topology())
	fmt.Println(o.Redacted())
	fmt.Printf("%T\n", o.AsynqOpt())

	_, err = redisconn.Parse("redis-cluster://:hunter2@10.0.0.1:7000,10.0.0.2:7000/3")
	fmt.Println(err)
	// Output:
	// sentinel
	// redis-sentinel://:xxxxx@10.0.0.1:26379,10.0.0.2:26379,10.0.0.3:26379/0?master=wxmass
	// asynq.RedisFailoverClientOpt
	// redis URL: cluster has no database numbers, got /3
}
