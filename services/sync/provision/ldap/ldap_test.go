package ldap_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/ldap"
	"github.com/uias/uias/services/sync/provision/provtest"
)

const (
	base   = "dc=example,dc=org"
	rootDN = "cn=admin,dc=example,dc=org"
	rootPW = "slapd-test-password"
)

// startSlapd runs a real OpenLDAP slapd (installed by scripts/slapd.sh)
// with a fresh mdb database on a loopback port and returns its URL.
func startSlapd(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("../../../../scripts/slapd.sh").Output()
	bin := strings.TrimSpace(string(out))
	if err != nil || bin == "" {
		t.Skip("slapd is not installed and scripts/slapd.sh could not install it (apt-get install slapd ldap-utils as root): " +
			"the LDAP transport is not tested here")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
database mdb
maxsize 104857600
suffix "%[2]s"
rootdn "%[3]s"
rootpw %[4]s
directory %[1]s/db
index objectClass eq
index employeeNumber eq
index businessCategory eq
index member eq
index uniqueMember eq
`, dir, base, rootDN, rootPW)
	if err := os.WriteFile(filepath.Join(dir, "slapd.conf"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	url := "ldap://" + addr
	cmd := exec.Command(bin, "-f", filepath.Join(dir, "slapd.conf"), "-h", url+"/", "-d", "0")
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := goldap.DialURL(url)
		if err == nil {
			if err = c.Bind(rootDN, rootPW); err == nil {
				add := goldap.NewAddRequest(base, nil)
				add.Attribute("objectClass", []string{"dcObject", "organization"})
				add.Attribute("dc", []string{"example"})
				add.Attribute("o", []string{"Example"})
				err = c.Add(add)
			}
			_ = c.Close()
			if err != nil {
				t.Fatalf("preparing the directory: %v", err)
			}
			return url
		}
		if time.Now().After(deadline) {
			t.Fatalf("slapd did not answer on %s: %v\n%s", url, err, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func search(t *testing.T, url, filter string) []*goldap.Entry {
	t.Helper()
	c, err := goldap.DialURL(url)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Bind(rootDN, rootPW); err != nil {
		t.Fatal(err)
	}
	sr, err := c.Search(goldap.NewSearchRequest("ou=people,"+base, goldap.ScopeSingleLevel, goldap.NeverDerefAliases, 0, 0, false,
		filter, []string{"uid", "cn", "mail", "employeeNumber"}, nil))
	if err != nil {
		if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
			return nil
		}
		t.Fatal(err)
	}
	return sr.Entries
}

func TestPeopleWrittenMovedAndRemovedInOpenLDAP(t *testing.T) {
	url := startSlapd(t)
	env := provtest.New(t, provision.Options{Dial: map[string]provision.Dialer{provision.LDAP: ldap.New}})
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "mail", Name: "directory", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.LDAP, Endpoint: url, Secret: rootPW, Settings: map[string]string{"base_dn": base, "bind_dn": rootDN}})
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o1",
		"email": "ann@example.org"})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "display_name": "Bob", "org_id": "o1"})
	env.Change("user", "updated", "u1", map[string]any{"display_name": "Ann Lee", "login_name": "alee"})
	env.Wait("4 deliveries", func() bool { return env.Count(sub.ID, provision.Delivered) == 4 })
	es := search(t, url, "(objectClass=inetOrgPerson)")
	if len(es) != 2 {
		t.Fatalf("entries %d%s", len(es), env.Summary(sub.ID))
	}
	ann := search(t, url, "(employeeNumber=u1)")
	if len(ann) != 1 || ann[0].DN != "uid=alee,ou=people,"+base || ann[0].GetAttributeValue("cn") != "Ann Lee" ||
		ann[0].GetAttributeValue("mail") != "ann@example.org" {
		t.Fatalf("ann in the directory: %+v", ann)
	}
	env.Change("user", "updated", "u2", map[string]any{"org_id": "o9"}) // leaves the selection
	env.Wait("the removal", func() bool { return env.Count(sub.ID, provision.Delivered) == 5 })
	if es := search(t, url, "(employeeNumber=u2)"); len(es) != 0 {
		t.Fatalf("bob still in the directory: %+v", es)
	}
	// a resync writes what is there again: nothing doubles
	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	if _, n, _, err := svc.StartBatch(context.Background(), "mail", "", provision.Filter{}); err != nil || n != 2 { // the org and ann
		t.Fatalf("resync %d %v", n, err)
	}
	env.Wait("the resync", func() bool { return env.Count(sub.ID, provision.Delivered) == 7 })
	if es := search(t, url, "(objectClass=inetOrgPerson)"); len(es) != 1 {
		t.Fatalf("after the resync %d entries", len(es))
	}
}

func TestWrongBindPasswordAndLostDirectory(t *testing.T) {
	url := startSlapd(t)
	env := provtest.New(t, provision.Options{Dial: map[string]provision.Dialer{provision.LDAP: ldap.New}, MaxAttempts: 1000})
	env.Start()
	var n atomic.Int64
	sub := env.Subscribe(&provision.Subscription{App: "mail", Name: "directory", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.LDAP, Endpoint: url, Secret: "wrong-password",
		Settings: map[string]string{"base_dn": base, "bind_dn": rootDN}})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1"})
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	lastErr := func() string {
		n.Add(1)
		ds := env.Deliveries(sub.ID)
		if len(ds) == 0 {
			return ""
		}
		return ds[0].LastError
	}
	env.Wait("the refused bind recorded", func() bool { return strings.Contains(lastErr(), "Invalid Credentials") })
	if le := lastErr(); strings.Contains(le, "wrong-password") {
		t.Fatalf("the bind password is in the last error: %q", le)
	}
	// nobody listens: the directory is gone
	dead := "ldap://127.0.0.1:1"
	s, _ := env.Store.GetSubscription(context.Background(), sub.ID)
	s.Endpoint = dead
	if _, err := (&provision.Service{Store: env.Store, Engine: env.Engine()}).Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	env.Wait("the unreachable directory recorded", func() bool { return strings.Contains(lastErr(), "connecting to the directory") })
}

// dir is a root connection to the test directory.
type dir struct {
	t *testing.T
	c *goldap.Conn
}

func openDir(t *testing.T, url string) *dir {
	t.Helper()
	c, err := goldap.DialURL(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Bind(rootDN, rootPW); err != nil {
		t.Fatal(err)
	}
	return &dir{t: t, c: c}
}

// entry reads dn (nil: no such entry).
func (d *dir) entry(dn string, attrs ...string) *goldap.Entry {
	d.t.Helper()
	sr, err := d.c.Search(goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 0, 0, false,
		"(objectClass=*)", attrs, nil))
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return nil
	}
	if err != nil {
		d.t.Fatal(err)
	}
	return sr.Entries[0]
}

// dns lists the DNs below base (whole subtree, base excluded), sorted.
func (d *dir) dns(base, filter string) []string {
	d.t.Helper()
	sr, err := d.c.Search(goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		filter, []string{"1.1"}, nil))
	if goldap.IsErrorWithCode(err, goldap.LDAPResultNoSuchObject) {
		return nil
	}
	if err != nil {
		d.t.Fatal(err)
	}
	var out []string
	for _, e := range sr.Entries {
		if !strings.EqualFold(e.DN, base) {
			out = append(out, strings.ToLower(e.DN))
		}
	}
	slices.Sort(out)
	return out
}

func (d *dir) members(dn, attr string) []string {
	e := d.entry(dn, attr)
	if e == nil {
		return nil
	}
	out := slices.Clone(e.GetAttributeValues(attr))
	for i := range out {
		out[i] = strings.ToLower(out[i])
	}
	slices.Sort(out)
	return out
}

// TestOrgsAndGroupsInOpenLDAP: orgs become nested OUs (moved with modrdn,
// removed with their subtree), groups become groupOfNames or
// groupOfUniqueNames entries whose members follow their people's renames
// and removals, and people carry their org.
func TestOrgsAndGroupsInOpenLDAP(t *testing.T) {
	url := startSlapd(t)
	d := openDir(t, url)
	second := "ou=second," + base
	add := goldap.NewAddRequest(second, nil)
	add.Attribute("objectClass", []string{"organizationalUnit"})
	add.Attribute("ou", []string{"second"})
	if err := d.c.Add(add); err != nil {
		t.Fatal(err)
	}
	env := provtest.New(t, provision.Options{Dial: map[string]provision.Dialer{provision.LDAP: ldap.New}})
	env.Start()
	byOrg := env.Subscribe(&provision.Subscription{App: "mail", Name: "directory", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.LDAP, Endpoint: url, Secret: rootPW, Settings: map[string]string{"base_dn": base, "bind_dn": rootDN}})
	byGroup := env.Subscribe(&provision.Subscription{App: "wiki", Name: "directory", Selection: provision.Selection{Groups: []string{"g1"}},
		Transport: provision.LDAP, Endpoint: url, Secret: rootPW,
		Settings: map[string]string{"base_dn": second, "bind_dn": rootDN, "group_class": "groupOfUniqueNames"}})
	settled := func() bool {
		for _, s := range []string{byOrg.ID, byGroup.ID} {
			for _, dl := range env.Deliveries(s) {
				if dl.Status != provision.Delivered {
					return false
				}
			}
		}
		return true
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		env.Wait(what, func() bool { return settled() && cond() })
	}
	people := "ou=people," + base
	orgs := "ou=orgs," + base
	ops := "cn=ops,ou=groups," + base
	lower := func(ss ...string) []string {
		for i := range ss {
			ss[i] = strings.ToLower(ss[i])
		}
		return ss
	}

	env.Change("org", "created", "o0", map[string]any{"code": "root", "name": "Root"})
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "Head office", "parent_id": "o0"})
	env.Change("org", "created", "o2", map[string]any{"code": "east", "name": "East", "parent_id": "o1"})
	env.Change("org", "created", "o3", map[string]any{"code": "west", "name": "West", "parent_id": "o1"})
	env.Change("org", "created", "o4", map[string]any{"code": "port", "name": "Port", "parent_id": "o2"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann", "org_id": "o2"})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "display_name": "Bob", "org_id": "o4"})
	env.Change("group", "created", "g1", map[string]any{"code": "ops", "name": "Operations", "org_id": "o1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u2"})

	wantOrgs := lower("ou=hq,"+orgs, "ou=east,ou=hq,"+orgs, "ou=west,ou=hq,"+orgs, "ou=port,ou=east,ou=hq,"+orgs)
	slices.Sort(wantOrgs)
	wantMembers := lower("uid=ann,"+people, "uid=bob,"+people)
	wait("the orgs nested and the group with its members", func() bool {
		return slices.Equal(d.dns(orgs, "(objectClass=organizationalUnit)"), wantOrgs) &&
			slices.Equal(d.members(ops, "member"), wantMembers)
	})
	if e := d.entry("ou=port,ou=east,ou=hq,"+orgs, "businessCategory", "description"); e.GetAttributeValue("businessCategory") != "uias:o4" ||
		e.GetAttributeValue("description") != "Port" {
		t.Fatalf("org entry %+v", e)
	}
	if e := d.entry("uid=ann,"+people, "ou", "departmentNumber"); e.GetAttributeValue("ou") != "East" ||
		e.GetAttributeValue("departmentNumber") != "east" {
		t.Fatalf("ann's org in the directory: ou=%q departmentNumber=%q", e.GetAttributeValue("ou"), e.GetAttributeValue("departmentNumber"))
	}
	if e := d.entry(ops, "objectClass", "description"); !slices.Contains(e.GetAttributeValues("objectClass"), "groupOfNames") ||
		e.GetAttributeValue("description") != "Operations" {
		t.Fatalf("group entry %+v", e)
	}
	// the group subscription: its members and the group, no orgs
	wait("the second directory", func() bool {
		return slices.Equal(d.members("cn=ops,ou=groups,"+second, "uniqueMember"),
			lower("uid=ann,ou=people,"+second, "uid=bob,ou=people,"+second))
	})
	if got := d.dns("ou=orgs,"+second, "(objectClass=organizationalUnit)"); len(got) != 0 {
		t.Fatalf("orgs written for a group selection: %v", got)
	}

	// an org moved: its entry (and what is below it) moves with modrdn
	env.Change("org", "moved", "o4", map[string]any{"parent_id": "o3"})
	wait("the org moved", func() bool {
		return d.entry("ou=port,ou=west,ou=hq,"+orgs) != nil && d.entry("ou=port,ou=east,ou=hq,"+orgs) == nil
	})
	// a person renamed: the entry moves, and so does the group's member
	env.Change("user", "updated", "u1", map[string]any{"login_name": "alee"})
	wait("the member renamed", func() bool {
		return slices.Equal(d.members(ops, "member"), lower("uid=alee,"+people, "uid=bob,"+people)) &&
			slices.Equal(d.members("cn=ops,ou=groups,"+second, "uniqueMember"), lower("uid=alee,ou=people,"+second, "uid=bob,ou=people,"+second))
	})
	// a member removed; then the last member leaves the selection: the
	// group keeps the empty DN as its one member
	env.Change("group", "member_removed", "g1", map[string]any{"user_id": "u2"})
	wait("the member removed", func() bool {
		return slices.Equal(d.members(ops, "member"), lower("uid=alee,"+people))
	})
	if d.entry("uid=bob,ou=people,"+second) != nil {
		// bob left the group selection: removed from the second directory
		t.Fatal("bob is still in the second directory")
	}
	env.Change("user", "updated", "u1", map[string]any{"org_id": "o9"})
	wait("ann removed from the directory and the group", func() bool {
		return d.entry("uid=alee,"+people) == nil && slices.Equal(d.members(ops, "member"), []string{""})
	})
	// an org moved out of the selection: removed with its subtree
	env.Change("org", "moved", "o3", map[string]any{"parent_id": "o0"})
	wait("the org removed with its subtree", func() bool {
		return slices.Equal(d.dns(orgs, "(objectClass=organizationalUnit)"), lower("ou=east,ou=hq,"+orgs, "ou=hq,"+orgs))
	})
}

// People brought into the selection by an org move are members of an
// existing group at once (not at the group's next write), and an edit of
// the selection is delivered at once: what left it removed (an org with
// its subtree), what came into it written, groups with their members.
func TestOrgMoveAndSelectionEditInOpenLDAP(t *testing.T) {
	url := startSlapd(t)
	d := openDir(t, url)
	env := provtest.New(t, provision.Options{Dial: map[string]provision.Dialer{provision.LDAP: ldap.New}})
	env.Start()
	sub := env.Subscribe(&provision.Subscription{App: "mail", Name: "directory", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.LDAP, Endpoint: url, Secret: rootPW, Settings: map[string]string{"base_dn": base, "bind_dn": rootDN}})
	settled := func() bool { return len(env.Deliveries(sub.ID)) > 0 && env.Count(sub.ID, provision.Pending) == 0 }
	wait := func(what string, cond func() bool) {
		t.Helper()
		env.Wait(what, func() bool { return settled() && cond() })
	}
	people, orgs, groups := "ou=people,"+base, "ou=orgs,"+base, "ou=groups,"+base
	crew := "cn=crew," + groups
	lower := func(ss ...string) []string {
		for i := range ss {
			ss[i] = strings.ToLower(ss[i])
		}
		slices.Sort(ss)
		return ss
	}
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Change("org", "created", "o2", map[string]any{"code": "yard"})
	env.Change("org", "created", "o3", map[string]any{"code": "dock"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1"})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "org_id": "o3"})
	env.Change("user", "created", "u3", map[string]any{"login_name": "cy", "org_id": "o2"})
	env.Change("group", "created", "g1", map[string]any{"code": "crew", "org_id": "o1"})
	for _, u := range []string{"u1", "u2", "u3"} {
		env.Change("group", "member_added", "g1", map[string]any{"user_id": u})
	}
	wait("ann and her group", func() bool { return slices.Equal(d.members(crew, "member"), lower("uid=ann,"+people)) })

	// dock moves under hq: bob comes in, and is crew's member at once
	env.Change("org", "moved", "o3", map[string]any{"parent_id": "o1"})
	wait("bob in crew", func() bool {
		return slices.Equal(d.members(crew, "member"), lower("uid=ann,"+people, "uid=bob,"+people))
	})
	if d.entry("ou=dock,ou=hq,"+orgs) == nil {
		t.Fatal("the moved org is not under hq")
	}

	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	edit := func(orgs ...string) {
		t.Helper()
		s, err := env.Store.GetSubscription(context.Background(), sub.ID)
		if err != nil {
			t.Fatal(err)
		}
		s.Selection.Orgs, s.Secret = orgs, ""
		if _, err := svc.Update(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	// hq out, yard in
	edit("o2")
	wait("the first edit", func() bool {
		return slices.Equal(d.dns(people, "(objectClass=inetOrgPerson)"), lower("uid=cy,"+people)) &&
			slices.Equal(d.dns(orgs, "(objectClass=organizationalUnit)"), lower("ou=yard,"+orgs)) &&
			len(d.dns(groups, "(objectClass=groupOfNames)")) == 0
	})
	// both
	edit("o2", "o1")
	wait("the second edit", func() bool {
		return slices.Equal(d.dns(people, "(objectClass=inetOrgPerson)"), lower("uid=ann,"+people, "uid=bob,"+people, "uid=cy,"+people)) &&
			slices.Equal(d.dns(orgs, "(objectClass=organizationalUnit)"), lower("ou=yard,"+orgs, "ou=hq,"+orgs, "ou=dock,ou=hq,"+orgs)) &&
			slices.Equal(d.members(crew, "member"), lower("uid=ann,"+people, "uid=bob,"+people, "uid=cy,"+people))
	})
	// LDAP has no disabled person: on_leave=disable is refused
	s, _ := env.Store.GetSubscription(context.Background(), sub.ID)
	s.Secret, s.Settings[provision.SettingOnLeave] = "", provision.LeaveDisable
	if _, err := svc.Update(context.Background(), s); err == nil || !strings.Contains(err.Error(), "settings.on_leave") {
		t.Fatalf("on_leave=disable for ldap: %v", err)
	}
}
