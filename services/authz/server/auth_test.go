package server

import (
	"context"
	"net/netip"
	"slices"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/grpcx"
	authzv1 "github.com/uias/uias/proto/gen/uias/authz/v1"
)

// Credentials meet in the cache only when every part is the same: the
// application, the secret, the address (an IPv4 address and its IPv6
// mapping are two) and the certificate, with no ambiguity where one part
// ends and the next begins.
func TestCredKeyTellsCredentialsApart(t *testing.T) {
	a := NewCallerAuth(nil)
	v4, v6 := netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("::ffff:10.1.2.3")
	base := a.credKey("oa", "s3cret", v4, "")
	if a.credKey("oa", "s3cret", v4, "") != base {
		t.Fatal("the same credentials give two keys")
	}
	for name, k := range map[string]string{
		"secret":      a.credKey("oa", "s3creT", v4, ""),
		"app":         a.credKey("ob", "s3cret", v4, ""),
		"split":       a.credKey("oas", "3cret", v4, ""),
		"address":     a.credKey("oa", "s3cret", netip.MustParseAddr("10.1.2.4"), ""),
		"mapped":      a.credKey("oa", "s3cret", v6, ""),
		"no address":  a.credKey("oa", "s3cret", netip.Addr{}, ""),
		"certificate": a.credKey("oa", "s3cret", v4, "ab12"),
		"other key":   NewCallerAuth(nil).credKey("oa", "s3cret", v4, ""),
	} {
		if k == base {
			t.Errorf("%s: a different credential gives the same key", name)
		}
	}
}

func BenchmarkCredKey(b *testing.B) {
	a := NewCallerAuth(nil)
	ip := netip.MustParseAddr("10.1.2.3")
	b.ReportAllocs()
	for b.Loop() {
		_ = a.credKey("oa-app-0001", "0123456789abcdef0123456789abcdef", ip, "")
	}
}

// limitVerifier verifies every caller as an application with tight limits.
type limitVerifier struct{}

func (limitVerifier) VerifyApp(_ context.Context, appID, _ string, _ netip.Addr, _ string, _ caller.SignedRequest, _ string) (*caller.App, string, error) {
	return &caller.App{ID: appID, Active: true, RateLimit: 1, RateBurst: 1, MaxConcurrent: 1}, "", nil
}

func (limitVerifier) VerifyAdmin(context.Context, string) (*adminauth.Admin, error) {
	return nil, apierr.ErrUnavailable
}

// The callers authz refuses itself (its share of an application's rate and
// concurrency limits) are told to Denied, which audits them as
// caller.denied (review sec27b L1: they went unrecorded, unseen by the
// alert).
func TestLimitRefusalsAudited(t *testing.T) {
	a := NewCallerAuth(limitVerifier{})
	var denied []string
	a.Denied = func(_ context.Context, appID string, err *apierr.Error, _ time.Time) {
		denied = append(denied, appID+":"+err.Reason)
	}
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(grpcx.MetadataAppID, "oa", grpcx.MetadataAppSecret, "s"))
	m := authzv1.AuthzService_Check_FullMethodName
	c1, err := a.AuthenticateCaller(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	// the first call in progress: the second is refused its slot (the
	// rate would refuse it too: the slot is checked after the rate here,
	// so let the bucket refill)
	a.now = func() time.Time { return time.Now().Add(2 * time.Second) }
	if _, err := a.AuthenticateCaller(ctx, m); reasonOf(err) != caller.ReasonConcurrencyLimited {
		t.Fatalf("a second call at once: %v", err)
	}
	grpcx.EndCall(c1)
	if _, err := a.AuthenticateCaller(ctx, m); reasonOf(err) != "RATE_LIMITED" {
		t.Fatalf("a third call within the second: %v", err)
	}
	if want := []string{"oa:" + caller.ReasonConcurrencyLimited, "oa:RATE_LIMITED"}; !slices.Equal(denied, want) {
		t.Fatalf("denied %v, want %v", denied, want)
	}
}

func reasonOf(err error) string {
	if ae, ok := apierr.As(err); ok {
		return ae.Reason
	}
	return ""
}
