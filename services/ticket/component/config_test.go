package component

import (
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/config"
)

func TestDefaultsAreCAS(t *testing.T) {
	c := Defaults()
	if c.STTTL != 10*time.Second || c.TGTIdle != 2*time.Hour || c.TGTHard != 8*time.Hour {
		t.Fatalf("defaults: %+v", c)
	}
	if err := c.Validate(&config.Config{DataDir: "d"}); err != nil {
		t.Fatal(err)
	}
	if c.ServicesDefaultAccess != ServicesOpen {
		t.Fatalf("services_default_access %q, want open (as before)", c.ServicesDefaultAccess)
	}
	c.ServicesDefaultAccess = ServicesLinked
	if err := c.Validate(&config.Config{DataDir: "d"}); err != nil {
		t.Fatalf("linked: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for name, tc := range map[string]struct {
		mod   func(c *Config)
		field string
	}{
		"st_ttl zero":      {func(c *Config) { c.STTTL = 0 }, "ticket.st_ttl"},
		"default access":   {func(c *Config) { c.ServicesDefaultAccess = "closed" }, "ticket.services_default_access"},
		"idle beyond hard": {func(c *Config) { c.TGTIdle, c.TGTHard = 9*time.Hour, 8*time.Hour }, "ticket.tgt_idle"},
		"centre with dash": {func(c *Config) { c.Centre = "bj-1" }, "ticket.centre"},
		"replicas":         {func(c *Config) { c.KVReplicas = 0 }, "ticket.kv_replicas"},
		"store timeout":    {func(c *Config) { c.StoreTimeout = time.Hour }, "ticket.store_timeout"},
		"touch over idle":  {func(c *Config) { c.SessionTouch = 90 * time.Minute }, "ticket.session_touch"},
		"issuer relative":  {func(c *Config) { c.OIDCIssuer = "/cas/oidc" }, "ticket.oidc_issuer"},
		"issuer slash":     {func(c *Config) { c.OIDCIssuer = "https://sso.example/cas/oidc/" }, "ticket.oidc_issuer"},
		"issuer query":     {func(c *Config) { c.OIDCIssuer = "https://sso.example/cas/oidc?x=1" }, "ticket.oidc_issuer"},
		"issuer path":      {func(c *Config) { c.OIDCIssuer = "https://sso.example" }, "ticket.oidc_issuer"},
		"code ttl":         {func(c *Config) { c.OIDCCodeTTL = time.Hour }, "ticket.oidc_code_ttl"},
		"access ttl":       {func(c *Config) { c.AccessTokenTTL = 0 }, "ticket.access_token_ttl"},
		"agent in clear":   {func(c *Config) { c.FingerAgentURL = "http://agent.example:15270/capture" }, "ticket.finger_agent_url"},
		"agent relative":   {func(c *Config) { c.FingerAgentURL = "/capture" }, "ticket.finger_agent_url"},
		"agent scheme":     {func(c *Config) { c.FingerAgentURL = "ftp://127.0.0.1/capture" }, "ticket.finger_agent_url"},
		"agent user":       {func(c *Config) { c.FingerAgentURL = "https://u:p@agent.example/capture" }, "ticket.finger_agent_url"},
		"agent into CSP":   {func(c *Config) { c.FingerAgentURL = "https://a.example;script-src */c" }, "ticket.finger_agent_url"},
		"usb script clear": {func(c *Config) { c.USBKey, c.USBKeyScript = true, "http://vendor.example/k.js" }, "ticket.usb_key_script"},
		"usb script rel":   {func(c *Config) { c.USBKey, c.USBKeyScript = true, "k.js" }, "ticket.usb_key_script"},
		"usb script //":    {func(c *Config) { c.USBKey, c.USBKeyScript = true, "//vendor.example/k.js" }, "ticket.usb_key_script"},
		"usb script CSP":   {func(c *Config) { c.USBKey, c.USBKeyScript = true, "https://v.example;script-src *" }, "ticket.usb_key_script"},
		"usb script off":   {func(c *Config) { c.USBKeyScript = "/static/k.js" }, "ticket.usb_key_script"},
		"usb connect ws":   {func(c *Config) { c.USBKey, c.USBKeyConnect = true, []string{"ws://agent.example:4006"} }, "ticket.usb_key_connect"},
		"usb connect path": {func(c *Config) { c.USBKey, c.USBKeyConnect = true, []string{"wss://agent.example/x"} }, "ticket.usb_key_connect"},
		"usb connect star": {func(c *Config) { c.USBKey, c.USBKeyConnect = true, []string{"https://*.example"} }, "ticket.usb_key_connect"},
		"usb connect off":  {func(c *Config) { c.USBKeyConnect = []string{"ws://127.0.0.1:4006"} }, "ticket.usb_key_connect"},
	} {
		c := Defaults()
		tc.mod(c)
		err := c.Validate(&config.Config{DataDir: "d"})
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.field)
		}
	}
}

