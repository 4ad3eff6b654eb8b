package component

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/config"
	"github.com/uias/uias/pkg/crypto"
)

var def = config.SectionDef{Name: Name, New: func() config.Section { return Defaults() }}

func fields(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*config.FieldError); ok { //nolint:errorlint // walks the join tree node by node
			out = append(out, fe.Field)
			return
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			for _, x := range j.Unwrap() {
				walk(x)
			}
		}
	}
	walk(err)
	return out
}

func TestDefaults(t *testing.T) {
	c := config.Default(def)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := Settings(&c)
	if s.Argon2 != crypto.DefaultArgon2() || s.AdminTokenTTL != 8*time.Hour || s.SchedPolicy != SchedAuto ||
		s.KeyFile != filepath.Join("data", "keyring.json") || s.UserCacheTTL != 5*time.Second ||
		s.AdminTokenIdle != 30*time.Minute || s.MaxHashWait != 3*time.Second || s.HashQueue != 0 {
		t.Fatalf("defaults: %+v", s)
	}
	if s.LoginThrottle != (LoginThrottle{AddressFailures: 10, BaseDelay: time.Second, MaxDelay: 30 * time.Second, Decay: time.Minute}) {
		t.Fatalf("login throttle = %+v", s.LoginThrottle)
	}
	want := PolicyDefaults{MinLength: 8, RequireClasses: 3, History: 5, MaxFailures: 5, SourceFailures: 2, LockMinutes: 15, MaxAgeDays: 90, UniqueIDNumber: true}
	if s.Policy != want {
		t.Fatalf("policy = %+v", s.Policy)
	}
}

