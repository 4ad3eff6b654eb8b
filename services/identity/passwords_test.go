package identity_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/sqlstore"
)

// legacyWorld is a world whose store the test can reach, to plant the
// hashes an import would bring.
func legacyWorld(t *testing.T, cfg identity.Config) (*world, *sqlstore.Store) {
	t.Helper()
	st, clk := sqlstore.New(testDB(t)), newTestClock()
	svc := testService(t, identity.Deps{Store: st, Now: clk.now, Sleep: clk.sleep, Config: cfg})
	return setupOn(t, svc, clk), st
}

func (w *world) plant(t *testing.T, st *sqlstore.Store, hash string) {
	t.Helper()
	u, err := st.GetUser(context.Background(), w.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.ReplacePasswordHash(context.Background(), u.ID, u.PasswordHash, hash, nil); err != nil {
		t.Fatal(err)
	}
	w.svc.ForgetUser(u.ID)
}

func (w *world) storedHash(t *testing.T, st *sqlstore.Store) string {
	t.Helper()
	u, err := st.GetUser(context.Background(), w.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	return u.PasswordHash
}

// Hashes of "Ocean-Pass-1" computed with Python's hashlib (see
// legacyhash's known answers).
const legacyPass = "Ocean-Pass-1"

var legacyHashes = map[string]string{
	"pbkdf2 (PHC)":     "$pbkdf2-sha256$i=1000$czRsdA$KJHI1Mh9Sx+5U20AjFqnhhJmdJv1FsEsnVBTXEwvWjY",
	"pbkdf2 (Django)":  "pbkdf2_sha256$1200$abcSalt$ZGkcre7NI685vwJ3RYOFpCRIgyE60/NMypv/7/ve5iM=",
	"salted SHA-256":   "{SSHA256}AUoWoCLcmjrAkDrJiwWDzGknNHHOzOvlsOGT3mtZQcFzNGx0",
	"salted SHA-1":     "{SSHA}ToCQ+Yy+XbHrrCMPC5gQGBLBShJzNGx0",
	"salted MD5 (hex)": "$digest$md5$ps$abc$39ddaa1e8803de22688ecfaa8af5573c",
	"salted SM3":       "$digest$sm3$sp$NaCl$bc972bd7b06cfa21f6b9dbbc0e446b1d2db86b653ab3ad0e8428a4cb0500b4f8",
	"unsalted SM3":     "{SM3}kUi6VT1ZI6mGvpohtZvWARy4rDjkWenS0MLrFXDz7wU=",
}

// A login against an imported hash of any scheme works and replaces the
// hash with argon2id at once; a wrong password is a failed login.
func TestLegacyHashesRehashAtLogin(t *testing.T) {
	b, err := bcrypt.GenerateFromPassword([]byte(legacyPass), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	hashes := map[string]string{"bcrypt": string(b)}
	for k, v := range legacyHashes {
		hashes[k] = v
	}
	for name, h := range hashes {
		t.Run(name, func(t *testing.T) {
			w, st := legacyWorld(t, identity.Config{})
			w.plant(t, st, h)
			if r := w.auth(t, "Ocean-Pass-2"); r.Reason != identity.ReasonBadCredentials {
				t.Fatalf("wrong password: %v", r.Reason)
			}
			if got := w.storedHash(t, st); got != h {
				t.Fatalf("a failed login changed the hash to %q", got)
			}
			if r := w.auth(t, legacyPass); r.Reason != identity.ReasonOK {
				t.Fatalf("right password: %v", r.Reason)
			}
			if got := w.storedHash(t, st); !strings.HasPrefix(got, "$argon2id$") {
				t.Fatalf("hash after the login = %q, want argon2id", got)
			}
			if r := w.auth(t, legacyPass); r.Reason != identity.ReasonOK {
				t.Fatalf("right password after the rehash: %v", r.Reason)
			}
		})
	}
}

// An Active Directory NT hash (the published one of "password") brought by
// an import: the person keeps the AD password, rehashed to argon2id at the
// first sign-in.
func TestNTHashRehashAtLogin(t *testing.T) {
	w, st := legacyWorld(t, identity.Config{})
	const nt = "$NT$8846f7eaee8fb117ad06bdd830b7586c"
	w.plant(t, st, nt)
	if r := w.auth(t, "Password"); r.Reason != identity.ReasonBadCredentials || w.storedHash(t, st) != nt {
		t.Fatalf("wrong password: %v", r.Reason)
	}
	if r := w.auth(t, "password"); r.Reason != identity.ReasonOK {
		t.Fatalf("right password: %v", r.Reason)
	}
	if got := w.storedHash(t, st); !strings.HasPrefix(got, "$argon2id$") {
		t.Fatalf("hash after the login = %q, want argon2id", got)
	}
	if r := w.auth(t, "password"); r.Reason != identity.ReasonOK {
		t.Fatalf("right password after the rehash: %v", r.Reason)
	}
}

func TestUnreadableHashIsAFailedLogin(t *testing.T) {
	w, st := legacyWorld(t, identity.Config{})
	w.plant(t, st, "{CRYPT}$1$abc")
	if r := w.auth(t, legacyPass); r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("unreadable hash: %v", r.Reason)
	}
}

// Unsalted fast hashes: the background job wraps them in argon2id without
// the password; a login then works and rehashes; after the cut-over the
// person must choose a new password.
func TestUnsaltedPolicy(t *testing.T) {
	const md5 = "{MD5}iHRE7ThN0c3MJi9s+CPVFA=="
	w, st := legacyWorld(t, identity.Config{})
	w.plant(t, st, md5)
	ctx := context.Background()
	n, next, err := w.svc.WrapUnsalted(ctx, "", 100)
	if err != nil || n != 1 || next != "" {
		t.Fatalf("WrapUnsalted = %d %q %v, want 1 wrapped, done", n, next, err)
	}
	wrapped := w.storedHash(t, st)
	if !strings.HasPrefix(wrapped, "$wrap-md5$argon2id$") {
		t.Fatalf("wrapped hash = %q", wrapped)
	}
	// Nothing left to wrap.
	if n, _, err := w.svc.WrapUnsalted(ctx, "", 100); err != nil || n != 0 {
		t.Fatalf("second pass wrapped %d (%v)", n, err)
	}
	if r := w.auth(t, "Ocean-Pass-2"); r.Reason != identity.ReasonBadCredentials {
		t.Fatalf("wrong password on a wrapped hash: %v", r.Reason)
	}
	if r := w.auth(t, legacyPass); r.Reason != identity.ReasonOK {
		t.Fatalf("right password on a wrapped hash: %v", r.Reason)
	}
	if got := w.storedHash(t, st); !strings.HasPrefix(got, "$argon2id$") {
		t.Fatalf("hash after the login = %q", got)
	}

	// After the cut-over: a new password first (wrapped or not).
	for _, h := range []string{md5, wrapped} {
		w, st := legacyWorld(t, identity.Config{UnsaltedCutover: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)})
		w.plant(t, st, h)
		if r := w.auth(t, "Ocean-Pass-2"); r.Reason != identity.ReasonBadCredentials {
			t.Fatalf("wrong password after the cut-over: %v", r.Reason)
		}
		if r := w.auth(t, legacyPass); r.Reason != identity.ReasonPasswordExpired {
			t.Fatalf("right password after the cut-over: %v, want PASSWORD_EXPIRED", r.Reason)
		}
		if err := w.svc.ChangePassword(w.ctx, "m001", legacyPass, "Harbour-Pass-9"); err != nil {
			t.Fatalf("change after the cut-over: %v", err)
		}
		if r := w.auth(t, "Harbour-Pass-9"); r.Reason != identity.ReasonOK {
			t.Fatalf("new password: %v", r.Reason)
		}
		if got := w.storedHash(t, st); !strings.HasPrefix(got, "$argon2id$") {
			t.Fatalf("hash after the change = %q", got)
		}
	}
	// Before the cut-over an unsalted hash still logs in.
	w, st = legacyWorld(t, identity.Config{UnsaltedCutover: time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)})
	w.plant(t, st, md5)
	if r := w.auth(t, legacyPass); r.Reason != identity.ReasonOK {
		t.Fatalf("before the cut-over: %v", r.Reason)
	}
}

// TestPasswordTimesIncrease: each password's time is after the one before
// (to the stored millisecond), also when the clock has not moved or went
// back: the sessions opened with the earlier password end at the change
// (review sec24 L1).
func TestPasswordTimesIncrease(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	var last time.Time
	for i, pw := range []string{"Second-Pass-1", "Third-Pass-22", "Fourth-Pass-333"} {
		if i == 2 {
			w.clk.mu.Lock()
			w.clk.t = w.clk.t.Add(-time.Hour) // a clock stepped back
			w.clk.mu.Unlock()
		}
		if _, err := w.svc.SetPassword(ctx, w.user.ID, pw, false); err != nil {
			t.Fatal(err)
		}
		u, err := w.svc.GetUser(ctx, w.user.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !u.PasswordChangedAt.After(last) {
			t.Fatalf("change %d at %v, not after %v", i, u.PasswordChangedAt, last)
		}
		last = u.PasswordChangedAt
	}
}
