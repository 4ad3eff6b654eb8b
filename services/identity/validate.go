package identity

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/uias/uias/pkg/apierr"
)

// Field limits. Requests beyond them are bad request data (-5).
const (
	maxIDLen          = 128
	maxNameLen        = 256
	maxPasswordLen    = 1024
	maxFingerprintLen = 64 << 10
	maxExtendEntries  = 32
	maxExtendKeyLen   = 64
	maxExtendValueLen = 1024
	maxExtendLegacy   = 8 << 10
	maxQueryLen       = 128
)

// badRequest is the error for malformed input; it carries the legacy -5 code.
func badRequest(format string, a ...any) error {
	return apierr.New(apierr.InvalidArgument, "BAD_REQUEST", fmt.Sprintf(format, a...)).
		WithMeta("legacy_code", "-5")
}

// checkText validates a free-text field: what checkSecretText checks, and
// no control characters.
func checkText(field, v string, max int, required bool) error {
	if err := checkSecretText(field, v, max, required); err != nil {
		return err
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return badRequest("%s contains control characters", field)
		}
	}
	return nil
}

// checkSecretText validates a password-like field: present when required,
// at most max bytes, valid UTF-8; it never echoes the value.
func checkSecretText(field, v string, max int, required bool) error {
	if v == "" {
		if required {
			return badRequest("%s is required", field)
		}
		return nil
	}
	if len(v) > max {
		return badRequest("%s is too long (at most %d bytes)", field, max)
	}
	if !utf8.ValidString(v) {
		return badRequest("%s is not valid UTF-8", field)
	}
	return nil
}

var codePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$`)

// checkCode validates an identifier-like code (org code, app code, group code).
func checkCode(field, v string) error {
	if v == "" {
		return badRequest("%s is required", field)
	}
	if !codePattern.MatchString(v) {
		return badRequest("%s must be 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit", field)
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
		return nil, badRequest("extend info is too long (at most %d bytes)", maxExtendLegacy)
	}
	if !utf8.ValidString(s) {
		return nil, badRequest("extend info is not valid UTF-8")
	}
	for _, seg := range strings.Split(s, "|") {
		if seg == "" {
			continue
		}
		name, value, ok := strings.Cut(seg, "=")
		if !ok {
			return nil, badRequest("extend info entry %q has no '=' (expected name=value|name=value)", truncate(seg, 32))
		}
		if !extendKeyPattern.MatchString(name) {
			return nil, badRequest("extend info name %q is invalid (1-64 letters, digits, '_', '.', '-')", truncate(name, 32))
		}
		if _, dup := out[name]; dup {
			return nil, badRequest("extend info name %q appears twice", name)
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
		return badRequest("extend info has too many entries (at most %d)", maxExtendEntries)
	}
	for k, v := range m {
		if !utf8.ValidString(k) || !extendKeyPattern.MatchString(k) {
			return badRequest("extend info name %q is invalid (1-64 letters, digits, '_', '.', '-')", truncate(strings.ToValidUTF8(k, "?"), 32))
		}
		if len(v) > maxExtendValueLen {
			return badRequest("extend info value of %q is too long (at most %d bytes)", k, maxExtendValueLen)
		}
		if !utf8.ValidString(v) || strings.ContainsAny(v, "|") {
			return badRequest("extend info value of %q must be valid UTF-8 without '|'", k)
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
