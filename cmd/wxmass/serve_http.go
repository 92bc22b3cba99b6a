package main

import (
	"errors"
	"math"
	"net/http"

	"github.com/urfave/cli/v3"
	"go.uber.org/zap"

	"github.com/wxmass/wxmass/api"
	"github.com/wxmass/wxmass/internal/httpserve"
)

// Flags of the API's HTTP server: timeouts, connection and request limits,
// TLS.
const (
	flagHTTPHeaderTimeout      = "http-header-timeout"
	flagHTTPBodyTimeout        = "http-body-timeout"
	flagHTTPUploadMinRate      = "http-upload-min-rate"
	flagHTTPHandlerTimeout     = "http-handler-timeout"
	flagHTTPIdleTimeout        = "http-idle-timeout"
	flagHTTPMaxHeaderBytes     = "http-max-header-bytes"
	flagHTTPMaxConnsPerAddress = "http-max-conns-per-address"
	flagHTTPMaxConns           = "http-max-conns"
	flagTLSCertFile            = "tls-cert-file"
	flagTLSKeyFile             = "tls-key-file"
	flagAPIRatePerKey          = "api-rate-per-key"
	flagAPIBurstPerKey         = "api-burst-per-key"
	flagAPIRatePerAddress      = "api-rate-per-address"
	flagAPIBurstPerAddress     = "api-burst-per-address"
	flagAuthFailureRate        = "auth-failure-rate"
	flagAuthFailureBurst       = "auth-failure-burst"
)

func httpFlags() []cli.Flag {
	return []cli.Flag{
		&cli.DurationFlag{Name: flagHTTPHeaderTimeout, Value: httpserve.HeaderTimeoutDefault, Usage: "bound on a request's headers (and TLS handshake)", Sources: sources(flagHTTPHeaderTimeout)},
		&cli.DurationFlag{Name: flagHTTPBodyTimeout, Value: httpserve.BodyTimeoutDefault, Usage: "bound on a request's body; an audience upload may take longer while it arrives at --" + flagHTTPUploadMinRate, Sources: sources(flagHTTPBodyTimeout)},
		&cli.IntFlag{Name: flagHTTPUploadMinRate, Value: httpserve.UploadMinRateDefault, Usage: "bytes per second an audience upload must average past --" + flagHTTPBodyTimeout, Sources: sources(flagHTTPUploadMinRate)},
		&cli.DurationFlag{Name: flagHTTPHandlerTimeout, Value: httpserve.HandlerTimeoutDefault, Usage: "how long a request may go without progress before it is cancelled (a streamed export or an upload progresses as data moves); its answer then has as long again to be taken", Sources: sources(flagHTTPHandlerTimeout)},
		&cli.DurationFlag{Name: flagHTTPIdleTimeout, Value: httpserve.IdleTimeoutDefault, Usage: "how long a connection may wait for its next request", Sources: sources(flagHTTPIdleTimeout)},
		&cli.IntFlag{Name: flagHTTPMaxHeaderBytes, Value: httpserve.MaxHeaderBytesDefault, Usage: "bound on a request's line and headers, in bytes", Sources: sources(flagHTTPMaxHeaderBytes)},
		&cli.IntFlag{Name: flagHTTPMaxConnsPerAddress, Value: httpserve.MaxConnsPerAddressDefault, Usage: "open connections one client address may have (an IPv6 one by its /64); more are closed at once; 0: no limit", Sources: sources(flagHTTPMaxConnsPerAddress)},
		&cli.IntFlag{Name: flagHTTPMaxConns, Value: httpserve.MaxConnsDefault, Usage: "open connections in all; more wait to be accepted; 0: no limit", Sources: sources(flagHTTPMaxConns)},
		&cli.StringFlag{Name: flagTLSCertFile, Usage: "PEM file of the TLS certificate (and chain) to serve HTTPS with, with --" + flagTLSKeyFile + "; both are read again when they change", TakesFile: true, Sources: sources(flagTLSCertFile)},
		&cli.StringFlag{Name: flagTLSKeyFile, Usage: "PEM file of the TLS certificate's private key", TakesFile: true, Sources: sources(flagTLSKeyFile)},
		&cli.FloatFlag{Name: flagAPIRatePerKey, Value: api.RatePerKeyDefault, Usage: "requests per second each API key may make; 0: no limit", Sources: sources(flagAPIRatePerKey)},
		&cli.IntFlag{Name: flagAPIBurstPerKey, Value: api.BurstPerKeyDefault, Usage: "requests an API key may make at once above its rate", Sources: sources(flagAPIBurstPerKey)},
		&cli.FloatFlag{Name: flagAPIRatePerAddress, Value: api.RatePerAddressDefault, Usage: "requests per second each client address may make, before authentication; 0: no limit", Sources: sources(flagAPIRatePerAddress)},
		&cli.IntFlag{Name: flagAPIBurstPerAddress, Value: api.BurstPerAddressDefault, Usage: "requests a client address may make at once above its rate", Sources: sources(flagAPIBurstPerAddress)},
		&cli.FloatFlag{Name: flagAuthFailureRate, Value: api.AuthFailureRateDefault, Usage: "failed authentications per second a client address may make once its burst is spent; past it, its requests get 429; 0: no limit", Sources: sources(flagAuthFailureRate)},
		&cli.IntFlag{Name: flagAuthFailureBurst, Value: api.AuthFailureBurstDefault, Usage: "failed authentications a client address may make at once", Sources: sources(flagAuthFailureBurst)},
	}
}

