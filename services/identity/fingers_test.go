package identity_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/finger"
	"github.com/uias/uias/services/identity/finger/synth"
)

// Impressions of synthetic fingers (finger/synth): two impressions of one
// finger match, impressions of different fingers do not.
var fingerSet = synth.Default(42)

func impression(id, imp int) []byte { return synth.NewFinger(fingerSet, id).Impression(imp) }

// withPosition sets the finger position of a record's view.
func withPosition(t *testing.T, b []byte, pos uint8) []byte {
	t.Helper()
	r, err := finger.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	r.Views[0].Position = pos
	out, err := finger.Encode(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (w *world) authFinger(t *testing.T, authType int, probe []byte, pw string) (*identity.AuthResult, error) {
	t.Helper()
	return w.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "m001", Password: pw, Fingerprint: probe, AuthType: authType})
}

func (w *world) mustAuthFinger(t *testing.T, authType int, probe []byte, pw string) identity.Reason {
	t.Helper()
	r, err := w.authFinger(t, authType, probe, pw)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	return r.Reason
}

func TestFingerprintAuthenticate(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	genuine, other := impression(1, 1), impression(2, 1)

	// Nothing enrolled: -4.
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, genuine, ""); r != identity.ReasonNoFingerprint || r.LegacyCode() != -4 {
		t.Fatalf("nothing enrolled: %v", r)
	}
	f, err := w.svc.EnrollFinger(ctx, w.user.ID, 2, impression(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	if f.Position != 2 || f.Format != finger.ISO.String() || f.Minutiae < identity.MinEnrolMinutiae {
		t.Fatalf("enrolled %+v", f)
	}
	// A second finger (another position) of the same person.
	if _, err := w.svc.EnrollFinger(ctx, w.user.ID, 7, impression(3, 0)); err != nil {
		t.Fatal(err)
	}

	// Auth type 2: the right finger (another impression, ANSI) matches: 0.
	res, err := w.authFinger(t, identity.AuthFingerprint, genuine, "")
	if err != nil || res.Reason != identity.ReasonOK || res.Reason.LegacyCode() != 0 || res.User == nil {
		t.Fatalf("genuine finger: %+v %v", res, err)
	}
	// The second enrolled finger matches too.
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, impression(3, 4), ""); r != identity.ReasonOK {
		t.Fatalf("second finger: %v", r)
	}
	// Someone else's finger: -1.
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, other, ""); r != identity.ReasonBadCredentials || r.LegacyCode() != -1 {
		t.Fatalf("other finger: %v", r)
	}
	// The enrolled record itself, byte for byte: a copy of the stored
	// template (leaked), never a capture: -1, counted (trial8 D6).
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, impression(3, 0), ""); r != identity.ReasonBadCredentials {
		t.Fatalf("the enrolled record as a probe: %v", r)
	}
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, impression(3, 5), ""); r != identity.ReasonOK {
		t.Fatalf("a capture of the same finger after the copy: %v", r)
	}
	// A record presented before, byte for byte: a replay, never a capture
	// (a scanner never captures the same bytes twice; review sec23 M3):
	// -1, counted; another capture still matches.
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, impression(3, 4), ""); r != identity.ReasonBadCredentials {
		t.Fatalf("a capture presented again: %v", r)
	}
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, impression(3, 6), ""); r != identity.ReasonOK {
		t.Fatalf("a fresh capture after the replay: %v", r)
	}
	// Auth type 3: both needed (each a fresh capture).
	if r := w.mustAuthFinger(t, identity.AuthPasswordFingerprint, impression(1, 7), "First-Pass-1"); r != identity.ReasonOK {
		t.Fatalf("type 3, both right: %v", r)
	}
	if r := w.mustAuthFinger(t, identity.AuthPasswordFingerprint, impression(1, 8), "Wrong-Pass-1"); r != identity.ReasonBadCredentials {
		t.Fatalf("type 3, wrong password: %v", r)
	}
	if r := w.mustAuthFinger(t, identity.AuthPasswordFingerprint, impression(2, 2), "First-Pass-1"); r != identity.ReasonBadCredentials {
		t.Fatalf("type 3, wrong finger: %v", r)
	}
	if r := w.mustAuthFinger(t, identity.AuthPasswordFingerprint, impression(1, 9), "First-Pass-1"); r != identity.ReasonOK {
		t.Fatalf("type 3 after the failures: %v", r)
	}

	// Malformed probe: -5 with the reason.
	bad := bytes.Clone(genuine)
	bad[0] = 'X'
	_, err = w.authFinger(t, identity.AuthFingerprint, bad, "")
	if reasonOf(err) != "FINGER_RECORD_INVALID" || !strings.Contains(err.Error(), "at byte 0") {
		t.Fatalf("malformed probe: %v", err)
	}
	if apierr.LegacyCode(err) != -5 || apierr.CodeOf(err) != apierr.InvalidArgument {
		t.Fatalf("malformed probe: legacy code of %v", err)
	}
	two, _ := finger.Parse(genuine)
	two.Views = append(two.Views, finger.View{Position: 3, Minutiae: two.Views[0].Minutiae})
	twoViews, _ := finger.Encode(two)
	if _, err := w.authFinger(t, identity.AuthFingerprint, twoViews, ""); reasonOf(err) != "FINGER_RECORD_INVALID" ||
		!strings.Contains(err.Error(), "exactly one") {
		t.Fatalf("two views: %v", err)
	}

	// The per-person switch: password only: -3 for types 2 and 3.
	if _, err := w.svc.UpdateUser(ctx, w.user.ID, identity.UserUpdate{Mask: []string{"password_only"}, PasswordOnly: true}); err != nil {
		t.Fatal(err)
	}
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, genuine, ""); r != identity.ReasonPasswordOnly || r.LegacyCode() != -3 {
		t.Fatalf("password-only person: %v", r)
	}
	if r := w.auth(t, "First-Pass-1"); r.Reason != identity.ReasonOK {
		t.Fatalf("password-only person, password: %v", r.Reason)
	}
}