func TestValidateEachProblem(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(c *Config)
		field string
	}{
		{"argon2 memory", func(c *Config) { c.Argon2.MemoryKiB = 4096 }, "identity.argon2.memory_kib"},
		{"argon2 memory huge", func(c *Config) { c.Argon2.MemoryKiB = 4 << 20 }, "identity.argon2.memory_kib"},
		{"argon2 time", func(c *Config) { c.Argon2.Time = 0 }, "identity.argon2.time"},
		{"argon2 threads", func(c *Config) { c.Argon2.Threads = 0 }, "identity.argon2.threads"},
		{"argon2 salt", func(c *Config) { c.Argon2.SaltLen = 4 }, "identity.argon2.salt_len"},
		{"argon2 key", func(c *Config) { c.Argon2.KeyLen = 8 }, "identity.argon2.key_len"},
		{"hash workers", func(c *Config) { c.HashWorkers = -1 }, "identity.hash_workers"},
		{"hash queue", func(c *Config) { c.HashQueue = -2 }, "identity.hash_queue"},
		{"user cache ttl", func(c *Config) { c.UserCacheTTL = -time.Second }, "identity.user_cache_ttl"},
		{"max hash wait zero", func(c *Config) { c.MaxHashWait = 0 }, "identity.max_hash_wait"},
		{"max hash wait huge", func(c *Config) { c.MaxHashWait = 2 * time.Minute }, "identity.max_hash_wait"},
		{"sched policy", func(c *Config) { c.SchedPolicy = "fifo" }, "identity.sched_policy"},
		{"sched policy empty", func(c *Config) { c.SchedPolicy = "" }, "identity.sched_policy"},
		{"key file", func(c *Config) { c.KeyFile = "" }, "identity.key_file"},
		{"cert auto bind without the identity check", func(c *Config) { c.Policy.CertAutoBind = true }, "identity.policy.cert_auto_bind"},
		{"cert auto bind with shared ID numbers", func(c *Config) {
			c.Policy.CertAutoBind, c.Policy.CertIdentityCheck, c.Policy.UniqueIDNumber = true, true, false
		}, "identity.policy.cert_auto_bind"},
		{"policy min length", func(c *Config) { c.Policy.MinLength = -1 }, "identity.policy.min_length"},
		{"policy classes negative", func(c *Config) { c.Policy.RequireClasses = -1 }, "identity.policy.require_classes"},
		{"policy classes > 4", func(c *Config) { c.Policy.RequireClasses = 5 }, "identity.policy.require_classes"},
		{"policy history", func(c *Config) { c.Policy.History = -1 }, "identity.policy.history"},
		{"policy failures", func(c *Config) { c.Policy.MaxFailures = -1 }, "identity.policy.max_failures"},
		{"policy lock", func(c *Config) { c.Policy.LockMinutes = -1 }, "identity.policy.lock_minutes"},
		{"policy age", func(c *Config) { c.Policy.MaxAgeDays = -1 }, "identity.policy.max_age_days"},
		{"policy length", func(c *Config) { c.Policy.MinLength = 2000 }, "identity.policy.min_length"},
		{"policy level 3", func(c *Config) { c.Policy.MinAuthLevel = 3 }, "identity.policy.min_auth_level"},
		{"policy level negative", func(c *Config) { c.Policy.MinAuthLevel = -1 }, "identity.policy.min_auth_level"},
		{"admin ttl", func(c *Config) { c.AdminTokenTTL = 0 }, "identity.admin_token_ttl"},
		{"negative app secret lifetime", func(c *Config) { c.AppSecretLifetime = -time.Hour }, "identity.app_secret_lifetime"},
		{"absurd app secret lifetime", func(c *Config) { c.AppSecretLifetime = 3651 * 24 * time.Hour }, "identity.app_secret_lifetime"},
		{"app secret lifetime in part seconds", func(c *Config) { c.AppSecretLifetime = 1500 * time.Millisecond }, "identity.app_secret_lifetime"},
		{"finger probe memory too short", func(c *Config) { c.FingerProbeMemory = time.Minute }, "identity.finger_probe_memory"},
		{"negative A2 secret lifetime", func(c *Config) { c.AppSecretLifetimeA2 = -time.Hour }, "identity.app_secret_lifetime_a2"},
		{"negative signing key lifetime", func(c *Config) { c.SigningKeyLifetime = -time.Hour }, "identity.signing_key_lifetime"},
		{"absurd A2 signing key lifetime", func(c *Config) { c.SigningKeyLifetimeA2 = 3651 * 24 * time.Hour }, "identity.signing_key_lifetime_a2"},
		{"admin idle", func(c *Config) { c.AdminTokenIdle = 0 }, "identity.admin_token_idle"},
		{"source failures zero", func(c *Config) { c.Policy.SourceFailures = 0 }, "identity.policy.source_failures"},
		// One address could lock the account.
		{"source failures = max", func(c *Config) { c.Policy.SourceFailures = 5 }, "identity.policy.source_failures"},
		{"max failures 1", func(c *Config) { c.Policy.MaxFailures = 1 }, "identity.policy.max_failures"},
		{"throttle free", func(c *Config) { c.LoginThrottle.AddressFailures = 0 }, "identity.login_throttle.address_failures"},
		{"throttle base", func(c *Config) { c.LoginThrottle.BaseDelay = 0 }, "identity.login_throttle.base_delay"},
		{"throttle max < base", func(c *Config) { c.LoginThrottle.MaxDelay = time.Millisecond }, "identity.login_throttle.max_delay"},
		{"throttle max huge", func(c *Config) { c.LoginThrottle.MaxDelay = time.Hour }, "identity.login_throttle.max_delay"},
		{"throttle decay", func(c *Config) { c.LoginThrottle.Decay = 0 }, "identity.login_throttle.decay"},
		{"import login share zero", func(c *Config) { c.ImportLoginShare = 0 }, "identity.import_login_share"},
		{"import login share > 1", func(c *Config) { c.ImportLoginShare = 1.5 }, "identity.import_login_share"},
		{"import cache too small", func(c *Config) { c.ImportCacheMiB = 1 }, "identity.import_cache_mib"},
		{"import cache too large", func(c *Config) { c.ImportCacheMiB = 1 << 20 }, "identity.import_cache_mib"},
		{"kerberos orgs no realm", func(c *Config) { c.KerberosOrgs = []string{"sz"} }, "identity.kerberos_orgs"},
		{"kerberos orgs lower realm", func(c *Config) { c.KerberosOrgs = []string{"msa.example=sz"} }, "identity.kerberos_orgs"},
		{"kerberos orgs no code", func(c *Config) { c.KerberosOrgs = []string{"MSA.EXAMPLE="} }, "identity.kerberos_orgs"},
		{"uniqueness peer unreachable", func(c *Config) { c.Uniqueness.PeerUnreachable = "deny" }, "identity.uniqueness.peer_unreachable"},
		{"uniqueness wait zero", func(c *Config) { c.Uniqueness.Wait = 0 }, "identity.uniqueness.wait"},
		{"uniqueness wait huge", func(c *Config) { c.Uniqueness.Wait = time.Minute }, "identity.uniqueness.wait"},
		{"uniqueness hold short", func(c *Config) { c.Uniqueness.Hold = time.Second }, "identity.uniqueness.hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := config.Default(def)
			tt.mod(Settings(&c))
			err := c.Validate()
			if !slices.Contains(fields(err), tt.field) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("fields %v do not include %q; error: %v", fields(err), tt.field, err)
			}
		})
	}
}

