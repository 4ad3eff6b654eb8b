package caller_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/crypto"
)

func TestRateLimiter(t *testing.T) {
	r := caller.NewRateLimiter()
	now := time.Unix(1000, 0)
	for i := 0; i < 3; i++ {
		if !r.Allow("a", 1, 3, now) {
			t.Fatalf("call %d within burst refused", i)
		}
	}
	if r.Allow("a", 1, 3, now) {
		t.Fatal("call beyond burst allowed")
	}
	if !r.Allow("a", 1, 3, now.Add(time.Second)) {
		t.Fatal("token not refilled after 1s")
	}
	if !r.Allow("b", 0, 0, now) {
		t.Fatal("rate 0 means unlimited")
	}
	// Burst < 1 means the rate (at least 1).
	if !r.Allow("c", 0.5, 0, now) || r.Allow("c", 0.5, 0, now) {
		t.Fatal("burst 0 at rate 0.5 must allow exactly one call at once")
	}
	// A changed limit starts again with a full bucket.
	first, second, third := r.Allow("a", 2, 2, now), r.Allow("a", 2, 2, now), r.Allow("a", 2, 2, now)
	if !first || !second || third {
		t.Fatal("a changed limit did not start with a full bucket of 2")
	}
}

func TestIPAllowed(t *testing.T) {
	cases := []struct {
		list []string
		ip   string
		want bool
	}{
		{nil, "203.0.113.9", true},
		{nil, "", true},
		{[]string{"10.0.0.0/8"}, "10.1.2.3", true},
		{[]string{"10.0.0.0/8"}, "11.1.2.3", false},
		{[]string{"127.0.0.1"}, "127.0.0.1", true},
		{[]string{"::1/128"}, "::1", true},
		{[]string{"10.0.0.0/8"}, "::ffff:10.0.0.1", true},
		{[]string{"::ffff:10.0.0.1"}, "10.0.0.1", true},
		{[]string{"10.0.0.0/8"}, "", false},
		{[]string{"not an address", "192.0.2.7"}, "192.0.2.7", true},
		{[]string{"not an address"}, "192.0.2.7", false},
	}
	for _, c := range cases {
		ip, _ := netip.ParseAddr(c.ip)
		if got := caller.IPAllowed(c.list, ip); got != c.want {
			t.Errorf("%v %q: got %v", c.list, c.ip, got)
		}
	}
}

func TestCallerContext(t *testing.T) {
	ctx := context.Background()
	if c := caller.From(ctx); c == nil || c.Actor() != "anonymous" || c.AppID() != "" {
		t.Fatalf("empty context: caller %+v", c)
	}
	app := &caller.App{ID: "app-1"}
	ctx = caller.With(ctx, &caller.Caller{App: app, RequestID: "r1"})
	if c := caller.From(ctx); c.Actor() != "app:app-1" || c.AppID() != "app-1" || c.RequestID != "r1" {
		t.Fatalf("application caller: %+v actor %q", c, c.Actor())
	}
	// A person acting through an application is the actor.
	ctx = caller.With(ctx, &caller.Caller{App: app, Principal: "u-9"})
	if c := caller.From(ctx); c.Actor() != "user:u-9" || c.AppID() != "app-1" {
		t.Fatalf("person caller: actor %q app %q", c.Actor(), c.AppID())
	}
	if c := caller.From(caller.With(context.Background(), nil)); c == nil {
		t.Fatal("a nil caller in the context came back nil")
	}
}

// apps is an in-memory AppSource that counts lookups.
type apps struct {
	mu      sync.Mutex
	m       map[string]*caller.App
	err     error
	lookups int
}