// TestFingerprintFailuresLock: failed fingerprint checks count towards
// the lockout like wrong passwords.
func TestFingerprintFailuresLock(t *testing.T) {
	w := setup(t)
	if _, err := w.svc.EnrollFinger(context.Background(), w.user.ID, 1, impression(1, 0)); err != nil {
		t.Fatal(err)
	}
	var last identity.Reason
	for i := range 6 {
		res, err := w.svc.Authenticate(w.ctx, identity.AuthRequest{AppUserID: "m001", Fingerprint: impression(10+i, 1),
			AuthType: identity.AuthFingerprint, Extend: map[string]string{identity.ClientIPExtend: "198.51.100." + string(rune('1'+i))}})
		if err != nil {
			t.Fatal(err)
		}
		last = res.Reason
	}
	if last != identity.ReasonAccountLocked {
		t.Fatalf("after 6 wrong fingers: %v, want locked", last)
	}
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, impression(1, 1), ""); r != identity.ReasonAccountLocked {
		t.Fatalf("right finger on a locked account: %v", r)
	}
}

func TestFingerprintBypass(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	if _, err := w.svc.EnrollFinger(ctx, w.user.ID, 1, impression(1, 0)); err != nil {
		t.Fatal(err)
	}
	app := caller.From(w.ctx).App
	admin := caller.With(ctx, &caller.Caller{Principal: "admin-1", RequestID: "r2"})
	if _, err := w.svc.SetFingerprintBypass(admin, app.ID, true, ""); reasonOf(err) != "BAD_REQUEST" {
		t.Fatalf("bypass without a reason: %v", err)
	}
	b, err := w.svc.SetFingerprintBypass(admin, app.ID, true, "scanners down in branch 12")
	if err != nil || !b.Enabled || b.SetBy != "admin-1" {
		t.Fatalf("bypass on: %+v %v", b, err)
	}
	if got, err := w.svc.GetFingerprintBypass(ctx, app.ID); err != nil || !got.Enabled || got.Reason != "scanners down in branch 12" {
		t.Fatalf("bypass read: %+v %v", got, err)
	}
	// Type 2 checks the password instead; the finger is not needed to match.
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, impression(2, 1), "First-Pass-1"); r != identity.ReasonOK {
		t.Fatalf("bypass, right password: %v", r)
	}
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, impression(1, 1), "Wrong-Pass-1"); r != identity.ReasonBadCredentials {
		t.Fatalf("bypass, wrong password: %v", r)
	}
	if _, err := w.authFinger(t, identity.AuthFingerprint, impression(1, 1), ""); reasonOf(err) != "BAD_REQUEST" ||
		!strings.Contains(err.Error(), "bypass") {
		t.Fatalf("bypass, no password: %v", err)
	}
	// The reader is what broke: no record, or one that is not a minutiae
	// record, is fine; the password decides.
	for what, rec := range map[string][]byte{"no record": nil, "garbage": []byte("AAAA")} {
		if r := w.mustAuthFinger(t, identity.AuthFingerprint, rec, "First-Pass-1"); r != identity.ReasonOK {
			t.Fatalf("bypass, %s, right password: %v", what, r)
		}
		if r := w.mustAuthFinger(t, identity.AuthFingerprint, rec, "Wrong-Pass-1"); r != identity.ReasonBadCredentials {
			t.Fatalf("bypass, %s, wrong password: %v", what, r)
		}
	}
	// Type 3 still needs both.
	if r := w.mustAuthFinger(t, identity.AuthPasswordFingerprint, impression(2, 1), "First-Pass-1"); r != identity.ReasonBadCredentials {
		t.Fatalf("bypass does not cover type 3: %v", r)
	}
	if _, err := w.svc.SetFingerprintBypass(admin, app.ID, false, "fixed"); err != nil {
		t.Fatal(err)
	}
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, impression(2, 1), "First-Pass-1"); r != identity.ReasonBadCredentials {
		t.Fatalf("bypass off: %v", r)
	}
	// Bypass off: a finger is required, whatever the password.
	if _, err := w.authFinger(t, identity.AuthFingerprint, nil, "First-Pass-1"); reasonOf(err) != "BAD_REQUEST" ||
		!strings.Contains(err.Error(), "fingerprint_feature is required") {
		t.Fatalf("bypass off, no record: %v", err)
	}
	if _, err := w.authFinger(t, identity.AuthFingerprint, []byte("AAAA"), "First-Pass-1"); reasonOf(err) != "FINGER_RECORD_INVALID" {
		t.Fatalf("bypass off, garbage record: %v", err)
	}
	if _, err := w.svc.SetFingerprintBypass(admin, "missing", true, "x"); reasonOf(err) != "NOT_FOUND" {
		t.Fatalf("unknown app: %v", err)
	}
}

