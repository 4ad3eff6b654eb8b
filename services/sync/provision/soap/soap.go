// Package soap is the SOAP 1.1 transport of provisioning, for business
// systems built on a relational database that take web-service calls
// (maritime design 004 §2.1.5.2; docs/adr/0038). Each delivery is one
// document/literal POST of one operation:
//
//	syncUser, deleteUser, syncOrg, deleteOrg, syncGroup, deleteGroup,
//	syncRole, deleteRole (roles: subscriptions with deliver_roles only)
//
// in the namespace urn:uias:provision:v1, described by the WSDL that WSDL
// returns (`uias ctl sync provision wsdl` prints it for the business
// system's developers). A sync operation creates or updates (the object's
// whole current state: delivering twice is harmless); a person who left
// the selection with on_leave=disable comes as syncUser with active
// false. Each request carries the delivery id in its body and in the
// X-Uias-Delivery header, the same on every retry: receivers drop one
// they have processed.
//
// Authentication (setting auth): header (the default) sends the secret in
// the header named by secret_header (X-Uias-Secret); basic sends HTTP
// Basic with the setting username and the secret as password. https is
// required but to this machine, as for the webhook.
//
// Answers (Classify): a 2xx with a SOAP envelope holding the operation's
// response is delivered. A soap:Client fault (the request is wrong:
// retrying it cannot help) with HTTP 500 or a 4xx other than 401, 403,
// 408 and 429 dead-letters the delivery at once; anything else (a
// soap:Server fault, another status, a redirect, a 2xx without the
// response, no answer) is retried with back-off, then dead-lettered (as
// the webhook's failures). Redirects are never followed.
package soap

import (
	"bytes"
	"cmp"
	"context"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/services/sync/provision"
)

// Namespaces.
const (
	// NS is the namespace of the operations and their types.
	NS = "urn:uias:provision:v1"
	// EnvNS is SOAP 1.1's envelope namespace.
	EnvNS = "http://schemas.xmlsoap.org/soap/envelope/"
)

// Headers of a request.
const (
	HeaderDelivery = crypto.WebhookDeliveryHeader // X-Uias-Delivery: the delivery id, the same on every retry
	// DefaultSecretHeader carries the shared secret (auth header).
	DefaultSecretHeader = "X-Uias-Secret"
)

// Field is an element of an object's type: its XML name, the projection's
// field it is read from, and its XSD type.
type Field struct{ XML, JSON, Type string }

// Kind is how one kind of object travels: its type and element names, its
// two operations, and its fields (after id).
type Kind struct {
	Kind, Type, Element, Sync, Delete string
	Fields                            []Field
	// Members: the type ends with members (a group's, or a role's
	// holders in the selection: user ids).
	Members bool
	// Roles, Active: a person's roles (deliver_roles) and active flag.
	Roles, Active bool
}

// Kinds are the objects and their operations: the one description the
// requests are written from and the WSDL is generated from.
var Kinds = []Kind{
	{Kind: provision.KindUser, Type: "User", Element: "user", Sync: "syncUser", Delete: "deleteUser", Active: true, Roles: true,
		Fields: []Field{{"loginName", "login_name", "string"}, {"displayName", "display_name", "string"},
			{"email", "email", "string"}, {"phone", "phone", "string"}, {"orgId", "org_id", "string"},
			{"status", "status", "string"}}},
	{Kind: provision.KindOrg, Type: "Org", Element: "org", Sync: "syncOrg", Delete: "deleteOrg",
		Fields: []Field{{"code", "code", "string"}, {"name", "name", "string"}, {"parentId", "parent_id", "string"}}},
	{Kind: provision.KindGroup, Type: "Group", Element: "group", Sync: "syncGroup", Delete: "deleteGroup", Members: true,
		Fields: []Field{{"code", "code", "string"}, {"name", "name", "string"}, {"orgId", "org_id", "string"}}},
	{Kind: provision.KindRole, Type: "Role", Element: "role", Sync: "syncRole", Delete: "deleteRole", Members: true,
		Fields: []Field{{"code", "code", "string"}, {"name", "name", "string"}, {"app", "app", "string"}}},
}

