package component

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"

	"github.com/uias/uias/pkg/config"
)

// writeKeytab writes a keytab with a key of principal (name/host) in realm
// to dir, with mode.
func writeKeytab(t *testing.T, dir, principal, realm string, mode os.FileMode) string {
	t.Helper()
	kt := keytab.New()
	if err := kt.AddEntry(principal, realm, "keytab-test-password", time.Now(), 2, etypeID.AES256_CTS_HMAC_SHA1_96); err != nil {
		t.Fatal(err)
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, strings.ReplaceAll(principal, "/", "_")+".keytab")
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestKerberosValidate: ticket.kerberos is checked only when enabled, and
// each bad setting names its field.
func TestKerberosValidate(t *testing.T) {
	ok := func(c *Config) {
		c.Kerberos = KerberosConfig{Enabled: true, KeytabFile: "/etc/uias/http.keytab", ServicePrincipal: "HTTP/sso.msa.example@MSA.EXAMPLE",
			Realms: []string{"MSA.EXAMPLE", "SZ.MSA.EXAMPLE"}, StripSuffix: []string{"MSA.EXAMPLE=.sz"}, LoginSuffix: []string{"SZ.MSA.EXAMPLE=@sz"},
			Networks: []string{"10.20.0.0/16", "fd00::/8"}}
	}
	c := Defaults()
	ok(c)
	if err := c.Validate(&config.Config{DataDir: "d"}); err != nil {
		t.Fatal(err)
	}
	// Realms of their own login spaces: the suffixes differ by an '@'
	// (a mapped name never has one); one realm listed twice is one.
	for _, suffixes := range [][]string{{"SZ.MSA.EXAMPLE=@sz"}, {"MSA.EXAMPLE=@msa", "SZ.MSA.EXAMPLE=@sz.msa"}} {
		c = Defaults()
		ok(c)
		c.Kerberos.LoginSuffix = suffixes
		c.Kerberos.Realms = append(c.Kerberos.Realms, "MSA.EXAMPLE")
		c.Kerberos.CaseSensitiveRealms = []string{"SZ.MSA.EXAMPLE"}
		if err := c.Validate(&config.Config{DataDir: "d"}); err != nil {
			t.Fatalf("%v: %v", suffixes, err)
		}
	}
	c = Defaults()
	c.Kerberos.ServicePrincipal = "nonsense" // off: not checked
	if err := c.Validate(&config.Config{DataDir: "d"}); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		mod   func(k *KerberosConfig)
		field string
	}{
		"no keytab":        {func(k *KerberosConfig) { k.KeytabFile = "" }, "ticket.kerberos.keytab_file"},
		"spn no realm":     {func(k *KerberosConfig) { k.ServicePrincipal = "HTTP/sso.msa.example" }, "ticket.kerberos.service_principal"},
		"spn lower realm":  {func(k *KerberosConfig) { k.ServicePrincipal = "HTTP/sso@msa.example" }, "ticket.kerberos.service_principal"},
		"spn no host":      {func(k *KerberosConfig) { k.ServicePrincipal = "HTTP@MSA.EXAMPLE" }, "ticket.kerberos.service_principal"},
		"realm lower":      {func(k *KerberosConfig) { k.Realms = []string{"msa.example"} }, "ticket.kerberos.realms"},
		"strip no realm":   {func(k *KerberosConfig) { k.StripSuffix = []string{".sz"} }, "ticket.kerberos.strip_suffix"},
		"strip twice":      {func(k *KerberosConfig) { k.StripSuffix = []string{"A=.x", "A=.y"} }, "ticket.kerberos.strip_suffix"},
		"suffix spaces":    {func(k *KerberosConfig) { k.LoginSuffix = []string{"A=a b"} }, "ticket.kerberos.login_suffix"},
		"network not cidr": {func(k *KerberosConfig) { k.Networks = []string{"10.20.0.1"} }, "ticket.kerberos.networks"},
		"case lower realm": {func(k *KerberosConfig) { k.CaseSensitiveRealms = []string{"lab.example"} }, "ticket.kerberos.case_sensitive_realms"},
		// review sec27a H1: two realms in one login space
		"two realms, no suffix": {func(k *KerberosConfig) { k.LoginSuffix = nil }, "ticket.kerberos.login_suffix"},
		"two realms, same suffix": {func(k *KerberosConfig) { k.LoginSuffix = []string{"MSA.EXAMPLE=@x", "SZ.MSA.EXAMPLE=@x"} },
			"ticket.kerberos.login_suffix"},
		"suffix ends with the other": {func(k *KerberosConfig) { k.LoginSuffix = []string{"SZ.MSA.EXAMPLE=.sz"} }, "ticket.kerberos.login_suffix"},
		"one realm twice, other unsuffixed": {func(k *KerberosConfig) {
			k.Realms = []string{"MSA.EXAMPLE", "MSA.EXAMPLE", "B.EXAMPLE"}
		}, "ticket.kerberos.login_suffix"},
	} {
		c := Defaults()
		ok(c)
		tc.mod(&c.Kerberos)
		err := c.Validate(&config.Config{DataDir: "d"})
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.field)
		}
	}
}