func TestEnrollFinger(t *testing.T) {
	w := setup(t)
	ctx := context.Background()
	rec := impression(1, 0)
	cases := []struct {
		name   string
		pos    int
		rec    []byte
		reason string
		msg    string
	}{
		{"position 0", 0, rec, "BAD_REQUEST", "finger position"},
		{"position 11", 11, rec, "BAD_REQUEST", "finger position"},
		{"malformed", 1, rec[:30], "FINGER_RECORD_INVALID", "record"},
		{"other position in the record", 3, withPosition(t, rec, 4), "FINGER_RECORD_INVALID", "finger position 4, not 3"},
		{"too few minutiae", 1, sparse(t, rec, 5), "FINGER_RECORD_INVALID", "5 minutiae; at least 12"},
	}
	for _, c := range cases {
		_, err := w.svc.EnrollFinger(ctx, w.user.ID, c.pos, c.rec)
		if reasonOf(err) != c.reason || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: %v, want %s containing %q", c.name, err, c.reason, c.msg)
		}
	}
	if _, err := w.svc.EnrollFinger(ctx, "nobody", 1, rec); reasonOf(err) != "NOT_FOUND" {
		t.Fatalf("unknown user: %v", err)
	}
	// The record's own position, when given, must agree; replacing keeps one.
	if _, err := w.svc.EnrollFinger(ctx, w.user.ID, 4, withPosition(t, rec, 4)); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.EnrollFinger(ctx, w.user.ID, 4, impression(5, 0)); err != nil {
		t.Fatal(err)
	}
	fs, err := w.svc.ListFingers(ctx, w.user.ID)
	if err != nil || len(fs) != 1 || fs[0].Position != 4 {
		t.Fatalf("ListFingers = %+v, %v", fs, err)
	}
	if err := w.svc.DeleteFinger(ctx, w.user.ID, 4); err != nil {
		t.Fatal(err)
	}
	if err := w.svc.DeleteFinger(ctx, w.user.ID, 4); reasonOf(err) != "NOT_FOUND" {
		t.Fatalf("delete again: %v", err)
	}
}

// sparse keeps the first n minutiae of a record.
func sparse(t *testing.T, b []byte, n int) []byte {
	r, err := finger.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	r.Views[0].Minutiae = r.Views[0].Minutiae[:n]
	out, _ := finger.Encode(r)
	return out
}

// TestFingerTemplatesStaySecret: templates are sealed at rest; no event
// carries one.
func TestFingerTemplatesStaySecret(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	rec := impression(1, 0)
	mark := e.mark(t)
	if _, err := w.svc.EnrollFinger(context.Background(), w.user.ID, 2, rec); err != nil {
		t.Fatal(err)
	}
	w.mustAuthFinger(t, identity.AuthFingerprint, impression(1, 1), "")
	var stored string
	if err := e.db.QueryRowContext(context.Background(), "SELECT template_enc FROM user_fingers").Scan(&stored); err != nil {
		t.Fatal(err)
	}
	// "FMR\x00" is the record's magic as raw bytes: base64 text (the sealed
	// value) never holds a NUL, while by chance it may spell FMR.
	if strings.Contains(stored, base64.StdEncoding.EncodeToString(rec[:24])) || strings.Contains(stored, "FMR\x00") {
		t.Fatalf("template stored in clear: %.60s", stored)
	}
	rows := e.outbox(t, mark)
	if len(rows) == 0 {
		t.Fatal("no events")
	}
	for _, r := range rows {
		if bytes.Contains(r.Payload, []byte(base64.StdEncoding.EncodeToString(rec[24:48]))) || bytes.Contains(r.Payload, []byte("FMR")) {
			t.Fatalf("event %s carries the template: %s", r.Subject, r.Payload)
		}
	}
	a := audit(t, rows, "finger.enroll")
	if a.Subject != "user:"+w.user.ID {
		t.Fatalf("enrol audit subject %q", a.Subject)
	}
}