func kindOf(k string) *Kind {
	for i := range Kinds {
		if Kinds[i].Kind == k {
			return &Kinds[i]
		}
	}
	return nil
}

// Transport posts operations to one endpoint.
type Transport struct {
	URL string
	// Basic: HTTP Basic as User with Secret; else Secret in Header.
	Basic        bool
	User, Header string
	Secret       string
	Client       *http.Client
	Now          func() time.Time
}

// New returns the transport of s.
func New(s *provision.Subscription) (provision.Transport, error) {
	return &Transport{URL: s.Endpoint, Basic: s.Settings["auth"] == "basic", User: s.Settings["username"],
		Header: cmp.Or(s.Settings["secret_header"], DefaultSecretHeader), Secret: s.Secret, Client: provision.HTTPClient(),
		Now: time.Now}, nil
}

// Close implements provision.Transport.
func (t *Transport) Close() error { t.Client.CloseIdleConnections(); return nil }

// Envelope writes the SOAP envelope of it's operation; it returns the
// operation's name ("" for an object kind the transport does not carry).
func (t *Transport) Envelope(it provision.Item) (op string, body []byte) {
	d := it.Delivery
	k := kindOf(d.Kind)
	if k == nil {
		return "", nil
	}
	op = k.Sync
	if d.Op == provision.OpDelete {
		op = k.Delete
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString(`<soap:Envelope xmlns:soap="` + EnvNS + `"><soap:Body><p:` + op + ` xmlns:p="` + NS + `">`)
	el := func(name, v string) {
		b.WriteString("<" + name + ">")
		_ = xml.EscapeText(&b, []byte(v))
		b.WriteString("</" + name + ">")
	}
	el("delivery", deliveryID(d))
	el("subscription", d.Subscription)
	el("app", d.App)
	el("eventId", d.EventID)
	if d.BatchID != "" {
		el("batchId", d.BatchID)
	}
	el("time", t.Now().UTC().Format(time.RFC3339))
	if d.Op == provision.OpDelete {
		el("id", d.ObjectID)
	} else {
		b.WriteString("<" + k.Element + ">")
		el("id", d.ObjectID)
		for _, f := range k.Fields {
			if v := it.Object.Field(f.JSON); v != "" {
				el(f.XML, v)
			}
		}
		if k.Active {
			el("active", fmt.Sprint(d.Op != provision.OpDisable && provision.ActivePerson(it.Object)))
		}
		if k.Roles && it.Roles != nil {
			b.WriteString("<roles>")
			for _, r := range it.Roles {
				b.WriteString("<role>")
				el("id", r.ID)
				el("code", r.Code)
				if r.Name != "" {
					el("name", r.Name)
				}
				b.WriteString("</role>")
			}
			b.WriteString("</roles>")
		}
		if k.Members {
			b.WriteString("<members>")
			for _, m := range it.Members {
				el("member", m.ID)
			}
			b.WriteString("</members>")
		}
		b.WriteString("</" + k.Element + ">")
	}
	b.WriteString("</p:" + op + "></soap:Body></soap:Envelope>")
	return op, b.Bytes()
}

func deliveryID(d provision.Delivery) string { return fmt.Sprintf("%s:%d", d.Subscription, d.Seq) }

// Deliver implements provision.Transport.
func (t *Transport) Deliver(ctx context.Context, it provision.Item) error {
	op, body := t.Envelope(it)
	if op == "" {
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("soap: bad endpoint: %w", err)
	}
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	req.Header.Set("SOAPAction", `"`+NS+"#"+op+`"`)
	req.Header.Set(HeaderDelivery, deliveryID(it.Delivery))
	if t.Basic {
		req.SetBasicAuth(t.User, t.Secret)
	} else {
		req.Header.Set(t.Header, t.Secret)
	}
	// redirects are not followed (review sec30a M1): Go would send the
	// secret header and, after a 307/308, the envelope to wherever the
	// answer points; a 301/302/303 would turn the POST into a GET
	c := *t.Client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Errorf("soap: %s: %w", op, err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return Classify(op, resp.StatusCode, resp.Header.Get("Location"), answer)
}

// Classify is the outcome of a delivery of operation op answered with
// HTTP status and body answer (location: a redirect's Location header):
//
//	2xx with a SOAP envelope whose Body holds <op>Response in NS  delivered (nil)
//	soap:Client fault with HTTP 500 or a 4xx but 401, 403, 408, 429  permanent: a dead letter at once
//	anything else: 3xx (redirects are not followed), 401, 403, 408,
//	429, 5xx, a soap:Server fault, a Client fault with another status,
//	a 2xx without the operation's response, no answer               retried with back-off, then a dead letter
//
// A Client fault blames the request; with 401/403 (credentials), 408/429
// (throttling, time-outs) or another 5xx than 500 (gateways, 503
// overload) it comes from a layer for which retrying can help, and a
// Client fault answered with a 2xx is against SOAP 1.1 (§6.2: HTTP 500).
func Classify(op string, status int, location string, answer []byte) error {
	f := parseFault(answer)
	switch {
	case status >= 300 && status <= 399:
		return fmt.Errorf("soap: %s: the endpoint redirected (HTTP %d) to %s: redirects are not followed (the secret and the "+
			"people's data would go along): set the subscription's endpoint to the right URL", op, status, where(location))
	case f != nil && f.client() && permanentStatus(status):
		return provision.Permanent(fmt.Errorf("soap: %s: the business system refused the request (HTTP %d, fault %s): %q",
			op, status, f.Code, snippet(f.String)))
	case f != nil:
		return fmt.Errorf("soap: %s: the business system failed (HTTP %d, fault %s): %q", op, status, f.Code, snippet(f.String))
	case status < 200 || status > 299:
		return fmt.Errorf("soap: %s: the business system answered HTTP %d: %q", op, status, snippet(string(answer)))
	case !responds(answer, op):
		return fmt.Errorf("soap: %s: the business system answered HTTP %d without a SOAP envelope holding %sResponse "+
			"(%s): not taken as delivered: %q", op, status, op, NS, snippet(string(answer)))
	}
	return nil
}

// permanentStatus: the statuses with which a soap:Client fault is
// permanent.
func permanentStatus(status int) bool {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestTimeout, http.StatusTooManyRequests:
		return false
	}
	return status == http.StatusInternalServerError || (status >= 400 && status <= 499)
}

// where is a redirect's target as its scheme, host and path (no query: it
// may hold anything).
func where(location string) string {
	if location == "" {
		return "no Location"
	}
	u, err := url.Parse(location)
	if err != nil {
		return "an unreadable Location"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// responds reports whether answer is a SOAP 1.1 envelope whose Body's
// first element is op's response, <op>Response in NS.
func responds(answer []byte, op string) bool {
	var env struct {
		XMLName xml.Name
		Body    struct {
			XMLName xml.Name
			Items   []struct{ XMLName xml.Name } `xml:",any"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(answer, &env); err != nil {
		return false
	}
	return env.XMLName == xml.Name{Space: EnvNS, Local: "Envelope"} && env.Body.XMLName.Space == EnvNS &&
		len(env.Body.Items) > 0 && env.Body.Items[0].XMLName == xml.Name{Space: NS, Local: op + "Response"}
}

func snippet(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

// Fault is a SOAP 1.1 fault.
type Fault struct {
	Code   string `xml:"faultcode"`
	String string `xml:"faultstring"`
}

// client reports whether the fault blames the request: faultcode Client
// (or Client.<something>), in any prefix.
func (f *Fault) client() bool {
	code := f.Code
	if i := strings.LastIndexByte(code, ':'); i >= 0 {
		code = code[i+1:]
	}
	return code == "Client" || strings.HasPrefix(code, "Client.")
}

// parseFault returns the fault an answer holds (nil: none, or not SOAP).
func parseFault(answer []byte) *Fault {
	var env struct {
		Body struct {
			Fault *Fault `xml:"Fault"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(answer, &env); err != nil {
		return nil
	}
	return env.Body.Fault
}
