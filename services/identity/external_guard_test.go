package identity_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	gcodes "google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	authnv1 "github.com/uias/uias/proto/gen/uias/authn/v1"
	"github.com/uias/uias/services/identity"
)

// TestExternalVerdictCountedAfterCallerLeft (security review sec31a M1):
// a caller that gives up before the authenticator answers (a browser
// that drops its connection, an application's short deadline) does not
// void the verdict: the authenticator is still asked to the end, a
// rejection is counted, and enough of them lock the account, so a
// rejection slower than an acceptance (a tarpit on failures) cannot be
// escaped by leaving early.
func TestExternalVerdictCountedAfterCallerLeft(t *testing.T) {
	w := newExtWorld(t, 0)
	asked := make(chan struct{})
	release := make(chan struct{})
	w.face.Answer(func(r *authnv1.VerifyRequest) (*authnv1.VerifyResponse, error) {
		if string(r.GetCredential()) == extCode {
			return &authnv1.VerifyResponse{UserId: r.GetUserId(), Verdict: authnv1.Verdict_VERDICT_ACCEPTED}, nil
		}
		asked <- struct{}{}
		<-release // the caller has left by now
		return &authnv1.VerifyResponse{UserId: r.GetUserId(), Verdict: authnv1.Verdict_VERDICT_REJECTED}, nil
	})
	for i := 1; i <= 3; i++ { // MaxFailures 3; three addresses (one alone never locks an account)
		ctx, cancel := context.WithCancel(from("203.0.113." + strconv.Itoa(10+i)))
		type answer struct {
			res *identity.SSOLoginResult
			err error
		}
		done := make(chan answer, 1)
		go func() {
			res, err := w.svc.SSOExternalLogin(ctx, "ann", "face", []byte("face:guess"), "", "")
			done <- answer{res, err}
		}()
		<-asked
		cancel()
		release <- struct{}{}
		a := <-done
		if a.err != nil || a.res == nil {
			t.Fatalf("guess %d: %+v %v (the verdict was dropped with the caller)", i, a.res, a.err)
		}
		want := identity.ReasonBadCredentials
		if i == 3 {
			want = identity.ReasonAccountLocked
		}
		if a.res.Reason != want {
			t.Fatalf("guess %d: %v, want %v", i, a.res.Reason, want)
		}
	}
	res, err := w.svc.SSOExternalLogin(from("203.0.113.5"), "ann", "face", []byte(extCode), "", "")
	if err != nil || res.Reason != identity.ReasonAccountLocked {
		t.Fatalf("right credential after three counted guesses: %+v %v, want ACCOUNT_LOCKED", res, err)
	}
	if u, err := w.svc.GetUser(context.Background(), w.ann.ID); err != nil || u.LockedUntil.IsZero() {
		t.Fatalf("ann not locked: %+v %v", u, err)
	}
}

// TestExternalVendorTextNotLogged (security review sec31a L1): the
// authenticator's gRPC status message (which a vendor may fill with the
// request: the credential, the login) never reaches identity's log; the
// code does.
func TestExternalVendorTextNotLogged(t *testing.T) {
	w := newExtWorld(t, 0)
	w.face.Answer(func(r *authnv1.VerifyRequest) (*authnv1.VerifyResponse, error) {
		return nil, status.Errorf(gcodes.Unavailable, "liveness backend down; credential=%q login=%s", r.GetCredential(), r.GetLogin())
	})
	_, err := w.svc.SSOExternalLogin(from("203.0.113.5"), "ann", "face", []byte("SECRET-CRED-4711"), "", "")
	wantReason(t, "vendor UNAVAILABLE with its own text", err, apierr.Unavailable, identity.ReasonExternalUnavailable)
	logged := false
	for _, e := range w.logs.All() {
		text := e.Message + " " + strings.Join(fieldValues(e), " ")
		if strings.Contains(text, "SECRET-CRED") || strings.Contains(text, "liveness") || strings.Contains(text, "login=ann") {
			t.Fatalf("the vendor's text was logged: %s", text)
		}
		if e.Message == "external authenticator did not answer" {
			logged = true
			if !strings.Contains(text, "unavailable") {
				t.Fatalf("the code is not logged: %s", text)
			}
		}
	}
	if !logged {
		t.Fatal("the failure was not logged")
	}
}

