package soap_test

import (
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/provtest"
	"github.com/uias/uias/services/sync/provision/soap"
)

// object is what the business system keeps of a user, org or group.
type object struct {
	ID          string   `xml:"id"`
	LoginName   string   `xml:"loginName"`
	DisplayName string   `xml:"displayName"`
	Email       string   `xml:"email"`
	OrgID       string   `xml:"orgId"`
	Code        string   `xml:"code"`
	Name        string   `xml:"name"`
	ParentID    string   `xml:"parentId"`
	Active      *bool    `xml:"active"`
	Members     []string `xml:"members>member"`
	App         string   `xml:"app"`
	Roles       []object `xml:"roles>role"`
}

// request is one operation as a SOAP 1.1 server reads it.
type request struct {
	XMLName      xml.Name
	Delivery     string  `xml:"delivery"`
	Subscription string  `xml:"subscription"`
	App          string  `xml:"app"`
	EventID      string  `xml:"eventId"`
	Time         string  `xml:"time"`
	ID           string  `xml:"id"`
	User         *object `xml:"user"`
	Org          *object `xml:"org"`
	Group        *object `xml:"group"`
	Role         *object `xml:"role"`
}

// system is a business system's SOAP endpoint over a table per kind: it
// parses the envelope with encoding/xml, checks the credentials, drops a
// delivery it has processed and answers faults when told to.
type system struct {
	t                          *testing.T
	mu                         sync.Mutex
	user, secret, header       string
	basic                      bool
	rows                       map[string]map[string]object // kind (user, org, group) → id → row
	done                       map[string]bool              // delivery ids processed
	calls                      []string                     // operations, in order
	serverFaults               int                          // answer this many soap:Server faults first
	clientFaultLogin, lastBody string
	clientFaultRole            string // a role code answered with a soap:Client fault
}

