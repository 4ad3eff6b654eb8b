package console_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

func (f *fakeAdmin) UpdateUser(ctx context.Context, in *identityv1.UpdateUserRequest, _ ...grpc.CallOption) (*identityv1.User, error) {
	if err := f.authed(ctx, "UpdateUser"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, in)
	if f.updateErr != nil {
		return nil, f.updateErr
	}
	return &identityv1.User{Id: in.GetId()}, nil
}

// TestPersonTypeForm (ADR 0039): the person's page has an "Account type"
// form; it sends UpdateUser with update_mask user_type, and id_type and
// id_number when given ("none": no ID; an unknown value is sent as one
// identity refuses, never the default); identity's refusal
// (ID_TYPE_MISMATCH) is shown on the page; without the form token nothing
// is sent.
func TestPersonTypeForm(t *testing.T) {
	f := &fakeAdmin{}
	b := newConsole(t, f)
	page := b.signIn()
	tok := formToken(t, page)
	_, page = b.do("GET", "/console/people/u1?locale=en", nil, nil)
	for _, want := range []string{`action="/console/people/u1/type"`, `<select id="new_user_type" name="user_type">`,
		`<option value="person" selected>`, `id="new_id_number" name="id_number"`, `<option value="none">No ID</option>`, `id="change-type"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("the person's page lacks %q:\n%s", want, page)
		}
	}
	if res, _ := b.do("POST", "/console/people/u1/type", url.Values{"user_type": {"unit"}}, nil); res.StatusCode != http.StatusForbidden || len(f.updates) != 0 {
		t.Fatalf("without the form token: %d, %d updates", res.StatusCode, len(f.updates))
	}
	for _, c := range []struct {
		form     url.Values
		mask     []string
		userType identityv1.UserType
		idType   identityv1.IdType
		idNumber string
	}{
		{url.Values{"user_type": {"unit"}}, []string{"user_type"}, identityv1.UserType_USER_TYPE_UNIT, 0, ""},
		{url.Values{"user_type": {"unit"}, "id_type": {"uscc"}, "id_number": {" 91310115MA01A2B322 "}},
			[]string{"user_type", "id_type", "id_number"}, identityv1.UserType_USER_TYPE_UNIT, identityv1.IdType_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE, "91310115MA01A2B322"},
		{url.Values{"user_type": {"person"}, "id_type": {"none"}, "id_number": {"ignored"}},
			[]string{"user_type", "id_type", "id_number"}, identityv1.UserType_USER_TYPE_PERSON, 0, ""},
		{url.Values{"user_type": {"person"}, "id_number": {"110101199003071233"}},
			[]string{"user_type", "id_number"}, identityv1.UserType_USER_TYPE_PERSON, 0, "110101199003071233"},
		{url.Values{"user_type": {"robot"}, "id_type": {"bogus"}}, []string{"user_type", "id_type"}, -1, -1, ""},
	} {
		f.mu.Lock()
		f.updates = nil
		f.mu.Unlock()
		c.form.Set("csrf", tok)
		res, _ := b.do("POST", "/console/people/u1/type", c.form, nil)
		if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/console/people/u1?done=type" || len(f.updates) != 1 {
			t.Fatalf("%v: %d %q, %d updates", c.form, res.StatusCode, res.Header.Get("Location"), len(f.updates))
		}
		u := f.updates[0]
		if u.GetId() != "u1" || !slices.Equal(u.GetUpdateMask(), c.mask) || u.GetUserType() != c.userType || u.GetIdType() != c.idType ||
			u.GetIdNumber() != c.idNumber {
			t.Errorf("%v: sent %v", c.form, u)
		}
	}
	if _, page := b.do("GET", "/console/people/u1?done=type&locale=en", nil, nil); !strings.Contains(page, "The account type was changed.") {
		t.Fatalf("after the change:\n%s", page)
	}
	f.updateErr = reasonErr(codes.InvalidArgument, "ID_TYPE_MISMATCH", "a unit's ID type is a unified social credit code or an organisation code")
	res, page := b.do("POST", "/console/people/u1/type", url.Values{"csrf": {tok}, "user_type": {"unit"}}, nil)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(page, "a unit&#39;s ID type is a unified social credit code") ||
		!strings.Contains(page, `id="change-type"`) {
		t.Fatalf("refused: %d\n%s", res.StatusCode, page)
	}
}
