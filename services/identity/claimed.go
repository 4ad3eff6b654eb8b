package identity

import (
	"unicode"
	"unicode/utf8"

	ulog "github.com/uias/uias/pkg/log"
)

// maxClaimedAccount caps the claimed account kept in an audit subject, in
// bytes: app_user_id's max_bytes in the proto, applied again here because
// the subject must stay bounded whatever called the domain.
const maxClaimedAccount = 128

// claimedAccount is the audit subject for a login naming an account that is
// not known ("account:" + what the caller sent), so failed logins for unknown
// accounts can be found (enumeration, password spraying). The value is the
// caller's text, not a record: digit runs shaped like a resident ID or a
// mobile number are masked as everywhere else (people type those into login
// fields), control characters and invalid UTF-8 are replaced, and it is cut
// at maxClaimedAccount bytes, marked with "…".
func claimedAccount(account string) string {
	b := make([]rune, 0, len(account))
	n := 0
	cut := false
	for _, r := range account {
		if r == utf8.RuneError || unicode.IsControl(r) {
			r = '?'
		}
		if n+utf8.RuneLen(r) > maxClaimedAccount {
			cut = true
			break
		}
		n += utf8.RuneLen(r)
		b = append(b, r)
	}
	s := ulog.MaskText(string(b))
	if cut {
		s += "…"
	}
	return "account:" + s
}
