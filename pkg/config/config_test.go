package config

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// demo is a component section as components define them: its own YAML
// keys, environment variables, a flag, derived fields and validation.
type demo struct {
	Workers int           `yaml:"workers"`
	TTL     time.Duration `yaml:"ttl"`
	File    string        `yaml:"file"`
	Nested  struct {
		Size int `yaml:"size"`
	} `yaml:"nested"`
	Secret string `yaml:"-"`
}

func (d *demo) Bind(b *Binder) {
	b.Int(&d.Workers, "UIAS_DEMO_WORKERS", "demo-workers", "demo workers")
	b.Duration(&d.TTL, "UIAS_DEMO_TTL", "", "")
	b.Int(&d.Nested.Size, "UIAS_DEMO_SIZE", "", "")
	b.Secret(&d.Secret, "UIAS_DEMO_SECRET")
}

func (d *demo) Complete(p *Config) {
	if d.File == "" && p.DataDir != "" {
		d.File = filepath.Join(p.DataDir, "demo.bin")
	}
}

func (d *demo) Validate(*Config) error {
	var errs []error
	if d.Workers < 0 {
		errs = append(errs, &FieldError{Field: "demo.workers", Msg: "must not be negative"})
	}
	if d.TTL <= 0 {
		errs = append(errs, &FieldError{Field: "demo.ttl", Msg: "must be positive"})
	}
	return errors.Join(errs...)
}

var demoDef = SectionDef{Name: "demo", New: func() Section { return &demo{Workers: 2, TTL: time.Hour} }}

func demoOf(c Config) *demo { return c.Section("demo").(*demo) }

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

var noEnv = envMap(nil)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "uias.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustValid(t *testing.T, c Config) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("loaded config is invalid: %v", err)
	}
}

