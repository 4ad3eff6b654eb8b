package module

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

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
