package identity

import ulog "github.com/uias/uias/pkg/log"

// claimedAccount is the audit subject for a login naming an account that is
// not known: "account:" + what the caller sent, so failed logins for unknown
// accounts can be found (enumeration, password spraying). Digit runs shaped
// like a resident ID or a mobile number are masked as everywhere else
// (people type those into login fields); the audit builder then caps and
// escapes it like every value a caller sends (audit.Text).
func claimedAccount(account string) string { return "account:" + ulog.MaskText(account) }
