package check

import (
	"context"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/stretchr/testify/require"

	"github.com/wxmass/wxmass/account"
	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/wechat/wechattest"
)

var (
	composeOnce    sync.Once
	composeProject *types.Project
	composeErr     error
)

// loadCompose loads deploy/docker-compose.yml with compose-go, the library
// `docker compose` uses: it validates the file against the Compose
// specification's JSON schema, interpolates it (with an empty environment,
// so the defaults apply) and resolves relative paths against deploy/.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	composeOnce.Do(func() {
		composeProject, composeErr = loader.LoadWithContext(context.Background(), types.ConfigDetails{
			WorkingDir:  deployPath(),
			ConfigFiles: []types.ConfigFile{{Filename: deployPath("docker-compose.yml")}},
			Environment: types.Mapping{},
		}, func(o *loader.Options) {
			o.SetProjectName("wxmass", true)
			o.ResolvePaths = true
		})
	})
	require.NoError(t, composeErr, "docker-compose.yml")
	return composeProject
}

// wxService is a compose service that runs wxmass.
type wxService struct {
	name string
	sub  string   // the subcommand
	args []string // after the subcommand
	env  map[string]string
	// binds maps a container path to the host path bind-mounted there.
	binds map[string]string
	svc   types.ServiceConfig
}

// wxmassService returns the compose service name, which must run wxmass.
func wxmassService(t *testing.T, p *types.Project, name string) wxService {
	t.Helper()
	svc, ok := p.Services[name]
	require.Truef(t, ok, "docker-compose.yml has no service %s", name)
	require.NotEmptyf(t, svc.Command, "service %s: no command (a wxmass subcommand)", name)
	s := wxService{name: name, sub: svc.Command[0], args: svc.Command[1:], env: map[string]string{}, binds: map[string]string{}, svc: svc}
	for k, v := range svc.Environment {
		require.NotNilf(t, v, "service %s: environment %s has no value", name, k)
		s.env[k] = *v
	}
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeBind {
			s.binds[v.Target] = v.Source
		}
	}
	return s
}

// hostPath maps a path inside the service's container to the host file
// bind-mounted there, or fails.
func (s wxService) hostPath(t *testing.T, p string) string {
	t.Helper()
	best := ""
	for target := range s.binds {
		if (p == target || strings.HasPrefix(p, target+"/")) && len(target) > len(best) {
			best = target
		}
	}
	require.NotEmptyf(t, best, "service %s: %s is not in a bind mount", s.name, p)
	return filepath.Join(s.binds[best], strings.TrimPrefix(p, best))
}

// translateFile writes a copy of the file at container path p (bind-mounted
// from the host) in which every container path of the service's bind
// mounts is replaced by its host path, so that wxmass can load it here.
func (s wxService) translateFile(t *testing.T, p string, more ...string) string {
	t.Helper()
	text := string(readFile(t, s.hostPath(t, p)))
	targets := sortedKeys(s.binds)
	slices.SortFunc(targets, func(a, b string) int { return len(b) - len(a) })
	var pairs []string
	for _, target := range targets {
		pairs = append(pairs, target+"/", s.binds[target]+"/")
	}
	text = strings.NewReplacer(append(pairs, more...)...).Replace(text)
	out := filepath.Join(t.TempDir(), filepath.Base(p))
	require.NoError(t, os.WriteFile(out, []byte(text), 0o600))
	return out
}

