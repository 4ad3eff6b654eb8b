package ctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// jsonForm is how -o json writes messages: proto field names, every field.
var jsonForm = protojson.MarshalOptions{UseProtoNames: true, EmitUnpopulated: true}

// printJSON writes the protojson form of m (proto field names), indented
// by encoding/json: protojson's own indentation varies its spaces from
// build to build on purpose, and scripts grep this output.
func (a *app) printJSON(m proto.Message) error {
	b, err := jsonForm.Marshal(m)
	if err != nil {
		return fmt.Errorf("encoding JSON output: %w", err)
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return fmt.Errorf("encoding JSON output: %w", err)
	}
	_, err = fmt.Fprintf(a.stdout, "%s\n", out.Bytes())
	return err
}

// outputList prints items as the JSON object {"<name>": [...]}, or calls
// table for the table form (the answers of a command that made one call
// per item).
func outputList[T proto.Message](a *app, name string, items []T, table func(tw *tabwriter.Writer)) error {
	if a.g.output != "json" {
		return a.output(nil, table)
	}
	var buf bytes.Buffer
	buf.WriteString(`{"` + name + `":[`)
	for i, m := range items {
		b, err := jsonForm.Marshal(m)
		if err != nil {
			return fmt.Errorf("encoding JSON output: %w", err)
		}
		if i > 0 {
			buf.WriteByte(',')
		}
		buf.Write(b)
	}
	buf.WriteString("]}")
	var out bytes.Buffer
	if err := json.Indent(&out, buf.Bytes(), "", "  "); err != nil {
		return fmt.Errorf("encoding JSON output: %w", err)
	}
	_, err := fmt.Fprintf(a.stdout, "%s\n", out.Bytes())
	return err
}

// output prints m as JSON, or calls table for the table form.
func (a *app) output(m proto.Message, table func(tw *tabwriter.Writer)) error {
	if a.g.output == "json" {
		return a.printJSON(m)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// row writes tab-separated cells; empty cells become "-".
func row(tw *tabwriter.Writer, cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		} else {
			cells[i] = strings.NewReplacer("\t", " ", "\n", " ").Replace(c)
		}
	}
	fmt.Fprintln(tw, strings.Join(cells, "\t"))
}

// fields writes name/value pairs vertically.
func fields(tw *tabwriter.Writer, kv ...string) {
	for i := 0; i+1 < len(kv); i += 2 {
		row(tw, kv[i]+":", kv[i+1])
	}
}