func newFS() *flag.FlagSet {
	fs := flag.NewFlagSet("uias", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// fieldErrors returns the field names reported by a Validate/Load error.
func fieldErrors(err error) []string {
	var out []string
	var walk func(error)
	walk = func(e error) {
		if fe, ok := e.(*FieldError); ok { //nolint:errorlint // walks the join tree node by node
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

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() invalid: %v", err)
	}
	if c.Target != "all" || c.Discovery != "inproc" || c.GRPCAddr != "127.0.0.1:9090" || c.HTTPAddr != "127.0.0.1:8080" {
		t.Fatalf("unexpected defaults: %+v", c)
	}
	if c.AdvertiseAddr != c.GRPCAddr || c.DB.Driver != "sqlite" || c.SQLDSN("identity") != filepath.Join("data", "identity.db") {
		t.Fatalf("derived defaults: advertise=%q db=%+v", c.AdvertiseAddr, c.DB)
	}
	if !c.NATS.Embedded {
		t.Fatalf("defaults: nats=%+v", c.NATS)
	}
	// No proxy is trusted by default: a client cannot choose its address.
	if len(c.TrustedProxies) != 0 {
		t.Fatalf("trusted proxies = %v", c.TrustedProxies)
	}
	d := Default(demoDef)
	if err := d.Validate(); err != nil {
		t.Fatalf("Default(demo) invalid: %v", err)
	}
	if got := demoOf(d); got.Workers != 2 || got.File != filepath.Join("data", "demo.bin") {
		t.Fatalf("demo section defaults: %+v", got)
	}
}

func TestValidateEachProblem(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(c *Config)
		field string
	}{
		{"bad target", func(c *Config) { c.Target = "Every thing" }, "target"},
		{"empty target", func(c *Config) { c.Target = " , " }, "target"},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
		{"grpc addr no port", func(c *Config) { c.GRPCAddr = "localhost" }, "grpc_addr"},
		{"grpc addr bad port", func(c *Config) { c.GRPCAddr = "localhost:http2" }, "grpc_addr"},
		{"http addr port range", func(c *Config) { c.HTTPAddr = "127.0.0.1:70000" }, "http_addr"},
		{"unknown db driver", func(c *Config) { c.DB.Driver = "mysql" }, "db.driver"},
		{"postgres without dsn", func(c *Config) { c.DB.Driver = "postgres"; c.DB.DSN = "" }, "db.dsn"},
		{"bad log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level"},
		{"bad log format", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"identity without etcd", func(c *Config) { identity(c); c.Etcd.Endpoints = nil }, "etcd.endpoints"},
		{"identity with embedded nats", func(c *Config) { identity(c); c.NATS.Embedded = true }, "nats.embedded"},
		{"bad nats url scheme", func(c *Config) { c.NATS.URL = "http://localhost:4222" }, "nats.url"},
		{"two nats credentials", func(c *Config) {
			identity(c)
			c.NATS.User, c.NATS.PasswordFile, c.NATS.NKeySeedFile = "identity", "pw", "identity.nk"
		}, "nats.user"},
		{"nats user without password", func(c *Config) { identity(c); c.NATS.User = "identity" }, "nats.password_file"},
		{"nats password without user", func(c *Config) { identity(c); c.NATS.Password = "pw" }, "nats.user"},
		{"nats credentials for the embedded server", func(c *Config) { c.NATS.NKeySeedFile = "identity.nk" }, "nats.url"},
		{"nats tls cert without key", func(c *Config) { identity(c); c.NATS.TLS.CertFile = "c.crt" }, "nats.tls.cert_file"},
		{"bad etcd endpoint", func(c *Config) { identity(c); c.Etcd.Endpoints = []string{"etcd-without-port"} }, "etcd.endpoints"},
		{"inproc with identity", func(c *Config) { identity(c); c.Discovery = "inproc" }, "discovery"},
		{"unknown discovery", func(c *Config) { c.Discovery = "dns" }, "discovery"},
		{"etcd discovery without endpoints", func(c *Config) { c.Discovery = "etcd" }, "etcd.endpoints"},
		{"dial timeout", func(c *Config) { c.Etcd.DialTimeout = 0 }, "etcd.dial_timeout"},
		{"lease ttl", func(c *Config) { c.Etcd.LeaseTTL = 0 }, "etcd.lease_ttl"},
		{"trusted proxy", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.1"} }, "trusted_proxies"},
		{"tls cert without key", func(c *Config) { c.TLS.CertFile = "server.crt" }, "tls.key_file"},
		{"tls key without cert", func(c *Config) { c.TLS.KeyFile = "server.key" }, "tls.cert_file"},
		{"tls client ca without cert", func(c *Config) { c.TLS.ClientCAFile = "ca.crt" }, "tls.client_ca_file"},
		{"tls people ca without cert", func(c *Config) { c.TLS.PeopleCAFile = "people.crt" }, "tls.people_ca_file"},
		{"tls crl without client cas", func(c *Config) { c.TLS.CertFile, c.TLS.KeyFile, c.TLS.CRLFile = "s.crt", "s.key", "ca.crl" }, "tls.crl_file"},
		{"section", func(c *Config) { *c = Default(demoDef); demoOf(*c).Workers = -1 }, "demo.workers"},
		{"keepalive min time over the components' ping", func(c *Config) { c.GRPC.KeepaliveMinTime = 2 * time.Minute }, "grpc.keepalive_min_time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mod(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("Validate() = nil")
			}
			fields := fieldErrors(err)
			if !slices.Contains(fields, tt.field) {
				t.Fatalf("fields %v do not include %q; error: %v", fields, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("message does not name the field: %v", err)
			}
		})
	}
}

// identity turns c into a valid distributed identity-service config.
func identity(c *Config) {
	c.Target = "identity"
	c.Discovery = "etcd"
	c.NATS.URL = "nats://nats:4222"
	c.NATS.Embedded = false
	c.Etcd.Endpoints = []string{"http://etcd:2379"}
	c.GRPCAddr = "0.0.0.0:9090"
	c.AdvertiseAddr = "identity-0.identity:9090"
}

func TestValidateDistributedOK(t *testing.T) {
	c := Default()
	identity(&c)
	c.DB.Driver = "postgres"
	c.DB.DSN = "postgres://uias:pw@db/uias"
	c.TLS.CertFile, c.TLS.KeyFile, c.TLS.ClientCAFile = "a.crt", "a.key", "ca.crt"
	c.NATS.NKeySeedFile, c.NATS.TLS.CAFile = "/run/secrets/identity.nk", "/etc/uias/nats-ca.crt"
	if err := c.Validate(); err != nil {
		t.Fatalf("valid config rejected: %v", err)
	}
	// Port 0 (random) is fine to listen on in monolithic mode.
	c = Default()
	c.GRPCAddr, c.HTTPAddr, c.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0", ""
	if err := c.Validate(); err != nil {
		t.Fatalf("port 0 rejected: %v", err)
	}
}

func TestValidateReportsAllProblems(t *testing.T) {
	c := Default(demoDef)
	c.Target = "identity"
	c.Discovery = "etcd"
	c.NATS.Embedded = false
	c.GRPCAddr = "nope"
	c.DB.Driver = "postgres"
	c.DB.DSN = ""
	demoOf(c).Workers = -1
	demoOf(c).TTL = 0
	c.TrustedProxies = []string{"bad"}
	c.TLS.CertFile = "x.crt"
	err := c.Validate()
	want := []string{"grpc_addr", "db.dsn", "etcd.endpoints", "demo.workers",
		"demo.ttl", "trusted_proxies", "tls.key_file"}
	got := fieldErrors(err)
	for _, f := range want {
		if !slices.Contains(got, f) {
			t.Errorf("missing %q in %v", f, got)
		}
	}
	if len(got) < len(want) {
		t.Fatalf("got %d problems, want >= %d: %v", len(got), len(want), err)
	}
}

func TestValidateNoSecretsInErrors(t *testing.T) {
	c := Default()
	c.DB.Driver = "postgres"
	c.DB.DSN = "postgres://uias:hunter2@db/uias"
	c.NATS.URL = "ftp://user:hunter2@nats:4222"
	c.Etcd.Endpoints = []string{"gopher://root:hunter2@etcd:2379"}
	err := c.Validate()
	if err == nil {
		t.Fatal("expected errors")
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error leaks a secret: %v", err)
	}
}

func TestLoadPrecedence(t *testing.T) {
	path := writeFile(t, `
target: all
grpc_addr: 127.0.0.1:1001
http_addr: 127.0.0.1:2001
data_dir: /file/data
log:
  level: warn
db:
  driver: sqlite
demo:
  ttl: 2h
  workers: 7
etcd:
  endpoints: [http://file-etcd:2379]
  dial_timeout: 3s
`)
	env := envMap(map[string]string{
		"UIAS_HTTP_ADDR":      "127.0.0.1:2002",
		"UIAS_DATA_DIR":       "/env/data",
		"UIAS_LOG_LEVEL":      "error",
		"UIAS_ETCD_ENDPOINTS": "http://e1:2379, http://e2:2379",
		"UIAS_NATS_URL":       "", // empty env values are ignored
		"UIAS_DEMO_WORKERS":   "8",
	})
	fs := newFS()
	c, err := Load(path, env, fs, []string{"--data-dir", "/flag/data", "--log-level=debug", "--demo-workers=9"}, demoDef)
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, c)
	checks := []struct{ name, got, want string }{
		{"grpc_addr (file only)", c.GRPCAddr, "127.0.0.1:1001"},
		{"http_addr (file < env)", c.HTTPAddr, "127.0.0.1:2002"},
		{"data_dir (file < env < flag)", c.DataDir, "/flag/data"},
		{"log.level (file < env < flag)", c.Log.Level, "debug"},
		{"log.format (default)", c.Log.Format, "json"},
		{"etcd endpoints (env)", strings.Join(c.Etcd.Endpoints, " "), "http://e1:2379 http://e2:2379"},
		{"derived dsn follows final data dir", c.SQLDSN("identity"), filepath.Join("/flag/data", "identity.db")},
		{"derived section field", demoOf(c).File, filepath.Join("/flag/data", "demo.bin")},
		{"advertise defaults to grpc addr", c.AdvertiseAddr, "127.0.0.1:1001"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if demoOf(c).TTL != 2*time.Hour || c.Etcd.DialTimeout != 3*time.Second {
		t.Errorf("durations from YAML: ttl=%v dial=%v", demoOf(c).TTL, c.Etcd.DialTimeout)
	}
	if demoOf(c).Workers != 9 {
		t.Errorf("section flag (file 7 < env 8 < flag 9): %d", demoOf(c).Workers)
	}
}

func TestLoadFlagsOnlyWhenGiven(t *testing.T) {
	env := envMap(map[string]string{"UIAS_GRPC_ADDR": "127.0.0.1:7000"})
	c, err := Load("", env, newFS(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCAddr != "127.0.0.1:7000" {
		t.Fatalf("unset flag overrode env: %q", c.GRPCAddr)
	}
}

func TestLoadDistributedFromFlags(t *testing.T) {
	c, err := Load("", noEnv, newFS(), []string{
		"--target=identity", "--grpc-addr=0.0.0.0:9090", "--advertise-addr=10.1.2.3:9090",
		"--nats-url=nats://n1:4222", "--etcd-endpoints=http://e1:2379,http://e2:2379",
		"--db-driver=postgres", "--db-dsn=postgres://u:p@db/uias", "--http-addr=:8080",
	})
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, c)
	if c.Discovery != "etcd" || c.NATS.Embedded || len(c.Etcd.Endpoints) != 2 || c.DB.Driver != "postgres" {
		t.Fatalf("got %+v", c)
	}
}

func TestLoadConfigFlagFromCaller(t *testing.T) {
	path := writeFile(t, "grpc_addr: 127.0.0.1:4444\n")
	fs := newFS()
	fs.String("config", "", "config file")
	c, err := Load("", noEnv, fs, []string{"--config", path})
	if err != nil {
		t.Fatal(err)
	}
	if c.GRPCAddr != "127.0.0.1:4444" {
		t.Fatalf("--config not honoured: %q", c.GRPCAddr)
	}
}

func TestLoadYAMLErrors(t *testing.T) {
	tests := []struct{ name, yaml, want string }{
		{"typo", "grpc_adr: 127.0.0.1:1\n", "grpc_adr"},
		{"nested typo", "db:\n  drivr: sqlite\n", "drivr"},
		{"duration as int", "demo:\n  ttl: 8\n", "ttl"},
		{"bad duration", "demo:\n  ttl: eight hours\n", "ttl"},
		{"section typo", "demo:\n  workrs: 1\n", "workrs"},
		{"section nested typo", "demo:\n  nested:\n    sise: 1\n", "sise"},
		{"unknown section", "nosuch:\n  x: 1\n", "nosuch"},
		{"etcd dial timeout as int", "etcd:\n  dial_timeout: 8\n", "dial_timeout"},
		{"not yaml", "target: [\n", "config file"},
		{"two documents", "target: all\n---\ntarget: identity\n", "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tt.yaml), noEnv, nil, nil, demoDef)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want mention of %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml"), noEnv, nil, nil); err == nil {
		t.Fatal("missing file: no error")
	}
	// An empty file means defaults.
	if _, err := Load(writeFile(t, ""), noEnv, nil, nil); err != nil {
		t.Fatalf("empty file: %v", err)
	}
}

func TestLoadFullYAML(t *testing.T) {
	path := writeFile(t, `
target: identity
data_dir: /var/lib/uias
grpc_addr: 0.0.0.0:9090
http_addr: 0.0.0.0:8080
advertise_addr: identity:9090
log: {level: info, format: console}
db: {driver: postgres, dsn: "postgres://u:p@db/uias"}
nats: {url: "nats://nats:4222"}
etcd: {endpoints: ["http://etcd:2379"], dial_timeout: 2s, lease_ttl: 15}
discovery: etcd
demo:
  workers: 4
  ttl: 30m
  file: /secrets/demo.bin
  nested: {size: 12}
trusted_proxies: [10.0.0.0/8]
tls: {cert_file: /tls/tls.crt, key_file: /tls/tls.key, client_ca_file: /tls/ca.crt, people_ca_file: /tls/people.crt}
`)
	c, err := Load(path, noEnv, nil, nil, demoDef)
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, c)
	d := demoOf(c)
	if d.Workers != 4 || d.TTL != 30*time.Minute || d.File != "/secrets/demo.bin" || d.Nested.Size != 12 || c.Etcd.LeaseTTL != 15 ||
		c.TLS.ClientCAFile != "/tls/ca.crt" || c.TLS.PeopleCAFile != "/tls/people.crt" || c.Log.Format != "console" || !slices.Equal(c.TrustedProxies, []string{"10.0.0.0/8"}) {
		t.Fatalf("got %+v", c)
	}
	if c.DB.DSN != "postgres://u:p@db/uias" {
		t.Fatalf("dsn = %q", c.DB.DSN)
	}
}

func TestLoadEnvErrors(t *testing.T) {
	env := envMap(map[string]string{
		"UIAS_ETCD_LEASE_TTL": "ten",
		"UIAS_DEMO_TTL":       "8",
		"UIAS_DEMO_WORKERS":   "many",
	})
	_, err := Load("", env, nil, nil, demoDef)
	for _, name := range []string{"UIAS_ETCD_LEASE_TTL", "UIAS_DEMO_TTL", "UIAS_DEMO_WORKERS"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not mention %s: %v", name, err)
		}
	}
}

func TestLoadEnvCoversSettings(t *testing.T) {
	env := envMap(map[string]string{
		"UIAS_TARGET": "gateway", "UIAS_NATS_URL": "nats://n:4222", "UIAS_ETCD_ENDPOINTS": "etcd:2379",
		"UIAS_ADVERTISE_ADDR": "gw:9091", "UIAS_GRPC_ADDR": ":9091", "UIAS_HTTP_ADDR": ":8080",
		"UIAS_DB_DRIVER": "postgres", "UIAS_DB_DSN": "host=db password=x",
		"UIAS_DEMO_WORKERS": "2", "UIAS_DEMO_SIZE": "5", "UIAS_DEMO_SECRET": " s3cret ",
		"UIAS_TRUSTED_PROXIES": "10.0.0.0/8,192.168.0.0/16", "UIAS_DEMO_TTL": "1h",
		"UIAS_ETCD_LEASE_TTL": "20", "UIAS_INTERNAL_KEY": "k",
	})
	c, err := Load("", env, nil, nil, demoDef)
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, c)
	d := demoOf(c)
	if c.Target != "gateway" || c.Discovery != "etcd" || c.AdvertiseAddr != "gw:9091" || d.Workers != 2 ||
		d.Nested.Size != 5 || len(c.TrustedProxies) != 2 || d.TTL != time.Hour || c.Etcd.LeaseTTL != 20 ||
		d.Secret != " s3cret " || c.InternalKey != "k" {
		t.Fatalf("got %+v %+v", c, d)
	}
	if !slices.Contains(EnvVars(demoDef), "UIAS_DEMO_SIZE") || slices.Contains(EnvVars(), "UIAS_DEMO_SIZE") {
		t.Fatalf("EnvVars does not follow the sections: %v", EnvVars(demoDef))
	}
}

func TestLoadThenValidate(t *testing.T) {
	c, err := Load("", noEnv, newFS(), []string{"--target=identity"})
	if err != nil {
		t.Fatalf("Load reports only source problems, got %v", err)
	}
	err = errors.Join(c.Validate(), c.ValidateRun(Run{NATS: true, GRPC: true}))
	got := fieldErrors(err)
	for _, f := range []string{"nats.url", "etcd.endpoints"} {
		if !slices.Contains(got, f) {
			t.Errorf("Load did not report %s: %v", f, err)
		}
	}
}

func TestLoadHelpAndBadFlag(t *testing.T) {
	if _, err := Load("", noEnv, newFS(), []string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: %v", err)
	}
	if _, err := Load("", noEnv, newFS(), []string{"--no-such-flag"}); err == nil {
		t.Fatal("unknown flag accepted")
	}
}

func TestTrustedProxyPrefixes(t *testing.T) {
	c := Default()
	c.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
	ps, err := c.TrustedProxyPrefixes()
	if err != nil || len(ps) != 2 || ps[0].String() != "127.0.0.0/8" {
		t.Fatalf("prefixes = %v, %v", ps, err)
	}
	c.TrustedProxies = []string{"nope"}
	if _, err := c.TrustedProxyPrefixes(); err == nil {
		t.Fatal("bad CIDR accepted")
	}
}

func TestRedacted(t *testing.T) {
	c := Default()
	c.DB.DSN = "postgres://uias:hunter2@db:5432/uias?sslmode=disable"
	c.NATS.URL = "nats://user:hunter2@n1:4222,nats://s3cr3tt0ken@n2:4222"
	c.Etcd.Endpoints = []string{"https://root:hunter2@etcd:2379"}
	c.NATS.User, c.NATS.Password = "identity", "hunter2"
	r := c.Redacted()
	for _, s := range []string{r.DB.DSN, r.NATS.URL, strings.Join(r.Etcd.Endpoints, ","), r.NATS.Password} {
		if strings.Contains(s, "hunter2") || strings.Contains(s, "s3cr3tt0ken") {
			t.Fatalf("not redacted: %q", s)
		}
	}
	if !strings.Contains(r.DB.DSN, "db:5432/uias") {
		t.Fatalf("redaction lost the host: %q", r.DB.DSN)
	}
	kv := Default()
	kv.DB.DSN = "host=db user=uias password=hunter2 dbname=uias"
	if got := kv.Redacted().DB.DSN; strings.Contains(got, "hunter2") || !strings.Contains(got, "dbname=uias") {
		t.Fatalf("key-value DSN: %q", got)
	}
	if c.DB.DSN != "postgres://uias:hunter2@db:5432/uias?sslmode=disable" {
		t.Fatal("Redacted modified the receiver")
	}
	if c.Etcd.Endpoints[0] != "https://root:hunter2@etcd:2379" {
		t.Fatal("Redacted modified the receiver's slice")
	}
}

// What depends on the components a process runs is checked once the target
// is resolved.
func TestValidateRun(t *testing.T) {
	tests := []struct {
		name  string
		run   Run
		mod   func(c *Config)
		field string
	}{
		{"grpc needs an address", Run{GRPC: true}, func(c *Config) { c.GRPCAddr = "" }, "grpc_addr"},
		{"edge needs an http address", Run{HTTP: true}, func(c *Config) { c.HTTPAddr = "" }, "http_addr"},
		{"nats needed", Run{NATS: true}, func(c *Config) { identity(c); c.NATS.URL = "" }, "nats.url"},
		{"advertise unspecified", Run{Register: true}, func(c *Config) { identity(c); c.AdvertiseAddr = "0.0.0.0:9090" }, "advertise_addr"},
		{"advertise no host", Run{Register: true}, func(c *Config) { identity(c); c.AdvertiseAddr = ":9090" }, "advertise_addr"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			if err := c.ValidateRun(tt.run); err != nil {
				t.Fatalf("defaults rejected: %v", err)
			}
			tt.mod(&c)
			err := c.ValidateRun(tt.run)
			if !slices.Contains(fieldErrors(err), tt.field) {
				t.Fatalf("fields %v do not include %q; error: %v", fieldErrors(err), tt.field, err)
			}
		})
	}
	// What a process does not run is not required.
	c := Default()
	c.HTTPAddr, c.NATS.Embedded = "", false
	if err := c.ValidateRun(Run{GRPC: true}); err != nil {
		t.Fatalf("identity-only process: %v", err)
	}
}
