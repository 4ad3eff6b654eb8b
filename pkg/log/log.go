// Package log builds the UIAS zap logger and provides masking helpers for
// personal data (resident ID numbers, mobile numbers, e-mail addresses,
// secrets). There is no global logger: construct one with New and inject it.
package log

import (
	"fmt"
	"io"
	"os"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Config selects the log level and output format.
type Config struct {
	Level  string `yaml:"level"`  // debug|info|warn|error (empty = info)
	Format string `yaml:"format"` // json|console (empty = json)
}

// New returns a logger writing to stderr.
func New(cfg Config) (*zap.Logger, error) {
	return NewTo(cfg, os.Stderr)
}

// NewTo returns a logger writing to w (tests, or a custom sink).
func NewTo(cfg Config, w io.Writer) (*zap.Logger, error) {
	level, err := ParseLevel(cfg.Level)
	if err != nil {
		return nil, err
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	encCfg.EncodeDuration = zapcore.MillisDurationEncoder
	var enc zapcore.Encoder
	switch strings.ToLower(strings.TrimSpace(cfg.Format)) {
	case "", "json":
		enc = zapcore.NewJSONEncoder(encCfg)
	case "console":
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	default:
		return nil, fmt.Errorf("log format %q is not supported (use json or console)", cfg.Format)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel)), nil
}

// ParseLevel parses debug|info|warn|error (case-insensitive; empty = info).
func ParseLevel(s string) (zapcore.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "info":
		return zapcore.InfoLevel, nil
	case "debug":
		return zapcore.DebugLevel, nil
	case "warn", "warning":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	}
	return zapcore.InfoLevel, fmt.Errorf("log level %q is not supported (use debug, info, warn or error)", s)
}