// TestKerberosEnv: the settings come from the environment too.
func TestKerberosEnv(t *testing.T) {
	def := config.SectionDef{Name: Name, New: func() config.Section { return Defaults() }}
	env := map[string]string{"UIAS_TICKET_KERBEROS_ENABLED": "true", "UIAS_TICKET_KERBEROS_KEYTAB_FILE": "/run/secrets/http.keytab",
		"UIAS_TICKET_KERBEROS_SERVICE_PRINCIPAL": "HTTP/sso.msa.example@MSA.EXAMPLE", "UIAS_TICKET_KERBEROS_REALMS": "MSA.EXAMPLE,SZ.MSA.EXAMPLE",
		"UIAS_TICKET_KERBEROS_STRIP_SUFFIX": "MSA.EXAMPLE=.sz", "UIAS_TICKET_KERBEROS_LOGIN_SUFFIX": "SZ.MSA.EXAMPLE=@sz",
		"UIAS_TICKET_KERBEROS_NETWORKS": "10.20.0.0/16"}
	c, err := config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, nil, def)
	if err != nil {
		t.Fatal(err)
	}
	k := Settings(&c).Kerberos
	if !k.Enabled || k.KeytabFile != "/run/secrets/http.keytab" || k.ServicePrincipal != "HTTP/sso.msa.example@MSA.EXAMPLE" ||
		len(k.Realms) != 2 || k.StripSuffix[0] != "MSA.EXAMPLE=.sz" || k.LoginSuffix[0] != "SZ.MSA.EXAMPLE=@sz" || k.Networks[0] != "10.20.0.0/16" {
		t.Fatalf("from the environment: %+v", k)
	}
}

// TestKerberosKeytab: the keytab is read at the start: refused when others
// may read it (unless key_file_allow_open_mode), when it is not a keytab,
// and when it holds no key of the service principal.
func TestKerberosKeytab(t *testing.T) {
	dir := t.TempDir()
	good := writeKeytab(t, dir, "HTTP/sso.msa.example", "MSA.EXAMPLE", 0o600)
	open := writeKeytab(t, filepath.Join(dir), "HTTP/open.msa.example", "MSA.EXAMPLE", 0o644)
	other := writeKeytab(t, dir, "HTTP/other.msa.example", "MSA.EXAMPLE", 0o600)
	junk := filepath.Join(dir, "junk.keytab")
	if err := os.WriteFile(junk, []byte("not a keytab"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := func(path, spn string, allowOpen bool) *Config {
		c := Defaults()
		c.KeyFileAllowOpenMode = allowOpen
		c.Kerberos = KerberosConfig{Enabled: true, KeytabFile: path, ServicePrincipal: spn}
		return c
	}
	if k, err := cfg(good, "HTTP/sso.msa.example@MSA.EXAMPLE", false).kerberos(); err != nil || k == nil {
		t.Fatalf("good keytab: %v", err)
	}
	if k, err := Defaults().kerberos(); err != nil || k != nil {
		t.Fatalf("off: %v %v", k, err)
	}
	for name, c := range map[string]struct {
		cfg  *Config
		want string
	}{
		"world-readable": {cfg(open, "HTTP/open.msa.example@MSA.EXAMPLE", false), "may be read by others"},
		"missing":        {cfg(filepath.Join(dir, "none"), "HTTP/sso.msa.example@MSA.EXAMPLE", false), "no such file"},
		"not a keytab":   {cfg(junk, "HTTP/sso.msa.example@MSA.EXAMPLE", false), "not a keytab"},
		"other principal": {cfg(other, "HTTP/sso.msa.example@MSA.EXAMPLE", false),
			"holds no key of HTTP/sso.msa.example@MSA.EXAMPLE (it has: HTTP/other.msa.example@MSA.EXAMPLE)"},
		"other realm": {cfg(good, "HTTP/sso.msa.example@OTHER.EXAMPLE", false), "holds no key of HTTP/sso.msa.example@OTHER.EXAMPLE"},
	} {
		_, err := c.cfg.kerberos()
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "ticket.kerberos") {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	if _, err := cfg(open, "HTTP/open.msa.example@MSA.EXAMPLE", true).kerberos(); err != nil {
		t.Fatalf("open keytab accepted explicitly: %v", err)
	}
}
