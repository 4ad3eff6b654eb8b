package grpcx

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"buf.build/go/protovalidate"
	"google.golang.org/protobuf/proto"

	"github.com/uias/uias/pkg/apierr"
)

// Request validation: every request (and every streamed message) a server
// built by NewServer receives is checked against the protovalidate rules
// annotated in its proto ((buf.validate.field) options, with the shared UIAS
// rules of proto/uias/validate/v1) before the handler runs. Handlers do not
// hand-check what the rules cover.

// ReasonBadRequest is the ErrorInfo reason of a request that breaks its
// proto rules or cannot be decoded (registered in apierr: legacy code -5).
const ReasonBadRequest = apierr.ReasonBadRequest

// ErrorInfo metadata keys set on bad-request errors.
const (
	// MetaLegacyCode carries the legacy result code: "-5" (bad request data),
	// set by the error funnel from the reason table.
	MetaLegacyCode = apierr.MetaLegacyCode
	// MetaField names the offending field by its proto field path (e.g.
	// "app_user_id", "extend_info"), when there is one.
	MetaField = apierr.MetaField
)

// requestValidator is built once per process and shared by every server:
// protovalidate caches the compiled rules per message type.
var requestValidator = sync.OnceValues(func() (protovalidate.Validator, error) {
	return protovalidate.New(protovalidate.WithFailFast())
})

// errValidatorBroken is what a caller sees when the rules of a message could
// not be compiled or evaluated: a bug in the proto, never the caller's fault.
var errValidatorBroken = errors.New("grpcx: request rules could not be evaluated")

// ValidateRequest checks m against the protovalidate rules of its type. It
// returns nil when m satisfies them (a message without rules always does, as
// does a value that is not a proto message), an *apierr.Error with code
// InvalidArgument, reason BAD_REQUEST, metadata legacy_code "-5" and field
// when a rule is broken, and an Internal *apierr.Error when the rules
// themselves are broken (e.g. a CEL expression that does not compile).
//
// The servers built by NewServer call it for every request; use it directly
// only where a request reaches a handler without passing through them.
func ValidateRequest(m any) error {
	msg, ok := m.(proto.Message)
	if !ok {
		return nil
	}
	if fastValid(msg.ProtoReflect()) {
		return nil // every rule kept (fastvalidate.go)
	}
	return validateFully(msg)
}

// validateFully is ValidateRequest by protovalidate alone.
func validateFully(msg proto.Message) error {
	v, err := requestValidator()
	if err != nil {
		return apierr.Wrap(fmt.Errorf("%w: %w", errValidatorBroken, err), apierr.Internal, apierr.ReasonInternal, "")
	}
	err = v.Validate(msg)
	if err == nil {
		return nil
	}
	var ve *protovalidate.ValidationError
	if errors.As(err, &ve) && len(ve.Violations) > 0 {
		return violationError(ve.Violations[0])
	}
	return apierr.Wrap(fmt.Errorf("%w: %w", errValidatorBroken, err), apierr.Internal, apierr.ReasonInternal, "")
}

// BadRequest is the error for a malformed request, as the servers answer
// it: InvalidArgument, reason BAD_REQUEST, legacy code -5 and, unless field
// is "", the field's proto path. msg is shown to the caller; it should name
// the field and must not repeat its value.
func BadRequest(field, msg string) *apierr.Error {
	return badRequest(field, msg)
}

func badRequest(field, msg string) *apierr.Error {
	e := apierr.New(apierr.InvalidArgument, ReasonBadRequest, msg)
	if field != "" {
		e = e.WithMeta(MetaField, field)
	}
	return e
}

// violationError describes one rule violation for a person: the field as
// written in the proto (and in REST bodies), then what is wrong with it. The
// field's value is never repeated (it may be a secret); a map key may be, in
// part, as it is a name chosen by the caller.
func violationError(v *protovalidate.Violation) *apierr.Error {
	field, shown := fieldPath(v.Proto.GetField(), v.Proto.GetForKey())
	var what string
	switch v.Proto.GetRuleId() {
	case "required":
		what = "is required"
	case "string.max_bytes", "bytes.max_len":
		what = fmt.Sprintf("is too long (at most %d bytes)", v.RuleValue.Uint())
	case "map.max_pairs", "repeated.max_items":
		what = fmt.Sprintf("has too many entries (at most %d)", v.RuleValue.Uint())
	default:
		what = strings.TrimPrefix(v.Proto.GetMessage(), "value ")
		if what == "" {
			what = "is invalid (rule " + v.Proto.GetRuleId() + ")"
		}
	}
	if shown == "" {
		return badRequest("", "request "+what)
	}
	return badRequest(field, shown+" "+what)
}

// fieldPath returns the field path of a violation twice: as the ErrorInfo
// field (proto field names joined by '.', e.g. "extend_info") and as shown in
// the message (with list indexes and map keys, e.g. `extend_info["k"]`, or
// `extend_info key "k"` when the key itself is at fault).
func fieldPath(p *validate.FieldPath, forKey bool) (field, shown string) {
	var f, s strings.Builder
	els := p.GetElements()
	for i, el := range els {
		if i > 0 {
			f.WriteByte('.')
			s.WriteByte('.')
		}
		f.WriteString(el.GetFieldName())
		s.WriteString(el.GetFieldName())
		last := i == len(els)-1
		switch el.WhichSubscript() {
		case validate.FieldPathElement_Index_case:
			s.WriteString("[" + strconv.FormatUint(el.GetIndex(), 10) + "]")
		case validate.FieldPathElement_StringKey_case:
			if last && forKey {
				s.WriteString(" key " + quoteKey(el.GetStringKey()))
			} else {
				s.WriteString("[" + quoteKey(el.GetStringKey()) + "]")
			}
		case validate.FieldPathElement_IntKey_case:
			s.WriteString("[" + strconv.FormatInt(el.GetIntKey(), 10) + "]")
		case validate.FieldPathElement_UintKey_case:
			s.WriteString("[" + strconv.FormatUint(el.GetUintKey(), 10) + "]")
		case validate.FieldPathElement_BoolKey_case:
			s.WriteString("[" + strconv.FormatBool(el.GetBoolKey()) + "]")
		}
	}
	return f.String(), s.String()
}

// quoteKey quotes a map key for a message, cut to 32 bytes.
func quoteKey(k string) string {
	const max = 32
	if len(k) > max {
		n := max
		for n > 0 && !utf8.RuneStart(k[n]) {
			n--
		}
		return strconv.Quote(k[:n]) + "..."
	}
	return strconv.Quote(k)
}
