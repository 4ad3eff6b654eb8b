package identity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/services/identity"
)

// TestImportReplicated: people imported at a level-2 centre (more than one
// event's worth, with an org imported before them) reach level 1 with
// their next batch of changes: equal digests, each applied once.
func TestImportReplicated(t *testing.T) {
	ctx := context.Background()
	l2, l1 := newReplicaCentre(t), newReplicaCentre(t)
	admin2, _ := adminCtx(t, l2.svc, "10.0.0.2", "l2")
	bureau, err := l2.svc.CreateOrg(admin2, "bureau-a", "Bureau A", evRoot(t, l2.svc).ID)
	if err != nil {
		t.Fatal(err)
	}
	subtrees := map[string]string{bureau.ID: "l2a"}
	svc2 := l2.with(t, &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees})
	svc1 := l1.with(t, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees})

	imp := func(kind string, rows []map[string]string) {
		t.Helper()
		i := 0
		rep, err := svc2.Import(admin2, identity.ImportOptions{Kind: kind}, func() (*identity.ImportRow, bool, error) {
			if i == len(rows) {
				return nil, false, nil
			}
			i++
			return &identity.ImportRow{Row: i + 1, Fields: rows[i-1]}, true, nil
		})
		if err != nil || rep.Written != len(rows) {
			t.Fatalf("import %s: %+v %v", kind, rep, err)
		}
	}
	imp("orgs", []map[string]string{{"code": "deck", "name": "Deck", "parent_code": "bureau-a", "status": "active"}})
	const n = 450
	rows := make([]map[string]string, n)
	for i := range rows {
		rows[i] = map[string]string{"login_name": fmt.Sprintf("imp%03d", i), "display_name": fmt.Sprintf("Imported %d", i),
			"org_code": "deck", "status": "active"}
	}
	imp("users", rows)

	cs, _, _ := l2.changes(t, 0)
	// The org, and the 450 people in events of at most 200 each.
	people := 0
	for _, c := range cs {
		if !strings.HasSuffix(c.Subject, ".imported") {
			continue
		}
		var p struct {
			Data struct {
				IDs []string `json:"ids"`
			} `json:"data"`
		}
		if err := json.Unmarshal(c.Payload, &p); err != nil || len(p.Data.IDs) == 0 || len(p.Data.IDs) > 200 {
			t.Fatalf("imported event %s: %d ids (%v)", c.Subject, len(p.Data.IDs), err)
		}
		if c.Subject == "uias.changes.identity.user.imported" {
			people += len(p.Data.IDs)
		}
	}
	if people != n {
		t.Fatalf("imported events name %d people, want %d", people, n)
	}
	out, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cs {
		if strings.HasSuffix(c.Subject, ".imported") && out[i] != identity.ReplicaApplied {
			t.Fatalf("imported change %d: %s", i, out[i])
		}
	}
	again, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	for i, oc := range again {
		if oc == identity.ReplicaApplied {
			t.Fatalf("change %d (%s) applied twice", i, cs[i].Subject)
		}
	}
	d1, err := svc1.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := svc2.ReplicaDigest(ctx, "l2a")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(d1) != fmt.Sprint(d2) || !strings.Contains(fmt.Sprint(d1), fmt.Sprintf("users %d", n)) {
		t.Fatalf("digests differ or miss the imported people:\n l1 %v\n l2 %v", d1, d2)
	}
}

// TestFingerReplicated: a finger enrolled at level 2 reaches level 1 with
// its template sealed as level 2 stored it (equal digests of user_fingers),
// once; a finger deleted at level 2 is deleted at level 1.
func TestFingerReplicated(t *testing.T) {
	ctx := context.Background()
	l2, l1 := newReplicaCentre(t), newReplicaCentre(t)
	admin2, _ := adminCtx(t, l2.svc, "10.0.0.2", "l2")
	bureau, err := l2.svc.CreateOrg(admin2, "bureau-a", "Bureau A", evRoot(t, l2.svc).ID)
	if err != nil {
		t.Fatal(err)
	}
	subtrees := map[string]string{bureau.ID: "l2a"}
	svc2 := l2.with(t, &centre.Homes{Self: "l2a", Level: 2, Parent: "l1", Subtrees: subtrees})
	svc1 := l1.with(t, &centre.Homes{Self: "l1", Level: 1, Subtrees: subtrees})
	u, err := svc2.CreateUser(admin2, identity.NewUser{LoginName: "diver", DisplayName: "Diver", OrgID: bureau.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, pos := range []int{2, 7} {
		if _, err := svc2.EnrollFinger(admin2, u.ID, pos, impression(pos, 0)); err != nil {
			t.Fatal(err)
		}
	}
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	again, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	for i, oc := range again {
		if oc == identity.ReplicaApplied {
			t.Fatalf("change %d (%s) applied twice", i, cs[i].Subject)
		}
	}
	digests := func(want string) {
		t.Helper()
		d1, err := svc1.ReplicaDigest(ctx, "l2a")
		if err != nil {
			t.Fatal(err)
		}
		d2, err := svc2.ReplicaDigest(ctx, "l2a")
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(d1) != fmt.Sprint(d2) || !strings.Contains(fmt.Sprint(d1), want) {
			t.Fatalf("digests differ or hold not %q:\n l1 %v\n l2 %v", want, d1, d2)
		}
	}
	digests("user_fingers 2 ")
	if err := svc2.DeleteFinger(admin2, u.ID, 7); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	digests("user_fingers 1 ")
}
