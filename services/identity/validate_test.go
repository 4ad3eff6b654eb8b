package identity

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/uias/uias/pkg/apierr"
)

func wantBadRequest(t *testing.T, err error, contains string) {
	t.Helper()
	var ae *apierr.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want bad request error, got %v", err)
	}
	if apierr.CodeOf(err) != apierr.InvalidArgument || apierr.LegacyCode(err) != -5 {
		t.Fatalf("want InvalidArgument with legacy_code -5, got %v %d", apierr.CodeOf(err), apierr.LegacyCode(err))
	}
	if !strings.Contains(ae.Message, contains) {
		t.Fatalf("message %q does not mention %q", ae.Message, contains)
	}
}

func TestParseExtendInfo(t *testing.T) {
	ok := []struct {
		in   string
		want map[string]string
	}{
		{"", map[string]string{}},
		{"a=1", map[string]string{"a": "1"}},
		{"a=1|b=2", map[string]string{"a": "1", "b": "2"}},
		{"a=1|b=2|", map[string]string{"a": "1", "b": "2"}},
		{"a=|b=x=y", map[string]string{"a": "", "b": "x=y"}},
		{"terminal.id=T-01|地点=上海", nil}, // invalid name: non-ASCII
	}
	for _, c := range ok {
		got, err := ParseExtendInfo(c.in)
		if c.want == nil {
			wantBadRequest(t, err, "name")
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if len(got) != len(c.want) {
			t.Fatalf("%q: got %v want %v", c.in, got, c.want)
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Fatalf("%q: %s=%q want %q", c.in, k, got[k], v)
			}
		}
	}
	bad := []struct{ in, mention string }{
		{"novalue", "no '='"},
		{"=1", "name"},
		{"a=1|a=2", "twice"},
		{"a b=1", "name"},
		{"a=\xff", "UTF-8"},
		{strings.Repeat("k=v|", 3000), "too long"},
		{func() string {
			var b strings.Builder
			for i := 0; i < 40; i++ {
				b.WriteString("k")
				b.WriteString(strings.Repeat("x", i))
				b.WriteString("=1|")
			}
			return b.String()
		}(), "too many"},
	}
	for _, c := range bad {
		_, err := ParseExtendInfo(c.in)
		wantBadRequest(t, err, c.mention)
	}
}

func TestFormatExtendInfoRoundTrip(t *testing.T) {
	m := map[string]string{"b": "2", "a": "1", "term": "x=y"}
	s := FormatExtendInfo(m)
	if s != "a=1|b=2|term=x=y" {
		t.Fatalf("got %q", s)
	}
	back, err := ParseExtendInfo(s)
	if err != nil || len(back) != 3 || back["term"] != "x=y" {
		t.Fatalf("round trip: %v %v", back, err)
	}
}

func FuzzParseExtendInfo(f *testing.F) {
	for _, s := range []string{"", "a=1", "a=1|b=2|", "=", "|||", "a=1|a=2", "x=\xff", "k=v=w"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseExtendInfo(s)
		if err != nil {
			var ae *apierr.Error
			if !errors.As(err, &ae) || ae.Code != apierr.InvalidArgument {
				t.Fatalf("error is not a bad request: %v", err)
			}
			return
		}
		if len(m) > maxExtendEntries {
			t.Fatalf("accepted %d entries", len(m))
		}
		for k, v := range m {
			if !utf8.ValidString(k) || !utf8.ValidString(v) || strings.Contains(v, "|") {
				t.Fatalf("accepted bad entry %q=%q", k, v)
			}
		}
		// What parses must format and parse back to the same map.
		again, err := ParseExtendInfo(FormatExtendInfo(m))
		if err != nil || len(again) != len(m) {
			t.Fatalf("round trip failed: %v", err)
		}
	})
}

func validAuth() AuthRequest {
	return AuthRequest{AppUserID: "alice", Password: "pw", AuthType: AuthPassword}
}