func (s *apps) CallerApp(_ context.Context, id string) (*caller.App, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookups++
	if s.err != nil {
		return nil, s.err
	}
	a, ok := s.m[id]
	if !ok {
		return nil, fmt.Errorf("app %q: %w", id, caller.ErrUnknownApp)
	}
	cp := *a
	return &cp, nil
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

type refusal struct {
	appID, reason string
}

type rig struct {
	src     *apps
	clk     *clock
	auth    *caller.AppAuthenticator
	refused []refusal
}

const secret = "s3cret-current-0123456789"

func newRig(t *testing.T, list ...*caller.App) *rig {
	t.Helper()
	r := &rig{src: &apps{m: map[string]*caller.App{}}, clk: &clock{t: time.Unix(1_800_000_000, 0)}}
	for _, a := range list {
		r.src.m[a.ID] = a
	}
	auth, err := caller.NewAppAuthenticator(caller.AuthOptions{
		Apps: r.src, Now: r.clk.now, CacheTTL: 5 * time.Second,
		Denied: func(_ context.Context, appID string, err *apierr.Error, start time.Time) {
			if !start.Equal(r.clk.t) {
				t.Errorf("refusal start = %v, want the call's start %v", start, r.clk.t)
			}
			r.refused = append(r.refused, refusal{appID, err.Reason})
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	r.auth = auth
	return r
}

func activeApp(id string) *caller.App {
	return &caller.App{ID: id, Type: "web", Code: id, Active: true, SecretHash: crypto.HashToken(secret)}
}

// wantRefused checks the refusal's reason, its gRPC code and legacy code as
// the caller sees them, and that it was reported for audit.
func (r *rig) wantRefused(t *testing.T, err error, reason string, code codes.Code, legacy string) {
	t.Helper()
	ae, ok := apierr.As(err)
	if !ok || ae.Reason != reason {
		t.Fatalf("error = %v, want reason %s", err, reason)
	}
	if got := strconv.Itoa(apierr.LegacyCode(err)); legacy != "" && got != legacy {
		t.Fatalf("%s: legacy code %q, want %q", reason, got, legacy)
	}
	st := status.Convert(apierr.ToStatus(err))
	if st.Code() != code || st.Message() == "" {
		t.Fatalf("%s: status %v %q, want %v with a message", reason, st.Code(), st.Message(), code)
	}
	if len(r.refused) == 0 || r.refused[len(r.refused)-1].reason != reason {
		t.Fatalf("%s: refusal not reported for audit (reported %v)", reason, r.refused)
	}
}

func TestAuthenticateApp(t *testing.T) {
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.7")

	t.Run("valid credentials", func(t *testing.T) {
		r := newRig(t, activeApp("a1"))
		app, err := r.auth.Authenticate(ctx, "a1", secret, ip)
		if err != nil || app.ID != "a1" || app.Code != "a1" {
			t.Fatalf("got %+v, %v", app, err)
		}
		if len(r.refused) != 0 {
			t.Fatalf("an admitted call was reported refused: %v", r.refused)
		}
	})

	t.Run("unknown app and wrong secret are the same refusal", func(t *testing.T) {
		r := newRig(t, activeApp("a1"))
		_, err := r.auth.Authenticate(ctx, "nope", secret, ip)
		r.wantRefused(t, err, "BAD_APP_CREDENTIALS", codes.Unauthenticated, "")
		_, err2 := r.auth.Authenticate(ctx, "a1", "wrong-secret", ip)
		r.wantRefused(t, err2, "BAD_APP_CREDENTIALS", codes.Unauthenticated, "")
		if err.Error() != err2.Error() {
			t.Fatalf("unknown App_ID (%v) and wrong secret (%v) are told apart", err, err2)
		}
		if got := r.refused[0]; got.appID != "nope" {
			t.Fatalf("refusal reported for %q, want the claimed App_ID", got.appID)
		}
	})

	t.Run("empty or oversized credentials are refused without a lookup", func(t *testing.T) {
		r := newRig(t, activeApp("a1"))
		for _, c := range []struct{ id, secret string }{
			{"", secret}, {"a1", ""},
			{string(make([]byte, caller.MaxAppIDLen+1)), secret},
			{"a1", string(make([]byte, caller.MaxSecretLen+1))},
		} {
			_, err := r.auth.Authenticate(ctx, c.id, c.secret, ip)
			r.wantRefused(t, err, "BAD_APP_CREDENTIALS", codes.Unauthenticated, "")
		}
		if r.src.lookups != 0 {
			t.Fatalf("%d lookups for credentials refused on their face", r.src.lookups)
		}
	})

	t.Run("previous secret during the overlap only", func(t *testing.T) {
		a := activeApp("a1")
		a.SecretHash = crypto.HashToken("the-new-secret-0123456789")
		a.PrevSecretHash = crypto.HashToken(secret)
		r := newRig(t, a)
		a.PrevSecretExpires = r.clk.t.Add(time.Hour)
		if _, err := r.auth.Authenticate(ctx, "a1", secret, ip); err != nil {
			t.Fatalf("previous secret refused during the overlap: %v", err)
		}
		if _, err := r.auth.Authenticate(ctx, "a1", "the-new-secret-0123456789", ip); err != nil {
			t.Fatalf("new secret refused: %v", err)
		}
		// After the overlap its holder is told it was replaced, and when
		// (someone without it still learns nothing).
		r.clk.t = r.clk.t.Add(time.Hour)
		_, err := r.auth.Authenticate(ctx, "a1", secret, ip)
		r.wantRefused(t, err, caller.ReasonAppSecretReplaced, codes.Unauthenticated, "")
		if msg := status.Convert(apierr.ToStatus(err)).Message(); !strings.Contains(msg, "replaced by a newer one") ||
			!strings.Contains(msg, a.PrevSecretExpires.UTC().Format(time.RFC3339)) {
			t.Fatalf("message %q", msg)
		}
		_, err = r.auth.Authenticate(ctx, "a1", "some-other-secret", ip)
		r.wantRefused(t, err, "BAD_APP_CREDENTIALS", codes.Unauthenticated, "")
	})

	t.Run("expired secret: refused with the reason, after the secret was verified", func(t *testing.T) {
		a := activeApp("a1")
		r := newRig(t, a)
		a.SecretExpires = r.clk.t.Add(time.Hour)
		if _, err := r.auth.Authenticate(ctx, "a1", secret, ip); err != nil {
			t.Fatalf("secret refused before its expiry: %v", err)
		}
		r.clk.t = a.SecretExpires // the expiry itself is past it
		_, err := r.auth.Authenticate(ctx, "a1", secret, ip)
		r.wantRefused(t, err, caller.ReasonAppSecretExpired, codes.Unauthenticated, "")
		msg := status.Convert(apierr.ToStatus(err)).Message()
		for _, want := range []string{"expired at " + a.SecretExpires.UTC().Format(time.RFC3339), "uias ctl app rotate-secret a1"} {
			if !strings.Contains(msg, want) {
				t.Fatalf("message %q does not say %q", msg, want)
			}
		}
		// Without the secret nothing is learnt: a wrong one is the
		// usual refusal, alike for an unknown App_ID.
		_, err = r.auth.Authenticate(ctx, "a1", "wrong-secret", ip)
		r.wantRefused(t, err, "BAD_APP_CREDENTIALS", codes.Unauthenticated, "")
		// The expiry is said only to a caller the application's other
		// checks admit: from an address outside its allow-list (someone
		// holding an old secret found in a backup), or for a suspended
		// application, the refusal is that one.
		a.IPAllowList = []string{"198.51.100.0/24"}
		r.auth.Forget("a1")
		_, err = r.auth.Authenticate(ctx, "a1", secret, ip)
		r.wantRefused(t, err, "IP_NOT_ALLOWED", codes.PermissionDenied, "")
		a.IPAllowList = nil
		a.Active = false
		r.auth.Forget("a1")
		_, err = r.auth.Authenticate(ctx, "a1", secret, ip)
		r.wantRefused(t, err, "APP_SUSPENDED", codes.PermissionDenied, "")
	})

	t.Run("previous secret in its overlap works while the new one has expired", func(t *testing.T) {
		a := activeApp("a1")
		a.SecretHash = crypto.HashToken("the-new-secret-0123456789")
		a.PrevSecretHash = crypto.HashToken(secret)
		r := newRig(t, a)
		a.SecretExpires = r.clk.t
		a.PrevSecretExpires = r.clk.t.Add(time.Hour)
		if _, err := r.auth.Authenticate(ctx, "a1", secret, ip); err != nil {
			t.Fatalf("previous secret refused during its overlap: %v", err)
		}
		_, err := r.auth.Authenticate(ctx, "a1", "the-new-secret-0123456789", ip)
		r.wantRefused(t, err, caller.ReasonAppSecretExpired, codes.Unauthenticated, "")
	})

	t.Run("bound to a client certificate", func(t *testing.T) {
		a := activeApp("a1")
		a.ClientCertSHA256 = strings.Repeat("ab", 32)
		r := newRig(t, a)
		with := func(fp string) context.Context { return caller.With(ctx, &caller.Caller{ClientCert: fp}) }
		if _, err := r.auth.Authenticate(with(a.ClientCertSHA256), "a1", secret, ip); err != nil {
			t.Fatalf("its certificate refused: %v", err)
		}
		for _, fp := range []string{"", strings.Repeat("cd", 32), strings.ToUpper(a.ClientCertSHA256)} {
			_, err := r.auth.Authenticate(with(fp), "a1", secret, ip)
			r.wantRefused(t, err, "CLIENT_CERT_REQUIRED", codes.Unauthenticated, "")
		}
		// Checked after the secret: a certificate alone is not a credential.
		_, err := r.auth.Authenticate(with(a.ClientCertSHA256), "a1", "wrong-secret", ip)
		r.wantRefused(t, err, "BAD_APP_CREDENTIALS", codes.Unauthenticated, "")
	})

	t.Run("suspended", func(t *testing.T) {
		a := activeApp("a1")
		a.Active = false
		r := newRig(t, a)
		_, err := r.auth.Authenticate(ctx, "a1", secret, ip)
		r.wantRefused(t, err, "APP_SUSPENDED", codes.PermissionDenied, "")
		// A wrong secret on a suspended app says nothing about the status.
		_, err = r.auth.Authenticate(ctx, "a1", "wrong", ip)
		r.wantRefused(t, err, "BAD_APP_CREDENTIALS", codes.Unauthenticated, "")
	})

	t.Run("ip allow-list", func(t *testing.T) {
		a := activeApp("a1")
		a.IPAllowList = []string{"198.51.100.0/24"}
		r := newRig(t, a)
		_, err := r.auth.Authenticate(ctx, "a1", secret, ip)
		r.wantRefused(t, err, "IP_NOT_ALLOWED", codes.PermissionDenied, "")
		_, err = r.auth.Authenticate(ctx, "a1", secret, netip.Addr{})
		r.wantRefused(t, err, "IP_NOT_ALLOWED", codes.PermissionDenied, "")
		if _, err := r.auth.Authenticate(ctx, "a1", secret, netip.MustParseAddr("198.51.100.20")); err != nil {
			t.Fatalf("listed address refused: %v", err)
		}
	})

	t.Run("rate limit", func(t *testing.T) {
		a := activeApp("a1")
		a.RateLimit, a.RateBurst = 1, 2
		r := newRig(t, a)
		for i := range 2 {
			if _, err := r.auth.Authenticate(ctx, "a1", secret, ip); err != nil {
				t.Fatalf("call %d within the burst refused: %v", i, err)
			}
		}
		_, err := r.auth.Authenticate(ctx, "a1", secret, ip)
		r.wantRefused(t, err, "RATE_LIMITED", codes.ResourceExhausted, "-6")
		r.clk.t = r.clk.t.Add(time.Second)
		if _, err := r.auth.Authenticate(ctx, "a1", secret, ip); err != nil {
			t.Fatalf("refused after the bucket refilled: %v", err)
		}
	})

	t.Run("source failure is returned as is", func(t *testing.T) {
		r := newRig(t, activeApp("a1"))
		down := apierr.New(apierr.Unavailable, "STORAGE_UNAVAILABLE", "storage is unavailable")
		r.src.err = down
		_, err := r.auth.Authenticate(ctx, "a1", secret, ip)
		if !errors.Is(err, down) {
			t.Fatalf("error = %v, want the source's", err)
		}
		if len(r.refused) != 0 {
			t.Fatal("a failed lookup was reported as a refused caller")
		}
	})

	t.Run("lookups are cached until the TTL or Forget", func(t *testing.T) {
		r := newRig(t, activeApp("a1"))
		for range 3 {
			if _, err := r.auth.Authenticate(ctx, "a1", secret, ip); err != nil {
				t.Fatal(err)
			}
		}
		if r.src.lookups != 1 {
			t.Fatalf("%d lookups for 3 calls within the TTL, want 1", r.src.lookups)
		}
		// Suspended at the source: served from the cache until forgotten.
		r.src.m["a1"].Active = false
		if _, err := r.auth.Authenticate(ctx, "a1", secret, ip); err != nil {
			t.Fatal(err)
		}
		r.auth.Forget("a1")
		_, err := r.auth.Authenticate(ctx, "a1", secret, ip)
		r.wantRefused(t, err, "APP_SUSPENDED", codes.PermissionDenied, "")
		r.src.m["a1"].Active = true
		r.clk.t = r.clk.t.Add(5 * time.Second)
		if _, err := r.auth.Authenticate(ctx, "a1", secret, ip); err != nil {
			t.Fatalf("change not seen after the TTL: %v", err)
		}
		if r.src.lookups != 3 {
			t.Fatalf("%d lookups, want 3", r.src.lookups)
		}
	})
}

// TestAuthenticateAddress: a legacy caller without a secret is admitted
// only from a non-empty IP allow-list, active, with its bound certificate
// when it has one, never when it must sign (it cannot), and within its
// rate limit; each refusal is reported for audit (gap2 G2).
func TestAuthenticateAddress(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.7")
	listed := func(id string, mod func(a *caller.App)) *caller.App {
		a := activeApp(id)
		a.IPAllowList = []string{"192.0.2.0/24"}
		a.RateLimit, a.RateBurst = 1, 1
		if mod != nil {
			mod(a)
		}
		return a
	}
	const thumb = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"
	r := newRig(t, listed("ok", nil), listed("open", func(a *caller.App) { a.IPAllowList = nil }),
		listed("off", func(a *caller.App) { a.Active = false }), listed("signs", func(a *caller.App) { a.RequireSignatures = true }),
		listed("bound", func(a *caller.App) { a.ClientCertSHA256 = thumb }),
		listed("authn", func(a *caller.App) { a.GrantedAPIs = []string{caller.APIAuthenticate} }))
	ctx := context.Background()
	if app, err := r.auth.AuthenticateAddress(ctx, "ok", ip); err != nil || app.ID != "ok" {
		t.Fatalf("an application on its list: %+v %v", app, err)
	}
	_, err := r.auth.AuthenticateAddress(ctx, "ok", ip)
	r.wantRefused(t, err, "RATE_LIMITED", codes.ResourceExhausted, "-6")
	for _, tc := range []struct {
		id, reason string
		code       codes.Code
		ip         netip.Addr
	}{
		{"nope", "BAD_APP_CREDENTIALS", codes.Unauthenticated, ip},
		{"", "BAD_APP_CREDENTIALS", codes.Unauthenticated, ip},
		{"open", "IP_NOT_ALLOWED", codes.PermissionDenied, ip},
		{"ok", "IP_NOT_ALLOWED", codes.PermissionDenied, netip.MustParseAddr("198.51.100.1")},
		{"off", "APP_SUSPENDED", codes.PermissionDenied, ip},
		{"signs", "SIGNATURE_REQUIRED", codes.Unauthenticated, ip},
		{"bound", "CLIENT_CERT_REQUIRED", codes.Unauthenticated, ip},
		{"authn", "API_NOT_GRANTED", codes.PermissionDenied, ip},
	} {
		_, err := r.auth.AuthenticateAddress(ctx, tc.id, tc.ip)
		r.wantRefused(t, err, tc.reason, tc.code, "")
	}
	withCert := caller.With(ctx, &caller.Caller{ClientCert: thumb})
	if _, err := r.auth.AuthenticateAddress(withCert, "bound", ip); err != nil {
		t.Fatalf("a bound application with its certificate: %v", err)
	}
}

// TestAuthenticateLegacyAddress: a legacy authenticate caller identified
// by app_type/app_code alone is admitted only for an application that
// opted in (legacy_ip_only), from its non-empty IP allow-list, active,
// neither certificate-bound (even with the certificate), A2 nor requiring
// signatures, granted the interface, within its rate limit; each refusal
// is reported for audit.
func TestAuthenticateLegacyAddress(t *testing.T) {
	ip := netip.MustParseAddr("192.0.2.7")
	listed := func(id string, mod func(a *caller.App)) *caller.App {
		a := activeApp(id)
		a.IPAllowList, a.LegacyIPOnly = []string{"192.0.2.0/24"}, true
		a.RateLimit, a.RateBurst = 1, 1
		if mod != nil {
			mod(a)
		}
		return a
	}
	const thumb = "ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12ab12"
	r := newRig(t, listed("ok", nil), listed("open", func(a *caller.App) { a.IPAllowList = nil }),
		listed("flagless", func(a *caller.App) { a.LegacyIPOnly = false }),
		listed("off", func(a *caller.App) { a.Active = false }), listed("signs", func(a *caller.App) { a.RequireSignatures = true }),
		listed("a2", func(a *caller.App) { a.SecurityLevel = 2 }),
		listed("bound", func(a *caller.App) { a.ClientCertSHA256 = thumb }),
		listed("gone", func(a *caller.App) { a.Terminated = time.Unix(1, 0) }),
		listed("authz", func(a *caller.App) { a.GrantedAPIs = []string{caller.APIAuthzCheck} }))
	ctx := context.Background()
	if app, err := r.auth.AuthenticateLegacyAddress(ctx, "ok", ip, caller.APIAuthenticate); err != nil || app.ID != "ok" {
		t.Fatalf("an opted-in application on its list: %+v %v", app, err)
	}
	_, err := r.auth.AuthenticateLegacyAddress(ctx, "ok", ip, caller.APIAuthenticate)
	r.wantRefused(t, err, "RATE_LIMITED", codes.ResourceExhausted, "-6")
	other := netip.MustParseAddr("198.51.100.1")
	for _, tc := range []struct {
		id, reason string
		code       codes.Code
		ip         netip.Addr
	}{
		{"nope", "BAD_APP_CREDENTIALS", codes.Unauthenticated, ip},
		{"", "BAD_APP_CREDENTIALS", codes.Unauthenticated, ip},
		{"flagless", "BAD_APP_CREDENTIALS", codes.Unauthenticated, ip},
		{"gone", "BAD_APP_CREDENTIALS", codes.Unauthenticated, ip},
		{"open", "IP_NOT_ALLOWED", codes.PermissionDenied, ip},
		{"ok", "IP_NOT_ALLOWED", codes.PermissionDenied, other},
		// the address first: from elsewhere a suspended application is
		// refused for the address
		{"off", "IP_NOT_ALLOWED", codes.PermissionDenied, other},
		{"off", "APP_SUSPENDED", codes.PermissionDenied, ip},
		{"signs", "SIGNATURE_REQUIRED", codes.Unauthenticated, ip},
		{"a2", "SIGNATURE_REQUIRED", codes.Unauthenticated, ip},
		{"bound", "CLIENT_CERT_REQUIRED", codes.Unauthenticated, ip},
		{"authz", "API_NOT_GRANTED", codes.PermissionDenied, ip},
	} {
		_, err := r.auth.AuthenticateLegacyAddress(ctx, tc.id, tc.ip, caller.APIAuthenticate)
		r.wantRefused(t, err, tc.reason, tc.code, "")
	}
	withCert := caller.With(ctx, &caller.Caller{ClientCert: thumb})
	_, err = r.auth.AuthenticateLegacyAddress(withCert, "bound", ip, caller.APIAuthenticate)
	r.wantRefused(t, err, "CLIENT_CERT_REQUIRED", codes.Unauthenticated, "")
}

func TestNewAppAuthenticatorNeedsASource(t *testing.T) {
	if _, err := caller.NewAppAuthenticator(caller.AuthOptions{}); err == nil {
		t.Fatal("no error without an AppSource")
	}
	// A function is a source; no Denied hook is fine.
	auth, err := caller.NewAppAuthenticator(caller.AuthOptions{Apps: caller.AppSourceFunc(
		func(context.Context, string) (*caller.App, error) { return nil, caller.ErrUnknownApp })})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.Authenticate(context.Background(), "a", "b", netip.Addr{}); !errors.Is(err, caller.ErrBadAppCredentials) {
		t.Fatalf("error = %v, want ErrBadAppCredentials", err)
	}
}

// With RequireAllowList (identity.policy.require_ip_allow_list), an
// application without an IP allow-list is refused IP_ALLOW_LIST_REQUIRED
// once its secret and address were checked (a wrong secret is still the
// usual refusal: nothing is learnt without it); with one it is served;
// without the option an empty list admits any address.
func TestRequireAllowList(t *testing.T) {
	ctx := context.Background()
	ip := netip.MustParseAddr("192.0.2.10")
	open, listed := activeApp("open"), activeApp("listed")
	listed.IPAllowList = []string{"192.0.2.0/24"}
	r := newRig(t, open, listed)
	strict, err := caller.NewAppAuthenticator(caller.AuthOptions{Apps: r.src, Now: r.clk.now, RequireAllowList: true,
		Denied: func(_ context.Context, appID string, err *apierr.Error, _ time.Time) {
			r.refused = append(r.refused, refusal{appID, err.Reason})
		}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = strict.Authenticate(ctx, "open", secret, ip)
	r.wantRefused(t, err, caller.ReasonAllowListRequired, codes.PermissionDenied, "")
	if msg := status.Convert(apierr.ToStatus(err)).Message(); !strings.Contains(msg, "uias ctl app update APP_ID --allow CIDR") {
		t.Fatalf("message %q", msg)
	}
	_, err = strict.Authenticate(ctx, "open", "wrong-secret", ip)
	r.wantRefused(t, err, "BAD_APP_CREDENTIALS", codes.Unauthenticated, "")
	if _, err := strict.Authenticate(ctx, "listed", secret, ip); err != nil {
		t.Fatalf("an application with a list: %v", err)
	}
	if _, err := r.auth.Authenticate(ctx, "open", secret, ip); err != nil {
		t.Fatalf("without the option: %v", err)
	}
}