func newSystem(t *testing.T) (*system, *httptest.Server) {
	s := &system{t: t, secret: "soap-shared-secret-0123", header: soap.DefaultSecretHeader, rows: map[string]map[string]object{},
		done: map[string]bool{}}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func fault(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	fmt.Fprintf(w, `<?xml version="1.0"?><soap:Envelope xmlns:soap="%s"><soap:Body><soap:Fault><faultcode>soap:%s</faultcode>`+
		`<faultstring>%s</faultstring></soap:Fault></soap:Body></soap:Envelope>`, soap.EnvNS, code, msg)
}

func (s *system) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.basic {
		if u, p, ok := r.BasicAuth(); !ok || u != s.user || p != s.secret {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
	} else if r.Header.Get(s.header) != s.secret {
		http.Error(w, "who are you", http.StatusUnauthorized)
		return
	}
	raw, _ := io.ReadAll(r.Body)
	s.lastBody = string(raw)
	var env struct {
		XMLName xml.Name
		Body    struct {
			Ops []request `xml:",any"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(raw, &env); err != nil || env.XMLName.Space != soap.EnvNS || len(env.Body.Ops) != 1 {
		fault(w, "Client", "not a SOAP 1.1 envelope with one operation")
		return
	}
	op := env.Body.Ops[0]
	name := op.XMLName.Local
	if op.XMLName.Space != soap.NS || r.Header.Get("SOAPAction") != `"`+soap.NS+"#"+name+`"` ||
		r.Header.Get(soap.HeaderDelivery) != op.Delivery || r.Header.Get("Content-Type") != "text/xml; charset=utf-8" {
		fault(w, "Client", "bad operation "+op.XMLName.Space+" "+name+" "+r.Header.Get("SOAPAction"))
		return
	}
	if s.serverFaults > 0 {
		s.serverFaults--
		fault(w, "Server", "the database is busy")
		return
	}
	if op.User != nil && op.User.LoginName == s.clientFaultLogin {
		fault(w, "Client", "loginName "+op.User.LoginName+" is not allowed here")
		return
	}
	if op.Role != nil && s.clientFaultRole != "" && op.Role.Code == s.clientFaultRole {
		fault(w, "Client", "role "+op.Role.Code+" is not allowed here")
		return
	}
	if !s.done[op.Delivery] { // a retry after a lost answer is dropped
		s.done[op.Delivery] = true
		s.calls = append(s.calls, name)
		kind := strings.ToLower(strings.TrimPrefix(strings.TrimPrefix(name, "sync"), "delete"))
		if s.rows[kind] == nil {
			s.rows[kind] = map[string]object{}
		}
		switch o := cmpOr(op.User, op.Org, op.Group, op.Role); {
		case strings.HasPrefix(name, "delete"):
			delete(s.rows[kind], op.ID)
		case o != nil:
			s.rows[kind][o.ID] = *o
		}
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	fmt.Fprintf(w, `<?xml version="1.0"?><soap:Envelope xmlns:soap="%s"><soap:Body><p:%sResponse xmlns:p="%s"/></soap:Body></soap:Envelope>`,
		soap.EnvNS, name, soap.NS)
}

func cmpOr(os ...*object) *object {
	for _, o := range os {
		if o != nil {
			return o
		}
	}
	return nil
}

func (s *system) row(kind, id string) (object, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok := s.rows[kind][id]
	return o, ok
}

func (s *system) count(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows[kind])
}

func soapSub(url, secret string, settings map[string]string) *provision.Subscription {
	if settings == nil {
		settings = map[string]string{}
	}
	return &provision.Subscription{App: "erp", Name: "erp soap", Selection: provision.Selection{Orgs: []string{"o1"}},
		Transport: provision.SOAP, Endpoint: url, Secret: secret, Settings: settings}
}

func dial() provision.Options {
	return provision.Options{Dial: map[string]provision.Dialer{provision.SOAP: soap.New}}
}

// TestSOAPSyncAndDelete: people, orgs and groups reach a SOAP endpoint as
// syncUser/syncOrg/syncGroup with their current state and leave it as
// deleteUser/…; a person who leaves with on_leave=disable comes as
// syncUser with active false; the delivery id travels in the body and
// the X-Uias-Delivery header; a resync changes nothing.
func TestSOAPSyncAndDelete(t *testing.T) {
	sys, srv := newSystem(t)
	env := provtest.New(t, dial())
	env.Start()
	sub := env.Subscribe(soapSub(srv.URL+"/soap", sys.secret, map[string]string{"on_leave": "disable"}))
	settled := func() bool { return len(env.Deliveries(sub.ID)) > 0 && env.Count(sub.ID, provision.Pending) == 0 }
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "Head office"})
	env.Change("org", "created", "o2", map[string]any{"code": "east", "name": "East & <West>", "parent_id": "o1"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "display_name": "Ann Lee", "org_id": "o2",
		"email": "ann@example.org", "status": 1})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "display_name": "Bob", "org_id": "o1", "status": 1})
	env.Change("group", "created", "g1", map[string]any{"code": "ops", "name": "Operations", "org_id": "o1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u1"})
	env.Change("group", "member_added", "g1", map[string]any{"user_id": "u2"})
	env.Wait("everything delivered", func() bool {
		g, _ := sys.row("group", "g1")
		return settled() && sys.count("user") == 2 && sys.count("org") == 2 && len(g.Members) == 2
	})
	if ann, _ := sys.row("user", "u1"); ann.LoginName != "ann" || ann.DisplayName != "Ann Lee" || ann.Email != "ann@example.org" ||
		ann.OrgID != "o2" || ann.Active == nil || !*ann.Active {
		t.Fatalf("ann at the business system: %+v", ann)
	}
	if east, _ := sys.row("org", "o2"); east.Name != "East & <West>" || east.ParentID != "o1" || east.Code != "east" {
		t.Fatalf("east at the business system: %+v", east)
	}
	if g, _ := sys.row("group", "g1"); g.Code != "ops" || !slices.Equal(g.Members, []string{"u1", "u2"}) {
		t.Fatalf("the group at the business system: %+v", g)
	}

	env.Change("user", "updated", "u1", map[string]any{"display_name": "Ann Smith"})
	env.Change("user", "updated", "u2", map[string]any{"org_id": "o9"}) // leaves: disabled
	env.Change("org", "deleted", "o2", nil)
	env.Wait("the edits delivered", func() bool {
		ann, _ := sys.row("user", "u1")
		bob, _ := sys.row("user", "u2")
		_, east := sys.row("org", "o2")
		return settled() && ann.DisplayName == "Ann Smith" && bob.Active != nil && !*bob.Active && !east
	})
	env.Change("user", "deleted", "u1", nil)
	env.Wait("ann deleted", func() bool { _, ok := sys.row("user", "u1"); return settled() && !ok })
	if s := env.Summary(sub.ID); strings.Contains(s, "dead") {
		t.Fatalf("dead deliveries:%s", s)
	}

	n := len(sys.calls)
	svc := &provision.Service{Store: env.Store, Engine: env.Engine()}
	if _, _, _, err := svc.StartBatch(context.Background(), "erp", "", provision.Filter{}); err != nil {
		t.Fatal(err)
	}
	env.Wait("the resync", func() bool { return settled() && len(sys.calls) > n })
	if sys.count("user") != 1 || sys.count("org") != 1 || sys.count("group") != 1 {
		t.Fatalf("after the resync: %v", sys.rows)
	}
}

