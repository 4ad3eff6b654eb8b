package commands_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store/storetest"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/commands"
	"github.com/uias/uias/services/authz/index"
	"github.com/uias/uias/services/authz/sqlstore"
)

// failingWrites fails the first n Writes with err.
type failingWrites struct {
	*sqlstore.Store
	n   int
	err error
}

func (s *failingWrites) Write(ctx context.Context, expect int64, ch authz.Change, evs []events.Event) (authz.Change, error) {
	if s.n > 0 {
		s.n--
		return authz.Change{}, s.err
	}
	return s.Store.Write(ctx, expect, ch, evs)
}

// TestAppointmentAskedOnce: granting a person an administrator role asks
// identity to ready them once, however often a stale write is tried
// again, and answers its activation password; a business role asks
// nothing; a grant whose write fails after the person was readied says
// so (a new grant readies them again).
func TestAppointmentAskedOnce(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails int
		err   error
	}{{"stale writes", 3, authz.ErrStale}, {"a failed write", 1, errors.New("disk full")}} {
		t.Run(tc.name, func(t *testing.T) {
			db := storetest.OpenSQLite(t)
			if err := sqlstore.Migrate(context.Background(), db); err != nil {
				t.Fatal(err)
			}
			idx := index.New()
			if err := idx.Apply(authz.BuiltinChanges()...); err != nil {
				t.Fatal(err)
			}
			var asked []string
			clk := &clock{t: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
			svc := commands.New(commands.Deps{Store: &failingWrites{Store: sqlstore.New(db), n: tc.fails, err: tc.err}, Index: idx,
				Now: clk.now, MaxWait: 200 * time.Millisecond, Appoint: func(_ context.Context, id, _ string) (string, error) {
					asked = append(asked, id)
					return fmt.Sprintf("pw%d", len(asked)), nil
				}})
			if err := svc.Load(context.Background()); err != nil {
				t.Fatal(err)
			}
			_, _, pw, err := svc.CreateGrantActivation(context.Background(), authz.Grant{Role: authz.RoleSystemAdmin,
				Subject: authz.Subject{Kind: authz.SubjectUser, ID: "p1"}})
			if errors.Is(tc.err, authz.ErrStale) {
				if err != nil || pw != "pw1" || len(asked) != 1 {
					t.Fatalf("after stale writes: %q %v, identity asked %v", pw, err, asked)
				}
			} else if err == nil || !strings.Contains(err.Error(), "grant again for a new activation password") || pw != "" {
				t.Fatalf("a failed write after the appointment: %q %v", pw, err)
			}
		})
	}
}