// TestCompose checks deploy/docker-compose.yml: it loads and validates with
// compose-go; it has Redis (with deploy/redis.conf, AOF on and a volume),
// the fake WeChat, serve, several workers and Prometheus; serve and the
// workers wait for a healthy Redis and get longer than their shutdown
// timeout to stop; every file it mounts exists in the repository; every
// WXMASS_ variable is one that `wxmass <subcommand> --help` names; and the
// addresses the services use reach the services and ports that listen.
func TestCompose(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	for _, name := range []string{"redis", "fakewechat", "serve", "worker", "prometheus", "grafana"} {
		require.Containsf(t, p.Services, name, "service %s", name)
	}

	// Every bind mount's source is a file or directory of the repository.
	for _, svc := range p.Services {
		for _, v := range svc.Volumes {
			switch v.Type {
			case types.VolumeTypeBind:
				rel, err := filepath.Rel(repoRoot, v.Source)
				require.NoError(t, err)
				require.Falsef(t, strings.HasPrefix(rel, ".."), "service %s mounts %s, outside the repository", svc.Name, v.Source)
				_, err = os.Stat(v.Source)
				require.NoErrorf(t, err, "service %s mounts %s", svc.Name, rel)
				require.Truef(t, v.ReadOnly, "service %s: bind mount %s should be read-only", svc.Name, rel)
			case types.VolumeTypeVolume:
				require.Containsf(t, p.Volumes, v.Source, "service %s: volume %s is not declared", svc.Name, v.Source)
			}
		}
	}

	// Redis: deploy/redis.conf, AOF, a volume at /data, a health check.
	redis := p.Services["redis"]
	require.True(t, strings.HasPrefix(redis.Image, "redis:7"), "redis image %s", redis.Image)
	require.Len(t, redis.Command, 2)
	require.Equal(t, "redis-server", redis.Command[0])
	var confSource string
	var dataVolume bool
	for _, v := range redis.Volumes {
		if v.Target == redis.Command[1] {
			confSource = v.Source
		}
		if v.Target == "/data" && v.Type == types.VolumeTypeVolume {
			dataVolume = true
		}
	}
	require.Equal(t, deployPath("redis.conf"), confSource, "redis-server's configuration file")
	require.True(t, dataVolume, "redis: a named volume at /data keeps the AOF across container restarts")
	conf := parseRedisConf(t)
	require.Equal(t, "yes", conf["appendonly"])
	require.Equal(t, "everysec", conf["appendfsync"])
	require.Equal(t, "noeviction", conf["maxmemory-policy"])
	require.NotNil(t, redis.HealthCheck, "redis health check (serve and worker wait for it)")
	require.Equal(t, []string{"CMD", "redis-cli", "ping"}, []string(redis.HealthCheck.Test))

	dockerfilePorts := parseDockerfile(t).exposedPorts()
	for _, name := range []string{"fakewechat", "serve", "worker"} {
		s := wxmassService(t, p, name)
		require.NotNilf(t, s.svc.Build, "service %s: built from deploy/Dockerfile", name)
		require.Equal(t, repoRoot, s.svc.Build.Context, "service %s: build context", name)
		require.Equal(t, "deploy/Dockerfile", s.svc.Build.Dockerfile, "service %s: Dockerfile", name)
		require.True(t, s.svc.ReadOnly, "service %s: read-only root filesystem", name)
		require.Contains(t, s.svc.CapDrop, "ALL", "service %s: cap_drop", name)
		checkEnvNames(t, "docker-compose.yml service "+name, s.sub, sortedKeys(s.env))
	}

	serve := wxmassService(t, p, "serve")
	worker := wxmassService(t, p, "worker")
	fake := wxmassService(t, p, "fakewechat")
	require.Equal(t, "serve", serve.sub)
	require.Equal(t, "worker", worker.sub)
	require.Equal(t, "fakewechat", fake.sub)
	require.NotNil(t, worker.svc.Deploy)
	require.NotNil(t, worker.svc.Deploy.Replicas)
	require.Greater(t, *worker.svc.Deploy.Replicas, 1, "worker replicas")

	for _, s := range []wxService{serve, worker} {
		dep, ok := s.svc.DependsOn["redis"]
		require.Truef(t, ok, "service %s depends on redis", s.name)
		require.Equal(t, types.ServiceConditionHealthy, dep.Condition, "service %s waits for a healthy redis", s.name)

		grace := shutdownGrace(t, s.sub, s.args, s.env)
		require.NotNilf(t, s.svc.StopGracePeriod, "service %s: stop_grace_period (Docker's default 10s kills sends in flight)", s.name)
		require.Greaterf(t, time.Duration(*s.svc.StopGracePeriod), grace, "service %s: stop_grace_period vs --shutdown-timeout + 5s", s.name)

		u, err := url.Parse(s.env["WXMASS_REDIS_URL"])
		require.NoError(t, err)
		require.Equal(t, "redis:6379", u.Host, "service %s: WXMASS_REDIS_URL", s.name)

		u, err = url.Parse(s.env["WXMASS_WECHAT_BASE_URL"])
		require.NoError(t, err)
		require.Equal(t, "fakewechat:"+portOf(t, flagValue(t, "fakewechat", fake.args, fake.env, "fake-listen")), u.Host,
			"service %s: WXMASS_WECHAT_BASE_URL is the fake's address", s.name)

		_, err = os.Stat(s.hostPath(t, s.env["WXMASS_ACCOUNTS_FILE"]))
		require.NoError(t, err, "service %s: WXMASS_ACCOUNTS_FILE", s.name)
	}

	// serve listens where its port is published; the image exposes it.
	listen := portOf(t, flagValue(t, "serve", serve.args, serve.env, "listen"))
	require.True(t, dockerfilePorts[listen], "serve's port %s is EXPOSEd by the image", listen)
	require.Len(t, serve.svc.Ports, 1)
	require.Equal(t, listen, strconvU(serve.svc.Ports[0].Target), "serve's published port")
	require.Equal(t, "127.0.0.1", serve.svc.Ports[0].HostIP, "publish on loopback only")
	keysFile := serve.hostPath(t, serve.env["WXMASS_API_KEYS_FILE"])
	_, err := os.Stat(keysFile)
	require.NoError(t, err, "serve's WXMASS_API_KEYS_FILE")
	readKeys(t, keysFile)

	// Workers serve /metrics on --metrics-listen, a port the image exposes
	// and the service exposes on the compose network.
	metrics := portOf(t, flagValue(t, "worker", worker.args, worker.env, "metrics-listen"))
	require.True(t, dockerfilePorts[metrics], "worker metrics port %s is EXPOSEd by the image", metrics)
	require.Contains(t, []string(worker.svc.Expose), metrics)
	require.Empty(t, worker.svc.Ports, "workers publish no port (replicas would clash)")

	// The fake's configuration is mounted where --fake-config says.
	_, err = os.Stat(fake.hostPath(t, flagValue(t, "fakewechat", fake.args, fake.env, "fake-config")))
	require.NoError(t, err)
}

