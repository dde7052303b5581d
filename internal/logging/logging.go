// Package logging builds breachflow's zap loggers and routes the Temporal SDK's logs to zap.
package logging

import (
	"fmt"

	"go.temporal.io/sdk/log"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// New returns a JSON (servers) or console (dev) logger at level.
func New(format, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	var cfg zap.Config
	if format == "console" {
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	} else {
		cfg = zap.NewProductionConfig()
	}
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	return cfg.Build()
}

// Temporal adapts a zap logger to the Temporal SDK's logger interface.
func Temporal(z *zap.Logger) log.Logger {
	return &temporalLogger{z: z.WithOptions(zap.AddCallerSkip(1)).Sugar()}
}

type temporalLogger struct{ z *zap.SugaredLogger }

func (l *temporalLogger) Debug(msg string, keyvals ...any) { l.z.Debugw(msg, keyvals...) }
func (l *temporalLogger) Info(msg string, keyvals ...any)  { l.z.Infow(msg, keyvals...) }
func (l *temporalLogger) Warn(msg string, keyvals ...any)  { l.z.Warnw(msg, keyvals...) }
func (l *temporalLogger) Error(msg string, keyvals ...any) { l.z.Errorw(msg, keyvals...) }

// With returns a logger that adds keyvals to every entry.
func (l *temporalLogger) With(keyvals ...any) log.Logger {
	return &temporalLogger{z: l.z.With(keyvals...)}
}