// TestValidateAuth covers what the domain still checks in an Authenticate
// request; the strings (lengths, UTF-8, control characters, extend-info
// names and values) are checked by the proto rules before a request reaches
// the service, tested over gRPC and REST in tests/e2e (validation_test.go).
func TestValidateAuth(t *testing.T) {
	s := &Service{}
	cases := []struct {
		name    string
		mod     func(r *AuthRequest)
		mention string
	}{
		{"no auth type", func(r *AuthRequest) { r.AuthType = 0 }, "auth_type"},
		{"bad auth type", func(r *AuthRequest) { r.AuthType = 7 }, "auth_type"},
		{"password missing", func(r *AuthRequest) { r.Password = "" }, "password is required"},
		{"fingerprint missing", func(r *AuthRequest) { r.AuthType, r.Password = AuthFingerprint, "" }, "fingerprint_feature is required"},
		{"both missing fp", func(r *AuthRequest) { r.AuthType = AuthPasswordFingerprint }, "both required"},
		{"malformed legacy extend", func(r *AuthRequest) { r.ExtendLegacy = "a=1|broken" }, "no '='"},
		{"bad legacy extend name", func(r *AuthRequest) { r.ExtendLegacy = "bad key=1" }, "name"},
		{"too many merged extend entries", func(r *AuthRequest) {
			r.Extend = map[string]string{}
			var legacy []string
			for i := range 20 {
				r.Extend[string(rune('a'+i))] = "1"
				legacy = append(legacy, string(rune('A'+i))+"=1")
			}
			r.ExtendLegacy = strings.Join(legacy, "|")
		}, "too many entries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := validAuth()
			c.mod(&r)
			wantBadRequest(t, s.validateAuth(&r), c.mention)
		})
	}
	// Type 2 without a finger but with a password: decided by the
	// application's fingerprint bypass (Authenticate), not here.
	r := validAuth()
	r.AuthType = AuthFingerprint
	if err := s.validateAuth(&r); err != nil || r.probeErr == nil {
		t.Fatalf("type 2 with a password and no finger: %v, deferred %v", err, r.probeErr)
	}
	r = validAuth()
	r.ExtendLegacy, r.Extend = "a=1|b=2", map[string]string{"b": "3"}
	if err := s.validateAuth(&r); err != nil {
		t.Fatal(err)
	}
	if r.Extend["a"] != "1" || r.Extend["b"] != "3" {
		t.Fatalf("merge: structured extend info must win: %v", r.Extend)
	}
	r = validAuth()
	r.AppUserID = "'; DROP TABLE users; --"
	if err := s.validateAuth(&r); err != nil {
		t.Fatalf("SQL-looking input is just text: %v", err)
	}
}

func FuzzValidateAuth(f *testing.F) {
	f.Add("alice", "pw", 1, "a=1", []byte{})
	f.Add("\xff", "", 2, "|", []byte{1})
	f.Fuzz(func(t *testing.T, user, pw string, authType int, legacy string, fp []byte) {
		s := &Service{}
		r := AuthRequest{AppUserID: user, Password: pw, AuthType: authType, ExtendLegacy: legacy, Fingerprint: fp}
		err := s.validateAuth(&r)
		if err == nil {
			if len(r.Extend) > maxExtendEntries {
				t.Fatalf("accepted %d extend entries", len(r.Extend))
			}
			for k, v := range r.Extend {
				if !utf8.ValidString(k) || !utf8.ValidString(v) || strings.Contains(v, "|") {
					t.Fatalf("accepted extend entry %q=%q", k, v)
				}
			}
			return
		}
		var ae *apierr.Error
		if !errors.As(err, &ae) || apierr.CodeOf(err) != apierr.InvalidArgument || apierr.LegacyCode(err) != -5 {
			t.Fatalf("want -5 bad request, got %v", err)
		}
	})
}

func TestPolicyCheckPassword(t *testing.T) {
	p := DefaultPolicy()
	good := []string{"Corr3ct-Horse", "Zx9!kd8w", "密码Abc12345"}
	for _, pw := range good {
		if err := p.CheckPassword(pw, "alice"); err != nil {
			t.Errorf("%q rejected: %v", pw, err)
		}
	}
	bad := []struct{ pw, mention string }{
		{"Ab1!", "at least 8"},
		{"alllowercase", "mix at least 3"},
		{"ALLUPPER123", "mix at least 3"},
		{"xAlice-123x", "login name"},
		{"Passw0rd!", "too common"},
		{"Ab1!\x00defg", "control"},
		{"Ab1!\xffdefgh", "UTF-8"},
	}
	for _, c := range bad {
		err := p.CheckPassword(c.pw, "alice")
		var ae *apierr.Error
		if !errors.As(err, &ae) || ae.Reason != "WEAK_PASSWORD" || !strings.Contains(ae.Message, c.mention) {
			t.Errorf("%q: want WEAK_PASSWORD mentioning %q, got %v", c.pw, c.mention, err)
		}
	}
}

