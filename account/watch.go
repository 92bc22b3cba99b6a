package account

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// WatchIntervalDefault is how often Watch reads the accounts file and its
// secret files again.
const WatchIntervalDefault = 10 * time.Second

// WatchConfig configures Watch.
type WatchConfig struct {
	// Path is the accounts file.
	Path     string
	Defaults Defaults
	// Getenv reads the environment. Default: os.Getenv.
	Getenv func(string) string
	// Interval is how often the files are read. Default:
	// WatchIntervalDefault.
	Interval time.Duration
	// Reload makes Watch read the files at once (send on it on SIGHUP).
	Reload <-chan struct{}
	// Apply is called with the new configuration when it differs from the
	// one in force, with what changed. If it fails, the configuration in
	// force stays and the next read tries again.
	Apply func(specs []Spec, c Changes) error
	// Logger logs reloads and refused files. Default: no logs.
	Logger *zap.Logger
}

// Watch reads the accounts file every Interval and on Reload, and applies
// a configuration that differs from current: rotated secrets, new rates,
// added or removed accounts take effect without a restart. A file that no
// longer loads is logged and ignored; current stays in force. Watch
// returns when ctx ends.
func Watch(ctx context.Context, cfg WatchConfig, current []Spec) error {
	if cfg.Interval <= 0 {
		cfg.Interval = WatchIntervalDefault
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	t := time.NewTicker(cfg.Interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-cfg.Reload:
			log.Info("reloading the accounts file", zap.String("file", cfg.Path))
		}
		specs, err := LoadFile(cfg.Path, cfg.Defaults, cfg.Getenv)
		if err != nil {
			// Logged once per distinct problem, not every interval.
			if msg := err.Error(); msg != lastErr {
				lastErr = msg
				log.Error("accounts file refused; the accounts in force stay", zap.Error(err))
			}
			continue
		}
		lastErr = ""
		c := Diff(current, specs)
		if c.Empty() {
			continue
		}
		if err := cfg.Apply(specs, c); err != nil {
			log.Error("accounts not reloaded; the accounts in force stay", zap.Error(err))
			continue
		}
		current = specs
		log.Info("accounts reloaded", zap.Strings("added", c.Added), zap.Strings("removed", c.Removed), zap.Any("changed", c.Changed))
	}
}
