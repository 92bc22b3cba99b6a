package monitoring

import (
	"fmt"
	"io"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/wxmass/wxmass/internal/logfield"
)

// Log formats.
const (
	LogFormatJSON    = "json"
	LogFormatConsole = "console"
)

// LoggerConfig configures NewLogger.
type LoggerConfig struct {
	// Level is debug, info, warn or error ("" means info).
	Level string
	// Format is json (production, the default) or console (readable).
	Format string
	// Output receives the log lines (os.Stderr in main).
	Output io.Writer
}

// NewLogger builds the process's logger. Timestamps are ISO 8601, the
// caller is recorded, and stack traces are kept for errors only.
func NewLogger(cfg LoggerConfig) (*zap.Logger, error) {
	var level zapcore.Level
	if cfg.Level == "" {
		cfg.Level = "info"
	}
	if err := level.UnmarshalText([]byte(strings.ToLower(cfg.Level))); err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", cfg.Level)
	}
	var enc zapcore.Encoder
	switch strings.ToLower(cfg.Format) {
	case "", LogFormatJSON:
		ec := zap.NewProductionEncoderConfig()
		ec.EncodeTime = zapcore.ISO8601TimeEncoder
		enc = zapcore.NewJSONEncoder(ec)
	case LogFormatConsole:
		ec := zap.NewDevelopmentEncoderConfig()
		ec.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
		enc = zapcore.NewConsoleEncoder(ec)
	default:
		return nil, fmt.Errorf("log format %q: want json or console", cfg.Format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(cfg.Output)), level)
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel)), nil
}

// MaskOpenID shortens an openid for logs; see logfield.MaskOpenID.
func MaskOpenID(openid string) string { return logfield.MaskOpenID(openid) }

// OpenID is the log field for a recipient, masked.
func OpenID(openid string) zap.Field { return logfield.OpenID(openid) }
