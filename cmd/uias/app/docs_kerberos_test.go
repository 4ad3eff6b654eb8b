package app_test

import (
	"testing"

	identitycomponent "github.com/uias/uias/services/identity/component"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// TestOperatorsKerberosExample: the example of "Windows domain sign-in"
// loads and validates as uias serve would, with the settings the text
// around it describes.
func TestOperatorsKerberosExample(t *testing.T) {
	cfg := operatorsExample(t, "kerberos-example", nil)
	k := ticketcomponent.Settings(&cfg).Kerberos
	if !k.Enabled || k.KeytabFile != "/etc/uias/http.keytab" || k.ServicePrincipal != "HTTP/sso.msa.example@MSA.EXAMPLE" ||
		len(k.Realms) != 2 || len(k.StripSuffix) != 1 || len(k.LoginSuffix) != 1 || len(k.Networks) != 1 {
		t.Fatalf("kerberos settings: %+v", k)
	}
}

// TestOperatorsKerberosOrgsExample: the example of "Whom a realm may sign
// in" loads and validates (identity.kerberos_orgs).
func TestOperatorsKerberosOrgsExample(t *testing.T) {
	cfg := operatorsExample(t, "kerberos-orgs-example", nil)
	if k := identitycomponent.Settings(&cfg).KerberosOrgs; len(k) != 3 || k[0] != "MSA.EXAMPLE=sz" {
		t.Fatalf("kerberos_orgs: %v", k)
	}
}
