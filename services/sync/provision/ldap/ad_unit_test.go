package ldap_test

import (
	"testing"

	"github.com/uias/uias/services/sync/provision"
	"github.com/uias/uias/services/sync/provision/ldap"
)

func TestSAMAccountName(t *testing.T) {
	for in, want := range map[string]string{
		"ann":                        "ann",
		"averyveryverylongloginname": "averyveryverylonglog",
		"a/b\\c[d]e:f;g|h=i,j+k*l?m": "a_b_c_d_e_f_g_h_i_j_",
		"ann@example.org":            "ann_example.org",
		"  lead.":                    "lead",
		"张三丰的一个非常长的登录名字超过二十个字符了吗是的": "张三丰的一个非常长的登录名字超过二十个字",
		"twenty-chars-long-x.": "twenty-chars-long-x",
		"...":                  "_",
	} {
		if got := ldap.SAMAccountName(in); got != want {
			t.Errorf("SAMAccountName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestADDefaults(t *testing.T) {
	for base, want := range map[string]string{"DC=corp,DC=example,DC=org": "corp.example.org",
		"OU=uias,DC=example,DC=org": "example.org", "o=example": "", "not a dn": ""} {
		if got := ldap.DNSDomain(base); got != want {
			t.Errorf("DNSDomain(%q) = %q, want %q", base, got, want)
		}
	}
	tr, err := ldap.New(&provision.Subscription{Endpoint: "ldaps://dc1.example.org", Settings: map[string]string{
		"profile": "ad", "base_dn": "OU=uias,DC=example,DC=org"}})
	if err != nil {
		t.Fatal(err)
	}
	ad := tr.(*ldap.Transport)
	if ad.GroupClass != "group" || ad.UPN("ann") != "ann@example.org" || ad.UPN("ann@corp.example.org") != "ann@corp.example.org" {
		t.Fatalf("AD transport: group class %q, UPN %q", ad.GroupClass, ad.UPN("ann"))
	}
	if _, err := ldap.New(&provision.Subscription{Endpoint: "ldaps://dc1.example.org", Settings: map[string]string{
		"ca_file": "/nonexistent/ca.pem"}}); err == nil {
		t.Fatal("a missing ca_file accepted")
	}
}
