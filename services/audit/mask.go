package audit

import (
	"strings"

	ulog "github.com/uias/uias/pkg/log"
)

// Mask masks the personal numbers a record's free text may carry (the bank
// API standard's access log keeps account and ID numbers masked): resident
// ID numbers and mobile numbers as pkg/log.MaskText does, and account or
// card numbers, any other run of 12 to 19 digits standing on its own (not
// part of an identifier such as a hex event id), keeping the first and last
// 4 digits. Components mask what they write; the audit log masks again
// before a record is stored, so nothing reaches the log in clear.
func Mask(s string) string { return maskAccounts(ulog.MaskText(s)) }

// maskRecord masks the fields of r that carry what callers sent: subject,
// actor and the detail values.
func maskRecord(r *Record) {
	r.Subject, r.Actor = Mask(r.Subject), Mask(r.Actor)
	for k, v := range r.Detail {
		r.Detail[k] = Mask(v)
	}
}

// MaskPeerRecord masks a peer centre's record as this centre masks its own
// before storing (review sec28b I3: level 1 keeps nothing in clear that a
// level-2 centre of an older version, or a careless one, shared), and
// reports whether that changed it. A changed record no longer matches the
// peer's signed checkpoint: verify reports it, and the receiver records why.
func MaskPeerRecord(r *Record) bool {
	before := *r
	if len(r.Detail) > 0 {
		d := make(map[string]string, len(r.Detail))
		for k, v := range r.Detail {
			d[k] = v
		}
		r.Detail = d
	}
	maskRecord(r)
	if r.Subject != before.Subject || r.Actor != before.Actor {
		return true
	}
	for k, v := range r.Detail {
		if before.Detail[k] != v {
			return true
		}
	}
	return false
}

func maskAccounts(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		if n := j - i; n >= 12 && n <= 19 && (i == 0 || !isAlnum(s[i-1])) && (j == len(s) || !isAlnum(s[j])) {
			b.WriteString(s[last:i])
			b.WriteString(s[i : i+4])
			b.WriteString(strings.Repeat("*", n-8))
			b.WriteString(s[j-4 : j])
			last = j
		}
		i = j
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func isAlnum(c byte) bool { return isDigit(c) || (c|0x20 >= 'a' && c|0x20 <= 'z') }
