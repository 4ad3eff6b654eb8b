package identity_test

import (
	"context"
	"strconv"
	"testing"

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
