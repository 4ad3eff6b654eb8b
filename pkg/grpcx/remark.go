package grpcx

import (
	"context"
	"net/url"
	"unicode"
	"unicode/utf8"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
)

// MetadataRemark carries the caller's remark on a call (004 2.1.7: "the
// remark of a record may hold details"): percent-encoded UTF-8 (RFC 3986,
// as url.PathEscape writes it), so Chinese text travels in a header. The
// REST edge forwards the header X-Uias-Remark under it.
const MetadataRemark = "x-uias-remark"

// MaxRemark is the longest remark, in bytes of UTF-8.
const MaxRemark = 500

var errBadRemark = apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest,
	"the remark (x-uias-remark) must be percent-encoded UTF-8 text of at most 500 bytes, without control characters")

// withRemark puts the call's remark, if any, into its caller (after the
// caller is authenticated), or refuses a remark that is not text. Only a
// signed-in person's call (an administrator's: caller.Principal) keeps
// one: an application's or an anonymous caller's is dropped, so that
// nobody but the administrator writes words into the records of their
// own calls (a failed admin.login "approved by the security auditor").
func withRemark(ctx context.Context) (context.Context, error) {
	raw := firstValue(callMD(ctx), MetadataRemark)
	if raw == "" || caller.From(ctx).Principal == "" {
		return ctx, nil
	}
	r, err := url.PathUnescape(raw)
	if err != nil || len(r) > MaxRemark || !utf8.ValidString(r) {
		return nil, errBadRemark
	}
	for _, c := range r {
		if unicode.IsControl(c) {
			return nil, errBadRemark
		}
	}
	c := *caller.From(ctx)
	c.Remark = r
	return caller.With(ctx, &c), nil
}
