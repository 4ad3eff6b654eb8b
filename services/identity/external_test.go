package identity_test

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	authnv1 "github.com/uias/uias/proto/gen/uias/authn/v1"
	"github.com/uias/uias/services/identity"
	"github.com/uias/uias/services/identity/extauth"
	"github.com/uias/uias/services/identity/extauth/extauthtest"
)

const (
	extAnnPass = "Harbour-Pass-91"
	extCode    = "face:ann-7731"
)

// extWorld is a service with two external authenticators reached over
// real gRPC on loopback: "face" (level 1, open to org "harbour"'s
// subtree, plain text) and "token" (level 2, everyone, TLS with a client
// certificate). ann (harbour, account a001) and bob (org "other", b001)
// are linked to application OA.
type extWorld struct {
	*evEnv
	face, token *extauthtest.Server
	app         *identity.App
	ann, bob    *identity.User
	logs        *observer.ObservedLogs
	outcomes    []string
	// ip is the person's address the application reports (client_ip).
	ip string
}

func newExtWorld(t *testing.T, faceTimeout time.Duration) *extWorld {
	t.Helper()
	w := &extWorld{face: extauthtest.Start(t, extauthtest.Options{}),
		token: extauthtest.Start(t, extauthtest.Options{TLS: true, ClientCert: true})}
	face, err := extauth.Open(extauth.Config{Name: "face", Address: w.face.Addr, Plaintext: true, Level: 1,
		Orgs: []string{"harbour"}, Timeout: faceTimeout})
	if err != nil {
		t.Fatal(err)
	}
	token, err := extauth.Open(extauth.Config{Name: "token", Address: w.token.Addr, CAFile: w.token.CAFile,
		CertFile: w.token.CertFile, KeyFile: w.token.KeyFile, Level: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = face.Close(); _ = token.Close() })
	core, logs := observer.New(zapcore.DebugLevel)
	w.logs = logs
	observe := func(outcome string) { w.outcomes = append(w.outcomes, outcome) }
	w.evEnv = newEvEnvWith(t, "", func(d *identity.Deps) {
		d.Logger = zap.New(core)
		d.Config.Policy = identity.DefaultPolicy()
		d.Config.Policy.MaxFailures, d.Config.Policy.SourceFailures = 3, 40
		d.ExternalAuthenticators = []identity.ExternalSource{
			{Name: "face", Label: "Face", Level: 1, Orgs: []string{"harbour"}, Auth: face, Observe: observe},
			{Name: "token", Label: "Token", Level: 2, Auth: token, Observe: observe},
		}
	})
	ctx := context.Background()
	if _, _, err := w.svc.Bootstrap(ctx, evAdminPass); err != nil {
		t.Fatal(err)
	}
	orgs, _, err := w.svc.ListOrgs(ctx, identity.OrgFilter{}, 0, "")
	if err != nil || len(orgs) != 1 {
		t.Fatalf("orgs: %v %v", orgs, err)
	}
	harbour, err := w.svc.CreateOrg(ctx, "harbour", "Harbour", orgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	pier, err := w.svc.CreateOrg(ctx, "pier", "Pier 3", harbour.ID)
	if err != nil {
		t.Fatal(err)
	}
	other, err := w.svc.CreateOrg(ctx, "other", "Other", orgs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if w.app, _, err = w.svc.CreateApp(ctx, identity.NewApp{Type: "OA", Code: "oa", Name: "OA"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		u              **identity.User
		login, org, ac string
	}{{&w.ann, "ann", pier.ID, "a001"}, {&w.bob, "bob", other.ID, "b001"}} {
		u, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: p.login, DisplayName: p.login, OrgID: p.org, Password: extAnnPass})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.CreateLink(ctx, u.ID, w.app.ID, p.ac); err != nil {
			t.Fatal(err)
		}
		*p.u = u
	}
	w.face.Enrol(w.ann.ID, extCode)
	w.face.Enrol(w.bob.ID, extCode)
	w.token.Enrol(w.ann.ID, "482913")
	return w
}

// auth is Authenticate by OA (at level appLevel) of account with an
// external credential.
func (w *extWorld) auth(appLevel int, account, typ, cred, password string) (*identity.AuthResult, error) {
	app := w.app.CallerApp()
	app.MinAuthLevel = appLevel
	ctx := caller.With(context.Background(), &caller.Caller{App: app, RequestID: "req-ext-1",
		ClientIP: netip.MustParseAddr("198.51.100.7")})
	ip := w.ip
	if ip == "" {
		ip = "198.51.100.7"
	}
	return w.svc.Authenticate(ctx, identity.AuthRequest{AppUserID: account, AuthType: identity.AuthExternal, ExternalType: typ,
		ExternalCredential: []byte(cred), Password: password, Extend: map[string]string{identity.ClientIPExtend: ip}})
}

func (w *extWorld) failed(t *testing.T, u *identity.User) int {
	t.Helper()
	got, err := w.svc.GetUser(context.Background(), u.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got.FailedCount
}

func (w *extWorld) lastRecord(t *testing.T, m int64) map[string]string {
	t.Helper()
	recs := auditRecords(t, w.outbox(t, m), "authenticate")
	if len(recs) == 0 {
		t.Fatal("no authenticate record")
	}
	r := recs[len(recs)-1]
	d := map[string]string{"result": r.Result, "reason": r.Reason}
	for k, v := range r.Detail {
		d[k] = v
	}
	return d
}

// TestExternalAuthenticatorVerdicts: an accepted credential signs the
// person in (the authenticator got the UIAS user id, login, type, the
// client address and the request id); a rejected one is a counted failed
// login and enough of them lock the account, which then refuses the right
// one without asking the authenticator.
func TestExternalAuthenticatorVerdicts(t *testing.T) {
	w := newExtWorld(t, 0)
	m := w.mark(t)
	res, err := w.auth(0, "a001", "face", extCode, "")
	if err != nil || res.Reason != identity.ReasonOK || res.User == nil || res.User.ID != w.ann.ID {
		t.Fatalf("accepted: %+v %v", res, err)
	}
	calls := w.face.Calls()
	if len(calls) != 1 || calls[0].UserID != w.ann.ID || calls[0].Login != "ann" || calls[0].Type != "face" ||
		calls[0].Credential != extCode || calls[0].ClientIP != "198.51.100.7" || calls[0].RequestID != "req-ext-1" {
		t.Fatalf("what the authenticator got: %+v", calls)
	}
	if d := w.lastRecord(t, m); d["result"] != "success" || d["authenticator"] != "face" || d["method"] != "external:face" ||
		d["external_reason"] != "MATCH" || d["auth_type"] != "5" {
		t.Fatalf("audit of the accepted credential: %v", d)
	}
	for i := 1; i <= 3; i++ {
		// three addresses: one source alone never locks an account
		w.ip = "198.51.100." + strconv.Itoa(10+i)
		m = w.mark(t)
		res, err = w.auth(0, "a001", "face", "face:someone-else", "")
		want := identity.ReasonBadCredentials
		if i == 3 {
			want = identity.ReasonAccountLocked
		}
		if err != nil || res.Reason != want || res.User != nil {
			t.Fatalf("rejected #%d: %+v %v", i, res, err)
		}
		if d := w.lastRecord(t, m); d["reason"] != "BAD_CREDENTIALS" || d["external_reason"] != "NO_MATCH" || d["authenticator"] != "face" {
			t.Fatalf("audit of rejected #%d: %v", i, d)
		}
	}
	before := len(w.face.Calls())
	if res, err = w.auth(0, "a001", "face", extCode, ""); err != nil || res.Reason != identity.ReasonAccountLocked {
		t.Fatalf("locked account, right credential: %+v %v", res, err)
	}
	if len(w.face.Calls()) != before {
		t.Fatal("the authenticator was asked about a locked account")
	}
	if strings.Join(w.outcomes, ",") != "accepted,rejected,rejected,rejected" {
		t.Fatalf("outcomes observed: %v", w.outcomes)
	}
	// Nothing the person presented reached the log.
	for _, e := range w.logs.All() {
		if strings.Contains(e.Message, "face:") || strings.Contains(strings.Join(fieldValues(e), " "), "face:") {
			t.Fatalf("credential in the log: %v", e)
		}
	}
}

func fieldValues(e observer.LoggedEntry) []string {
	var out []string
	for k, v := range e.ContextMap() {
		out = append(out, k, strings.TrimSpace(strings.ReplaceAll(strings.ReplaceAll(extLogString(v), "\n", " "), "\t", " ")))
	}
	return out
}

func extLogString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}

// TestExternalAuthenticatorNoVerdict: an authenticator that is down, too
// slow, says it cannot decide, or answers about another person gives no
// verdict: UNAVAILABLE EXTERNAL_AUTHENTICATOR_UNAVAILABLE (legacy -6),
// nothing counted, recorded result "error" with the fault, logged without
// the credential.
func TestExternalAuthenticatorNoVerdict(t *testing.T) {
	w := newExtWorld(t, 300*time.Millisecond)
	cases := []struct {
		name, fault string
		answer      func(*authnv1.VerifyRequest) (*authnv1.VerifyResponse, error)
	}{
		{"cannot decide", "unavailable", func(r *authnv1.VerifyRequest) (*authnv1.VerifyResponse, error) {
			return &authnv1.VerifyResponse{Verdict: authnv1.Verdict_VERDICT_UNAVAILABLE, UserId: r.GetUserId(), Reason: "BACKEND_DOWN"}, nil
		}},
		{"another person", "user_id_mismatch", func(*authnv1.VerifyRequest) (*authnv1.VerifyResponse, error) {
			return &authnv1.VerifyResponse{Verdict: authnv1.Verdict_VERDICT_ACCEPTED, UserId: "someone-else"}, nil
		}},
		{"no verdict", "no_verdict", func(r *authnv1.VerifyRequest) (*authnv1.VerifyResponse, error) {
			return &authnv1.VerifyResponse{UserId: r.GetUserId()}, nil
		}},
		{"too slow", "no_answer", func(r *authnv1.VerifyRequest) (*authnv1.VerifyResponse, error) {
			time.Sleep(2 * time.Second)
			return &authnv1.VerifyResponse{Verdict: authnv1.Verdict_VERDICT_ACCEPTED, UserId: r.GetUserId()}, nil
		}},
		{"down", "no_answer", nil},
	}
	for _, c := range cases {
		if c.answer != nil {
			w.face.Answer(c.answer)
		} else {
			w.face.Stop()
		}
		m := w.mark(t)
		res, err := w.auth(0, "a001", "face", extCode, "")
		ae := wantReason(t, c.name, err, apierr.Unavailable, identity.ReasonExternalUnavailable)
		if res != nil || apierr.LegacyCode(err) != -6 || strings.Contains(ae.Error(), extCode) {
			t.Fatalf("%s: %+v %v", c.name, res, ae)
		}
		if d := w.lastRecord(t, m); d["result"] != "error" || d["reason"] != identity.ReasonExternalUnavailable ||
			d["external_fault"] != c.fault || d["authenticator"] != "face" {
			t.Fatalf("%s: audit %v", c.name, d)
		}
		if n := w.failed(t, w.ann); n != 0 {
			t.Fatalf("%s: counted %d failures", c.name, n)
		}
	}
	for _, e := range w.logs.All() {
		if strings.Contains(strings.Join(fieldValues(e), " "), extCode) {
			t.Fatalf("credential in the log: %v", e)
		}
	}
}

// TestExternalAuthenticatorRequests: an unknown type, a missing
// credential, external fields with another auth type and a second-factor
// authenticator without the password are INVALID_ARGUMENT; an
// authenticator not open to the person's org answers EXTERNAL_NOT_ALLOWED
// (-3) and a password-only person PASSWORD_ONLY, without asking it.
func TestExternalAuthenticatorRequests(t *testing.T) {
	w := newExtWorld(t, 0)
	for _, c := range []struct {
		name  string
		req   identity.AuthRequest
		field string
	}{
		{"unknown type", identity.AuthRequest{AuthType: identity.AuthExternal, ExternalType: "iris", ExternalCredential: []byte("x")}, "external_type"},
		{"no type", identity.AuthRequest{AuthType: identity.AuthExternal, ExternalCredential: []byte("x")}, "external_type"},
		{"no credential", identity.AuthRequest{AuthType: identity.AuthExternal, ExternalType: "face"}, "external_credential"},
		{"with a password type", identity.AuthRequest{AuthType: identity.AuthPassword, Password: extAnnPass, ExternalType: "face"}, "external_type"},
	} {
		c.req.AppUserID = "a001"
		ctx := caller.With(context.Background(), &caller.Caller{App: w.app.CallerApp(), RequestID: "r"})
		_, err := w.svc.Authenticate(ctx, c.req)
		ae := wantReason(t, c.name, err, apierr.InvalidArgument, apierr.ReasonBadRequest)
		if ae.Meta[apierr.MetaField] != c.field {
			t.Fatalf("%s: field %q, want %q (%v)", c.name, ae.Meta[apierr.MetaField], c.field, ae)
		}
	}
	m := w.mark(t)
	res, err := w.auth(0, "b001", "face", extCode, "")
	if err != nil || res.Reason != identity.ReasonExternalNotAllowed || res.Reason.LegacyCode() != -3 || res.Reason.String() != "EXTERNAL_NOT_ALLOWED" {
		t.Fatalf("org not listed: %+v %v", res, err)
	}
	if d := w.lastRecord(t, m); d["reason"] != "EXTERNAL_NOT_ALLOWED" || d["authenticator"] != "face" {
		t.Fatalf("audit: %v", d)
	}
	admin, _ := adminCtx(t, w.svc, "10.0.0.9", "r-admin")
	if _, err := w.svc.UpdateUser(admin, w.ann.ID, identity.UserUpdate{Mask: []string{"password_only"}, PasswordOnly: true}); err != nil {
		t.Fatal(err)
	}
	if res, err = w.auth(0, "a001", "face", extCode, ""); err != nil || res.Reason != identity.ReasonPasswordOnly {
		t.Fatalf("password-only person: %+v %v", res, err)
	}
	for _, c := range w.face.Calls() {
		if c.UserID == w.bob.ID || c.UserID == w.ann.ID {
			t.Fatalf("the authenticator was asked: %+v", c)
		}
	}
}

// TestExternalAuthenticatorLevels: an application of level 2 refuses the
// level-1 authenticator alone (before any account is looked at or the
// authenticator asked) and takes it with the password (two factors), and
// the level-2 token authenticator (TLS, client certificate) alone; a
// person of level 2 gets AUTH_LEVEL_TOO_LOW for the level-1 one, whatever
// its verdict.
func TestExternalAuthenticatorLevels(t *testing.T) {
	w := newExtWorld(t, 0)
	m := w.mark(t)
	res, err := w.auth(identity.AuthLevelTwoFactor, "a001", "face", extCode, "")
	if err != nil || res.Reason != identity.ReasonAuthLevelTooLow || len(w.face.Calls()) != 0 {
		t.Fatalf("level-1 authenticator at a level-2 application: %+v %v (%d calls)", res, err, len(w.face.Calls()))
	}
	if d := w.lastRecord(t, m); d["min_auth_level_of"] != "app" || d["auth_level"] != "1" {
		t.Fatalf("audit: %v", d)
	}
	m = w.mark(t)
	if res, err = w.auth(identity.AuthLevelTwoFactor, "a001", "face", extCode, extAnnPass); err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("face and password: %+v %v", res, err)
	}
	recs := auditRecords(t, w.outbox(t, m), "authenticate")
	if len(recs) != 2 || recs[0].Result != "pending" || recs[0].Reason != "EXTERNAL_REQUIRED" || recs[1].Result != "success" ||
		recs[1].Detail["method"] != "external:face+password" {
		t.Fatalf("face and password records: %+v", recs)
	}
	// a wrong password: the authenticator is not asked
	before := len(w.face.Calls())
	if res, err = w.auth(identity.AuthLevelTwoFactor, "a001", "face", extCode, "Wrong-Pass-9"); err != nil || res.Reason != identity.ReasonBadCredentials {
		t.Fatalf("face and a wrong password: %+v %v", res, err)
	}
	if len(w.face.Calls()) != before {
		t.Fatal("the authenticator was asked after a wrong password")
	}
	if res, err = w.auth(identity.AuthLevelTwoFactor, "a001", "token", "482913", ""); err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("token (level 2): %+v %v", res, err)
	}
	if c := w.token.Calls(); len(c) != 1 || !c[0].ClientCert || c[0].Type != "token" {
		t.Fatalf("token calls: %+v", c)
	}
	admin, _ := adminCtx(t, w.svc, "10.0.0.9", "r-admin")
	if _, err := w.svc.UpdateUser(admin, w.ann.ID, identity.UserUpdate{Mask: []string{"min_auth_level"}, MinAuthLevel: 2}); err != nil {
		t.Fatal(err)
	}
	for _, cred := range []string{extCode, "face:wrong"} {
		if res, err = w.auth(0, "a001", "face", cred, ""); err != nil || res.Reason != identity.ReasonAuthLevelTooLow {
			t.Fatalf("level-2 person, face %q: %+v %v", cred, res, err)
		}
	}
	if res, err = w.auth(0, "a001", "token", "482913", ""); err != nil || res.Reason != identity.ReasonOK {
		t.Fatalf("level-2 person, token: %+v %v", res, err)
	}
}
