package e2e

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// TestUnitAccounts: over REST, a unit's account is created with its
// unified social credit code (answered masked, with user_type and a
// feature code), its organisation code is the same unit's (409
// ID_NUMBER_TAKEN), a bad check character is 400 naming id_number, a
// person with a unit's code 400 ID_TYPE_MISMATCH; the listing filters by
// type; a PATCH of user_type alone is refused while the ID type does not
// fit, and taken with a fitting one (the feature code follows: a unit's
// by either of its codes is one). gRPC answers the same.
func TestUnitAccounts(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	admin := map[string]string{"Authorization": "Bearer " + e.token}
	reasonOf := func(body map[string]any) string {
		if details, _ := body["details"].([]any); len(details) > 0 {
			d, _ := details[0].(map[string]any)
			r, _ := d["reason"].(string)
			return r
		}
		return ""
	}
	unit := func(login, idType, idNumber string) map[string]any {
		return map[string]any{"login_name": login, "display_name": "某某航运有限公司", "org_id": e.root,
			"user_type": "USER_TYPE_UNIT", "id_type": idType, "id_number": idNumber, "password": "Unit-Pass-2026!"}
	}
	code, body, _ := e.rest("POST", "/v1/users", admin, unit("acme-shipping", "ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE", "91310115MA01A2B322"))
	if code != http.StatusOK || body["user_type"] != "USER_TYPE_UNIT" || body["id_type"] != "ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE" ||
		body["id_number_masked"] != "913*************22" || body["feature_code"] == "" {
		t.Fatalf("create unit: %d %v", code, body)
	}
	unitID, _ := body["id"].(string)
	code, body, _ = e.rest("POST", "/v1/users", admin, unit("acme-2", "ID_TYPE_ORGANIZATION_CODE", "MA01A2B3-2"))
	if code != http.StatusConflict || reasonOf(body) != "ID_NUMBER_TAKEN" {
		t.Fatalf("the same unit by its org code: %d %v, want 409", code, body)
	}
	code, body, _ = e.rest("POST", "/v1/users", admin, unit("bad-code", "ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE", "91310115MA01A2B323"))
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body["message"]), "not a valid 18-character unified social credit code") {
		t.Fatalf("bad check character: %d %v, want 400", code, body)
	}
	person := map[string]any{"login_name": "p-with-code", "display_name": "P", "org_id": e.root,
		"id_type": "ID_TYPE_ORGANIZATION_CODE", "id_number": "12345678-8"}
	code, body, _ = e.rest("POST", "/v1/users", admin, person)
	if code != http.StatusBadRequest || reasonOf(body) != "ID_TYPE_MISMATCH" || !strings.Contains(fmt.Sprint(body["message"]), "set user_type to unit") {
		t.Fatalf("person with an org code: %d %v, want 400 ID_TYPE_MISMATCH", code, body)
	}
	code, body, _ = e.rest("POST", "/v1/users", admin, map[string]any{"login_name": "bad-type", "display_name": "B", "org_id": e.root,
		"user_type": 7})
	if code != http.StatusBadRequest {
		t.Fatalf("unknown user type: %d %v, want 400", code, body)
	}

	// Listing by type.
	code, body, _ = e.rest("GET", "/v1/users?user_type=USER_TYPE_UNIT", admin, nil)
	users, _ := body["users"].([]any)
	if code != http.StatusOK || len(users) != 1 || users[0].(map[string]any)["id"] != unitID {
		t.Fatalf("units: %d %v", code, body)
	}
	code, body, _ = e.rest("GET", "/v1/users?user_type=USER_TYPE_PERSON", admin, nil)
	users, _ = body["users"].([]any)
	if code != http.StatusOK || len(users) == 0 {
		t.Fatalf("persons: %d %v", code, body)
	}
	for _, u := range users {
		if m := u.(map[string]any); m["user_type"] != "USER_TYPE_PERSON" || m["id"] == unitID {
			t.Fatalf("person listing holds %v", m)
		}
	}

	// The type changes only with a fitting ID type.
	code, body, _ = e.rest("PATCH", "/v1/users/"+unitID, admin, map[string]any{"update_mask": []string{"user_type"},
		"user_type": "USER_TYPE_PERSON"})
	if code != http.StatusBadRequest || reasonOf(body) != "ID_TYPE_MISMATCH" {
		t.Fatalf("unit to person keeping its code: %d %v", code, body)
	}

	// gRPC: the same rules, and the unit in GetUser.
	_, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "grpc-person", DisplayName: "G",
		OrgId: e.root, IdType: identityv1.IdType_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE, IdNumber: "91350100M000100Y43"})
	wantCode(t, err, codes.InvalidArgument, "ID_TYPE_MISMATCH")
	u, err := e.admin.GetUser(e.adm(), &identityv1.GetUserRequest{Id: unitID})
	if err != nil || u.GetUserType() != identityv1.UserType_USER_TYPE_UNIT {
		t.Fatalf("get unit: %v %v", u, err)
	}
	before := u.GetFeatureCode()
	u, err = e.admin.UpdateUser(e.adm(), &identityv1.UpdateUserRequest{Id: unitID,
		UpdateMask: []string{"user_type", "id_type", "id_number"}, UserType: identityv1.UserType_USER_TYPE_PERSON,
		IdType: identityv1.IdType_ID_TYPE_PASSPORT, IdNumber: "E7654321"})
	if err != nil || u.GetUserType() != identityv1.UserType_USER_TYPE_PERSON || u.GetFeatureCode() == before {
		t.Fatalf("unit to person: %v %v", u, err)
	}
	u, err = e.admin.UpdateUser(e.adm(), &identityv1.UpdateUserRequest{Id: unitID,
		UpdateMask: []string{"user_type", "id_type", "id_number"}, UserType: identityv1.UserType_USER_TYPE_UNIT,
		IdType: identityv1.IdType_ID_TYPE_ORGANIZATION_CODE, IdNumber: "ma01a2b3-2"})
	if err != nil || u.GetUserType() != identityv1.UserType_USER_TYPE_UNIT || u.GetFeatureCode() != before {
		t.Fatalf("back to a unit by its org code (same feature code as by its USCC): %v %v", u, err)
	}
}