func strconvU(n uint32) string { return (&net.TCPAddr{Port: int(n)}).String()[1:] }

// readKeys reads an API keys file with wxmass's own reader.
func readKeys(t *testing.T, path string) *api.KeySet {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	ks := &api.KeySet{}
	require.NoError(t, ks.ReadKeys(f), "API keys file %s", path)
	require.NotZero(t, ks.Len(), "API keys file %s has no key", path)
	return ks
}

// TestComposeAccounts loads the local trial's accounts file as serve and
// the workers see it (container paths mapped to the mounted files) with
// wxmass's own loader, which reads and checks every secret file it names,
// and checks the fake WeChat's configuration against it: the same appid
// and appsecret, and receipts pushed to serve's callback path of that
// account, signed and encrypted with the account's token and AES key.
func TestComposeAccounts(t *testing.T) {
	t.Parallel()
	p := loadCompose(t)
	serve := wxmassService(t, p, "serve")
	fake := wxmassService(t, p, "fakewechat")

	specs, err := account.LoadFile(serve.translateFile(t, serve.env["WXMASS_ACCOUNTS_FILE"]), account.Defaults{Rate: 100}, func(string) string { return "" })
	require.NoError(t, err, "the local trial's accounts file, with wxmass's loader")
	require.NotEmpty(t, specs)

	f, err := os.Open(fake.hostPath(t, flagValue(t, "fakewechat", fake.args, fake.env, "fake-config")))
	require.NoError(t, err)
	defer f.Close()
	cfg, err := wechattest.LoadConfig(f)
	require.NoError(t, err, "the fake's configuration, with its own loader")
	srv, err := wechattest.New(cfg)
	require.NoError(t, err, "the fake accepts its configuration")
	require.NoError(t, srv.Stop(context.Background()))

	fakeSecrets := map[string]string{}
	for _, a := range cfg.Accounts {
		fakeSecrets[a.AppID] = a.Secret
	}
	for _, s := range specs {
		secret, ok := fakeSecrets[s.AppID]
		require.Truef(t, ok, "account %s: appid %s is not an account of the fake", s.ID, s.AppID)
		require.Equalf(t, secret, s.Secret.Reveal(), "account %s: appsecret file vs the fake's secret", s.ID)
	}

	// Receipts: the fake pushes to serve's receiver of the first account
	// with a callback, at --callback-path/{id}.
	require.NotEmpty(t, cfg.Callback.URL, "the fake pushes delivery receipts")
	var cb *account.Spec
	for i := range specs {
		if specs[i].Callback != nil {
			cb = &specs[i]
			break
		}
	}
	require.NotNil(t, cb, "an account with a callback")
	u, err := url.Parse(cfg.Callback.URL)
	require.NoError(t, err)
	require.Equal(t, "serve:"+portOf(t, flagValue(t, "serve", serve.args, serve.env, "listen")), u.Host, "callback URL host")
	require.Equal(t, strings.TrimRight(flagValue(t, "serve", serve.args, serve.env, "callback-path"), "/")+"/"+cb.ID, u.Path, "callback URL path")
	require.Equal(t, cb.Callback.Mode, cfg.Callback.Mode, "callback mode")
	require.Equal(t, cb.Callback.Token.Reveal(), cfg.Callback.Token, "callback token")
	require.Equal(t, cb.Callback.AESKey.Reveal(), cfg.Callback.AESKey, "callback EncodingAESKey")
}