func ts(t *timestamppb.Timestamp) string {
	if t == nil || (t.GetSeconds() == 0 && t.GetNanos() == 0) {
		return ""
	}
	return t.AsTime().UTC().Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orgStatus(s identityv1.Status) string {
	return enumName(s.String(), "STATUS_")
}

func userStatus(s identityv1.UserStatus) string {
	return enumName(s.String(), "USER_STATUS_")
}

func appStatus(s identityv1.AppStatus) string {
	return enumName(s.String(), "APP_STATUS_")
}

func idType(t identityv1.IdType) string {
	switch t {
	case identityv1.IdType_ID_TYPE_UNIFIED_SOCIAL_CREDIT_CODE:
		return "uscc"
	case identityv1.IdType_ID_TYPE_ORGANIZATION_CODE:
		return "org_code"
	}
	return enumName(t.String(), "ID_TYPE_")
}

// userType is "person" or "unit" (an unspecified type, from a server of
// an older version, a person's).
func userType(t identityv1.UserType) string {
	if t == identityv1.UserType_USER_TYPE_UNIT {
		return "unit"
	}
	return "person"
}

// enumName turns STATUS_ACTIVE into "active"; unspecified into "".
func enumName(s, prefix string) string {
	s = strings.ToLower(strings.TrimPrefix(s, prefix))
	if s == "unspecified" {
		return ""
	}
	return s
}

func fmtFloat(f float64) string {
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func orgTable(tw *tabwriter.Writer, o *identityv1.Org) {
	fields(tw,
		"ID", o.GetId(),
		"Code", o.GetCode(),
		"Name", o.GetName(),
		"Parent", o.GetParentId(),
		"Status", orgStatus(o.GetStatus()),
		"Created", ts(o.GetCreateTime()),
		"Updated", ts(o.GetUpdateTime()),
	)
}

func resendTable(tw *tabwriter.Writer, r *identityv1.ResendOrgResponse) {
	fields(tw,
		"Resend ID", r.GetResendId(),
		"Orgs", strconv.Itoa(int(r.GetOrgs())),
		"People", strconv.Itoa(int(r.GetPeople())),
		"Groups", strconv.Itoa(int(r.GetGroups())),
		"Account links", strconv.Itoa(int(r.GetAccountLinks())),
		"Fingers", strconv.Itoa(int(r.GetFingers())),
		"Authenticator apps", strconv.Itoa(int(r.GetAuthenticatorApps())),
		"Change events", strconv.Itoa(int(r.GetEvents())),
	)
}

func orgRows(tw *tabwriter.Writer, orgs []*identityv1.Org) {
	row(tw, "ID", "CODE", "NAME", "PARENT", "STATUS")
	for _, o := range orgs {
		row(tw, o.GetId(), o.GetCode(), o.GetName(), o.GetParentId(), orgStatus(o.GetStatus()))
	}
}

func userTable(tw *tabwriter.Writer, u *identityv1.User) {
	locked := yesNo(u.GetLocked())
	if u.GetLocked() && ts(u.GetLockedUntil()) != "" {
		locked += " (until " + ts(u.GetLockedUntil()) + ")"
	}
	status := userStatus(u.GetStatus())
	if c := u.GetDisabledByCentre(); c != "" {
		// level 1's disable of a level-2 person, apart from the home's
		// status (ADR 0048)
		status += "; disabled by centre " + c + " (" + u.GetDisabledByCentreActor() + ", " + ts(u.GetDisabledByCentreTime()) + ")"
	}
	fields(tw,
		"ID", u.GetId(),
		"Login", u.GetLoginName(),
		"Name", u.GetDisplayName(),
		"Org", u.GetOrgId(),
		"Status", status,
		"Locked", locked,
		"Type", userType(u.GetUserType()),
		"ID type", idType(u.GetIdType()),
		"ID number", u.GetIdNumberMasked(),
		"Phone", u.GetPhoneMasked(),
		"Email", u.GetEmail(),
		"Feature code", u.GetFeatureCode(),
		"Must change password", yesNo(u.GetMustChangePassword()),
		"Password never expires", yesNo(u.GetPasswordNeverExpires()),
		"Cannot change password", yesNo(u.GetUserCannotChangePassword()),
		"Password only", yesNo(u.GetPasswordOnly()),
		"Min auth level", authLevelText(u.GetMinAuthLevel(), "default (identity.policy.min_auth_level)"),
		"Password changed", ts(u.GetPasswordChangedAt()),
		"Password expires", passwordExpiry(u),
		"Created", ts(u.GetCreateTime()),
		"Updated", ts(u.GetUpdateTime()),
	)
}

// passwordExpiry says when u's password expires ("never" when it does not).
func passwordExpiry(u *identityv1.User) string {
	switch {
	case u.GetPasswordExpireTime() == nil:
		return "never"
	case u.GetPasswordExpired():
		return ts(u.GetPasswordExpireTime()) + " (expired)"
	}
	return ts(u.GetPasswordExpireTime())
}

func userRows(tw *tabwriter.Writer, users []*identityv1.User) {
	// No administrator column: administrators are authz grants (uias ctl
	// authz grants --user ID), not the legacy is_admin flag, which holds
	// only until identity has appointed the person.
	row(tw, "ID", "LOGIN", "NAME", "TYPE", "ORG", "STATUS", "LOCKED")
	for _, u := range users {
		row(tw, u.GetId(), u.GetLoginName(), u.GetDisplayName(), userType(u.GetUserType()), u.GetOrgId(),
			userStatus(u.GetStatus()), yesNo(u.GetLocked()))
	}
}

func groupTable(tw *tabwriter.Writer, g *identityv1.Group) {
	fields(tw,
		"ID", g.GetId(),
		"Code", g.GetCode(),
		"Name", g.GetName(),
		"Org", g.GetOrgId(),
		"Members", strings.Join(g.GetMemberIds(), ", "),
		"Created", ts(g.GetCreateTime()),
	)
}

func groupRows(tw *tabwriter.Writer, groups []*identityv1.Group) {
	// ListGroups does not return members (see "group get ID").
	row(tw, "ID", "CODE", "NAME", "ORG")
	for _, g := range groups {
		row(tw, g.GetId(), g.GetCode(), g.GetName(), g.GetOrgId())
	}
}

func appTable(tw *tabwriter.Writer, x *identityv1.App) {
	fields(tw,
		"App_ID", x.GetId(),
		"Type", x.GetAppType(),
		"Code", x.GetAppCode(),
		"Name", x.GetName(),
		"Status", appStatus(x.GetStatus()),
		"IP allow list", strings.Join(x.GetIpAllowList(), ", "),
		"Rate limit", fmtFloat(x.GetRateLimit())+"/s",
		"Burst", strconv.Itoa(int(x.GetRateBurst())),
		"Max concurrent", maxConcurrent(x.GetMaxConcurrent()),
		"Name to Authenticate", nameReleaseOut(x.GetNameRelease()),
		"Client cert SHA-256", x.GetClientCertSha256(),
		"Secret lifetime", secretLifetime(x.GetSecretLifetimeSeconds()),
		"Secret issued", ts(x.GetSecretIssueTime()),
		"Secret expires", secretExpiry(x.GetSecretExpireTime(), time.Now()),
		"Signing keys", signingKeys(x.GetSigningKeys()),
		"Signed requests", signedRequests(x),
		"Security level", securityLevel(x),
		"Min auth level", authLevelText(x.GetMinAuthLevel(), "any"),
		"Legacy IP-only", legacyIPOnly(x.GetLegacyIpOnly()),
		"Interfaces", appAccess(x),
		"Access period", appPeriod(x, time.Now()),
		"Created", ts(x.GetCreateTime()),
		"Updated", ts(x.GetUpdateTime()),
	)
}

// signingKeys shows an application's request signing keys: algorithm,
// thumbprint (SHA-256 of the public key) and when each was added.
func signingKeys(keys []*identityv1.SigningKey) string {
	if len(keys) == 0 {
		return "none"
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k.GetAlgorithm() + " " + k.GetThumbprint() + " (added " + ts(k.GetAddTime())
		if k.GetExpireTime() != nil {
			parts[i] += ", expires " + ts(k.GetExpireTime())
		}
		parts[i] += ")"
	}
	return strings.Join(parts, "; ")
}

// signedRequests says whether the application must sign its requests.
func signedRequests(x *identityv1.App) string {
	switch {
	case x.GetRequireSignedRequests():
		return "required"
	case len(x.GetSigningKeys()) > 0:
		return "optional (signed requests are verified)"
	}
	return "not used"
}

// secretLifetime shows an application's own secret lifetime.
func secretLifetime(s int64) string {
	if s == 0 {
		return "server default"
	}
	return fmtDays(s)
}

// secretExpiry shows when a secret expires: never, or the time and, past
// it, that it has expired.
func secretExpiry(t *timestamppb.Timestamp, now time.Time) string {
	if t == nil || (t.GetSeconds() == 0 && t.GetNanos() == 0) {
		return "never"
	}
	if !now.Before(t.AsTime()) {
		return ts(t) + " (expired)"
	}
	return ts(t)
}

func appRows(tw *tabwriter.Writer, apps []*identityv1.App) {
	row(tw, "APP_ID", "TYPE", "CODE", "NAME", "STATUS", "RATE", "BURST", "SECRET_EXPIRES")
	now := time.Now()
	for _, x := range apps {
		row(tw, x.GetId(), x.GetAppType(), x.GetAppCode(), x.GetName(), appStatus(x.GetStatus()),
			fmtFloat(x.GetRateLimit()), strconv.Itoa(int(x.GetRateBurst())), secretExpiry(x.GetSecretExpireTime(), now))
	}
}

func linkTable(tw *tabwriter.Writer, l *identityv1.AccountLink) {
	fields(tw,
		"ID", l.GetId(),
		"User", l.GetUserId(),
		"App", l.GetAppId(),
		"Account", l.GetAppAccountId(),
		"Status", orgStatus(l.GetStatus()),
		"Created", ts(l.GetCreateTime()),
	)
}

func linkRows(tw *tabwriter.Writer, links []*identityv1.AccountLink) {
	row(tw, "ID", "USER", "APP", "ACCOUNT", "STATUS")
	for _, l := range links {
		row(tw, l.GetId(), l.GetUserId(), l.GetAppId(), l.GetAppAccountId(), orgStatus(l.GetStatus()))
	}
}

// secretTable prints a freshly issued App_Secret.
func secretTable(tw *tabwriter.Writer, r *identityv1.CreateAppResponse) {
	fields(tw,
		"App_ID", r.GetApp().GetId(),
		"App_Secret", r.GetAppSecret(),
		"Secret expires", secretExpiry(r.GetApp().GetSecretExpireTime(), time.Now()),
		"Signing keys", signingKeys(r.GetApp().GetSigningKeys()),
		"Signed requests", signedRequests(r.GetApp()),
	)
	fmt.Fprintln(tw, "The App_Secret is shown only once: store it securely now; it cannot be retrieved later (use rotate-secret if it is lost).")
}

// maxConcurrent shows an application's concurrency limit.
func maxConcurrent(n int32) string {
	if n <= 0 {
		return "no bound"
	}
	return strconv.Itoa(int(n)) + " calls in progress"
}

// legacyIPOnly shows whether the legacy Hessian/SOAP authenticate may name
// the application by type and code alone.
func legacyIPOnly(on bool) string {
	if on {
		return "yes (legacy Hessian/SOAP authenticate by type and code from the allow-list, no secret)"
	}
	return "no"
}

// nameReleaseOut words what Authenticate answers of the person's name.
func nameReleaseOut(v string) string {
	switch v {
	case "", "full":
		return "full"
	case "masked":
		return "masked (first character)"
	}
	return v
}