// TestSOAPBasicAuth: auth basic sends the user name and the secret as
// HTTP Basic (and no secret header).
func TestSOAPBasicAuth(t *testing.T) {
	sys, srv := newSystem(t)
	sys.basic, sys.user, sys.secret = true, "uias", "b4sic-pass"
	env := provtest.New(t, dial())
	env.Start()
	sub := env.Subscribe(soapSub(srv.URL, sys.secret, map[string]string{"auth": "basic", "username": "uias"}))
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Wait("the org delivered", func() bool { return env.Count(sub.ID, provision.Delivered) == 1 })
	if strings.Contains(sys.lastBody, sys.secret) {
		t.Fatal("the password is in the body")
	}
}

// TestSOAPFaults: a soap:Server fault is retried (then delivered); a
// soap:Client fault dead-letters the delivery at once, saying what the
// business system said; a refused secret (HTTP 401) is retried and
// recorded without the secret.
func TestSOAPFaults(t *testing.T) {
	sys, srv := newSystem(t)
	sys.serverFaults, sys.clientFaultLogin = 2, "root"
	env := provtest.New(t, dial())
	env.Start()
	sub := env.Subscribe(soapSub(srv.URL, sys.secret, nil))
	env.Change("org", "created", "o1", map[string]any{"code": "hq"})
	env.Wait("the org delivered after two server faults", func() bool { return env.Count(sub.ID, provision.Delivered) == 1 })
	if d := env.Deliveries(sub.ID)[0]; d.Attempts != 3 {
		t.Fatalf("attempts %d, want 3 (two soap:Server faults retried)", d.Attempts)
	}
	env.Change("user", "created", "u1", map[string]any{"login_name": "root", "org_id": "o1"})
	env.Wait("the refused person dead-lettered", func() bool { return env.Count(sub.ID, provision.Dead) == 1 })
	d := env.Deliveries(sub.ID)[1]
	if d.Attempts != 1 || !strings.Contains(d.LastError, "soap:Client") || !strings.Contains(d.LastError, "loginName root is not allowed here") ||
		!strings.Contains(d.LastError, "syncUser") {
		t.Fatalf("the dead letter: attempts %d, %q", d.Attempts, d.LastError)
	}

	wrong := env.Subscribe(soapSub(srv.URL, "not-the-shared-secret", nil))
	env.Wait("the refused secret recorded", func() bool {
		ds := env.Deliveries(wrong.ID)
		return len(ds) > 0 && ds[0].Attempts >= 2 && strings.Contains(ds[0].LastError, "HTTP 401")
	})
	if le := env.Deliveries(wrong.ID)[0].LastError; strings.Contains(le, "not-the-shared-secret") {
		t.Fatalf("the secret is in the last error: %q", le)
	}
}

// TestWSDL: the WSDL is well-formed and declares every operation the
// transport sends, in the schema, the port type and the binding (with its
// SOAPAction), and the endpoint as the service's address.
func TestWSDL(t *testing.T) {
	doc := soap.WSDL("https://erp.example.com/uias?x=1&y=2")
	var w struct {
		Types struct {
			Schema struct {
				Elements []struct {
					Name string `xml:"name,attr"`
				} `xml:"element"`
			} `xml:"schema"`
		} `xml:"types"`
		PortType struct {
			Ops []struct {
				Name string `xml:"name,attr"`
			} `xml:"operation"`
		} `xml:"portType"`
		Binding struct {
			Ops []struct {
				Name string `xml:"name,attr"`
				Op   struct {
					Action string `xml:"soapAction,attr"`
				} `xml:"operation"`
			} `xml:"operation"`
		} `xml:"binding"`
		Service struct {
			Port struct {
				Address struct {
					Location string `xml:"location,attr"`
				} `xml:"address"`
			} `xml:"port"`
		} `xml:"service"`
	}
	if err := xml.Unmarshal([]byte(doc), &w); err != nil {
		t.Fatalf("the WSDL is not well-formed: %v", err)
	}
	var elements, portOps []string
	for _, e := range w.Types.Schema.Elements {
		elements = append(elements, e.Name)
	}
	for _, o := range w.PortType.Ops {
		portOps = append(portOps, o.Name)
	}
	for i, op := range soap.Operations() {
		if !slices.Contains(elements, op) || !slices.Contains(elements, op+"Response") || !slices.Contains(portOps, op) ||
			w.Binding.Ops[i].Name != op || w.Binding.Ops[i].Op.Action != soap.NS+"#"+op {
			t.Errorf("operation %s not fully declared", op)
		}
	}
	for _, op := range []string{"syncUser", "deleteUser", "syncOrg", "deleteOrg", "syncGroup", "deleteGroup", "syncRole", "deleteRole"} {
		if !slices.Contains(soap.Operations(), op) {
			t.Errorf("no %s", op)
		}
	}
	if w.Service.Port.Address.Location != "https://erp.example.com/uias?x=1&y=2" {
		t.Errorf("address %q", w.Service.Port.Address.Location)
	}
}

