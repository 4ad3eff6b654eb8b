package e2e

import (
	"fmt"
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

	// A correction (PATCH id_number): another's number is 409, a bad one
	// 400 naming the field; a free one is taken, and the old one freed.
	code, body, _ = e.rest("GET", "/v1/users?query=no-number-1", admin, nil)
	users, _ := body["users"].([]any)
	if code != http.StatusOK || len(users) != 1 {
		t.Fatalf("find no-number-1: %d %v", code, body)
	}
	id, _ := users[0].(map[string]any)["id"].(string)
	patch := func(fields map[string]any) (int, map[string]any) {
		mask := []string{}
		for k := range fields {
			mask = append(mask, k)
		}
		fields["update_mask"] = mask
		code, body, _ := e.rest("PATCH", "/v1/users/"+id, admin, fields)
		return code, body
	}
	if code, body := patch(map[string]any{"id_type": "ID_TYPE_RESIDENT_ID", "id_number": number}); code != http.StatusConflict ||
		!strings.Contains(fmt.Sprint(body), "ID_NUMBER_TAKEN") {
		t.Fatalf("correction to another's number: %d %v, want 409", code, body)
	}
	if code, body := patch(map[string]any{"id_type": "ID_TYPE_RESIDENT_ID", "id_number": "110105194912310021"}); code != http.StatusBadRequest ||
		!strings.Contains(fmt.Sprint(body["message"]), "id_number is not a valid") {
		t.Fatalf("correction to an invalid number: %d %v, want 400", code, body)
	}
	const other = "110105194912310038"
	if code, body := patch(map[string]any{"id_type": "ID_TYPE_RESIDENT_ID", "id_number": other}); code != http.StatusOK ||
		body["id_number_masked"] != "110*************38" {
		t.Fatalf("correction: %d %v", code, body)
	}
	if code, body := patch(map[string]any{"id_type": "ID_TYPE_PASSPORT", "id_number": "E7654321"}); code != http.StatusOK {
		t.Fatalf("second correction: %d %v", code, body)
	}
	if code, body, _ := e.rest("POST", "/v1/users", admin, person("takes-freed", "ID_TYPE_RESIDENT_ID", other)); code != http.StatusOK {
		t.Fatalf("the corrected person's old number: %d %v", code, body)
	}
}
