// Package provision is the provisioning domain of the sync component: the
// business systems (applications) that keep their own user tables
// subscribe to a selection of people, orgs and groups and get them pushed
// through a transport (signed webhook, SCIM 2.0, LDAP).
//
// The strategies of the maritime design:
//   - immediate: each change of the local CHANGES stream that touches the
//     selection becomes a delivery at once; a failed delivery is retried
//     with back-off, then dead-lettered with an alert;
//   - batch: the whole selection (or a part of it: by org, by role) is
//     delivered on demand or on a schedule;
//   - resync: the same, after the fact, for a whole selection.
//
// Every delivery is a row (change, application, attempt count, last error,
// latency), so a killed process resumes where it stopped and reports count
// successes and failures per application per day.
//
// Deliveries carry the object's current state (from the projection this
// package keeps of the CHANGES stream), not the change alone: delivering
// twice is harmless, and the transports make each operation idempotent
// (SCIM looks the resource up by externalId before creating it).
package provision

import (
	"cmp"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/uias/uias/pkg/config"
)

// Transport kinds.
const (
	Webhook = "webhook"
	SCIM    = "scim"
	LDAP    = "ldap"
	// SOAP posts SOAP 1.1 operations (syncUser, deleteUser, …) described
	// by a WSDL (package soap; docs/adr/0038).
	SOAP = "soap"
)

// Strategies.
const (
	// Immediate delivers each change as it comes (and batches on demand).
	Immediate = "immediate"
	// Batch delivers the selection on a schedule and on demand only.
	Batch = "batch"
)

// Object kinds of the projection (those of CHANGES: <component>.<entity>).
const (
	KindUser  = "identity.user"
	KindOrg   = "identity.org"
	KindGroup = "identity.group"
	// KindRole is an application's role (authz), delivered only to the
	// subscriptions of that application with DeliverRoles (docs/adr/0024).
	KindRole = "authz.role"
)

// Operations of a delivery.
const (
	// OpUpsert creates or updates the object at the business system.
	OpUpsert = "upsert"
	// OpDelete removes it (deleted, or no longer in the selection).
	OpDelete = "delete"
	// OpDisable keeps a person who left the selection at the business
	// system, inactive (subscriptions with the setting on_leave=disable).
	OpDisable = "disable"
)

// What happens to a person who leaves a subscription's selection (setting
// on_leave): deleted at the business system (the default), or disabled
// (kept, inactive: SCIM active=false, webhook op "disable"). Orgs and
// groups that leave are always deleted, and so is anyone deleted in UIAS.
const (
	SettingOnLeave = "on_leave"
	LeaveDelete    = "delete"
	LeaveDisable   = "disable"
)

// Delivery states.
const (
	Pending   = "pending"
	Delivered = "delivered"
	Dead      = "dead"
)

// Selection is what a subscription receives. A person is selected when any
// part selects them: their org is inside one of Orgs' subtrees, they are a
// member of one of Groups, they hold one of Roles (granted to them, to a
// group of theirs or to an org above them), or (Linked) they have an
// account link to the subscribing application. Orgs inside Orgs' subtrees
// and the groups of Groups are delivered too.
type Selection struct {
	Orgs   []string
	Roles  []string
	Groups []string
	Linked bool
}

// Empty reports whether the selection selects nothing.
func (s Selection) Empty() bool {
	return len(s.Orgs) == 0 && len(s.Roles) == 0 && len(s.Groups) == 0 && !s.Linked
}

