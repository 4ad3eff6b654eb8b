package ldap

import (
	"cmp"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/uias/uias/services/sync/provision"
)

// The Active Directory profile (setting profile=ad; docs/adr/0038). Under
// base_dn the branches are those of the default layout (OU=people,
// OU=orgs, OU=groups, OU=roles), written as Active Directory takes them:
//
//   - people: objects of class user named CN=<display name> (the login
//     name when there is none; "<display name> (<login name>)" when
//     another entry already has that CN), found again by employeeNumber
//     (their UIAS user id), with sAMAccountName (SAMAccountName),
//     userPrincipalName (<login name>@<upn_suffix>, or the login name as
//     it is when it holds an @), displayName, mail, telephoneNumber (when
//     the projection holds an unmasked number), department (their org's
//     name) and userAccountControl 512 (enabled) or 514 (disabled: a
//     disabled account in UIAS, or a person who left the selection with
//     on_leave=disable). A rename moves the object (modrdn); Active
//     Directory itself keeps the groups' member values in step;
//   - orgs: organizationalUnit objects as in the default layout, found
//     again by adminDescription "uias:<org id>";
//   - groups and roles: objects of class group (a global security group,
//     Active Directory's default groupType) named CN=<code>, found again
//     by adminDescription, with sAMAccountName and member (none when
//     empty: no placeholder).
//
// Passwords are not written (no transport of provisioning writes them):
// people sign in through UIAS, their accounts carry no password.

// ADGroup is Active Directory's group class.
const ADGroup = "group"

// Active Directory's userAccountControl values (NORMAL_ACCOUNT, and with
// ACCOUNTDISABLE).
const (
	UACEnabled  = "512"
	UACDisabled = "514"
)

// MaxSAMAccountName is the length (in characters) of a pre-Windows 2000
// logon name that every Windows client accepts.
const MaxSAMAccountName = 20

// SAMAccountName is the sAMAccountName written for a login name (or a
// group's code): the characters Active Directory refuses (" / \ [ ] : ; |
// = , + * ? < > @ and control characters) replaced by _, leading spaces
// and trailing spaces and dots dropped, cut to its first 20 characters.
// Two names that agree on their first 20 characters collide: Active
// Directory refuses the second, and its delivery fails saying so.
func SAMAccountName(name string) string {
	var b strings.Builder
	for _, r := range name {
		if unicode.IsControl(r) || strings.ContainsRune(`"/\[]:;|=,+*?<>@`, r) {
			r = '_'
		}
		b.WriteRune(r)
	}
	s := strings.TrimLeft(b.String(), " ")
	if utf8.RuneCountInString(s) > MaxSAMAccountName {
		s = string([]rune(s)[:MaxSAMAccountName])
	}
	return cmp.Or(strings.TrimRight(s, " ."), "_")
}

// DNSDomain is the DNS name of the domain base is in (its DC parts:
// DC=example,DC=org is example.org; "" when it has none).
func DNSDomain(base string) string {
	p, err := goldap.ParseDN(base)
	if err != nil {
		return ""
	}
	var parts []string
	for _, r := range p.RDNs {
		for _, a := range r.Attributes {
			if strings.EqualFold(a.Type, "dc") {
				parts = append(parts, a.Value)
			}
		}
	}
	return strings.Join(parts, ".")
}

// UPN is the userPrincipalName of login.
func (t *Transport) UPN(login string) string {
	if strings.Contains(login, "@") || t.UPNSuffix == "" {
		return login
	}
	return login + "@" + t.UPNSuffix
}

// maxCN is the length of Active Directory's cn.
const maxCN = 64

// cut is s cut to its first n characters ("" for n < 1), without
// trailing spaces.
func cut(s string, n int) string {
	if n < 1 {
		return ""
	}
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return strings.TrimSpace(string([]rune(s)[:n]))
}

// namesake is the CN of a person whose display name another entry has:
// "<name> (<login>)" cut to maxCN characters by shortening the name; when
// the login name leaves no room for the name (more than maxCN-4
// characters), "<name> (#<the last 8 characters of the user id>)" instead ("" when
// even that cannot be made: an empty name or id).
func namesake(name, login, id string) string {
	tag := login
	if utf8.RuneCountInString(login) > maxCN-4 {
		r := []rune(id)
		tag = "#" + string(r[max(len(r)-8, 0):])
	}
	n := cut(name, maxCN-utf8.RuneCountInString(tag)-3)
	if n == "" || id == "" {
		return ""
	}
	return n + " (" + tag + ")"
}

// adPerson writes a person (an upsert or a disable) to Active Directory.
func (t *Transport) adPerson(it provision.Item, cur string) error {
	o, d := it.Object, it.Delivery
	login := o.Field("login_name")
	if login == "" {
		return fmt.Errorf("ldap: user %s has no login name in the projection", d.ObjectID)
	}
	name := cmp.Or(strings.TrimSpace(o.Field("display_name")), login)
	// another entry with that CN (a namesake): "<name> (<login>)"; an
	// entry already named either way keeps its name
	cn, alt := cut(name, maxCN), namesake(name, login, d.ObjectID)
	if cn == "" || alt == "" {
		return provision.Permanent(fmt.Errorf("ldap: user %s: no Active Directory name (cn) of at most %d characters can be made "+
			"from display name %q and login name %q", d.ObjectID, maxCN, cut(name, maxCN), login))
	}
	rdnOf := func(cn string) string { return "cn=" + goldap.EscapeDN(cn) + "," + t.people() }
	switch {
	case cur != "" && sameDN(cur, rdnOf(cn)):
	case cur != "" && sameDN(cur, rdnOf(alt)):
		cn = alt
	default:
		es, err := t.search(rdnOf(cn), goldap.ScopeBaseObject, "(objectClass=*)")
		if err != nil {
			return err
		}
		if len(es) > 0 {
			cn = alt
		}
	}
	uac := UACEnabled
	if d.Op == provision.OpDisable || !provision.ActivePerson(o) {
		uac = UACDisabled
	}
	e := entry{rdn: "cn=" + goldap.EscapeDN(cn), parent: t.people(),
		create: map[string][]string{"objectClass": {"user"}, "employeeNumber": {d.ObjectID}},
		attrs: map[string][]string{"sAMAccountName": {SAMAccountName(login)}, "userPrincipalName": {t.UPN(login)},
			"displayName": {name}, "mail": nonEmpty(o.Field("email")), "telephoneNumber": nil, "department": nil,
			"userAccountControl": {uac}}}
	if ph := o.Field("phone"); ph != "" && !strings.Contains(ph, "*") {
		e.attrs["telephoneNumber"] = []string{ph}
	}
	if len(it.Orgs) > 0 {
		org := it.Orgs[0]
		e.attrs["department"] = nonEmpty(cmp.Or(org.Field("name"), org.Field("code"), org.ID))
	}
	_, err := t.write(cur, e)
	return err
}
