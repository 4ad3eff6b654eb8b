package ctl

import (
	"flag"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/caller"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// accessFlags are an application's interface grants and access period
// (app create and update).
type accessFlags struct {
	apis, from, until, level *string
	// minLevel: the lowest level of its Authenticate calls.
	minLevel *string
}

func addAccessFlags(fs *flag.FlagSet) accessFlags {
	return accessFlags{
		apis: fs.String("grant-api", "", "the interfaces the application may call, comma-separated (`LIST` of "+
			strings.Join(caller.APIs, ", ")+`; "all" or "": every one but directory, granted only by name)`),
		from:  fs.String("access-from", "", `its access begins at DATE (YYYY-MM-DD, midnight UTC, or RFC 3339; "": open)`),
		until: fs.String("access-until", "", `its access ends after DATE (YYYY-MM-DD: at the end of that day, UTC; or an RFC 3339 time; "": open)`),
		level: fs.String("security-level", "", "interface `LEVEL`: A1, or A2 (its calls must be signed: needs --require-signatures)"),
		minLevel: fs.String("min-auth-level", "", "the lowest `LEVEL` its Authenticate calls must reach: "+authLevelUsage+
			" (two-factor: a password with the code, or finger and password; certificate: none, Authenticate is closed)"),
	}
}

// securityLevel is --security-level as a number (0 when not given).
func (f accessFlags) securityLevel() (int32, error) {
	switch strings.ToUpper(strings.TrimSpace(*f.level)) {
	case "":
		if *f.level != "" {
			break
		}
		return 0, nil
	case "A1", "1":
		return 1, nil
	case "A2", "2":
		return 2, nil
	}
	return 0, usagef("--security-level must be A1 or A2, got %q", *f.level)
}

// grants are the interfaces of --grant-api (nil: every one).
func (f accessFlags) grants() ([]string, error) {
	v := strings.TrimSpace(*f.apis)
	if v == "" || v == "all" {
		return nil, nil
	}
	var out []string
	for _, p := range strings.Split(v, ",") {
		out = append(out, strings.TrimSpace(p))
	}
	if err := caller.CheckAPIs(out); err != nil {
		return nil, usagef("--grant-api: unknown or repeated interface in %q; the interfaces are %s", v, strings.Join(caller.APIs, ", "))
	}
	return out, nil
}

// when is a time flag's value (nil for "": open).
func when(name, v string) (*timestamppb.Timestamp, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	t, err := parseWhen(name, strings.TrimSpace(v))
	if err != nil {
		return nil, err
	}
	return timestamppb.New(t), nil
}

// until is --access-until's end: a date's is the end of that day (the
// next midnight UTC: an agreement "until 2027-12-31" includes that day).
func until(v string) (*timestamppb.Timestamp, error) {
	t, err := when("access-until", v)
	if err != nil || t == nil {
		return t, err
	}
	if _, derr := time.Parse(time.DateOnly, strings.TrimSpace(v)); derr == nil {
		return timestamppb.New(t.AsTime().Add(24 * time.Hour)), nil
	}
	return t, nil
}

// applyCreate sets the flags on a new application.
func (f accessFlags) applyCreate(req *identityv1.CreateAppRequest) error {
	var err error
	if req.GrantedApis, err = f.grants(); err != nil {
		return err
	}
	if req.AccessFrom, err = when("access-from", *f.from); err != nil {
		return err
	}
	if req.AccessUntil, err = until(*f.until); err != nil {
		return err
	}
	if req.SecurityLevel, err = f.securityLevel(); err != nil {
		return err
	}
	if *f.minLevel != "" {
		req.MinAuthLevel, err = parseAuthLevel(*f.minLevel)
	}
	return err
}

// applyUpdate sets the flags given (set) on an update.
func (f accessFlags) applyUpdate(req *identityv1.UpdateAppRequest, set map[string]bool) error {
	var err error
	if set["grant-api"] {
		if req.GrantedApis, err = f.grants(); err != nil {
			return err
		}
		req.UpdateMask = append(req.UpdateMask, "granted_apis")
	}
	if set["access-from"] {
		if req.AccessFrom, err = when("access-from", *f.from); err != nil {
			return err
		}
		req.UpdateMask = append(req.UpdateMask, "access_from")
	}
	if set["access-until"] {
		if req.AccessUntil, err = until(*f.until); err != nil {
			return err
		}
		req.UpdateMask = append(req.UpdateMask, "access_until")
	}
	if set["security-level"] {
		if strings.TrimSpace(*f.level) == "" {
			return usagef("--security-level must be A1 or A2")
		}
		if req.SecurityLevel, err = f.securityLevel(); err != nil {
			return err
		}
		req.UpdateMask = append(req.UpdateMask, "security_level")
	}
	if set["min-auth-level"] {
		if req.MinAuthLevel, err = parseAuthLevel(*f.minLevel); err != nil {
			return err
		}
		req.UpdateMask = append(req.UpdateMask, "min_auth_level")
	}
	return nil
}

// securityLevel shows an application's interface level.
func securityLevel(x *identityv1.App) string {
	if x.GetSecurityLevel() == 2 {
		return "A2 (signed requests and answers)"
	}
	return "A1"
}

// appAccess shows an application's grants.
func appAccess(x *identityv1.App) string {
	if len(x.GetGrantedApis()) == 0 {
		return "every interface but directory"
	}
	return strings.Join(x.GetGrantedApis(), ", ")
}

// appPeriod shows an application's access period.
func appPeriod(x *identityv1.App, now time.Time) string {
	from, until := x.GetAccessFrom(), x.GetAccessUntil()
	switch {
	case from == nil && until == nil:
		return "open"
	case until != nil && !now.Before(until.AsTime()):
		return "ENDED " + ts(until)
	case from == nil:
		return "until " + ts(until)
	case until == nil:
		return "from " + ts(from)
	}
	return ts(from) + " to " + ts(until)
}
