package identity_test

import (
	"context"
	"testing"
	"time"

	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// blockingStore holds every ListUsers until release is closed (a query
// for "slow": until the call's context ends); entered receives one value
// per held call.
type blockingStore struct {
	identity.Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) ListUsers(ctx context.Context, f identity.UserFilter, p identity.Page) ([]*identity.User, string, error) {
	b.entered <- struct{}{}
	if f.Query == "slow" {
		<-ctx.Done()
		return nil, "", ctx.Err()
	}
	<-b.release
	return b.Store.ListUsers(ctx, f, p)
}

// TestAdminReadAdmission: listings share a small pool of slots with a
// time limit, apart from logins. With the one slot held by a listing, a
// second listing is refused (ADMIN_READS_BUSY) while a login goes through;
// a listing running past the limit is cut off (QUERY_TIMEOUT).
func TestAdminReadAdmission(t *testing.T) {
	bs := &blockingStore{Store: sqlstore.New(testDB(t)), entered: make(chan struct{}, 4), release: make(chan struct{})}
	clk := newTestClock()
	svc := testService(t, identity.Deps{Store: bs, Now: clk.now, Sleep: clk.sleep,
		Config: identity.Config{AdminReads: 1, AdminReadTimeout: 300 * time.Millisecond}})
	w := setupOn(t, svc, clk)
	ctx := context.Background()

	// A listing past the time limit.
	_, _, err := svc.ListUsers(ctx, identity.UserFilter{Query: "slow"}, 0, "")
	<-bs.entered
	if reasonOf(err) != identity.ReasonQueryTimeout {
		t.Fatalf("slow listing: %v, want %s", err, identity.ReasonQueryTimeout)
	}

	// One listing holds the only slot (until release).
	held := make(chan error, 1)
	go func() {
		_, _, err := svc.ListUsers(ctx, identity.UserFilter{}, 0, "")
		held <- err
	}()
	<-bs.entered
	_, _, err = svc.ListUsers(ctx, identity.UserFilter{}, 0, "")
	if reasonOf(err) != identity.ReasonAdminReadsBusy {
		t.Fatalf("second listing: %v, want %s", err, identity.ReasonAdminReadsBusy)
	}
	// Other listings share the pool.
	_, _, err = svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	if reasonOf(err) != identity.ReasonAdminReadsBusy {
		t.Fatalf("org listing: %v, want %s", err, identity.ReasonAdminReadsBusy)
	}
	// A login is not an administrator read.
	if r := w.auth(t, "First-Pass-1"); r.Reason != identity.ReasonOK {
		t.Fatalf("login while the admin reads are busy: %v", r.Reason)
	}
	close(bs.release)
	if err := <-held; reasonOf(err) != identity.ReasonQueryTimeout {
		t.Fatalf("held listing, ended after its time: %v", err)
	}
	// The slot is free again.
	users, _, err := svc.ListUsers(ctx, identity.UserFilter{Query: "mia"}, 0, "")
	<-bs.entered
	if err == nil && len(users) == 1 && users[0].ID != w.user.ID {
		t.Fatalf("listing after release: %v", users)
	}
	if err != nil || len(users) != 1 {
		t.Fatalf("listing after release: %v %v", users, err)
	}
	// A caller that gives up is told so, not "busy".
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := svc.ListApps(cctx, identity.AppFilter{}, 0, ""); err == nil || reasonOf(err) == identity.ReasonAdminReadsBusy {
		t.Fatalf("cancelled listing: %v", err)
	}
}
