// Package ldap is the LDAP transport of provisioning (go-ldap/v3). Under
// the subscription's base_dn it keeps three branches:
//
//   - ou=people: people as inetOrgPerson entries uid=<login name>, found
//     again by employeeNumber (their UIAS user id), so a renamed login
//     moves the entry (modrdn) instead of adding a second one; ou and
//     departmentNumber carry their org's name and code;
//   - ou=orgs: orgs as organizationalUnit entries ou=<org code>, nested as
//     the org tree is (each selected org at the top), found again by
//     businessCategory "uias:<org id>", so an org moved in UIAS is moved in
//     the directory (modrdn with a new superior, its subtree with it) and
//     an org removed (or no longer selected) is removed with its subtree;
//   - ou=groups: groups as groupOfNames (member) or groupOfUniqueNames
//     (uniqueMember, setting group_class) entries cn=<group code>, found
//     again by businessCategory "uias:<group id>", whose members are the
//     DNs of their people's entries. A person renamed or removed is renamed
//     or removed in the groups too (as OpenLDAP's refint overlay would).
//     An empty group holds the empty DN as its one member (both classes
//     require a member);
//   - ou=roles (subscriptions with deliver_roles only): the application's
//     roles as entries of the same class cn=<role code>, found again by
//     businessCategory "uias:<role id>", whose members are the DNs of the
//     selected people who hold the role, its name as description
//     (docs/adr/0024).
//
// With the setting profile=ad the same branches are written the way
// Windows Active Directory (and Samba AD) takes them (docs/adr/0038): see
// ad.go.
//
// TLS: ldaps:// from the start, or ldap:// with the setting start_tls=true;
// the setting ca_file names the PEM file (on the sync server) of the CAs
// the directory's certificate chains to (default: the system's).
package ldap

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/uias/uias/services/sync/provision"
)

// Group classes (setting group_class).
const (
	GroupOfNames       = "groupOfNames"
	GroupOfUniqueNames = "groupOfUniqueNames"
)

// anchor is the attribute that holds an org's or group's UIAS id.
const anchor = "businessCategory"

// Transport writes into one directory.
type Transport struct {
	URL, BaseDN, BindDN, Password string
	// GroupClass is GroupOfNames (the default) or GroupOfUniqueNames.
	GroupClass string
	// Roots are the selected orgs: each is placed right under ou=orgs.
	Roots []string
	// Roles: the subscription delivers roles (ou=roles is kept).
	Roles bool
	// AD writes the Active Directory layout (profile=ad); UPNSuffix is
	// the part after the @ of userPrincipalName.
	AD        bool
	UPNSuffix string
	// TLS is the client configuration of ldaps:// and StartTLS (nil: the
	// system's CAs, the URL's host name); StartTLS upgrades ldap://.
	TLS      *tls.Config
	StartTLS bool
	conn     *goldap.Conn
}

// Settings of the transport.
const (
	SettingProfile  = "profile"
	ProfileAD       = "ad"
	SettingCAFile   = "ca_file"
	SettingStartTLS = "start_tls"
	SettingUPN      = "upn_suffix"
)

// New returns the transport of s (settings base_dn, bind_dn, group_class,
// profile, upn_suffix, ca_file and start_tls; the secret is the bind
// password). It connects on the first delivery.
func New(s *provision.Subscription) (provision.Transport, error) {
	t := &Transport{URL: s.Endpoint, BaseDN: s.Settings["base_dn"], BindDN: s.Settings["bind_dn"], Password: s.Secret,
		GroupClass: cmp.Or(s.Settings["group_class"], GroupOfNames), Roots: s.Selection.Orgs, Roles: s.DeliverRoles,
		AD: s.Settings[SettingProfile] == ProfileAD, StartTLS: s.Settings[SettingStartTLS] == "true"}
	if t.AD {
		t.GroupClass = ADGroup
		t.UPNSuffix = cmp.Or(s.Settings[SettingUPN], DNSDomain(t.BaseDN))
	}
	if u, err := url.Parse(s.Endpoint); err == nil {
		t.TLS = &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	}
	if f := s.Settings[SettingCAFile]; f != "" && t.TLS != nil {
		pool, err := provision.ReadCAFile(f)
		if err != nil {
			return nil, fmt.Errorf("ldap: settings.ca_file %w", err)
		}
		t.TLS.RootCAs = pool
	}
	return t, nil
}

