package cas

import (
	"slices"
	"strings"
	"testing"
	"time"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

const maskedService = "https://masked.example.com/app/"

// TestAttributeReleasePolicy: the same person validated at a service
// without a policy gets every attribute, the name in clear; at a service
// releasing login, displayName (masked) and roles, p3/serviceValidate (XML
// and JSON) and samlValidate answer the protocol attributes and those
// three only, the name masked (张三 -> 张*), though the service releases
// permissions too.
func TestAttributeReleasePolicy(t *testing.T) {
	a := &authzAnswers{roles: []string{"clerk"}, perms: []string{"docs:read"}}
	f := newReleaseFixtureAt(t, a, time.Now().UTC(), &ticketv1.PersonAttributes{Login: "zhangsan", DisplayName: "张三",
		OrgId: "o1", OrgName: "某分行", AppAccountId: "acc-7", Groups: []string{"finance"}})

	all, code := jsonAttributes(t, f.get(t, validatePath("p3/serviceValidate", plainService, f.ticketFor(t, "u1", "zhangsan", plainService), "JSON")))
	if code != "" || !slices.Equal(all["displayName"], []string{"张三"}) || all["orgName"] == nil || all["userId"] == nil ||
		all["groups"] == nil || all["appAccountId"] == nil {
		t.Fatalf("no policy: %v %s", all, code)
	}

	limited, code := jsonAttributes(t, f.get(t, validatePath("p3/serviceValidate", maskedService, f.ticketFor(t, "u1", "zhangsan", maskedService), "JSON")))
	want := map[string][]string{"login": {"zhangsan"}, "displayName": {"张*"}, "roles": {"clerk"}}
	for name, v := range want {
		if !slices.Equal(limited[name], v) {
			t.Errorf("JSON %s = %v, want %v", name, limited[name], v)
		}
	}
	for _, name := range []string{"authenticationDate", "longTermAuthenticationRequestTokenUsed", "isFromNewLogin"} {
		if limited[name] == nil {
			t.Errorf("JSON lacks the protocol attribute %s: %v", name, limited)
		}
	}
	if code != "" || len(limited) != len(want)+3 {
		t.Errorf("JSON answers more than the policy releases: %v %s", limited, code)
	}

	body := f.get(t, validatePath("p3/serviceValidate", maskedService, f.ticketFor(t, "u1", "zhangsan", maskedService), "XML"))
	if !strings.Contains(body, "<cas:displayName>张*</cas:displayName>") || !strings.Contains(body, "<cas:user>zhangsan</cas:user>") {
		t.Errorf("XML: %s", body)
	}
	for _, leak := range []string{"张三", "某分行", "finance", "docs:read", "acc-7", "<cas:userId>", "<cas:orgId>", "<cas:authLevel>"} {
		if strings.Contains(body, leak) {
			t.Errorf("XML releases %q:\n%s", leak, body)
		}
	}

	_, d := f.post(t, maskedService, strings.NewReader(envelope(f.ticketFor(t, "u1", "zhangsan", maskedService))))
	got := d.attributes()
	if !slices.Equal(got["displayName"], []string{"张*"}) || got["orgName"] != nil || got["permissions"] != nil || got["memberOf"] != nil {
		t.Errorf("samlValidate attributes: %v", got)
	}
}

// TestUserTypeReleased (ADR 0039): a unit's account type is the CAS
// attribute userType ("unit") at p3/serviceValidate (JSON and XML) and
// samlValidate of a service without a policy; a service whose policy does
// not release userType does not get it.
func TestUserTypeReleased(t *testing.T) {
	a := &authzAnswers{roles: []string{"clerk"}}
	f := newReleaseFixtureAt(t, a, time.Now().UTC(), &ticketv1.PersonAttributes{Login: "acme", DisplayName: "某某航运有限公司",
		OrgId: "o1", OrgName: "某分行", UserType: "unit"})
	all, code := jsonAttributes(t, f.get(t, validatePath("p3/serviceValidate", plainService, f.ticketFor(t, "u1", "acme", plainService), "JSON")))
	if code != "" || !slices.Equal(all["userType"], []string{"unit"}) {
		t.Fatalf("no policy: %v %s", all, code)
	}
	if body := f.get(t, validatePath("p3/serviceValidate", plainService, f.ticketFor(t, "u1", "acme", plainService), "XML")); !strings.Contains(body, "<cas:userType>unit</cas:userType>") {
		t.Fatalf("XML: %s", body)
	}
	_, d := f.post(t, plainService, strings.NewReader(envelope(f.ticketFor(t, "u1", "acme", plainService))))
	if got := d.attributes(); !slices.Equal(got["userType"], []string{"unit"}) {
		t.Fatalf("samlValidate: %v", got)
	}
	limited, _ := jsonAttributes(t, f.get(t, validatePath("p3/serviceValidate", maskedService, f.ticketFor(t, "u1", "acme", maskedService), "JSON")))
	if limited["userType"] != nil || limited["login"] == nil {
		t.Fatalf("a policy without userType: %v", limited)
	}
}
