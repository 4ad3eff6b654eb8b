package identity

import (
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/uias/uias/pkg/crypto"
)

// TestHashNeedsWorker: the early overload refusal (checkPassword, before
// the login gate's writes) applies only to stored hashes whose check takes
// a hash worker, as verifyHash runs them; a fast legacy hash is checked
// whatever the load.
func TestHashNeedsWorker(t *testing.T) {
	p := crypto.Argon2Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	argon := crypto.EncodePHC(p, make([]byte, 16), crypto.RawArgon2id([]byte("pw"), make([]byte, 16), p))
	bc, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for enc, want := range map[string]bool{
		argon:      true,
		string(bc): true,
		"$pbkdf2-sha256$i=1000$czRsdA$KJHI1Mh9Sx+5U20AjFqnhhJmdJv1FsEsnVBTXEwvWjY": true,
		"{SSHA}ToCQ+Yy+XbHrrCMPC5gQGBLBShJzNGx0":                                   false,
		"{MD5}iHRE7ThN0c3MJi9s+CPVFA==":                                            false,
		"":                                                                         false,
		"not a hash":                                                               false,
	} {
		if got := hashNeedsWorker(enc); got != want {
			t.Errorf("hashNeedsWorker(%.30q) = %v, want %v", enc, got, want)
		}
	}
}
