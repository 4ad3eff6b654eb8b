package identity_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/services/identity"
)

// TestReplicaAppNameRelease: an application's name_release and
// legacy_ip_only reach the other centre with it; a replica naming an
// unknown name_release (a corrupt or newer peer's) is ignored, the value
// applied before kept (review sec30b I4).
func TestReplicaAppNameRelease(t *testing.T) {
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
	app, _, err := svc2.CreateApp(admin2, identity.NewApp{Type: "OA", Code: "harbour", Name: "Harbour",
		IPAllowList: []string{"192.0.2.0/24"}, LegacyIPOnly: true, NameRelease: identity.NameReleaseMasked})
	if err != nil {
		t.Fatal(err)
	}
	cs, last, _ := l2.changes(t, 0)
	if _, err := svc1.ApplyReplica(ctx, "l2a", cs); err != nil {
		t.Fatal(err)
	}
	got, err := svc1.GetApp(ctx, app.ID)
	if err != nil || got.NameRelease != identity.NameReleaseMasked || !got.LegacyIPOnly {
		t.Fatalf("replica app: %+v %v", got, err)
	}

	if _, err := svc2.UpdateApp(admin2, app.ID, identity.AppUpdate{Mask: []string{"name_release"}, NameRelease: identity.NameReleaseOmitted}); err != nil {
		t.Fatal(err)
	}
	cs, _, _ = l2.changes(t, last)
	tampered := -1
	for i := range cs {
		if strings.Contains(cs[i].Subject, ".app.") {
			p := bytes.ReplaceAll(cs[i].Payload, []byte(`"name_release":"omitted"`), []byte(`"name_release":"hidden"`))
			if !bytes.Equal(p, cs[i].Payload) {
				cs[i].Payload, tampered = p, i
			}
		}
	}
	if tampered < 0 {
		t.Fatalf("no app change carries name_release omitted: %d changes", len(cs))
	}
	out, err := svc1.ApplyReplica(ctx, "l2a", cs)
	if err != nil {
		t.Fatal(err)
	}
	if out[tampered] != identity.ReplicaIgnored {
		t.Errorf("an unknown name_release: outcome %v, want IGNORED", out[tampered])
	}
	got, err = svc1.GetApp(ctx, app.ID)
	if err != nil || got.NameRelease != identity.NameReleaseMasked || !got.LegacyIPOnly {
		t.Fatalf("replica app after an unknown name_release: %+v %v", got, err)
	}
}
