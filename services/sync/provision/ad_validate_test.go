package provision_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/uias/uias/services/sync/provision"
)

// TestLDAPProfileADSettings: profile ad takes on_leave=disable (it
// disables through userAccountControl), group_class group, a DNS
// upn_suffix and start_tls on ldap:// (then not in clear); the rest is
// refused naming the setting.
func TestLDAPProfileADSettings(t *testing.T) {
	ad := func(endpoint string, kv ...string) *provision.Subscription {
		s := subTo(provision.LDAP, endpoint)
		s.Settings["profile"] = "ad"
		for i := 0; i+1 < len(kv); i += 2 {
			s.Settings[kv[i]] = kv[i+1]
		}
		return s
	}
	for _, ok := range []*provision.Subscription{
		ad("ldaps://dc1.example.org"), ad("ldaps://dc1.example.org", "on_leave", "disable"),
		ad("ldaps://dc1.example.org", "group_class", "group", "upn_suffix", "corp.example.org"),
		ad("ldap://dc1.example.org", "start_tls", "true"),
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%v: %v", ok.Settings, err)
		}
		if err := ok.CheckInClear(); err != nil {
			t.Errorf("%s %v: %v", ok.Endpoint, ok.Settings, err)
		}
	}
	for _, c := range []struct {
		sub         *provision.Subscription
		field, text string
	}{
		{ad("ldaps://dc1.example.org", "group_class", "groupOfNames"), "settings.group_class", "is group for profile ad"},
		{ad("ldaps://dc1.example.org", "upn_suffix", "not a domain!"), "settings.upn_suffix", "must be a DNS name"},
		{ad("ldaps://dc1.example.org", "profile", "novell"), "settings.profile", "must be openldap"},
		{ad("ldaps://dc1.example.org", "start_tls", "true"), "settings.start_tls", "ldaps:// is TLS from the start"},
		{ad("ldap://dc1.example.org", "start_tls", "yes"), "settings.start_tls", "must be true or false"},
		{ad("ldaps://dc1.example.org", "profile", "openldap", "on_leave", "disable"), "settings.on_leave", "profile ad disables"},
	} {
		err := c.sub.Validate()
		var ve *provision.ValidationError
		if !errors.As(err, &ve) || ve.Field != c.field || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%v: %v, want %s refused (%q)", c.sub.Settings, err, c.field, c.text)
		}
	}
	// ldap:// without start_tls to another machine stays refused
	if err := ad("ldap://dc1.example.org").CheckInClear(); err == nil || !strings.Contains(err.Error(), "start_tls=true") {
		t.Errorf("ldap:// in clear: %v", err)
	}
}