// NeedsOrgs implements provision.OrgPlaced: orgs are placed by their path.
func (t *Transport) NeedsOrgs() {}

// Close implements provision.Transport.
func (t *Transport) Close() error {
	if t.conn != nil {
		err := t.conn.Close()
		t.conn = nil
		return err
	}
	return nil
}

func (t *Transport) people() string { return "ou=people," + t.BaseDN }
func (t *Transport) orgs() string   { return "ou=orgs," + t.BaseDN }
func (t *Transport) groups() string { return "ou=groups," + t.BaseDN }
func (t *Transport) roles() string  { return "ou=roles," + t.BaseDN }

// branches are the ou entries under base_dn.
func (t *Transport) branches() []string {
	if t.Roles {
		return []string{"people", "orgs", "groups", "roles"}
	}
	return []string{"people", "orgs", "groups"}
}

func (t *Transport) memberAttr() string {
	if t.GroupClass == GroupOfUniqueNames {
		return "uniqueMember"
	}
	return "member"
}

func (t *Transport) connect(ctx context.Context) error {
	if t.conn != nil && !t.conn.IsClosing() {
		return nil
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	opts := []goldap.DialOpt{goldap.DialWithDialer(&net.Dialer{Timeout: timeout})}
	if t.TLS != nil {
		opts = append(opts, goldap.DialWithTLSConfig(t.TLS.Clone()))
	}
	c, err := goldap.DialURL(t.URL, opts...)
	if err != nil {
		return fmt.Errorf("ldap: connecting to the directory: %w", err)
	}
	c.SetTimeout(timeout)
	if t.StartTLS && strings.HasPrefix(strings.ToLower(t.URL), "ldap:") {
		cfg := t.TLS
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		if err := c.StartTLS(cfg.Clone()); err != nil {
			_ = c.Close()
			return fmt.Errorf("ldap: StartTLS with the directory: %w", err)
		}
	}
	if t.BindDN != "" {
		if err := c.Bind(t.BindDN, t.Password); err != nil {
			_ = c.Close()
			return fmt.Errorf("ldap: bind as %s refused: %s", t.BindDN, resultText(err))
		}
	}
	t.conn = c
	// the branches are created once (already there: fine)
	for _, ou := range t.branches() {
		dn := "ou=" + ou + "," + t.BaseDN
		add := goldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", []string{"organizationalUnit"})
		add.Attribute("ou", []string{ou})
		if err := c.Add(add); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
			return t.fail("creating "+dn, err)
		}
	}
	return nil
}

// fail wraps err; a lost connection is marked broken so the worker
// reconnects on the next attempt.
func (t *Transport) fail(what string, err error) error {
	if goldap.IsErrorWithCode(err, goldap.ErrorNetwork) || t.conn == nil || t.conn.IsClosing() {
		_ = t.Close()
		return provision.Broken(fmt.Errorf("ldap: %s: the connection was lost: %w", what, err))
	}
	return fmt.Errorf("ldap: %s: %s", what, resultText(err))
}

func resultText(err error) string {
	var le *goldap.Error
	if errors.As(err, &le) {
		name := goldap.LDAPResultCodeMap[le.ResultCode]
		if le.Err != nil {
			return fmt.Sprintf("%s (%d): %v", name, le.ResultCode, le.Err)
		}
		return fmt.Sprintf("%s (%d)", name, le.ResultCode)
	}
	return err.Error()
}

// Deliver implements provision.Transport.
func (t *Transport) Deliver(ctx context.Context, it provision.Item) error {
	switch it.Delivery.Kind {
	case provision.KindUser, provision.KindOrg, provision.KindGroup:
	case provision.KindRole:
		if !t.Roles && it.Delivery.Op == provision.OpUpsert {
			// (never enqueued without deliver_roles; its removal is: the
			// option turned off removes the roles written before)
			return nil
		}
	default:
		return nil
	}
	if err := t.connect(ctx); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		t.conn.SetTimeout(time.Until(dl))
	}
	switch it.Delivery.Kind {
	case provision.KindOrg:
		return t.org(it)
	case provision.KindGroup:
		return t.group(it, t.groups())
	case provision.KindRole:
		return t.group(it, t.roles())
	}
	return t.person(it)
}

