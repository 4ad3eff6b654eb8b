package e2e

import (
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
)

const zapWarn = zapcore.WarnLevel

// zaptestLevel keeps test logs to warnings and errors.
func zaptestLevel() zaptest.LoggerOption { return zaptest.Level(zapWarn) }
