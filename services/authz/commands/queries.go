package commands

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/events"
	ulog "github.com/uias/uias/pkg/log"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// MaxBatch is the most checks one BatchCheck answers.
const MaxBatch = 100

// Check answers q once the index has reached atLeast.
func (s *Service) Check(ctx context.Context, q index.Query, atLeast int64) (bool, int64, error) {
	if err := checkQuery(q, ""); err != nil {
		return false, 0, err
	}
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return false, 0, err
	}
	ok, rev := s.idx.Check(q, s.now())
	s.recordDecision(ctx, APICheck, q, ok, "")
	return ok, rev, nil
}

// Decision APIs: the access record of a check, a batch or an explanation
// is its decision (recordDecision), found under these APIs.
const (
	APICheck      = "authz.check"
	APIBatchCheck = "authz.batch_check"
	APIExplain    = "authz.explain"
)

// ReasonNotPermitted is the reason of a decision record that refused.
const ReasonNotPermitted = "NOT_PERMITTED"

// recordDecision makes the decision on q the access record of the API call
// served in ctx (audit.Builder.ForCall, as ticket's validations): whose
// permission was asked (the subject), what (detail app, resource and
// operation, or method and path) and the answer: result success when
// allowed, denied (reason NOT_PERMITTED, or the explanation's why) when
// not, so that an auditor finds who was refused a permission (trial7 L6).
// Nothing is kept when the process keeps no access record of the call (a
// call nested in another component's, or access records off).
func (s *Service) recordDecision(ctx context.Context, api string, q index.Query, allowed bool, why string) {
	a := audit.Action{API: api, Subject: "user:" + q.Person, Result: audit.ResultSuccess, Reason: "OK",
		Fields: decisionFields(q, nil)}
	if !allowed {
		a.Result, a.Reason = audit.ResultDenied, ReasonNotPermitted
		if why != "" {
			a.Reason = why
		}
	}
	s.auditor.ForCall(ctx, a, dropRecord)
}

// dropRecord is where a decision record goes when the process keeps no
// access record of its call: nowhere (it is the call's access record).
func dropRecord(events.Later) {}

// decisionFields appends q's permission to fs as audit detail.
func decisionFields(q index.Query, fs []events.DetailField) []events.DetailField {
	fs = append(fs, events.DetailField{Key: "app", Value: q.App})
	if q.Resource != "" {
		return append(fs, events.DetailField{Key: "resource", Value: q.Resource},
			events.DetailField{Key: "operation", Value: q.Operation})
	}
	// a path may hold an account or ID number: masked when the record is
	// made, before the detail's cut (review sec12 #4)
	fs = append(fs, events.DetailField{Key: "method", Value: q.Method}, events.DetailField{Key: "path", Value: ulog.MaskText(q.Path)})
	if q.Operation != "" {
		fs = append(fs, events.DetailField{Key: "operation", Value: q.Operation})
	}
	return fs
}

// recordBatch is recordDecision for a batch: one record, whose subject is
// the person when the batch asks about one (as usual: an application asks
// what one person may do; otherwise detail.people counts them), with how
// many checks it had, which were refused (detail.denied: their places in
// the batch, "0,3"; a caller's text cannot forge them; review sec12 #5)
// and the first refused permission (detail.first_denied); its result is
// denied when any was refused.
func (s *Service) recordBatch(ctx context.Context, qs []index.Query, out []bool) {
	a := audit.Action{API: APIBatchCheck, Result: audit.ResultSuccess, Reason: "OK"}
	var denied []byte
	first := -1
	people := map[string]bool{}
	for i, q := range qs {
		people[q.Person] = true
		if out[i] {
			continue
		}
		if first < 0 {
			first = i
		} else {
			denied = append(denied, ',')
		}
		denied = strconv.AppendInt(denied, int64(i), 10)
	}
	if len(people) == 1 {
		a.Subject = "user:" + qs[0].Person
		a.Fields = append(a.Fields, events.DetailField{Key: "app", Value: qs[0].App})
	} else {
		a.Fields = append(a.Fields, events.DetailField{Key: "people", Value: strconv.Itoa(len(people))})
	}
	a.Fields = append(a.Fields, events.DetailField{Key: "checks", Value: strconv.Itoa(len(qs))})
	if first >= 0 {
		q := qs[first]
		perm := q.Resource + ":" + q.Operation
		if q.Resource == "" {
			perm = q.Method + " " + ulog.MaskText(q.Path)
		}
		a.Result, a.Reason = audit.ResultDenied, ReasonNotPermitted
		a.Fields = append(a.Fields, events.DetailField{Key: "denied", Value: string(denied)},
			events.DetailField{Key: "first_denied", Value: perm})
		if len(people) > 1 {
			a.Fields = append(a.Fields, events.DetailField{Key: "first_denied_person", Value: q.Person})
		}
	}
	s.auditor.ForCall(ctx, a, dropRecord)
}

// BatchCheck answers every query at one revision.
func (s *Service) BatchCheck(ctx context.Context, qs []index.Query, atLeast int64) ([]bool, int64, error) {
	if len(qs) > MaxBatch {
		return nil, 0, apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, "at most 100 checks per batch")
	}
	for i, q := range qs {
		if err := checkQuery(q, fmt.Sprintf("checks[%d].", i)); err != nil {
			return nil, 0, err
		}
	}
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return nil, 0, err
	}
	out, rev := s.idx.BatchCheck(qs, s.now())
	s.recordBatch(ctx, qs, out)
	return out, rev, nil
}

