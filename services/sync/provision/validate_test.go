package provision_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/uias/uias/services/sync/provision"
)

// TestEndpointsInClearOnlyToThisMachine: a subscription's endpoint carries
// people's data and the business system's credentials, so plain http and
// ldap:// are refused unless to this machine (JR/T 0185-2020 9.2.2; gap2
// G6); https and ldaps:// go anywhere.
func TestEndpointsInClearOnlyToThisMachine(t *testing.T) {
	sub := func(transport, endpoint string) *provision.Subscription {
		return &provision.Subscription{App: "app1", Name: "x", Selection: provision.Selection{Orgs: []string{"o1"}},
			Strategy: provision.Immediate, Transport: transport, Endpoint: endpoint, Secret: "whsec-0123456789abcdef",
			Settings: map[string]string{"base_dn": "dc=example,dc=org"}}
	}
	for _, ok := range []*provision.Subscription{
		sub(provision.Webhook, "https://crm.example.com/hook"), sub(provision.SCIM, "https://hr.example.com/scim/v2"),
		sub(provision.LDAP, "ldaps://dir.example.com:636"), sub(provision.Webhook, "http://127.0.0.1:8080/hook"),
		sub(provision.SCIM, "http://localhost:9000/scim/v2"), sub(provision.LDAP, "ldap://127.0.0.1:3890"),
		sub(provision.Webhook, "http://[::1]:8080/hook"),
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%s %s: %v", ok.Transport, ok.Endpoint, err)
		}
	}
	for _, bad := range []*provision.Subscription{
		sub(provision.Webhook, "http://crm.example.com/hook"), sub(provision.SCIM, "http://10.1.2.3/scim/v2"),
		sub(provision.LDAP, "ldap://dir.example.com:389"), sub(provision.Webhook, "http://127.0.0.1.example.com/hook"),
	} {
		err := bad.Validate()
		var ve *provision.ValidationError
		if !errors.As(err, &ve) || ve.Field != "endpoint" || !strings.Contains(err.Error(), "in clear") {
			t.Errorf("%s %s: %v, want the endpoint refused as in clear", bad.Transport, bad.Endpoint, err)
		}
	}
}
