package ldap

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/uias/uias/services/sync/provision"
)

// Review sec30a H2: a login name of 61-64 characters made the namesake CN
// slice with a negative length (a panic of the sync worker). Every login
// name CreateUser allows (up to 64 characters) gives a CN of at most 64
// characters; the namesake CN still tells the person apart.
func TestNamesakeCNFitsForEveryLoginLength(t *testing.T) {
	for n := 1; n <= 64; n++ {
		login := strings.Repeat("a", n)
		for _, name := range []string{"Zhang San", strings.Repeat("张", 70), login} {
			alt := namesake(name, login, "01JABCDEFGHJKMNPQRSTVWXYZ0")
			if alt == "" || utf8.RuneCountInString(alt) > maxCN || strings.HasPrefix(alt, " ") {
				t.Fatalf("login of %d characters, name %q: namesake CN %q", n, name, alt)
			}
			if n <= maxCN-4 && !strings.HasSuffix(alt, " ("+login+")") {
				t.Fatalf("login of %d characters: namesake CN %q does not end with the login", n, alt)
			}
			if n > maxCN-4 && !strings.HasSuffix(alt, " (#STVWXYZ0)") {
				t.Fatalf("login of %d characters: namesake CN %q does not end with the id's tail", n, alt)
			}
		}
	}
	if got := cut("abc", -3); got != "" {
		t.Fatalf("cut with a negative length: %q", got)
	}
}

// The proof of the review: adPerson with a 62-character login no longer
// panics (the directory is unreachable: the error is the connection's).
func TestADPersonLongLoginDoesNotPanic(t *testing.T) {
	tr := &Transport{URL: "ldap://127.0.0.1:1", BaseDN: "DC=example,DC=org", AD: true, GroupClass: ADGroup}
	item := func(data string) provision.Item {
		return provision.Item{Delivery: provision.Delivery{Kind: provision.KindUser, ObjectID: "u1", Op: provision.OpUpsert},
			Object: &provision.Object{Kind: provision.KindUser, ID: "u1", Data: []byte(data)}}
	}
	for _, n := range []int{61, 62, 64} {
		login := strings.Repeat("a", n)
		if err := tr.adPerson(item(`{"login_name":"`+login+`","display_name":"Zhang San"}`), ""); err == nil {
			t.Fatalf("login of %d characters: delivered to a closed port", n)
		}
	}
	if alt := namesake("", "ann", "u1"); alt != "" {
		t.Fatalf("a namesake CN without a name: %q", alt)
	}
}