// Explain answers q with the grant path or why not.
func (s *Service) Explain(ctx context.Context, q index.Query, atLeast int64) (index.Explanation, error) {
	if err := checkQuery(q, ""); err != nil {
		return index.Explanation{}, err
	}
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return index.Explanation{}, err
	}
	e := s.idx.Explain(q, s.now())
	s.recordDecision(ctx, APIExplain, q, e.Allowed, e.Reason)
	return e, nil
}

// ListPermissions lists what person may do in app.
func (s *Service) ListPermissions(ctx context.Context, person, app string, atLeast int64) ([]authz.Permission, int64, error) {
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return nil, 0, err
	}
	ps, rev := s.idx.ListPermissions(person, app, s.now())
	return ps, rev, nil
}

// ListPermissionsAndRoles lists what person may do in app and the roles
// of app they hold, at one revision.
func (s *Service) ListPermissionsAndRoles(ctx context.Context, person, app string, atLeast int64) ([]authz.Permission, []authz.Role, int64, error) {
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return nil, nil, 0, err
	}
	ps, roles, rev := s.idx.ListPermissionsAndRoles(person, app, s.now())
	return ps, roles, rev, nil
}

// ListSubjects lists who may do op on resource of app.
func (s *Service) ListSubjects(ctx context.Context, app, resource, op string, atLeast int64) ([]index.SubjectGrant, int64, error) {
	if err := s.WaitFor(ctx, atLeast); err != nil {
		return nil, 0, err
	}
	out, rev := s.idx.ListSubjects(app, resource, op, s.now())
	return out, rev, nil
}

// checkQuery refuses a check that names no permission: a resource with its
// operation, or a URL (path, and a method or none); not both. prefix is
// the path of the query in its request (a batch's checks[i].).
func checkQuery(q index.Query, prefix string) error {
	bad := func(field, msg string) error {
		return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, prefix+msg).WithMeta(apierr.MetaField, prefix+field)
	}
	switch {
	case q.Resource != "" && (q.Method != "" || q.Path != ""):
		return bad("resource", "give a resource and its operation, or a URL (method and path), not both")
	case q.Resource != "" && q.Operation == "":
		return bad("operation", "operation is required with a resource")
	case q.Resource == "" && q.Path == "":
		return bad("resource", "a resource and its operation, or a URL path, is required")
	case q.Path != "":
		if why := pathProblem(q.Path); why != "" {
			return bad("path", "path "+why+": ask with the path the application serves, cleaned (as its router resolves it)")
		}
	}
	return nil
}

// pathProblem says why a URL path may not be matched as given ("" when it
// may). Resources match segment by segment, byte for byte, the most
// specific winning, so a path the application's router reads otherwise
// than it is written (/pub/../api/admin matched by /pub/**, and the like)
// would answer for one path while the router serves another (trial7 H2,
// review sec11 S1). So a path is taken only in one canonical spelling:
// starting with "/"; no dot segment ("." or ".."), no empty segment
// ("//"); no ";" (path parameters: Tomcat, Jetty and Spring serve
// /pub/..;/api/admin as /api/admin); no backslash, control character, "?"
// or "#"; a percent-encoding only of a byte that is not written plainly
// (not of a letter, digit, "-", ".", "_" or "~", nor of "/", "\", ";" or
// "%" itself: a router decoding it once or twice would read another
// path); non-ASCII text as valid UTF-8 (decoded or percent-encoded), with
// no fullwidth or lookalike dot or slash. The CAS service URLs are held to
// the same rule.
func pathProblem(p string) string {
	if !strings.HasPrefix(p, "/") {
		return "must start with /"
	}
	var enc []byte // the percent-decoded bytes of a run, checked as UTF-8
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c != '%' && len(enc) > 0 {
			if !utf8.Valid(enc) {
				return "has percent-encoded bytes that are not UTF-8 (an overlong dot?)"
			}
			enc = enc[:0]
		}
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
				return "has a malformed percent-encoding"
			}
			b := unhex(p[i+1])<<4 | unhex(p[i+2])
			switch {
			case b < 0x80 && (isUnreserved(b)):
				return fmt.Sprintf("percent-encodes %q, which a canonical path writes plainly", string(rune(b)))
			case b == '/' || b == '\\' || b == ';' || b == '%' || b < 0x20 || b == 0x7f:
				return fmt.Sprintf("has an encoded %q", string(rune(b)))
			}
			if b >= 0x80 {
				enc = append(enc, b)
			}
			i += 2
		case c == ';':
			return "has a path parameter (;)"
		case c == '\\' || c < 0x20 || c == 0x7f:
			return "has a backslash or a control character"
		case c == '?' || c == '#':
			return "is the path alone, without a query or fragment"
		}
	}
	if len(enc) > 0 && !utf8.Valid(enc) {
		return "has percent-encoded bytes that are not UTF-8 (an overlong dot?)"
	}
	if !utf8.ValidString(p) {
		return "is not valid UTF-8"
	}
	if strings.ContainsAny(p, "\uff0e\u2024\ufe52\u3002\uff0f\u2215\u2044\uff3c\u29f5\u29f8") {
		return "has a fullwidth or lookalike dot or slash"
	}
	segs := strings.Split(p[1:], "/")
	for i, seg := range segs {
		switch {
		case seg == "." || seg == "..":
			return "has a dot segment (. or ..)"
		case seg == "" && i < len(segs)-1:
			return "has an empty segment (//)"
		}
	}
	return ""
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}

// isUnreserved: RFC 3986's unreserved characters, which a canonical URI
// never percent-encodes.
func isUnreserved(b byte) bool {
	return 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '.' || b == '_' || b == '~'
}