func TestLoadYAMLAndEnv(t *testing.T) {
	path := filepath.Join(t.TempDir(), "uias.yaml")
	if err := os.WriteFile(path, []byte(`
data_dir: /var/lib/uias
identity:
  argon2: {memory_kib: 65536, time: 3, threads: 2, salt_len: 16, key_len: 32}
  hash_workers: 4
  hash_queue: 16
  max_hash_wait: 1500ms
  sched_policy: inherit
  policy: {min_length: 12, require_classes: 4, history: 10, max_failures: 3, source_failures: 1, lock_minutes: 30, max_age_days: 0, unique_id_number: true, self_service_display_name: true}
  admin_token_ttl: 30m
  admin_token_idle: 10m
  login_throttle: {address_failures: 20, base_delay: 500ms, max_delay: 1m, decay: 30s}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"UIAS_HASH_WORKERS": "2", "UIAS_ARGON2_THREADS": "1", "UIAS_BOOTSTRAP_PASSWORD": "Boot-Pass-1",
		"UIAS_POLICY_MAX_FAILURES": "7", "UIAS_POLICY_UNIQUE_ID_NUMBER": "false", "UIAS_POLICY_MIN_AUTH_LEVEL": "2", "UIAS_LOGIN_THROTTLE_DECAY": "2m", "UIAS_MAX_HASH_WAIT": "750ms"}
	c, err := config.Load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, nil, def)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := Settings(&c)
	if s.Argon2 != (crypto.Argon2Params{MemoryKiB: 65536, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}) ||
		s.HashWorkers != 2 || s.HashQueue != 16 || s.SchedPolicy != "inherit" || s.Policy.MinLength != 12 ||
		s.Policy.MaxFailures != 7 || s.AdminTokenTTL != 30*time.Minute || s.BootstrapPassword != "Boot-Pass-1" ||
		s.KeyFile != "/var/lib/uias/keyring.json" || s.Policy.SourceFailures != 1 || s.AdminTokenIdle != 10*time.Minute ||
		s.LoginThrottle != (LoginThrottle{AddressFailures: 20, BaseDelay: 500 * time.Millisecond, MaxDelay: time.Minute, Decay: 2 * time.Minute}) ||
		s.MaxHashWait != 750*time.Millisecond || s.Policy.UniqueIDNumber || !Defaults().Policy.UniqueIDNumber ||
		!s.Policy.SelfServiceDisplayName || Defaults().Policy.SelfServiceDisplayName || !policyOf(s.Policy).SelfServiceDisplayName ||
		policyOf(s.Policy).MinAuthLevel != 2 {
		t.Fatalf("got %+v", s)
	}
	// Out-of-range and unknown values are clear errors.
	env = map[string]string{"UIAS_ARGON2_THREADS": "300", "UIAS_ADMIN_TOKEN_TTL": "8"}
	_, err = config.Load("", func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, nil, def)
	for _, name := range []string{"UIAS_ARGON2_THREADS", "UIAS_ADMIN_TOKEN_TTL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s: %v", name, err)
		}
	}
}

// The key ring itself comes only from the environment (UIAS_KEYRING), never
// from the config file; the file may name a key file and allow an open mode.
func TestKeyRingSettings(t *testing.T) {
	def := config.SectionDef{Name: Name, New: func() config.Section { return Defaults() }}
	dir := t.TempDir()
	path := filepath.Join(dir, "uias.yaml")
	_ = os.WriteFile(path, []byte("identity:\n  key_file: /run/secrets/uias/keyring.json\n  key_file_allow_open_mode: true\n"), 0o600)
	env := map[string]string{"UIAS_KEYRING": `{"version":2}`}
	c, err := config.Load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, nil, def)
	if err != nil {
		t.Fatal(err)
	}
	s := Settings(&c)
	if s.KeyRing != `{"version":2}` || s.KeyFile != "/run/secrets/uias/keyring.json" || !s.KeyFileAllowOpenMode {
		t.Fatalf("got %+v", s)
	}
	for _, key := range []string{"key_ring", "keyring"} {
		_ = os.WriteFile(path, []byte("identity:\n  "+key+": '{\"version\":2}'\n"), 0o600)
		if _, err := config.Load(path, nil, nil, nil, def); err == nil || !strings.Contains(err.Error(), "unknown key") {
			t.Errorf("%s in the config file: %v, want an unknown-key error", key, err)
		}
	}
}

// identity.ldap_auth from the configuration file: an Active Directory
// search entry and an OpenLDAP template entry load and open (the service
// account's password from the environment variable named); each entry's
// problems are told with its place; one org in two sources is refused.
func TestLDAPAuthSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "uias.yaml")
	yaml := `data_dir: ` + t.TempDir() + `
identity:
  ldap_auth:
    - name: corp-ad
      url: ldaps://dc1.corp.example.com
      bind_dn: CN=uias-reader,OU=Service Accounts,DC=corp,DC=example,DC=com
      bind_password_env: UIAS_LDAP_CORP_PASSWORD
      base_dn: DC=corp,DC=example,DC=com
      filter: (&(objectClass=user)(sAMAccountName={login}))
      orgs: [sz]
      timeout: 3s
    - name: lab
      url: ldap://127.0.0.1:3389
      start_tls: false
      bind_dn_template: uid={login},ou=people,dc=lab
      orgs: [lab]
`
	if err := os.WriteFile(path, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"UIAS_LDAP_CORP_PASSWORD": "reader-secret"}
	t.Setenv("UIAS_LDAP_CORP_PASSWORD", "reader-secret")
	c, err := config.Load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok }, nil, nil, def)
	if err != nil {
		t.Fatal(err)
	}
	s := Settings(&c)
	if len(s.LDAPAuth) != 2 || s.LDAPAuth[0].Timeout != 3*time.Second || s.LDAPAuth[1].StartTLS == nil || *s.LDAPAuth[1].StartTLS {
		t.Fatalf("ldap_auth: %+v", s.LDAPAuth)
	}
	srcs, err := credentialSources(s, zap.NewNop())
	if err != nil || len(srcs) != 2 || srcs[0].Source.Name() != "corp-ad" || !slices.Equal(srcs[1].Orgs, []string{"lab"}) {
		t.Fatalf("opened: %+v %v", srcs, err)
	}
	t.Setenv("UIAS_LDAP_CORP_PASSWORD", "")
	if _, err := credentialSources(s, zap.NewNop()); err == nil || !strings.Contains(err.Error(), "identity.ldap_auth[0].bind_password_file") ||
		strings.Contains(err.Error(), "reader-secret") {
		t.Fatalf("no service account password: %v", err)
	}

	s.LDAPAuth[1].Orgs = []string{"sz"}
	s.LDAPAuth[1].StartTLS = nil
	s.LDAPAuth[1].URL = "ldap://ldap.lab.example.com"
	s.LDAPAuth[1].StartTLS = new(false)
	got := fields(s.Validate(&c))
	if !slices.Equal(got, []string{"identity.ldap_auth[1].start_tls", "identity.ldap_auth[1].orgs"}) {
		t.Fatalf("problems: %v", got)
	}
}

// TestKerberosOrgsSetting: identity.kerberos_orgs reads REALM=code
// entries, several codes per realm, from the file or the environment.
func TestKerberosOrgsSetting(t *testing.T) {
	m, err := kerberosOrgs([]string{"MSA.EXAMPLE=sz", "MSA.EXAMPLE=gz", "MSA.EXAMPLE=sz", "LAB.EXAMPLE=lab"})
	if err != nil || len(m) != 2 || !slices.Equal(m["MSA.EXAMPLE"], []string{"sz", "gz"}) || !slices.Equal(m["LAB.EXAMPLE"], []string{"lab"}) {
		t.Fatalf("%v %v", m, err)
	}
	c, err := config.Load("", func(k string) (string, bool) {
		if k == "UIAS_KERBEROS_ORGS" {
			return "MSA.EXAMPLE=sz,MSA.EXAMPLE=gz", true
		}
		return "", false
	}, nil, nil, def)
	if err != nil || !slices.Equal(Settings(&c).KerberosOrgs, []string{"MSA.EXAMPLE=sz", "MSA.EXAMPLE=gz"}) {
		t.Fatalf("from the environment: %v %v", Settings(&c).KerberosOrgs, err)
	}
}

// TestUniquenessSettings: the defaults (allow, 2s, 10m), the environment,
// and the shared key file: base64 or hex of 32 bytes, mode checked.
func TestUniquenessSettings(t *testing.T) {
	c, err := config.Load("", func(k string) (string, bool) {
		switch k {
		case "UIAS_UNIQUENESS_PEER_UNREACHABLE":
			return "refuse", true
		case "UIAS_UNIQUENESS_WAIT":
			return "500ms", true
		}
		return "", false
	}, nil, nil, def)
	if err != nil {
		t.Fatal(err)
	}
	if u := Settings(&c).Uniqueness; u.PeerUnreachable != "refuse" || u.Wait != 500*time.Millisecond || u.Hold != 10*time.Minute {
		t.Fatalf("from the environment: %+v", u)
	}
	if u := Defaults().Uniqueness; u.PeerUnreachable != "allow" || u.Wait != 2*time.Second {
		t.Fatalf("defaults: %+v", u)
	}
	dir := t.TempDir()
	write := func(name, v string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(v), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	b64 := write("b64", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\n", 0o600)
	hexKey := write("hex", strings.Repeat("ab", 32), 0o440)
	if k, err := readCentresKey(b64, false); err != nil || string(k) != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("base64: %q %v", k, err)
	}
	if k, err := readCentresKey(hexKey, false); err != nil || len(k) != 32 {
		t.Fatalf("hex: %v", err)
	}
	if _, err := readCentresKey(write("short", "c2hvcnQ=", 0o600), false); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Fatalf("short key: %v", err)
	}
	open := write("open", strings.Repeat("ab", 32), 0o644)
	if _, err := readCentresKey(open, false); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("open file: %v", err)
	}
	if _, err := readCentresKey(open, true); err != nil {
		t.Fatalf("open file allowed: %v", err)
	}

	// id_numbers false (review sec29b M3): the key file is not used, no
	// centres key is computed; the default compares ID numbers.
	homes := &centre.Homes{Self: "l2a", Level: 2, Parent: "l1"}
	cfg := Defaults()
	cfg.Uniqueness.KeyFile = b64
	if u, err := uniquenessOf(cfg, homes, nil, nil, zap.NewNop()); err != nil || len(u.CentresKey) != 32 {
		t.Fatalf("default: %d %v", len(u.CentresKey), err)
	}
	cfg.Uniqueness.IDNumbers = false
	if u, err := uniquenessOf(cfg, homes, nil, nil, zap.NewNop()); err != nil || len(u.CentresKey) != 0 {
		t.Fatalf("id_numbers false: %d %v", len(u.CentresKey), err)
	}
}