// search returns the entries under base that match filter (none when base
// itself is missing).
func (t *Transport) search(base string, scope int, filter string, attrs ...string) ([]*goldap.Entry, error) {
	if len(attrs) == 0 {
		attrs = []string{"1.1"} // no attributes, the DN only
	}
	sr, err := t.conn.Search(goldap.NewSearchRequest(base, scope, goldap.NeverDerefAliases, 0, 0, false, filter, attrs, nil))
	if err != nil {
		if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			return nil, nil
		}
		return nil, t.fail("searching "+base, err)
	}
	return sr.Entries, nil
}

// first returns the DN of the first entry ("" if none).
func first(es []*goldap.Entry) string {
	if len(es) == 0 {
		return ""
	}
	return es[0].DN
}

func anchorOf(id string) string { return "uias:" + id }

// personClass is the class of people's entries.
func (t *Transport) personClass() string {
	if t.AD {
		return "user"
	}
	return "inetOrgPerson"
}

// anchorAttr is the attribute that holds an org's or group's UIAS id:
// Active Directory's group class has no businessCategory.
func (t *Transport) anchorAttr() string {
	if t.AD {
		return "adminDescription"
	}
	return anchor
}

// findPerson returns the DN of the entry of the person id ("" if none).
func (t *Transport) findPerson(id string) (string, error) {
	return t.find(t.people(), goldap.ScopeSingleLevel,
		"(&(objectClass="+t.personClass()+")(employeeNumber="+goldap.EscapeFilter(id)+"))")
}

func (t *Transport) person(it provision.Item) error {
	o, d := it.Object, it.Delivery
	cur, err := t.findPerson(d.ObjectID)
	if err != nil {
		return err
	}
	if t.AD && d.Op != provision.OpDelete {
		return t.adPerson(it, cur)
	}
	if d.Op != provision.OpUpsert {
		// (a disable never comes: subscriptions refuse on_leave=disable
		// for ldap; were one to come, the person is removed)
		if cur == "" {
			return nil
		}
		if err := t.remove(cur); err != nil {
			return err
		}
		return t.renameMember(cur, "")
	}
	login := o.Field("login_name")
	if login == "" {
		return fmt.Errorf("ldap: user %s has no login name in the projection", d.ObjectID)
	}
	name := cmp.Or(o.Field("display_name"), login)
	e := entry{rdn: "uid=" + goldap.EscapeDN(login), parent: t.people(),
		create: map[string][]string{"objectClass": {"inetOrgPerson"}, "uid": {login}, "employeeNumber": {d.ObjectID}},
		attrs:  map[string][]string{"cn": {name}, "sn": {name}, "displayName": {name}, "mail": nil, "ou": nil, "departmentNumber": nil}}
	if em := o.Field("email"); em != "" {
		e.attrs["mail"] = []string{em}
	}
	if len(it.Orgs) > 0 {
		org := it.Orgs[0]
		code := cmp.Or(org.Field("code"), org.ID)
		e.attrs["ou"] = []string{cmp.Or(org.Field("name"), code)}
		e.attrs["departmentNumber"] = []string{code}
	}
	moved, err := t.write(cur, e)
	if err == nil && moved {
		err = t.renameMember(cur, e.dn())
	}
	return err
}

// entry is an entry to write: its place, the attributes set when it is
// added (its classes, naming and anchor attributes), and those replaced at
// each write (no value: none).
type entry struct {
	rdn, parent   string
	create, attrs map[string][]string
}

func (e entry) dn() string { return e.rdn + "," + e.parent }