// TestExternalSilentHidesWhoExists (security review sec31a L2): while an
// authenticator gives no verdict, the sign-in page's logins it would not
// be asked about — an unknown login, a person outside its orgs, one set
// to passwords only, a locked account — are answered UNAVAILABLE like a
// person it is asked about, so the page's 503/401 does not tell which
// logins exist and may use it. With a verdict again, they are answered
// as before; a password given still decides first.
func TestExternalSilentHidesWhoExists(t *testing.T) {
	w := newExtWorld(t, 0)
	rejecting := func(r *authnv1.VerifyRequest) (*authnv1.VerifyResponse, error) {
		return &authnv1.VerifyResponse{UserId: r.GetUserId(), Verdict: authnv1.Verdict_VERDICT_REJECTED}, nil
	}
	ctx := context.Background()
	carl, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "carl", DisplayName: "carl", OrgID: w.ann.OrgID, Password: extAnnPass})
	if err != nil {
		t.Fatal(err)
	}
	dora, err := w.svc.CreateUser(ctx, identity.NewUser{LoginName: "dora", DisplayName: "dora", OrgID: w.ann.OrgID, Password: extAnnPass})
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := adminCtx(t, w.svc, "10.0.0.9", "r-admin")
	if _, err := w.svc.UpdateUser(admin, carl.ID, identity.UserUpdate{Mask: []string{"password_only"}, PasswordOnly: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.svc.LockUser(admin, dora.ID, 0); err != nil {
		t.Fatal(err)
	}
	login := func(l, password string) (identity.Reason, error) {
		res, err := w.svc.SSOExternalLogin(from("203.0.113.5"), l, "face", []byte("face:guess"), password, "")
		if err != nil {
			return 0, err
		}
		return res.Reason, nil
	}
	// ann first: her verdict (or its absence) sets what the others get.
	refusals := []struct {
		login string
		want  identity.Reason
	}{{"ann", identity.ReasonBadCredentials}, {"nobody", identity.ReasonBadCredentials}, {"bob", identity.ReasonExternalNotAllowed},
		{"carl", identity.ReasonPasswordOnly}, {"dora", identity.ReasonAccountLocked}}
	check := func(when string, silent bool) {
		t.Helper()
		for _, c := range refusals {
			l, want := c.login, c.want
			r, err := login(l, "")
			if silent {
				wantReason(t, when+" "+l, err, apierr.Unavailable, identity.ReasonExternalUnavailable)
			} else if err != nil || r != want {
				t.Fatalf("%s %s: %v %v, want %v", when, l, r, err, want)
			}
		}
	}
	w.face.Answer(rejecting)
	check("answering", false)
	w.face.Answer(func(r *authnv1.VerifyRequest) (*authnv1.VerifyResponse, error) {
		return &authnv1.VerifyResponse{UserId: r.GetUserId(), Verdict: authnv1.Verdict_VERDICT_UNAVAILABLE}, nil
	})
	_, err = login("ann", "")
	wantReason(t, "no verdict", err, apierr.Unavailable, identity.ReasonExternalUnavailable)
	m := w.mark(t)
	check("no verdict", true)
	recs := auditRecords(t, w.outbox(t, m), "sso.login")
	found := false
	for _, r := range recs {
		if r.Reason == identity.ReasonNoSuchUser.String() {
			found = r.Result == "failure" && r.Detail["answered"] == identity.ReasonExternalUnavailable
		}
	}
	if !found {
		t.Fatalf("the unknown login's record (the true reason, what was answered): %+v", recs)
	}
	// A password decides first: a wrong one is a wrong password for anyone.
	if r, err := login("nobody", "Wrong-Pass-1"); err != nil || r != identity.ReasonBadCredentials {
		t.Fatalf("no verdict, unknown login with a password: %v %v", r, err)
	}
	// A verdict again ends it.
	w.face.Answer(rejecting)
	check("answering again", false)
}
