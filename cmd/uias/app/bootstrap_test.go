package app_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/cmd/uias/app"
)

// TestRestartIgnoresBootstrapPassword restarts on an existing data dir with
// UIAS_BOOTSTRAP_PASSWORD still set, once to a different password and once
// to one the policy refuses: both restarts start, say in the log that the
// password was ignored, print no first-start notice, and the administrator
// keeps the password of the first start.
func TestRestartIgnoresBootstrapPassword(t *testing.T) {
	cfg := quickConfig(t)
	const first = "First-Start-Pass-1"
	startStop := func(password string) (*observer.ObservedLogs, string) {
		t.Helper()
		core, logs := observer.New(zapcore.InfoLevel)
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		a, err := app.Start(ctx, cfg, app.Options{Logger: zap.New(core), Out: &out, BootstrapPassword: password})
		if err != nil {
			t.Fatalf("start with bootstrap password %q: %v", password, err)
		}
		// The administrator still logs in with the first start's password.
		newCtl(t, a).run(first+"\n", "login", "--user", "admin", "--password-stdin")
		if err := a.Stop(ctx); err != nil {
			t.Fatalf("stop: %v", err)
		}
		return logs, out.String()
	}

	logs, _ := startStop(first)
	if n := logs.FilterMessageSnippet("bootstrap password ignored").Len(); n != 0 {
		t.Fatalf("first start logged the password as ignored")
	}
	for _, pw := range []string{"Other-Start-Pass-2", "weak"} {
		logs, notice := startStop(pw)
		ignored := logs.FilterMessageSnippet("bootstrap password ignored").All()
		if len(ignored) != 1 {
			t.Errorf("restart with %q: %d \"bootstrap password ignored\" log lines, want 1", pw, len(ignored))
		} else if msg := ignored[0].Message; !strings.Contains(msg, "UIAS_BOOTSTRAP_PASSWORD") || strings.Contains(msg, pw) {
			t.Errorf("log line should name UIAS_BOOTSTRAP_PASSWORD and never the password: %q", msg)
		}
		if notice != "" {
			t.Errorf("restart printed %q", notice)
		}
	}
}
