package e2e

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	synccomponent "github.com/uias/uias/services/sync/component"
	"github.com/uias/uias/services/sync/synctest"
)

// TestReplicaDigestRefusesUnknownFilters: the digest an operator compares
// between two centres (docs/operators.md, step 6 of "Step by step") refuses
// a centre it does not know and a kind no link carries, over gRPC and REST,
// naming the field and what it takes: a misspelt filter selected nothing
// and answered the empty table's sum at both centres, which looked equal.
// A level-1 centre of deploy/centres alone (its level-2 peer never joins).
func TestReplicaDigestRefusesUnknownFilters(t *testing.T) {
	dir := t.TempDir()
	l1 := &syncCentre{name: "l1", nats: synctest.StartLevel1File(t, filepath.Join(deployCentres, "nats-l1.conf")), dir: dir}
	f1 := centreFile(t, "uias-l1.yaml")
	f1.Peers = f1.Peers[:1] // l2a
	f1.Peers[0].Subtrees = []string{"01a2518b9546c0b641241912ea042cdd"}
	l1.e = start(t, l1.config(t, func(s *synccomponent.Config) { *s = f1 }))
	e := l1.e
	e.login()
	cl := l1.sync()

	for _, ok := range []*syncv1.GetReplicaDigestRequest{
		{},
		{Homes: []string{"l2a"}, Kinds: []string{"identity.user"}},
		{Homes: []string{"l1", "l2a"}, Kinds: []string{"authz.", "identity.lock", "identity.u"}},
	} {
		if _, err := cl.GetReplicaDigest(e.adm(), ok); err != nil {
			t.Errorf("digest %v: %v", ok, err)
		}
	}
	for _, tc := range []struct {
		req         *syncv1.GetReplicaDigestRequest
		field, want string
	}{
		{&syncv1.GetReplicaDigestRequest{Kinds: []string{"identity.users"}}, "kinds[0]", `"identity.users" begins no kind the links carry (authz.exclusion, authz.grant, authz.resource, authz.role, identity.app, identity.group, identity.link, identity.lock, identity.org, identity.user)`},
		{&syncv1.GetReplicaDigestRequest{Kinds: []string{"identity.user", "ticket.session"}}, "kinds[1]", `"ticket.session" begins no kind`},
		{&syncv1.GetReplicaDigestRequest{Kinds: []string{""}}, "kinds[0]", `"" begins no kind`},
		{&syncv1.GetReplicaDigestRequest{Homes: []string{"l2b"}}, "homes[0]", `"l2b" is not a centre this centre knows (it knows l1, l2a)`},
	} {
		_, err := cl.GetReplicaDigest(e.adm(), tc.req)
		st := wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")
		if !strings.Contains(st.Message(), tc.want) || errorInfo(st).GetMetadata()["field"] != tc.field {
			t.Errorf("digest %v: %q %v, want field %s and %q", tc.req, st.Message(), errorInfo(st).GetMetadata(), tc.field, tc.want)
		}
	}
	// REST, as the step by step shows it
	code, body, _ := e.rest(http.MethodGet, "/v1/sync/digest?homes=l2a&kinds=identity.users", map[string]string{"Authorization": "Bearer " + e.token}, nil)
	if code != http.StatusBadRequest || !strings.Contains(body["message"].(string), `"identity.users" begins no kind`) {
		t.Fatalf("REST digest with a misspelt kind: %d %v", code, body)
	}
	code, body, _ = e.rest(http.MethodGet, "/v1/sync/digest?homes=l2a&kinds=identity.user", map[string]string{"Authorization": "Bearer " + e.token}, nil)
	if code != http.StatusOK {
		t.Fatalf("REST digest: %d %v", code, body)
	}
}