// TestSOAPRoles: with deliver_roles the application's roles reach the SOAP
// endpoint as syncRole (code, name, app, members: the selected people who
// hold it, none disabled) and leave as deleteRole; each person's syncUser
// carries their roles of the application; another application's roles
// never travel; a soap:Client fault on a role dead-letters it like a
// person's.
func TestSOAPRoles(t *testing.T) {
	sys, srv := newSystem(t)
	env := provtest.New(t, dial())
	env.Start()
	sub := soapSub(srv.URL, sys.secret, nil)
	sub.DeliverRoles = true
	sub = env.Subscribe(sub)
	settled := func() bool { return len(env.Deliveries(sub.ID)) > 0 && env.Count(sub.ID, provision.Pending) == 0 }
	env.Change("org", "created", "o1", map[string]any{"code": "hq", "name": "Head office"})
	env.Change("user", "created", "u1", map[string]any{"login_name": "ann", "org_id": "o1", "status": 1})
	env.Change("user", "created", "u2", map[string]any{"login_name": "bob", "org_id": "o1", "status": 1})
	env.Role("put", "r1", "erp", "clerk", "ERP clerk", "po:read")
	env.Role("put", "r2", "crm", "seller", "Seller", "deal:write")
	env.Grant("put", "gr1", "r1", "org", "o1")
	env.Grant("put", "gr2", "r2", "user", "u1")
	members := func(want ...string) func() bool {
		return func() bool {
			r, ok := sys.row("role", "r1")
			return settled() && ok && slices.Equal(r.Members, want)
		}
	}
	env.Wait("the role with its holders"+env.Summary(sub.ID), members("u1", "u2"))
	if r, _ := sys.row("role", "r1"); r.Code != "clerk" || r.Name != "ERP clerk" || r.App != "erp" {
		t.Fatalf("the role at the business system: %+v", r)
	}
	if ann, _ := sys.row("user", "u1"); len(ann.Roles) != 1 || ann.Roles[0].Code != "clerk" {
		t.Fatalf("ann's roles at the business system: %+v", ann.Roles)
	}
	if _, ok := sys.row("role", "r2"); ok {
		t.Fatal("another application's role reached the business system")
	}
	env.Change("user", "status_changed", "u2", map[string]any{"status": 2})
	env.Wait("bob disabled"+env.Summary(sub.ID), members("u1"))
	if bob, _ := sys.row("user", "u2"); bob.Active == nil || *bob.Active || len(bob.Roles) != 0 {
		t.Fatalf("bob disabled at the business system: %+v", bob)
	}
	env.Grant("delete", "gr1", "", "", "")
	env.Wait("the revocation"+env.Summary(sub.ID), members())
	env.Role("delete", "r1", "", "", "")
	env.Wait("the role deleted"+env.Summary(sub.ID), func() bool { _, ok := sys.row("role", "r1"); return settled() && !ok })
	if !slices.Contains(sys.calls, "deleteRole") {
		t.Fatalf("no deleteRole among %v", sys.calls)
	}

	sys.mu.Lock()
	sys.clientFaultRole = "auditor"
	sys.mu.Unlock()
	env.Role("put", "r3", "erp", "auditor", "Auditor")
	env.Wait("the refused role dead-lettered", func() bool { return env.Count(sub.ID, provision.Dead) == 1 })
	for _, d := range env.Deliveries(sub.ID) {
		if d.Status == provision.Dead && (d.Kind != provision.KindRole || !strings.Contains(d.LastError, "syncRole") ||
			!strings.Contains(d.LastError, "role auditor is not allowed here")) {
			t.Fatalf("the dead letter: %+v", d)
		}
	}
}
