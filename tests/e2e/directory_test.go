package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestDirectoryService: the information-sharing service (design 004
// 2.1.5). An application not granted "directory" by name (here one with
// no grants, which may call everything else) is refused over gRPC and
// REST; granted, it reads its own people (by account id or login name,
// or listed) and the org tree, never another application's people nor an
// ID number; unknown accounts and bad page sizes get clear errors.
func TestDirectoryService(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	open := e.seed("plain", "pia", nil, nil)
	dir := identityv1.NewDirectoryServiceClient(e.conn)
	_, err := dir.GetPerson(open.ctx(), &identityv1.GetPersonRequest{AppUserId: open.account})
	st := wantCode(t, err, codes.PermissionDenied, "API_NOT_GRANTED")
	if !strings.Contains(st.Message(), "granted only by name") {
		t.Fatalf("refusal: %q", st.Message())
	}
	code, out, _ := e.rest("GET", "/v1/directory/people", appHeaders(open), nil)
	if code != http.StatusForbidden || !strings.Contains(fmt.Sprint(out), "API_NOT_GRANTED") {
		t.Fatalf("REST without the grant: %d %v", code, out)
	}

	f := e.seed("reader", "rita", &identityv1.CreateAppRequest{GrantedApis: []string{"directory", "authenticate"}}, nil)
	for _, account := range []string{f.account, f.login, strings.ToUpper(f.login)} {
		p, err := dir.GetPerson(f.ctx(), &identityv1.GetPersonRequest{AppUserId: account})
		if err != nil {
			t.Fatalf("%s: %v", account, err)
		}
		if p.GetUserId() != f.userID || p.GetAppUserId() != f.account || p.GetOrgId() != e.root || p.GetOrgCode() == "" ||
			p.GetStatus() != identityv1.UserStatus_USER_STATUS_ACTIVE || !strings.Contains(p.GetPhoneMasked(), "*") {
			t.Fatalf("%s: %v", account, p)
		}
	}
	// pia has no account in reader: as unknown as nobody.
	for _, account := range []string{open.account, open.login, "nobody"} {
		_, err := dir.GetPerson(f.ctx(), &identityv1.GetPersonRequest{AppUserId: account})
		wantCode(t, err, codes.NotFound, "PERSON_NOT_FOUND")
	}
	list, err := dir.ListPeople(f.ctx(), &identityv1.ListPeopleRequest{})
	if err != nil || len(list.GetPeople()) != 1 || list.GetPeople()[0].GetLoginName() != "rita" {
		t.Fatalf("people: %v %v", list, err)
	}
	_, err = dir.ListPeople(f.ctx(), &identityv1.ListPeopleRequest{PageSize: 501})
	wantCode(t, err, codes.InvalidArgument, "BAD_REQUEST")
	orgs, err := dir.ListOrgs(f.ctx(), &identityv1.ListDirectoryOrgsRequest{})
	if err != nil || len(orgs.GetOrgs()) == 0 || orgs.GetOrgs()[0].GetId() == "" {
		t.Fatalf("orgs: %v %v", orgs, err)
	}

	// REST: the same answers; the ID number is nowhere.
	code, out, _ = e.rest("GET", "/v1/directory/people/"+f.account, appHeaders(f), nil)
	if code != http.StatusOK || out["login_name"] != "rita" || strings.Contains(fmt.Sprint(out), "id_number") {
		t.Fatalf("REST GetPerson: %d %v", code, out)
	}
	code, out, _ = e.rest("GET", "/v1/directory/people/nobody", appHeaders(f), nil)
	if code != http.StatusNotFound || !strings.Contains(fmt.Sprint(out), "PERSON_NOT_FOUND") {
		t.Fatalf("REST unknown person: %d %v", code, out)
	}
	code, out, _ = e.rest("GET", "/v1/directory/orgs?page_size=1", appHeaders(f), nil)
	if code != http.StatusOK || len(out["orgs"].([]any)) != 1 {
		t.Fatalf("REST orgs: %d %v", code, out)
	}
	// Wrong secret: as for Authenticate.
	bad := f
	bad.secret = "wrong-secret-wrong-secret"
	_, err = dir.ListOrgs(bad.ctx(), &identityv1.ListDirectoryOrgsRequest{})
	wantCode(t, err, codes.Unauthenticated, "BAD_APP_CREDENTIALS")
}