// write adds e when cur is "" (no entry found), else moves cur to e's
// place (modrdn, with a new superior when the parent changed) and replaces
// its attributes. It reports whether cur moved.
func (t *Transport) write(cur string, e entry) (moved bool, _ error) {
	dn := e.dn()
	if cur == "" {
		add := goldap.NewAddRequest(dn, nil)
		for _, m := range []map[string][]string{e.create, e.attrs} {
			for _, k := range sortedKeys(m) {
				if len(m[k]) > 0 {
					add.Attribute(k, m[k])
				}
			}
		}
		if err := t.conn.Add(add); err != nil {
			return false, t.fail("adding "+dn, err)
		}
		return false, nil
	}
	if !sameDN(cur, dn) {
		req := goldap.NewModifyDNRequest(cur, e.rdn, true, "")
		if !sameDN(parentOf(cur), e.parent) {
			req.NewSuperior = e.parent
		}
		if err := t.conn.ModifyDN(req); err != nil {
			return false, t.fail("moving "+cur+" to "+dn, err)
		}
		moved = true
	}
	mod := goldap.NewModifyRequest(dn, nil)
	for _, k := range sortedKeys(e.attrs) {
		mod.Replace(k, e.attrs[k])
	}
	if err := t.conn.Modify(mod); err != nil {
		return moved, t.fail("updating "+dn, err)
	}
	return moved, nil
}

// find returns the DN of the first entry under base that matches filter
// ("" if none).
func (t *Transport) find(base string, scope int, filter string) (string, error) {
	es, err := t.search(base, scope, filter)
	return first(es), err
}

// remove deletes dn (already gone: fine).
func (t *Transport) remove(dn string) error {
	if err := t.conn.Del(goldap.NewDelRequest(dn, nil)); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return t.fail("deleting "+dn, err)
	}
	return nil
}

// renameMember replaces the member old by now ("": removes it) in every
// group (and role) that has it.
func (t *Transport) renameMember(old, now string) error {
	attr := t.memberAttr()
	bases := []string{t.groups()}
	if t.Roles {
		bases = append(bases, t.roles())
	}
	var es []*goldap.Entry
	for _, base := range bases {
		more, err := t.search(base, goldap.ScopeSingleLevel, "("+attr+"="+goldap.EscapeFilter(old)+")", attr)
		if err != nil {
			return err
		}
		es = append(es, more...)
	}
	for _, e := range es {
		var ms []string
		for _, m := range e.GetAttributeValues(attr) {
			if !sameDN(m, old) {
				ms = append(ms, m)
			}
		}
		if now != "" {
			ms = append(ms, now)
		}
		if err := t.setMembers(e.DN, ms); err != nil {
			return err
		}
	}
	return nil
}

// withPlaceholder is members without the empty DN, or the empty DN alone
// when none is left: both group classes require a member.
func withPlaceholder(members []string) []string {
	members = slices.DeleteFunc(members, func(m string) bool { return m == "" })
	if len(members) == 0 {
		return []string{""}
	}
	return members
}

// memberValues is what the member attribute holds: Active Directory's
// group may have none (and refuses the empty DN).
func (t *Transport) memberValues(members []string) []string {
	if t.AD {
		return slices.DeleteFunc(slices.Clone(members), func(m string) bool { return m == "" })
	}
	return withPlaceholder(members)
}

func (t *Transport) setMembers(group string, members []string) error {
	mod := goldap.NewModifyRequest(group, nil)
	mod.Replace(t.memberAttr(), t.memberValues(members))
	if err := t.conn.Modify(mod); err != nil {
		return t.fail("updating the members of "+group, err)
	}
	return nil
}

// orgDN is where org (its code and its ancestors) sits: nested under its
// ancestors up to the first selected org, which sits under ou=orgs.
func (t *Transport) orgDN(org *provision.Object, ancestors []*provision.Object) (rdn, parent string) {
	rdn = "ou=" + goldap.EscapeDN(cmp.Or(org.Field("code"), org.ID))
	parent = t.orgs()
	if slices.Contains(t.Roots, org.ID) {
		return rdn, parent
	}
	n := slices.IndexFunc(ancestors, func(a *provision.Object) bool { return slices.Contains(t.Roots, a.ID) })
	if n < 0 {
		return rdn, parent // not below a selected org (a batch by role): at the top
	}
	for i := n; i >= 0; i-- {
		parent = "ou=" + goldap.EscapeDN(cmp.Or(ancestors[i].Field("code"), ancestors[i].ID)) + "," + parent
	}
	return rdn, parent
}