// TestUnitAccountReleased (ADR 0039 amendment): a unit's account signs in
// at the CAS page; its service's validation answers userType unit (a
// service whose release policy leaves userType out does not get it), and
// "My profile" shows the account type read only with the unit's code
// masked.
func TestUnitAccountReleased(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	casBase := e.http + "/cas/"
	f := e.seed("unitrel", "acme-unit", nil, func(r *identityv1.CreateUserRequest) {
		r.UserType, r.DisplayName = identityv1.UserType_USER_TYPE_UNIT, "某某航运有限公司"
		r.IdType, r.IdNumber = identityv1.IdType_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE, "91310115MA01A2B322"
	})
	cb := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "callback") }))
	t.Cleanup(cb.Close)
	all, limited := cb.URL+"/all", cb.URL+"/limited"
	registry := ticketv1.NewServiceRegistryServiceClient(e.conn)
	for _, def := range []*ticketv1.ServiceDefinition{{AppId: f.appID, Name: "All", Url: all},
		{AppId: f.appID, Name: "Limited", Url: limited, ReleaseAttributes: []string{"login", "displayName"}}} {
		if _, err := registry.CreateService(e.adm(), &ticketv1.CreateServiceRequest{Service: def}); err != nil {
			t.Fatal(err)
		}
	}
	br := newBrowser(t)
	_, body, _ := br.get(casBase + "login?service=" + url.QueryEscape(all))
	code, _, at := br.loginForm(casBase, body, "acme-unit", f.password)
	st := at.Query().Get("ticket")
	if code != http.StatusOK || st == "" {
		t.Fatalf("unit's CAS login: %d at %s", code, at)
	}
	_, body, _ = br.get(casBase + "p3/serviceValidate?service=" + url.QueryEscape(all) + "&ticket=" + url.QueryEscape(st))
	if !strings.Contains(body, "<cas:userType>unit</cas:userType>") || strings.Contains(body, "91310115MA01A2B322") {
		t.Fatalf("validation at the service without a policy:\n%s", body)
	}
	_, _, at = br.get(casBase + "login?service=" + url.QueryEscape(limited))
	_, body, _ = br.get(casBase + "p3/serviceValidate?service=" + url.QueryEscape(limited) + "&ticket=" + url.QueryEscape(at.Query().Get("ticket")))
	if !strings.Contains(body, "authenticationSuccess") || strings.Contains(body, "userType") {
		t.Fatalf("validation at the service releasing login and displayName:\n%s", body)
	}
	code, body, _ = br.get(casBase + "profile")
	if code != http.StatusOK || !strings.Contains(body, `<dd id="p-usertype">Unit (organisation)</dd>`) ||
		!strings.Contains(body, `<dt>Unit code</dt><dd id="p-idnumber">913*************22</dd>`) ||
		strings.Contains(body, "91310115MA01A2B322") || strings.Contains(body, `name="user_type"`) {
		t.Fatalf("the unit's profile: %d\n%s", code, body)
	}
}
