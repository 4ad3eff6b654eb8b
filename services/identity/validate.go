package identity

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/uias/uias/pkg/apierr"
)

// The strings of every request (UTF-8, lengths, control characters, code
// formats) are checked before a request reaches the service, by the rules in
// proto/uias/identity/v1/identity.proto (see pkg/grpcx). What stays here is
// what the proto cannot say: parsing the legacy extend-info form, limits on
// the merged extend info, and the domain's own rules (password policy, ID
// numbers, e-mail and phone formats, what an update mask may name).

// Limits. maxIDLen bounds the App_ID of caller credentials (metadata, not a
// request field); maxPasswordLen is the password policy's (also for
// passwords that come from no request, like the bootstrap password); the
// extend-info limits are those of the structured map in the proto.
const (
	maxIDLen          = 128
	maxPasswordLen    = 1024
	maxExtendEntries  = 32
	maxExtendValueLen = 1024
	maxExtendLegacy   = 8 << 10
)

// badRequest is the error for malformed input (BAD_REQUEST: legacy code -5).
func badRequest(format string, a ...any) error {
	return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, fmt.Sprintf(format, a...))
}

// badField is badRequest naming the request field at fault (ErrorInfo
// metadata field, its proto name), as the validation of the proto's rules
// does.
func badField(field, format string, a ...any) error {
	return apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, fmt.Sprintf(format, a...)).WithMeta(apierr.MetaField, field)
}

// checkPasswordFlags refuses a person who must change their password at
// the next login but may not change it (only an administrator may): they
// could sign in nowhere, the sign-in pages sending them to a change form
// that refuses them. A password reset already leaves must-change off for
// such a person; a create or update asking for both is refused, naming
// the way out.
func checkPasswordFlags(mustChange, cannotChange bool) error {
	if mustChange && cannotChange {
		return badField("must_change_password", "a person who may not change their own password (user_cannot_change_password) "+
			"cannot be required to change it at the next login: they could not sign in; set must_change_password false, "+
			"or let them change it")
	}
	return nil
}

var extendKeyPattern = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)

// ParseExtendInfo parses the legacy "name1=value|name2=value" form. An empty
// string is no entries; empty segments (e.g. a trailing '|') are ignored. A
// segment without '=', an empty or invalid name, a duplicate name, invalid
// UTF-8 or too many/too long entries are errors.
func ParseExtendInfo(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	if len(s) > maxExtendLegacy {
		return nil, badField("extend_info_legacy", "extend info is too long (at most %d bytes)", maxExtendLegacy)
	}
	if !utf8.ValidString(s) {
		return nil, badField("extend_info_legacy", "extend info is not valid UTF-8")
	}
	for _, seg := range strings.Split(s, "|") {
		if seg == "" {
			continue
		}
		name, value, ok := strings.Cut(seg, "=")
		if !ok {
			return nil, badField("extend_info_legacy", "extend info entry %q has no '=' (expected name=value|name=value)", truncate(seg, 32))
		}
		if !extendKeyPattern.MatchString(name) {
			return nil, badField("extend_info_legacy", "extend info name %q is invalid (1-64 letters, digits, '_', '.', '-')", truncate(name, 32))
		}
		if _, dup := out[name]; dup {
			return nil, badField("extend_info_legacy", "extend info name %q appears twice", name)
		}
		out[name] = value
	}
	return out, checkExtend(out)
}

// FormatExtendInfo renders a map in the legacy form with sorted names.
func FormatExtendInfo(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('|')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(m[k])
	}
	return b.String()
}

func checkExtend(m map[string]string) error {
	if len(m) > maxExtendEntries {
		return badField("extend_info", "extend info has too many entries (at most %d)", maxExtendEntries)
	}
	for k, v := range m {
		if !utf8.ValidString(k) || !extendKeyPattern.MatchString(k) {
			return badField("extend_info", "extend info name %q is invalid (1-64 letters, digits, '_', '.', '-')", truncate(strings.ToValidUTF8(k, "?"), 32))
		}
		if len(v) > maxExtendValueLen {
			return badField("extend_info", "extend info value of %q is too long (at most %d bytes)", k, maxExtendValueLen)
		}
		if !utf8.ValidString(v) || strings.ContainsAny(v, "|") {
			return badField("extend_info", "extend info value of %q must be valid UTF-8 without '|'", k)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
