package module

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
)

// MigratedSQL runs the module's migrations on its store and names the
// module when they fail; Subscribed passes a failed subscription's error.
func TestEnvHelpers(t *testing.T) {
	for _, fail := range []bool{false, true} {
		r := &Registry{}
		r.Register(Module{Name: "svc", SQL: true, Init: func(ctx context.Context, env *Env) (*Component, error) {
			db, err := env.MigratedSQL(ctx, func(ctx context.Context, db *store.DB) error {
				if fail {
					return errors.New("no such table")
				}
				_, err := db.ExecContext(ctx, "CREATE TABLE t (id TEXT)")
				return err
			})
			if err != nil {
				return nil, err
			}
			if _, err := db.ExecContext(ctx, "INSERT INTO t (id) VALUES ('a')"); err != nil {
				return nil, err
			}
			want := errors.New("refused")
			if err := env.Subscribed(nil, want); !errors.Is(err, want) {
				return nil, fmt.Errorf("Subscribed: %w, want %w", err, want)
			}
			return nil, nil
		}})
		p, err := Start(context.Background(), r, allConfig(t, ""), Options{})
		switch {
		case fail && (err == nil || !strings.Contains(err.Error(), "svc migrations: no such table")):
			t.Errorf("failing migrations: %v", err)
		case !fail && err != nil:
			t.Errorf("migrations: %v", err)
		}
		if p != nil {
			_ = p.Stop(context.Background())
		}
	}
}

// A relay that cannot run (here: no JetStream) ends at once; Env.Relay
// logs why instead of dropping the error.
func TestEnvRelayLogsFailure(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	ctx, cancel := context.WithCancel(context.Background())
	p := &Process{runCtx: ctx, cancel: cancel}
	env := &Env{Name: "svc", Log: zap.New(core).Named("svc"), p: p}
	db, err := store.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "svc.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	env.Relay(db, nil)
	cancel()
	p.wg.Wait()
	got := logs.FilterMessageSnippet("outbox relay stopped").All()
	if len(got) != 1 {
		t.Fatalf("logged %v, want one \"outbox relay stopped\" entry", logs.All())
	}
	if e := got[0]; e.Level != zapcore.ErrorLevel || e.LoggerName != "svc.relay" || !strings.Contains(e.ContextMap()["error"].(string), "JetStream") {
		t.Errorf("entry %+v, want an error of logger svc.relay naming JetStream", e)
	}
}

// A component's failing MigrateWithOutbox (its Migrate) run by MigratedSQL
// names the component once: "svc migrations: events: ...", not
// "svc migrations: svc migrations: ...".
func TestMigratedSQLNamesTheModuleOnce(t *testing.T) {
	r := &Registry{}
	r.Register(Module{Name: "svc", SQL: true, Init: func(ctx context.Context, env *Env) (*Component, error) {
		_, err := env.MigratedSQL(ctx, func(ctx context.Context, db *store.DB) error {
			return events.MigrateWithOutbox(ctx, db, env.Name, fstest.MapFS{}, "0002_events_outbox.sql")
		})
		return nil, err
	}})
	p, err := Start(context.Background(), r, allConfig(t, ""), Options{})
	if p != nil {
		_ = p.Stop(context.Background())
	}
	if err == nil {
		t.Fatal("migrations without files: started")
	}
	if n := strings.Count(err.Error(), "svc migrations"); n != 1 {
		t.Errorf("error %q names the module's migrations %d times, want once", err, n)
	}
}