func (t *Transport) org(it provision.Item) error {
	o, d := it.Object, it.Delivery
	cur, err := t.find(t.orgs(), goldap.ScopeWholeSubtree,
		"(&(objectClass=organizationalUnit)("+t.anchorAttr()+"="+goldap.EscapeFilter(anchorOf(d.ObjectID))+"))")
	if err != nil {
		return err
	}
	if d.Op != provision.OpUpsert {
		if cur == "" {
			return nil
		}
		return t.deleteTree(cur)
	}
	rdn, parent := t.orgDN(o, it.Orgs)
	_, err = t.write(cur, entry{rdn: rdn, parent: parent,
		create: map[string][]string{"objectClass": {"organizationalUnit"}, "ou": {cmp.Or(o.Field("code"), o.ID)},
			t.anchorAttr(): {anchorOf(d.ObjectID)}},
		attrs: map[string][]string{"description": nonEmpty(o.Field("name"))}})
	return err
}

// nonEmpty is v as an attribute's values (none when v is "").
func nonEmpty(v string) []string {
	if v == "" {
		return []string{}
	}
	return []string{v}
}

// deleteTree removes dn and every entry below it, deepest first.
func (t *Transport) deleteTree(dn string) error {
	es, err := t.search(dn, goldap.ScopeWholeSubtree, "(objectClass=*)")
	if err != nil {
		return err
	}
	depth := func(s string) int {
		p, err := goldap.ParseDN(s)
		if err != nil {
			return strings.Count(s, ",")
		}
		return len(p.RDNs)
	}
	slices.SortFunc(es, func(a, b *goldap.Entry) int { return cmp.Compare(depth(b.DN), depth(a.DN)) })
	for _, e := range es {
		if err := t.remove(e.DN); err != nil {
			return err
		}
	}
	return nil
}

// group writes a group under ou=groups, or a role under ou=roles (branch).
func (t *Transport) group(it provision.Item, branch string) error {
	o, d := it.Object, it.Delivery
	cur, err := t.find(branch, goldap.ScopeSingleLevel, "("+t.anchorAttr()+"="+goldap.EscapeFilter(anchorOf(d.ObjectID))+")")
	if err != nil {
		return err
	}
	if d.Op != provision.OpUpsert {
		if cur == "" {
			return nil
		}
		return t.remove(cur)
	}
	cn := cmp.Or(o.Field("code"), o.Field("name"), o.ID)
	members, err := t.memberDNs(it.Members)
	if err != nil {
		return err
	}
	e := entry{rdn: "cn=" + goldap.EscapeDN(cn), parent: branch,
		create: map[string][]string{"objectClass": {t.GroupClass}, "cn": {cn}, t.anchorAttr(): {anchorOf(d.ObjectID)}},
		attrs:  map[string][]string{"description": nonEmpty(o.Field("name")), t.memberAttr(): t.memberValues(members)}}
	if t.AD {
		e.attrs["sAMAccountName"] = []string{SAMAccountName(cn)}
	}
	_, err = t.write(cur, e)
	return err
}

// memberDNs returns the DNs of the members' entries (by employeeNumber, so
// members not written to the directory are left out), sorted.
func (t *Transport) memberDNs(ms []provision.Member) ([]string, error) {
	var out []string
	for chunk := range slices.Chunk(ms, 100) {
		var f strings.Builder
		f.WriteString("(&(objectClass=" + t.personClass() + ")(|")
		for _, m := range chunk {
			f.WriteString("(employeeNumber=" + goldap.EscapeFilter(m.ID) + ")")
		}
		f.WriteString("))")
		es, err := t.search(t.people(), goldap.ScopeSingleLevel, f.String())
		if err != nil {
			return nil, err
		}
		for _, e := range es {
			out = append(out, e.DN)
		}
	}
	slices.Sort(out)
	return out, nil
}

func parentOf(dn string) string {
	p, err := goldap.ParseDN(dn)
	if err != nil || len(p.RDNs) == 0 {
		return ""
	}
	return (&goldap.DN{RDNs: p.RDNs[1:]}).String()
}

func sortedKeys(m map[string][]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func sameDN(a, b string) bool {
	da, err1 := goldap.ParseDN(a)
	db, err2 := goldap.ParseDN(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return da.EqualFold(db)
}