// TestFingerTemplateCache: enrolled templates are kept prepared in memory
// per instance, keyed by the sealed template: a finger enrolled again
// through another instance is never matched against the old one, and
// with the cache off (FingerCache < 0) every check opens the templates.
func TestFingerTemplateCache(t *testing.T) {
	for _, size := range []int{0, -1} {
		svcs, clk := newInstances(t, 2, identity.Config{FingerCache: size})
		w := setupOn(t, svcs[0], clk)
		other := &world{svc: svcs[1], clk: clk, ctx: w.ctx, user: w.user}
		ctx := context.Background()
		if _, err := w.svc.EnrollFinger(ctx, w.user.ID, 2, impression(1, 0)); err != nil {
			t.Fatal(err)
		}
		for i := range 2 { // the second time from the cache, when on
			if r := other.mustAuthFinger(t, identity.AuthFingerprint, impression(1, 1+i), ""); r != identity.ReasonOK {
				t.Fatalf("cache %d: enrolled finger: %v", size, r)
			}
		}
		// The same position enrolled again with another finger, through
		// the first instance; the second has the old one prepared.
		if _, err := w.svc.EnrollFinger(ctx, w.user.ID, 2, impression(5, 0)); err != nil {
			t.Fatal(err)
		}
		if r := other.mustAuthFinger(t, identity.AuthFingerprint, impression(1, 2), ""); r != identity.ReasonBadCredentials {
			t.Fatalf("cache %d: replaced finger still matches: %v", size, r)
		}
		if r := other.mustAuthFinger(t, identity.AuthFingerprint, impression(5, 1), ""); r != identity.ReasonOK {
			t.Fatalf("cache %d: new finger: %v", size, r)
		}
		// Deleted: nothing enrolled.
		if err := w.svc.DeleteFinger(ctx, w.user.ID, 2); err != nil {
			t.Fatal(err)
		}
		if r := other.mustAuthFinger(t, identity.AuthFingerprint, impression(5, 1), ""); r != identity.ReasonNoFingerprint {
			t.Fatalf("cache %d: deleted finger: %v", size, r)
		}
	}
}

// TestFingerprintBypassAudited: turning the bypass on and off is audited
// with the administrator, the application and the reason, and a login
// through the bypass is audited under its own API id.
func TestFingerprintBypassAudited(t *testing.T) {
	e := newEvEnv(t, "")
	w := setupOn(t, e.svc, e.clk)
	ctx := context.Background()
	if _, err := w.svc.EnrollFinger(ctx, w.user.ID, 1, impression(1, 0)); err != nil {
		t.Fatal(err)
	}
	app := caller.From(w.ctx).App
	admin := caller.With(ctx, &caller.Caller{Principal: "admin-1", RequestID: "r2"})
	mark := e.mark(t)
	if _, err := w.svc.SetFingerprintBypass(admin, app.ID, true, "scanners down in branch 12"); err != nil {
		t.Fatal(err)
	}
	if r := w.mustAuthFinger(t, identity.AuthFingerprint, impression(2, 1), "First-Pass-1"); r != identity.ReasonOK {
		t.Fatalf("bypass, right password: %v", r)
	}
	if _, err := w.svc.SetFingerprintBypass(admin, app.ID, false, "scanners fixed"); err != nil {
		t.Fatal(err)
	}
	rows := e.outbox(t, mark)
	recs := auditRecords(t, rows, "finger.bypass")
	if len(recs) != 2 {
		t.Fatalf("%d finger.bypass records, want 2", len(recs))
	}
	for i, want := range []struct{ enabled, reason string }{{"true", "scanners down in branch 12"}, {"false", "scanners fixed"}} {
		r := recs[i]
		if r.Actor != "user:admin-1" || r.Subject != "app:"+app.ID || r.Detail["enabled"] != want.enabled || r.Detail["reason"] != want.reason {
			t.Fatalf("record %d: %+v", i, r)
		}
	}
	if got := auditRecords(t, rows, "authenticate.finger_bypass"); len(got) != 1 || got[0].Reason != "OK" || got[0].Subject != "user:"+w.user.ID {
		t.Fatalf("login through the bypass: %+v", got)
	}
}