func TestFingerAgentURLs(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:15270/capture", "http://localhost:15270/", "http://[::1]:15270/capture",
		"https://agent.example:8443/capture"} {
		c := Defaults()
		c.FingerAgentURL = u
		if err := c.Validate(&config.Config{DataDir: "d"}); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

// TestUSBKeySettings: the USB key's script and agent origins operators
// use are accepted; an https script needs its SRI hash, and an http one
// (even to this computer) is refused (sec29a M2).
func TestUSBKeySettings(t *testing.T) {
	const sri = "sha384-oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC"
	for script, integrity := range map[string]string{"/static/usbkey.js": "", "https://vendor.example/k.js": sri, "": "",
		"/static/k.js": sri + " sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="} {
		c := Defaults()
		c.USBKey, c.USBKeyScript, c.USBKeyScriptIntegrity = true, script, integrity
		c.USBKeyConnect = []string{"ws://127.0.0.1:4006", "wss://agent.example:8443", "http://localhost:4007", "https://vendor.example"}
		if err := c.Validate(&config.Config{DataDir: "d"}); err != nil {
			t.Errorf("%q: %v", script, err)
		}
	}
	for _, tc := range []struct{ script, integrity, want string }{
		{"https://vendor.example/k.js", "", "ticket.usb_key_script_integrity: is required"},
		{"http://127.0.0.1:4006/k.js", "", "ticket.usb_key_script: must be"},
		{"http://localhost:4006/k.js", sri, "ticket.usb_key_script: must be"},
		{"https://vendor.example/k.js", "sha1-2jmj7l5rSw0yVb/vlWAYkK/YBwk=", "ticket.usb_key_script_integrity: must be"},
		{"https://vendor.example/k.js", "sha384-abc", "ticket.usb_key_script_integrity: must be"},
		{"", sri, "usb_key_script is not"},
	} {
		c := Defaults()
		c.USBKey, c.USBKeyScript, c.USBKeyScriptIntegrity = true, tc.script, tc.integrity
		if err := c.Validate(&config.Config{DataDir: "d"}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q %q: %v", tc.script, tc.integrity, err)
		}
	}
}

func TestEndReason(t *testing.T) {
	for subject, tc := range map[string]struct {
		data, want string
	}{
		"uias.changes.identity.user.locked":              {`{"id":"u"}`, "USER_LOCKED"},
		"uias.changes.identity.user.disabled":            {`{"id":"u"}`, "USER_DISABLED"},
		"uias.changes.identity.user.deleted":             {`{"id":"u"}`, "USER_DELETED"},
		"uias.changes.identity.user.password_changed":    {`{"id":"u","data":{"must_change_password":true}}`, "PASSWORD_CHANGED"},
		"uias.changes.identity.user.status_changed":      {`{"id":"u","data":{"status":2}}`, "USER_DISABLED"},
		"uias.changes.identity.user.certificate_unbound": {`{"id":"u","data":{"sha256":"ab01"}}`, "CERTIFICATE_UNBOUND"},
		"uias.changes.identity.user.certificate_bound":   {`{"id":"u","data":{"sha256":"ab01"}}`, ""},
		"uias.changes.identity.user.updated":             {`{"id":"u"}`, ""},
		"uias.changes.identity.user.unlocked":            {`{"id":"u"}`, ""},
		// locked at a centre holding the person as a replica, and that
		// lock applied at their home (trial9 D2)
		"uias.changes.identity.lock.locked":         {`{"id":"u","data":{"locked_until":"2999-01-01T00:00:00Z"}}`, "USER_LOCKED"},
		"uias.changes.identity.lock.replica.locked": {`{"id":"u","data":{"locked_until":"2999-01-01T00:00:00Z"}}`, "USER_LOCKED"},
		"uias.changes.identity.lock.expired":        {`{"id":"u"}`, ""},
	} {
		if got := EndReason(subject, []byte(tc.data)); got != tc.want {
			t.Errorf("%s: %q, want %q", subject, got, tc.want)
		}
	}
	// a lock from another centre that ended before it arrived ends nothing
	if got := EndReason("uias.changes.identity.lock.replica.locked", []byte(`{"id":"u","data":{"locked_until":"2020-01-01T00:00:00Z"}}`)); got != "" {
		t.Errorf("an expired lock: %q", got)
	}
	if got := EndReason("uias.changes.identity.user.status_changed", []byte(`{"id":"u","data":{"status":1}}`)); got != "" {
		t.Errorf("re-enabled: %q", got)
	}
}
