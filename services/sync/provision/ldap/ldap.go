// Package ldap is the LDAP transport of provisioning (go-ldap/v3): people
// become inetOrgPerson entries uid=<login name>,ou=people,<base_dn>, found
// again by employeeNumber (their UIAS user id), so a renamed login moves
// the entry instead of adding a second one.
package ldap

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/uias/uias/services/sync/provision"
)

// Transport writes into one directory.
type Transport struct {
	URL, BaseDN, BindDN, Password string
	conn                          *goldap.Conn
}

// New returns the transport of s (settings base_dn and bind_dn; the
// secret is the bind password). It connects on the first delivery.
func New(s *provision.Subscription) (provision.Transport, error) {
	return &Transport{URL: s.Endpoint, BaseDN: s.Settings["base_dn"], BindDN: s.Settings["bind_dn"], Password: s.Secret}, nil
}

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

func (t *Transport) connect(ctx context.Context) error {
	if t.conn != nil && !t.conn.IsClosing() {
		return nil
	}
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	c, err := goldap.DialURL(t.URL, goldap.DialWithDialer(&net.Dialer{Timeout: timeout}))
	if err != nil {
		return fmt.Errorf("ldap: connecting to the directory: %w", err)
	}
	c.SetTimeout(timeout)
	if t.BindDN != "" {
		if err := c.Bind(t.BindDN, t.Password); err != nil {
			_ = c.Close()
			return fmt.Errorf("ldap: bind as %s refused: %s", t.BindDN, resultText(err))
		}
	}
	t.conn = c
	// ou=people is created once (already there: fine)
	add := goldap.NewAddRequest(t.people(), nil)
	add.Attribute("objectClass", []string{"organizationalUnit"})
	add.Attribute("ou", []string{"people"})
	if err := c.Add(add); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultEntryAlreadyExists) {
		return t.fail("creating "+t.people(), err)
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
	if it.Delivery.Kind != provision.KindUser {
		return nil // orgs and groups are not written to directories (people only)
	}
	if err := t.connect(ctx); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		t.conn.SetTimeout(time.Until(dl))
	}
	o, d := it.Object, it.Delivery
	sr, err := t.conn.Search(goldap.NewSearchRequest(t.people(), goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 2, 0, false,
		"(&(objectClass=inetOrgPerson)(employeeNumber="+goldap.EscapeFilter(d.ObjectID)+"))", []string{"uid"}, nil))
	if err != nil {
		return t.fail("looking up "+d.ObjectID, err)
	}
	var cur string
	if len(sr.Entries) > 0 {
		cur = sr.Entries[0].DN
	}
	if d.Op == provision.OpDelete {
		if cur == "" {
			return nil
		}
		if err := t.conn.Del(goldap.NewDelRequest(cur, nil)); err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			return t.fail("deleting "+cur, err)
		}
		return nil
	}
	login := o.Field("login_name")
	if login == "" {
		return fmt.Errorf("ldap: user %s has no login name in the projection", d.ObjectID)
	}
	name := o.Field("display_name")
	if name == "" {
		name = login
	}
	rdn := "uid=" + goldap.EscapeDN(login)
	dn := rdn + "," + t.people()
	attrs := map[string][]string{"cn": {name}, "sn": {name}, "displayName": {name}}
	if em := o.Field("email"); em != "" {
		attrs["mail"] = []string{em}
	}
	if cur == "" {
		add := goldap.NewAddRequest(dn, nil)
		add.Attribute("objectClass", []string{"inetOrgPerson"})
		add.Attribute("uid", []string{login})
		add.Attribute("employeeNumber", []string{d.ObjectID})
		for k, v := range attrs {
			add.Attribute(k, v)
		}
		if err := t.conn.Add(add); err != nil {
			return t.fail("adding "+dn, err)
		}
		return nil
	}
	if !sameDN(cur, dn) {
		if err := t.conn.ModifyDN(goldap.NewModifyDNRequest(cur, rdn, true, "")); err != nil {
			return t.fail("renaming "+cur, err)
		}
	}
	mod := goldap.NewModifyRequest(dn, nil)
	for k, v := range attrs {
		mod.Replace(k, v)
	}
	if o.Field("email") == "" {
		mod.Replace("mail", nil)
	}
	if err := t.conn.Modify(mod); err != nil {
		return t.fail("updating "+dn, err)
	}
	return nil
}

func sameDN(a, b string) bool {
	da, err1 := goldap.ParseDN(a)
	db, err2 := goldap.ParseDN(b)
	if err1 != nil || err2 != nil {
		return a == b
	}
	return da.EqualFold(db)
}
