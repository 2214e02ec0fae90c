//go:build cgo

package pcsc

import (
	"log/slog"
	"testing"
)

type slogLogger = slog.Logger

// newTestLogger routes bridge logs into the test output.
func newTestLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
