package audit

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxText is the most bytes one caller-supplied value keeps in an
// audit record (Text).
const MaxText = 256

// Text makes a string that came from a caller (a login name, an
// App_ID, an account) safe to store in an audit record: a backslash is
// doubled; control characters, Unicode format characters (bidirectional
// overrides, zero-width characters) and invalid UTF-8 are written as
// visible escapes (\u000a, \u202e, \xff), so a record reads as what was
// sent and cannot fake a line, a field or reorder its text on a screen;
// and the result is cut at MaxText bytes (at a character boundary,
// ending with "…" when cut), so no caller can grow the audit log with
// one request.
func Text(s string) string {
	if len(s) <= MaxText && plain(s) {
		return s
	}
	const ellipsis = "…"
	var b strings.Builder
	// ends[k] is b.Len() after the k-th piece: cuts fall between pieces, so
	// an escape is never cut in half.
	ends := make([]int, 0, MaxText)
	for i := 0; i < len(s) && b.Len() <= MaxText; {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r > 0xffff && unicode.Is(unicode.Cf, r):
			fmt.Fprintf(&b, `\U%08x`, r)
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029':
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
		ends = append(ends, b.Len())
		if i == len(s) && b.Len() <= MaxText {
			return b.String()
		}
	}
	out := b.String()
	keep := 0
	for _, e := range ends {
		if e > MaxText-len(ellipsis) {
			break
		}
		keep = e
	}
	return out[:keep] + ellipsis
}

// plain reports whether s needs no escaping: printable ASCII without
// backslashes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return false
		}
	}
	return true
}