func TestPolicyExpired(t *testing.T) {
	p := DefaultPolicy()
	now := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	u := &User{PasswordChangedAt: now.Add(-91 * 24 * time.Hour)}
	if !p.Expired(u, now) {
		t.Fatal("91-day-old password must be expired")
	}
	u.NeverExpires = true
	if p.Expired(u, now) {
		t.Fatal("never-expires flag must win")
	}
	u = &User{PasswordChangedAt: now.Add(-89 * 24 * time.Hour)}
	if p.Expired(u, now) {
		t.Fatal("89-day-old password is not expired")
	}
	p.MaxAge = 0
	if p.Expired(&User{PasswordChangedAt: now.Add(-1000 * 24 * time.Hour)}, now) {
		t.Fatal("MaxAge 0 means no expiry")
	}
}

func TestValidResidentID(t *testing.T) {
	if !validResidentID("11010519491231002X") || !validResidentID("11010519491231002x") {
		t.Fatal("valid ID with X check digit rejected")
	}
	for _, id := range []string{"110105194912310021", "1101051949123100", "11010519491231002A", ""} {
		if validResidentID(id) {
			t.Fatalf("%q accepted", id)
		}
	}
}

// A bad request the domain finds names its field (ErrorInfo metadata
// field), as the proto rules' refusals do: clients show it at the input.
func TestDomainBadRequestsNameTheField(t *testing.T) {
	s := &Service{}
	for _, c := range []struct {
		mod   func(*AuthRequest)
		field string
	}{
		{func(r *AuthRequest) { r.Password = "" }, "password"},
		{func(r *AuthRequest) { r.AuthType = 9 }, "auth_type"},
		{func(r *AuthRequest) { r.AuthType, r.Password = AuthFingerprint, "" }, "fingerprint_feature"},
		{func(r *AuthRequest) { r.AuthType = AuthPasswordFingerprint }, "fingerprint_feature"},
		{func(r *AuthRequest) { r.AuthType, r.Password, r.Fingerprint = AuthPasswordFingerprint, "", []byte{1} }, "password"},
		{func(r *AuthRequest) { r.ExtendLegacy = "broken" }, "extend_info_legacy"},
	} {
		r := validAuth()
		c.mod(&r)
		err := s.validateAuth(&r)
		if ae, ok := apierr.As(err); !ok || ae.Meta[apierr.MetaField] != c.field {
			t.Errorf("%+v: %v, want the field %s", r, err, c.field)
		}
	}
	for _, p := range []string{"12a", "-", "+", "---", "1391234567890123", "139--12345678", "13912345678-", "+-13912345678", "1234",
		"139  1234 5678", "139 -1234-5678", "(0571 87654321", "0571) 87654321", "(0571)(0)87654321", "()13912345678", "0571(8765)4321",
		"+86 138 0013 8000 ", " 13912345678", "+", "139\t1234\t5678"} {
		if ae, ok := apierr.As(checkPhone(p)); !ok || ae.Meta[apierr.MetaField] != "phone" {
			t.Errorf("phone %q: %v, want refused", p, checkPhone(p))
		}
	}
	for _, p := range []string{"", "13912345678", "+8613912345678", "139-1234-5678", "010-12345678", "+86-10-12345678", "88001",
		"+86 138 0013 8000", "(0571) 8765-4321", "(0571)87654321", "+86 (10) 1234 5678", "+(86) 10-1234-5678", "010.1234.5678"} {
		if err := checkPhone(p); err != nil {
			t.Errorf("phone %q: %v", p, err)
		}
	}
	for field, err := range map[string]error{
		"email":     checkEmail("not an address"),
		"phone":     checkPhone("12a"),
		"page_size": func() error { _, err := pageOf(501, ""); return err }(),
	} {
		if ae, ok := apierr.As(err); !ok || ae.Meta[apierr.MetaField] != field {
			t.Errorf("%s: %v, want the field named", field, err)
		}
	}
}
