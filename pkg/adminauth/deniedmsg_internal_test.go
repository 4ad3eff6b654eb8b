package adminauth

import "testing"

// A refusal names what was refused: the "lock" permission also covers
// unlocking, disabling and enabling, which its verb alone would misname.
func TestDeniedMessageNamesTheAction(t *testing.T) {
	for _, c := range []struct {
		p      Perm
		detail string
		want   string
	}{
		{UsersLock, "none of your roles allows it", "not allowed to lock, disable or enable users: none of your roles allows it"},
		{UsersUnlock, "", "not allowed to unlock users"},
		{UsersPassword, "", "not allowed to set users' passwords"},
		{AppsSecret, "", "not allowed to rotate application secrets"},
		{UsersRead, "", "not allowed to read users"},
		{GrantsWrite, "", "not allowed to write authz.grants"},
	} {
		if got := deniedMessage(c.p, c.detail); got != c.want {
			t.Errorf("%v: %q, want %q", c.p, got, c.want)
		}
	}
}