// apiLimits reads the API's request limits from the flags.
func apiLimits(cmd *cli.Command) (api.Limits, error) {
	rate := func(rateFlag, burstFlag string) (api.Rate, error) {
		r := api.Rate{Rate: cmd.Float(rateFlag), Burst: cmd.Int(burstFlag)}
		if math.IsNaN(r.Rate) || math.IsInf(r.Rate, 0) || r.Rate < 0 {
			return r, usagef("--%s: want 0 (no limit) or more, got %v", rateFlag, r.Rate)
		}
		if r.Burst < 1 {
			return r, usagef("--%s: want 1 or more, got %d", burstFlag, r.Burst)
		}
		return r, nil
	}
	var l api.Limits
	var err error
	if l.PerKey, err = rate(flagAPIRatePerKey, flagAPIBurstPerKey); err != nil {
		return l, err
	}
	if l.PerAddress, err = rate(flagAPIRatePerAddress, flagAPIBurstPerAddress); err != nil {
		return l, err
	}
	if l.AuthFailures, err = rate(flagAuthFailureRate, flagAuthFailureBurst); err != nil {
		return l, err
	}
	return l, nil
}

// httpConfig reads the HTTP server's flags: --listen, timeouts, connection
// limits and TLS files.
func httpConfig(cmd *cli.Command, log *zap.Logger) (httpserve.Config, error) {
	cfg := httpserve.Config{
		Addr:               cmd.String(flagListen),
		HeaderTimeout:      cmd.Duration(flagHTTPHeaderTimeout),
		BodyTimeout:        cmd.Duration(flagHTTPBodyTimeout),
		UploadMinRate:      int64(cmd.Int(flagHTTPUploadMinRate)),
		HandlerTimeout:     cmd.Duration(flagHTTPHandlerTimeout),
		IdleTimeout:        cmd.Duration(flagHTTPIdleTimeout),
		MaxHeaderBytes:     cmd.Int(flagHTTPMaxHeaderBytes),
		MaxConnsPerAddress: noLimitIfZero(cmd.Int(flagHTTPMaxConnsPerAddress)),
		MaxConns:           noLimitIfZero(cmd.Int(flagHTTPMaxConns)),
		TLSCertFile:        cmd.String(flagTLSCertFile),
		TLSKeyFile:         cmd.String(flagTLSKeyFile),
		Logger:             log,
	}
	for _, d := range []struct {
		flag string
		v    int64
	}{
		{flagHTTPHeaderTimeout, int64(cfg.HeaderTimeout)}, {flagHTTPBodyTimeout, int64(cfg.BodyTimeout)},
		{flagHTTPHandlerTimeout, int64(cfg.HandlerTimeout)}, {flagHTTPIdleTimeout, int64(cfg.IdleTimeout)},
		{flagHTTPUploadMinRate, cfg.UploadMinRate}, {flagHTTPMaxHeaderBytes, int64(cfg.MaxHeaderBytes)},
	} {
		if d.v <= 0 {
			return cfg, usagef("--%s: want more than 0, got %v", d.flag, cmd.Value(d.flag))
		}
	}
	for _, f := range []string{flagHTTPMaxConnsPerAddress, flagHTTPMaxConns} {
		if cmd.Int(f) < 0 {
			return cfg, usagef("--%s: want 0 (no limit) or more, got %d", f, cmd.Int(f))
		}
	}
	if (cfg.TLSCertFile == "") != (cfg.TLSKeyFile == "") {
		return cfg, usagef("--%s and --%s go together: set both or neither", flagTLSCertFile, flagTLSKeyFile)
	}
	return cfg, nil
}

// listenHTTP listens as cfg says, to serve h.
func listenHTTP(cfg httpserve.Config, h http.Handler) (*httpserve.Server, error) {
	s, err := httpserve.Listen(cfg, h)
	var ce *httpserve.CertError
	switch {
	case errors.As(err, &ce):
		return nil, usagef("--%s %s, --%s %s: %w", flagTLSCertFile, ce.CertFile, flagTLSKeyFile, ce.KeyFile, ce.Err)
	case err != nil:
		return nil, usagef("--%s: %w", flagListen, err)
	}
	return s, nil
}

func noLimitIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
