package module

import (
	"log"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// net/http's error log: TLS handshake errors (the client's fault) at info,
// anything else (a handler's panic) at warn, as JSON lines through zap.
func TestHTTPErrorLogLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := log.New(httpErrorLog{zap.New(core)}, "", 0)
	l.Printf("http: TLS handshake error from 127.0.0.1:1234: remote error: tls: bad certificate")
	l.Printf("http: panic serving 127.0.0.1:1234: boom")
	got := logs.All()
	if len(got) != 2 || got[0].Level != zapcore.InfoLevel || got[1].Level != zapcore.WarnLevel ||
		got[0].Message != "http: TLS handshake error from 127.0.0.1:1234: remote error: tls: bad certificate" {
		t.Fatalf("entries %+v", got)
	}
}
