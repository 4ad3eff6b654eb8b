package ctl

import (
	"strconv"
	"strings"
)

// authLevelUsage names --min-auth-level's values.
const authLevelUsage = "any, two-factor, certificate, or default"

// parseAuthLevel is a --min-auth-level value as the API's number: default
// (0: the policy's for a person, any for an application), any (1),
// two-factor (2), certificate (3), or the number itself.
func parseAuthLevel(v string) (int32, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "default", "0":
		return 0, nil
	case "any", "1":
		return 1, nil
	case "two-factor", "2fa", "2":
		return 2, nil
	case "certificate", "cert", "3":
		return 3, nil
	}
	return 0, usagef("--min-auth-level must be %s, not %q", authLevelUsage, v)
}

// authLevelText shows a minimum authentication level; unset is what 0
// means for the person or application.
func authLevelText(l int32, unset string) string {
	switch l {
	case 0:
		return unset
	case 1:
		return "1 (any method)"
	case 2:
		return "2 (two factors or a certificate)"
	case 3:
		return "3 (a certificate only)"
	}
	return strconv.Itoa(int(l))
}
