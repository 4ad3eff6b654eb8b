package e2e

import (
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// TestOneAccountPerIDNumber: over REST, a second person with the ID number
// of one already there (whatever the case of its check character) is 409
// with reason ID_NUMBER_TAKEN, naming neither the number nor the other
// account; the same number under another ID type, and people without one,
// are created. gRPC answers ALREADY_EXISTS with the same reason.
func TestOneAccountPerIDNumber(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	admin := map[string]string{"Authorization": "Bearer " + e.token}
	const number = "11010519491231002X"
	person := func(login, idType, idNumber string) map[string]any {
		b := map[string]any{"login_name": login, "display_name": "Person " + login, "org_id": e.root}
		if idNumber != "" {
			b["id_type"], b["id_number"] = idType, idNumber
		}
		return b
	}
	code, body, _ := e.rest("POST", "/v1/users", admin, person("first-holder", "ID_TYPE_RESIDENT_ID", number))
	if code != http.StatusOK {
		t.Fatalf("first person: %d %v", code, body)
	}
	for _, n := range []string{number, strings.ToLower(number)} {
		code, body, _ = e.rest("POST", "/v1/users", admin, person("second-holder", "ID_TYPE_RESIDENT_ID", n))
		if code != http.StatusConflict {
			t.Fatalf("second person with %s: %d %v, want 409", n, code, body)
		}
		var reason string
		if details, _ := body["details"].([]any); len(details) > 0 {
			d, _ := details[0].(map[string]any)
			reason, _ = d["reason"].(string)
		}
		msg, _ := body["message"].(string)
		if body["code"] != float64(codes.AlreadyExists) || reason != "ID_NUMBER_TAKEN" ||
			!strings.Contains(msg, "another account already has this ID number") {
			t.Fatalf("second person: %v, want code 6, ID_NUMBER_TAKEN", body)
		}
		if strings.Contains(msg, "first-holder") || strings.Contains(strings.ToUpper(msg), number) {
			t.Fatalf("message %q names the other account or the number", msg)
		}
	}
	// Not created.
	code, body, _ = e.rest("GET", "/v1/users?query=second-holder", admin, nil)
	if users, _ := body["users"].([]any); code != http.StatusOK || len(users) != 0 {
		t.Fatalf("list after the refusal: %d %v", code, body)
	}
	// Another ID type, and no ID number: created.
	for _, b := range []map[string]any{person("other-type", "ID_TYPE_OTHER", number), person("no-number-1", "", ""),
		person("no-number-2", "", "")} {
		if code, body, _ := e.rest("POST", "/v1/users", admin, b); code != http.StatusOK {
			t.Fatalf("create %v: %d %v", b["login_name"], code, body)
		}
	}
	_, err := e.admin.CreateUser(e.adm(), &identityv1.CreateUserRequest{LoginName: "grpc-holder", DisplayName: "G",
		OrgId: e.root, IdType: identityv1.IdType_ID_TYPE_RESIDENT_ID, IdNumber: number})
	wantCode(t, err, codes.AlreadyExists, "ID_NUMBER_TAKEN")
}
