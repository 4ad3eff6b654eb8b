package identity

import "testing"

func TestClaimedAccount(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"A1001", "account:A1001"},
		{"13812345678", "account:138****5678"},
		{"id 110101199003071233", "account:id 110*************33"},
		{"", "account:"},
	} {
		if got := claimedAccount(tc.in); got != tc.want {
			t.Errorf("claimedAccount(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
