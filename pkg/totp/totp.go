// Package totp holds what the components agree on about authenticator app
// codes (RFC 6238) that people type: their form. Identity checks the codes;
// the sign-in pages only refuse what is not one before asking it.
package totp

import "strings"

// Digits is how many digits a code has.
const Digits = 6

// WellFormed reports whether code has the form of a code: Digits ASCII
// digits, spaces (around or between groups) aside.
func WellFormed(code string) bool {
	code = strings.ReplaceAll(strings.TrimSpace(code), " ", "")
	if len(code) != Digits {
		return false
	}
	for i := range len(code) {
		if code[i] < '0' || code[i] > '9' {
			return false
		}
	}
	return true
}