// Subscription is one application's subscription.
type Subscription struct {
	ID string
	// App is the subscribing application's id.
	App       string
	Name      string
	Selection Selection
	Transport string
	// Endpoint: the webhook URL, the SCIM base URL (…/scim/v2) or the LDAP
	// URL (ldap://host:port).
	Endpoint string
	// Settings of the transport (LDAP: base_dn, bind_dn; SCIM: none).
	Settings map[string]string
	// Secret is the webhook signing key, the SCIM bearer token or the LDAP
	// bind password. Sealed at rest, never logged, never answered.
	Secret   string
	Strategy string
	// BatchEvery runs a batch of the whole selection this often (0: none;
	// with BatchAt: every day).
	BatchEvery time.Duration
	// BatchAt ("HH:MM", 24-hour) runs the scheduled batches at that time of
	// day in BatchTimeZone (an IANA name; "": UTC); BatchEvery is then a
	// whole number of days ("" : the period alone, from the last batch).
	BatchAt, BatchTimeZone string
	Enabled                bool
	CreatedAt              time.Time
	UpdatedAt              time.Time
	// LastBatchAt is when the last scheduled batch was enqueued.
	LastBatchAt time.Time
	// DeliverRoles delivers the subscribing application's roles (kind
	// authz.role: code, name, permissions, and the selected people who
	// hold each) and, on each person delivered, the roles of that
	// application the person holds (granted to them, to a group of
	// theirs or to an org above them). Off by default (docs/adr/0024).
	DeliverRoles bool
	// InitialBatch is the batch that delivered the whole selection when
	// the subscription was created (or first enabled): "" while it is
	// still to be enqueued, "before" for subscriptions created before
	// initial deliveries existed.
	InitialBatch string
}

// HasSecret reports whether a secret is set (what callers are told).
func (s *Subscription) HasSecret() bool { return s.Secret != "" }

// LeaveOp is the operation that removes o from the business system when it
// leaves the selection (not deleted in UIAS): OpDisable for a person when
// the subscription says on_leave=disable, else OpDelete.
func (s *Subscription) LeaveOp(o *Object) string {
	if o != nil && !o.Deleted && o.Kind == KindUser && s.Settings[SettingOnLeave] == LeaveDisable {
		return OpDisable
	}
	return OpDelete
}

// SameSelection reports whether a and b select the same (the order of the
// ids aside).
func SameSelection(a, b Selection) bool {
	same := func(x, y []string) bool {
		x, y = slices.Clone(x), slices.Clone(y)
		slices.Sort(x)
		slices.Sort(y)
		return slices.Equal(slices.Compact(x), slices.Compact(y))
	}
	return a.Linked == b.Linked && same(a.Orgs, b.Orgs) && same(a.Roles, b.Roles) && same(a.Groups, b.Groups)
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

var headerRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)

// reservedHeader says why name cannot carry the SOAP secret ("": it can):
// Go drops it or writes it itself, it is hop-by-hop (proxies drop it), or
// the request sets it (review sec30a I3).
func reservedHeader(name string, basic bool) string {
	switch http.CanonicalHeaderKey(name) {
	case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
		return "Go's HTTP client writes that header itself and drops a value set for it (the secret would never be sent)"
	case "Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "Proxy-Authenticate", "Te", "Upgrade", "Expect":
		return "a hop-by-hop or protocol header (proxies drop or act on it)"
	case "Content-Type", "Soapaction", "X-Uias-Delivery":
		return "the request sets that header itself"
	case "Authorization":
		if basic {
			return "auth basic sends HTTP Basic in it"
		}
	}
	return ""
}

var dnsNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.)*[A-Za-z0-9-]{1,63}$`)

// Validate checks a subscription before it is stored; its error is a
// ValidationError naming the field.
// InClear reports whether s delivers over plain http:// or ldap:// to
// another machine: people's data and the business system's credentials
// cross the network unencrypted.
func (s *Subscription) InClear() bool {
	u, err := url.Parse(s.Endpoint)
	if err == nil && u.Scheme == "ldap" && s.Settings["start_tls"] == "true" {
		return false
	}
	return err == nil && (u.Scheme == "http" || u.Scheme == "ldap") && !config.LoopbackHost(u.Hostname())
}

// CheckInClear refuses an endpoint in clear to another machine (JR/T
// 0185-2020 9.2.2; gap2 G6): a new subscription's, or a changed one's.
// One stored before the rule keeps delivering (the engine warns of it)
// and can be edited otherwise, paused included (review sec22 M5).
func (s *Subscription) CheckInClear() error {
	if !s.InClear() {
		return nil
	}
	if s.Transport == LDAP {
		return &ValidationError{Field: "endpoint", Msg: "must be ldaps:// (or ldap:// with the setting start_tls=true): plain ldap:// " +
			"only to this machine (the bind password and people's data would cross the network in clear)"}
	}
	return &ValidationError{Field: "endpoint", Msg: fmt.Sprintf("must be https: plain http only to this machine (people's data "+
		"and the %s credentials would cross the network in clear)", s.Transport)}
}

func (s *Subscription) Validate() error {
	bad := func(field, format string, a ...any) error {
		return &ValidationError{Field: field, Msg: fmt.Sprintf(format, a...)}
	}
	if !idRE.MatchString(s.App) {
		return bad("app", "must name the subscribing application's id")
	}
	if strings.TrimSpace(s.Name) == "" {
		return bad("name", "is required")
	}
	if s.Selection.Empty() {
		return bad("selection", "selects nothing: give orgs, roles, groups or linked")
	}
	switch s.Strategy {
	case Immediate, Batch:
	default:
		return bad("strategy", "must be %q or %q, got %q", Immediate, Batch, s.Strategy)
	}
	if s.BatchEvery != 0 && s.BatchEvery < time.Minute {
		return bad("batch_every", "must be 0 (no schedule) or at least 1m, got %s", s.BatchEvery)
	}
	if err := s.checkBatchAt(); err != nil {
		return err
	}
	u, err := url.Parse(s.Endpoint)
	if err != nil || u.Host == "" {
		return bad("endpoint", "must be an absolute URL")
	}
	switch s.Transport {
	case Webhook, SCIM:
		if u.Scheme != "https" && u.Scheme != "http" {
			return bad("endpoint", "must be an http(s) URL for %s", s.Transport)
		}
		if s.Transport == SCIM {
			if err := checkRolesAs(s.Settings); err != nil {
				return err
			}
		}
	case SOAP:
		if u.Scheme != "https" && u.Scheme != "http" {
			return bad("endpoint", "must be an http(s) URL for soap (the business system's SOAP endpoint)")
		}
		if h := s.Settings["secret_header"]; h != "" {
			if why := reservedHeader(h, s.Settings["auth"] == "basic"); why != "" {
				return bad("settings.secret_header", "cannot be %s: %s; name a header of your own such as X-Uias-Secret",
					http.CanonicalHeaderKey(h), why)
			}
		}
		switch s.Settings["auth"] {
		case "", "header":
			if len(s.Secret) < 16 {
				return bad("secret", "must be at least 16 characters: the shared secret sent in the %s header",
					cmp.Or(s.Settings["secret_header"], "X-Uias-Secret"))
			}
			if h := s.Settings["secret_header"]; h != "" && !headerRE.MatchString(h) {
				return bad("settings.secret_header", "must be an HTTP header name such as X-Uias-Secret, got %q", h)
			}
		case "basic":
			if s.Settings["username"] == "" || strings.Contains(s.Settings["username"], ":") {
				return bad("settings.username", "is required for auth basic (the HTTP Basic user name, without a colon)")
			}
			if s.Secret == "" {
				return bad("secret", "is required for auth basic (the HTTP Basic password)")
			}
		default:
			return bad("settings.auth", "must be header (a shared secret header, the default) or basic (HTTP Basic), got %q",
				s.Settings["auth"])
		}
	case LDAP:
		if u.Scheme != "ldap" && u.Scheme != "ldaps" {
			return bad("endpoint", "must be an ldap:// or ldaps:// URL")
		}
		if s.Settings["base_dn"] == "" {
			return bad("settings.base_dn", "is required for ldap (the entry under which ou=people, ou=orgs and ou=groups are written)")
		}
		switch s.Settings["profile"] {
		case "", "openldap":
			switch s.Settings["group_class"] {
			case "", "groupOfNames", "groupOfUniqueNames":
			default:
				return bad("settings.group_class", "must be groupOfNames or groupOfUniqueNames, got %q", s.Settings["group_class"])
			}
		case "ad":
			if gc := s.Settings["group_class"]; gc != "" && gc != "group" {
				return bad("settings.group_class", "is group for profile ad (Active Directory's group class), got %q", gc)
			}
			if upn := s.Settings["upn_suffix"]; upn != "" && !dnsNameRE.MatchString(upn) {
				return bad("settings.upn_suffix", "must be a DNS name such as example.org (the part after the @ of userPrincipalName), got %q", upn)
			}
		default:
			return bad("settings.profile", "must be openldap (the default: inetOrgPerson entries) or ad (Active Directory), got %q",
				s.Settings["profile"])
		}
		switch s.Settings["start_tls"] {
		case "", "false":
		case "true":
			if u.Scheme != "ldap" {
				return bad("settings.start_tls", "is for ldap:// endpoints; ldaps:// is TLS from the start")
			}
		default:
			return bad("settings.start_tls", "must be true or false, got %q", s.Settings["start_tls"])
		}
	default:
		return bad("transport", "must be webhook, scim, ldap or soap, got %q", s.Transport)
	}
	switch s.Settings[SettingOnLeave] {
	case "", LeaveDelete:
	case LeaveDisable:
		if s.Transport == LDAP && s.Settings["profile"] != "ad" {
			return bad("settings.on_leave", "must be delete for ldap (an inetOrgPerson entry has no disabled state; "+
				"profile ad disables through userAccountControl)")
		}
	default:
		return bad("settings.on_leave", "must be delete or disable, got %q", s.Settings[SettingOnLeave])
	}
	if s.Transport == Webhook && len(s.Secret) < 16 {
		return bad("secret", "must be at least 16 characters for a signed webhook")
	}
	return nil
}

// SettingCAFile is the ldap setting naming the PEM file of the CAs the
// directory's certificate must chain to.
const SettingCAFile = "ca_file"

// ReadCAFile reads the CAs of an ldap subscription's ca_file: an absolute
// path of a readable PEM file holding at least one certificate. Its error
// is the same whatever went wrong (missing, unreadable, not PEM, no
// certificate) and quotes nothing of the file: the setting is chosen
// through the API, the file is on the sync server (review sec30a I4).
func ReadCAFile(path string) (*x509.CertPool, error) {
	bad := errors.New("must be the absolute path of a readable PEM file holding at least one CA certificate on the sync " +
		"server (the file is missing, unreadable or holds no certificate)")
	if !filepath.IsAbs(path) {
		return nil, bad
	}
	data, err := os.ReadFile(filepath.Clean(path))
	if err != nil {
		return nil, bad
	}
	pool, n := x509.NewCertPool(), 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, bad
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, bad
	}
	return pool, nil
}

// CheckFiles checks the server-side files a subscription names (ldap's
// ca_file), when it is created or when they change.
func (s *Subscription) CheckFiles() error {
	if f := s.Settings[SettingCAFile]; s.Transport == LDAP && f != "" {
		if _, err := ReadCAFile(f); err != nil {
			return &ValidationError{Field: "settings." + SettingCAFile, Msg: err.Error()}
		}
	}
	return nil
}

// ValidationError is a refused subscription field.
type ValidationError struct{ Field, Msg string }

func (e *ValidationError) Error() string { return e.Field + " " + e.Msg }

// Delivery is one object to deliver to one subscription.
type Delivery struct {
	Seq          int64
	Subscription string
	App          string
	// EventID is the change's event id, or "batch:<batch id>" for a batch.
	EventID  string
	Kind     string
	ObjectID string
	Op       string
	BatchID  string
	Status   string
	Attempts int
	// LastError is the last failure, as a person reads it.
	LastError   string
	NextAt      time.Time
	CreatedAt   time.Time
	DeliveredAt time.Time
	// LatencyMS is from the delivery's creation to its success.
	LatencyMS int64
}

// Object is the projected current state of an object.
type Object struct {
	Kind, ID string
	Data     json.RawMessage
	Deleted  bool
}

// Field returns the string field name of the object's data ("" if none).
func (o *Object) Field(name string) string {
	// The other fields are kept raw: only name's value is decoded.
	var m map[string]json.RawMessage
	if o == nil || json.Unmarshal(o.Data, &m) != nil {
		return ""
	}
	raw, ok := m[name]
	if !ok {
		return ""
	}
	var val any
	if json.Unmarshal(raw, &val) != nil {
		return ""
	}
	switch v := val.(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(v)
	case bool:
		return fmt.Sprint(v)
	}
	return ""
}

// Item is what a transport delivers: the delivery and the object's state.
type Item struct {
	Delivery Delivery
	Object   *Object
	// Members of a group, for group objects.
	Members []Member
	// Roles are, for a person delivered to a subscription with
	// DeliverRoles (not removed), the roles of the subscribing application
	// the person holds ([] when none), by code; [] for a person delivered
	// by the edit that turns DeliverRoles off (WithdrawsRoles); nil
	// otherwise.
	Roles []RoleRef
	// Orgs is where the object sits in the org tree, nearest first: for an
	// org its ancestors, for a person or a group their org and its
	// ancestors. Filled only for transports that implement OrgPlaced (LDAP
	// places orgs as nested entries).
	Orgs []*Object
}

// OrgPlaced is implemented by transports that need Item.Orgs.
type OrgPlaced interface{ NeedsOrgs() }

// View is one object's current state read by id (Options.Views): Data as
// identity's CHANGES events carry it.
type View struct {
	ID   string
	Data json.RawMessage
}

// Member is a member of a group (or a holder of a role): their user id
// and login name.
type Member struct{ ID, Login string }

// RoleRef is a role a person holds, as delivered with the person: its
// authz id, code and name.
type RoleRef struct {
	ID   string `json:"id"`
	Code string `json:"code"`
	Name string `json:"name,omitempty"`
}

// ReportRow is one application's deliveries of one day (UTC).
type ReportRow struct {
	Day       string // 2006-01-02
	App       string
	Delivered int64
	Failed    int64 // attempts that failed
	Dead      int64
	Pending   int64
	// AvgLatencyMS of the deliveries that succeeded.
	AvgLatencyMS int64
}

// SubStatus is a subscription's queue: what waits and since when.
type SubStatus struct {
	Subscription Subscription
	Pending      int64
	Dead         int64
	// Oldest is the creation time of the oldest pending delivery (zero: none).
	Oldest    time.Time
	LastError string
	// InitialPending counts the deliveries of the initial batch that
	// still wait.
	InitialPending int64
}

// Lag is how long the oldest pending delivery has waited at now.
func (s SubStatus) Lag(now time.Time) time.Duration {
	if s.Oldest.IsZero() {
		return 0
	}
	return now.Sub(s.Oldest)
}

// Backoff is the wait before attempt n+1 after n failures: first, doubling
// up to max, with ±20% jitter so that systems that fail together are not
// retried together.
func Backoff(n int, first, max time.Duration) time.Duration {
	d := first
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	j := time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
	return max2(j, time.Millisecond)
}

func max2(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// Filter narrows a batch: only people inside Org's subtree and/or holding
// Role (each empty: no narrowing).
type Filter struct {
	Org, Role string
	// RolesOnly narrows a batch to the application's roles (design 004
	// 2.1.5.3: "根据“应用系统”选择对应的角色，完成角色的同步"): each role with its
	// holders, and no org, group or person, except where the business
	// system keeps the roles on the person (RolesOnPeople: SCIM's User
	// roles), which gets the selected people who hold a role instead.
	// With Role, that role alone. Subscriptions that do not deliver roles
	// get nothing.
	RolesOnly bool
}

// Reader is what matching reads of the projection.
type Reader interface {
	Object(kind, id string) (*Object, error)
	// GroupsOf lists the groups user is a member of.
	GroupsOf(user string) ([]string, error)
	// AppsLinked lists the applications user has an account link to.
	AppsLinked(user string) ([]string, error)
	// Grants lists the roles granted to subject (kind user, group or org):
	// by the grants in force at at (zero: all, whatever their window).
	Grants(kind, id string, at time.Time) ([]string, error)
}

// Window is when a grant is in force: authz's valid_from and valid_until
// (zero: unbounded on that side; in force from From, no more at Until).
type Window struct{ From, Until time.Time }

// ActiveAt reports whether w is in force at t (as authz's
// Grant.ActiveAt).
func (w Window) ActiveAt(t time.Time) bool {
	return (w.From.IsZero() || !t.Before(w.From)) && (w.Until.IsZero() || t.Before(w.Until))
}

// GrantWindow is a grant whose window starts or ends at At.
type GrantWindow struct {
	ID, Role, Kind, Subject string
	At                      time.Time
}

// OrgPath returns org and its ancestors (nearest first), stopping on a
// cycle or after 64 levels.
func OrgPath(r Reader, org string) ([]string, error) {
	var out []string
	for org != "" && len(out) < 64 && !slices.Contains(out, org) {
		out = append(out, org)
		o, err := r.Object(KindOrg, org)
		if err != nil {
			return nil, err
		}
		if o == nil {
			break
		}
		org = o.Field("parent_id")
	}
	return out, nil
}

// UserMatches reports whether the user (its projected state u) is in the
// subscription's selection and passes f.
func UserMatches(r Reader, s *Subscription, u *Object, f Filter) (bool, error) {
	if u == nil || u.Deleted {
		return false, nil
	}
	path, err := OrgPath(r, u.Field("org_id"))
	if err != nil {
		return false, err
	}
	if f.Org != "" && !slices.Contains(path, f.Org) {
		return false, nil
	}
	var roles []string
	if len(s.Selection.Roles) > 0 || f.Role != "" {
		if roles, err = rolesOf(r, u.ID, path, time.Time{}); err != nil {
			return false, err
		}
		if f.Role != "" && !slices.Contains(roles, f.Role) {
			return false, nil
		}
	}
	sel := s.Selection
	for _, o := range sel.Orgs {
		if slices.Contains(path, o) {
			return true, nil
		}
	}
	for _, role := range sel.Roles {
		if slices.Contains(roles, role) {
			return true, nil
		}
	}
	if len(sel.Groups) > 0 {
		gs, err := r.GroupsOf(u.ID)
		if err != nil {
			return false, err
		}
		for _, g := range sel.Groups {
			if slices.Contains(gs, g) {
				return true, nil
			}
		}
	}
	if sel.Linked {
		apps, err := r.AppsLinked(u.ID)
		if err != nil {
			return false, err
		}
		if slices.Contains(apps, s.App) {
			return true, nil
		}
	}
	return false, nil
}

// rolesOf lists the roles a user holds: granted to them, to their groups,
// or to an org on their path; by the grants in force at at (zero: all).
func rolesOf(r Reader, user string, path []string, at time.Time) ([]string, error) {
	roles, err := r.Grants("user", user, at)
	if err != nil {
		return nil, err
	}
	gs, err := r.GroupsOf(user)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		more, err := r.Grants("group", g, at)
		if err != nil {
			return nil, err
		}
		roles = append(roles, more...)
	}
	for _, o := range path {
		more, err := r.Grants("org", o, at)
		if err != nil {
			return nil, err
		}
		roles = append(roles, more...)
	}
	return roles, nil
}

// OrgMatches reports whether an org is delivered: inside a selected subtree.
func OrgMatches(r Reader, s *Subscription, o *Object, f Filter) (bool, error) {
	if o == nil || o.Deleted || len(s.Selection.Orgs) == 0 || f.Role != "" {
		return false, nil
	}
	path, err := OrgPath(r, o.ID)
	if err != nil {
		return false, err
	}
	if f.Org != "" && !slices.Contains(path, f.Org) {
		return false, nil
	}
	for _, sel := range s.Selection.Orgs {
		if slices.Contains(path, sel) {
			return true, nil
		}
	}
	return false, nil
}

// GroupMatches reports whether a group is delivered: one of the selected
// groups, or a group of an org inside a selected subtree.
func GroupMatches(r Reader, s *Subscription, g *Object, f Filter) (bool, error) {
	if g == nil || g.Deleted || f.Role != "" {
		return false, nil
	}
	path, err := OrgPath(r, g.Field("org_id"))
	if err != nil {
		return false, err
	}
	if f.Org != "" && !slices.Contains(path, f.Org) {
		return false, nil
	}
	if slices.Contains(s.Selection.Groups, g.ID) {
		return true, nil
	}
	for _, sel := range s.Selection.Orgs {
		if slices.Contains(path, sel) {
			return true, nil
		}
	}
	return false, nil
}

// Matches dispatches on the object's kind.
func Matches(r Reader, s *Subscription, o *Object, f Filter) (bool, error) {
	if o == nil {
		return false, nil
	}
	switch o.Kind {
	case KindUser:
		return UserMatches(r, s, o, f)
	case KindOrg:
		return OrgMatches(r, s, o, f)
	case KindGroup:
		return GroupMatches(r, s, o, f)
	case KindRole:
		return RoleMatches(s, o, f), nil
	}
	return false, nil
}

// RoleMatches reports whether a role is delivered: s delivers roles and
// the role is one of s's application (never another application's, nor a
// global one), in a batch narrowed by role only that role (a batch
// narrowed by org delivers people only).
func RoleMatches(s *Subscription, o *Object, f Filter) bool {
	if o == nil || o.Deleted || !s.DeliverRoles || f.Org != "" || (f.Role != "" && f.Role != o.ID) {
		return false
	}
	return o.Field("app") != "" && o.Field("app") == s.App
}

// UserRoles lists the roles of application app that user holds (granted
// to them, to a group of theirs or to an org on their path: the
// projection of authz's grants in force at at), by code. Roles unknown to
// the projection or of another application are left out; a person
// disabled holds none (ActivePerson).
func UserRoles(r Reader, user, app string, at time.Time) ([]RoleRef, error) {
	u, err := r.Object(KindUser, user)
	if err != nil || u == nil || !ActivePerson(u) {
		return []RoleRef{}, err
	}
	path, err := OrgPath(r, u.Field("org_id"))
	if err != nil {
		return nil, err
	}
	ids, err := rolesOf(r, user, path, at)
	if err != nil {
		return nil, err
	}
	slices.Sort(ids)
	out := []RoleRef{}
	for _, id := range slices.Compact(ids) {
		o, err := r.Object(KindRole, id)
		if err != nil {
			return nil, err
		}
		if o == nil || o.Deleted || o.Field("app") != app {
			continue
		}
		out = append(out, RoleRef{ID: id, Code: o.Field("code"), Name: o.Field("name")})
	}
	slices.SortFunc(out, func(a, b RoleRef) int { return strings.Compare(a.Code, b.Code) })
	return out, nil
}

// SCIM settings of role delivery (docs/adr/0044).
const (
	// SettingRolesAs says how a SCIM service provider receives the roles
	// of a subscription with DeliverRoles: RolesAsAttribute (the default:
	// the User's RFC 7643 roles attribute) or RolesAsGroups (a Group per
	// role, its members the people who hold it).
	SettingRolesAs   = "roles_as"
	RolesAsAttribute = "attribute"
	RolesAsGroups    = "groups"
	// SettingRoleGroupPrefix starts the displayName of a role's Group
	// (RolesAsGroups), followed by the role's code.
	SettingRoleGroupPrefix = "role_group_prefix"
	// DefaultRoleGroupPrefix is SettingRoleGroupPrefix's default.
	DefaultRoleGroupPrefix = "role:"
)

// RolesOnPeople reports whether the business system of s keeps the roles
// on the people (SCIM's User roles attribute) rather than as objects of
// their own with members (the webhook's and SOAP's roles, LDAP's
// ou=roles, SCIM's Groups with roles_as=groups).
func RolesOnPeople(s *Subscription) bool {
	return s.Transport == SCIM && s.Settings[SettingRolesAs] != RolesAsGroups
}

// RoleGroupName is the displayName of the SCIM Group of a role of code
// (roles_as=groups).
func RoleGroupName(s *Subscription, code string) string {
	p, ok := s.Settings[SettingRoleGroupPrefix]
	if !ok {
		p = DefaultRoleGroupPrefix
	}
	return p + code
}

func checkRolesAs(settings map[string]string) error {
	switch settings[SettingRolesAs] {
	case "", RolesAsAttribute:
		if _, ok := settings[SettingRoleGroupPrefix]; ok {
			return &ValidationError{Field: "settings." + SettingRoleGroupPrefix,
				Msg: "is for roles_as=groups (the start of each role's Group name)"}
		}
	case RolesAsGroups:
		p, set := settings[SettingRoleGroupPrefix]
		if set && p == "" || len(p) > 64 || strings.TrimSpace(p) != p {
			// Not empty: the prefix keeps the roles' Groups apart from the
			// groups' (review sec31c M2).
			return &ValidationError{Field: "settings." + SettingRoleGroupPrefix,
				Msg: "must be 1 to 64 bytes, without leading or trailing spaces (such as role: or crm-)"}
		}
	default:
		return &ValidationError{Field: "settings." + SettingRolesAs,
			Msg: fmt.Sprintf("must be attribute (the User's roles attribute, the default) or groups (a Group per role), got %q",
				settings[SettingRolesAs])}
	}
	return nil
}

// ActivePerson reports whether person u is active in UIAS (identity's
// status ACTIVE, or no status known). A person disabled keeps their grants
// in authz but holds no role at a business system: they are no role's
// member there and carry no roles, until enabled again (docs/adr/0044).
//
// A person disabled by the level-1 centre (ADR 0048; disabled_by_centre
// set) is not active either, whatever their home's status.
func ActivePerson(u *Object) bool {
	st := u.Field("status")
	return (st == "" || st == "1") && u.Field(FieldDisabledByCentre) == ""
}

// FieldDisabledByCentre is the field of a person's object naming the
// level-1 centre that disabled them ("" or absent: none), from identity's
// lock.disabled and lock.enabled (ADR 0048).
const FieldDisabledByCentre = "disabled_by_centre"

// kindLock is the kind of identity's lock changes (a lock or disable of a
// person made at a centre other than their home).
const kindLock = "identity.lock"

// HTTPClient is the client of the http transports (webhook, SCIM, SOAP):
// it follows no redirect. Go sends a redirect's target the custom headers
// (the webhook's signature, SOAP's shared secret), after a 307/308 the
// body (the people's data) too, to whatever host the answer names, and
// turns a POST into a GET after a 301/302/303 (reviews sec22, sec30a M1;
// ADR 0038). A transport answered a redirect fails the delivery
// (Redirected), retried as its other failures.
func HTTPClient() *http.Client {
	return NoRedirects(&http.Client{})
}

// NoRedirects is c (a copy; nil: a default client) following no redirect:
// the redirect's answer is the response.
func NoRedirects(c *http.Client) *http.Client {
	var n http.Client
	if c != nil {
		n = *c
	}
	n.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &n
}

// Redirected is the failed delivery of transport (with what it did, e.g.
// "scim: PUT /Users/1") whose endpoint answered HTTP status, a redirect,
// to location: not followed, retried with back-off (an endpoint moved by
// mistake may come back), then a dead letter. The message names the
// target without its query (it may hold anything).
func Redirected(transport string, status int, location string) error {
	return fmt.Errorf("%s: the endpoint redirected (HTTP %d) to %s: redirects are not followed (the credentials and the "+
		"people's data would go along): set the subscription's endpoint to the right URL", transport, status, RedirectTarget(location))
}

// IsRedirect reports whether status is a redirect (3xx).
func IsRedirect(status int) bool { return status >= 300 && status <= 399 }

// RedirectTarget is a redirect's Location as its scheme, host and path.
func RedirectTarget(location string) string {
	if location == "" {
		return "no Location"
	}
	u, err := url.Parse(location)
	if err != nil {
		return "an unreadable Location"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
