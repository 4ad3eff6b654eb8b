package identity

import (
	"strings"
	"testing"
)

func TestClaimedAccount(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"A1001", "account:A1001"},
		{"13812345678", "account:138****5678"},
		{"id 110101199003071233", "account:id 110*************33"},
		{"a\x00b\nc", "account:a?b?c"},
		{"a\xffb", "account:a?b"},
		{strings.Repeat("x", maxClaimedAccount), "account:" + strings.Repeat("x", maxClaimedAccount)},
		{strings.Repeat("x", maxClaimedAccount+1), "account:" + strings.Repeat("x", maxClaimedAccount) + "…"},
		// Cut on a rune boundary: 43 three-byte runes are 129 bytes.
		{strings.Repeat("张", 43), "account:" + strings.Repeat("张", 42) + "…"},
	} {
		if got := claimedAccount(tc.in); got != tc.want {
			t.Errorf("claimedAccount(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
