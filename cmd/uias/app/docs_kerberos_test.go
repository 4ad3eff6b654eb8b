package app_test

import (
	"testing"

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
