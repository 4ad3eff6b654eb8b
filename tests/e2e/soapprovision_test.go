package e2e

import (
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	syncv1 "github.com/uias/uias/proto/gen/uias/sync/v1"
	"github.com/uias/uias/services/sync/provision/soap"
)

// soapCall is one operation a business system's SOAP endpoint received.
type soapCall struct {
	Op, Delivery, Header, ID, Login, Name string
}

// Monolithic: a soap subscription (HTTP Basic) gets its selection through
// a real SOAP 1.1 endpoint (parsed with encoding/xml): the initial batch
// as syncOrg/syncUser, a display name changed as syncUser, a person
// deleted as deleteUser, each with its delivery id in the body and the
// X-Uias-Delivery header; a soap subscription without the Basic user
// name is refused, naming the setting.
func TestSOAPProvisioningInAll(t *testing.T) {
	e := start(t, testConfig(t.TempDir()))
	e.login()
	f := e.seed("erp", "ann", nil, nil)

	var mu sync.Mutex
	var got []soapCall
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "uias" || p != "erp-basic-password" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		raw, _ := io.ReadAll(r.Body)
		var env struct {
			Body struct {
				Ops []struct {
					XMLName  xml.Name
					Delivery string `xml:"delivery"`
					ID       string `xml:"id"`
					User     struct {
						ID          string `xml:"id"`
						LoginName   string `xml:"loginName"`
						DisplayName string `xml:"displayName"`
					} `xml:"user"`
					Org struct {
						ID string `xml:"id"`
					} `xml:"org"`
				} `xml:",any"`
			} `xml:"Body"`
		}
		if err := xml.Unmarshal(raw, &env); err != nil || len(env.Body.Ops) != 1 || env.Body.Ops[0].XMLName.Space != soap.NS {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, `<soap:Envelope xmlns:soap="`+soap.EnvNS+`"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode>`+
				`<faultstring>bad envelope</faultstring></soap:Fault></soap:Body></soap:Envelope>`)
			return
		}
		op := env.Body.Ops[0]
		c := soapCall{Op: op.XMLName.Local, Delivery: op.Delivery, Header: r.Header.Get(soap.HeaderDelivery),
			ID: cmpOr(op.ID, op.User.ID, op.Org.ID), Login: op.User.LoginName, Name: op.User.DisplayName}
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
		_, _ = io.WriteString(w, `<soap:Envelope xmlns:soap="`+soap.EnvNS+`"><soap:Body><p:`+c.Op+`Response xmlns:p="`+soap.NS+
			`"/></soap:Body></soap:Envelope>`)
	}))
	defer srv.Close()

	prov := syncv1.NewSyncProvisioningServiceClient(e.conn)
	_, err := prov.CreateSubscription(e.adm(), &syncv1.CreateSubscriptionRequest{Subscription: &syncv1.Subscription{
		App: f.appID, Name: "erp soap", Selection: &syncv1.Selection{Orgs: []string{e.root}}, Transport: "soap",
		Endpoint: srv.URL, Secret: "erp-basic-password", Enabled: true, Settings: map[string]string{"auth": "basic"}}})
	if st := wantCode(t, err, codes.InvalidArgument, "SYNC_BAD_SUBSCRIPTION"); !strings.Contains(st.Message(), "settings.username") {
		t.Fatalf("the refusal does not name the setting: %q", st.Message())
	}
	if _, err := prov.CreateSubscription(e.adm(), &syncv1.CreateSubscriptionRequest{Subscription: &syncv1.Subscription{
		App: f.appID, Name: "erp soap", Selection: &syncv1.Selection{Orgs: []string{e.root}}, Transport: "soap",
		Endpoint: srv.URL, Secret: "erp-basic-password", Enabled: true,
		Settings: map[string]string{"auth": "basic", "username": "uias"}}}); err != nil {
		t.Fatal(err)
	}
	has := func(match func(c soapCall) bool) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return slices.ContainsFunc(got, match)
		}
	}
	eventually(t, "ann in the initial batch", has(func(c soapCall) bool {
		return c.Op == "syncUser" && c.ID == f.userID && c.Login == "ann"
	}))
	eventually(t, "the root org", has(func(c soapCall) bool { return c.Op == "syncOrg" && c.ID == e.root }))
	if _, err := e.admin.UpdateUser(e.adm(), &identityv1.UpdateUserRequest{Id: f.userID, UpdateMask: []string{"display_name"},
		DisplayName: "Ann Lee"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ann renamed", has(func(c soapCall) bool { return c.Op == "syncUser" && c.ID == f.userID && c.Name == "Ann Lee" }))
	if _, err := e.admin.DeleteUser(e.adm(), &identityv1.DeleteUserRequest{Id: f.userID}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ann deleted", has(func(c soapCall) bool { return c.Op == "deleteUser" && c.ID == f.userID }))
	mu.Lock()
	defer mu.Unlock()
	for _, c := range got {
		if c.Delivery == "" || c.Delivery != c.Header {
			t.Fatalf("delivery id %q in the body, %q in the header", c.Delivery, c.Header)
		}
	}
}

func cmpOr(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
