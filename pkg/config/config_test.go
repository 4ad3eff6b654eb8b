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

	"github.com/uias/uias/pkg/crypto"
)

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
	if c.AdvertiseAddr != c.GRPCAddr || c.DB.Driver != "sqlite" || c.DB.DSN != filepath.Join("data", "identity.db") {
		t.Fatalf("derived defaults: advertise=%q db=%+v", c.AdvertiseAddr, c.DB)
	}
	if !c.NATS.Embedded || c.Admin.TokenTTL != 8*time.Hour || c.Identity.Argon2 != crypto.DefaultArgon2() {
		t.Fatalf("defaults: nats=%+v ttl=%v argon2=%+v", c.NATS, c.Admin.TokenTTL, c.Identity.Argon2)
	}
	want := PolicyDefaults{MinLength: 8, RequireClasses: 3, History: 5, MaxFailures: 5, LockMinutes: 15, MaxAgeDays: 90}
	if c.Policy != want {
		t.Fatalf("policy = %+v", c.Policy)
	}
	if !slices.Equal(c.TrustedProxies, []string{"127.0.0.0/8", "::1/128"}) {
		t.Fatalf("trusted proxies = %v", c.TrustedProxies)
	}
	if c.Identity.SchedPolicy != "batch" {
		t.Fatalf("sched policy = %q, want batch", c.Identity.SchedPolicy)
	}
}

func TestValidateEachProblem(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(c *Config)
		field string
	}{
		{"bad target", func(c *Config) { c.Target = "everything" }, "target"},
		{"empty data dir", func(c *Config) { c.DataDir = "" }, "data_dir"},
		{"grpc addr no port", func(c *Config) { c.GRPCAddr = "localhost" }, "grpc_addr"},
		{"grpc addr bad port", func(c *Config) { c.GRPCAddr = "localhost:http2" }, "grpc_addr"},
		{"http addr port range", func(c *Config) { c.HTTPAddr = "127.0.0.1:70000" }, "http_addr"},
		{"http addr empty", func(c *Config) { c.HTTPAddr = "" }, "http_addr"},
		{"unknown db driver", func(c *Config) { c.DB.Driver = "mysql" }, "db.driver"},
		{"postgres without dsn", func(c *Config) { c.DB.Driver = "postgres"; c.DB.DSN = "" }, "db.dsn"},
		{"bad log level", func(c *Config) { c.Log.Level = "verbose" }, "log.level"},
		{"bad log format", func(c *Config) { c.Log.Format = "xml" }, "log.format"},
		{"identity without etcd", func(c *Config) { identity(c); c.Etcd.Endpoints = nil }, "etcd.endpoints"},
		{"identity without nats", func(c *Config) { identity(c); c.NATS.URL = "" }, "nats.url"},
		{"identity with embedded nats", func(c *Config) { identity(c); c.NATS.Embedded = true }, "nats.embedded"},
		{"bad nats url scheme", func(c *Config) { c.NATS.URL = "http://localhost:4222" }, "nats.url"},
		{"bad etcd endpoint", func(c *Config) { identity(c); c.Etcd.Endpoints = []string{"etcd-without-port"} }, "etcd.endpoints"},
		{"inproc with identity", func(c *Config) { identity(c); c.Discovery = "inproc" }, "discovery"},
		{"unknown discovery", func(c *Config) { c.Discovery = "dns" }, "discovery"},
		{"etcd discovery without endpoints", func(c *Config) { c.Discovery = "etcd" }, "etcd.endpoints"},
		{"advertise unspecified", func(c *Config) { identity(c); c.AdvertiseAddr = "0.0.0.0:9090" }, "advertise_addr"},
		{"advertise no host", func(c *Config) { identity(c); c.AdvertiseAddr = ":9090" }, "advertise_addr"},
		{"dial timeout", func(c *Config) { c.Etcd.DialTimeout = 0 }, "etcd.dial_timeout"},
		{"lease ttl", func(c *Config) { c.Etcd.LeaseTTL = 0 }, "etcd.lease_ttl"},
		{"argon2 memory", func(c *Config) { c.Identity.Argon2.MemoryKiB = 4096 }, "identity.argon2.memory_kib"},
		{"argon2 memory huge", func(c *Config) { c.Identity.Argon2.MemoryKiB = 4 << 20 }, "identity.argon2.memory_kib"},
		{"argon2 time", func(c *Config) { c.Identity.Argon2.Time = 0 }, "identity.argon2.time"},
		{"argon2 threads", func(c *Config) { c.Identity.Argon2.Threads = 0 }, "identity.argon2.threads"},
		{"argon2 salt", func(c *Config) { c.Identity.Argon2.SaltLen = 4 }, "identity.argon2.salt_len"},
		{"argon2 key", func(c *Config) { c.Identity.Argon2.KeyLen = 8 }, "identity.argon2.key_len"},
		{"hash workers", func(c *Config) { c.Identity.HashWorkers = -1 }, "identity.hash_workers"},
		{"hash queue", func(c *Config) { c.Identity.HashQueue = -2 }, "identity.hash_queue"},
		{"user cache ttl", func(c *Config) { c.Identity.UserCacheTTL = -time.Second }, "identity.user_cache_ttl"},
		{"sched policy", func(c *Config) { c.Identity.SchedPolicy = "fifo" }, "identity.sched_policy"},
		{"sched policy empty", func(c *Config) { c.Identity.SchedPolicy = "" }, "identity.sched_policy"},
		{"key file", func(c *Config) { c.Identity.KeyFile = "" }, "identity.key_file"},
		{"policy min length", func(c *Config) { c.Policy.MinLength = -1 }, "policy.min_length"},
		{"policy classes negative", func(c *Config) { c.Policy.RequireClasses = -1 }, "policy.require_classes"},
		{"policy classes > 4", func(c *Config) { c.Policy.RequireClasses = 5 }, "policy.require_classes"},
		{"policy history", func(c *Config) { c.Policy.History = -1 }, "policy.history"},
		{"policy failures", func(c *Config) { c.Policy.MaxFailures = -1 }, "policy.max_failures"},
		{"policy lock", func(c *Config) { c.Policy.LockMinutes = -1 }, "policy.lock_minutes"},
		{"policy age", func(c *Config) { c.Policy.MaxAgeDays = -1 }, "policy.max_age_days"},
		{"admin ttl", func(c *Config) { c.Admin.TokenTTL = 0 }, "admin.token_ttl"},
		{"trusted proxy", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "10.0.0.1"} }, "trusted_proxies"},
		{"tls cert without key", func(c *Config) { c.TLS.CertFile = "server.crt" }, "tls.key_file"},
		{"tls key without cert", func(c *Config) { c.TLS.KeyFile = "server.key" }, "tls.cert_file"},
		{"tls client ca without cert", func(c *Config) { c.TLS.ClientCAFile = "ca.crt" }, "tls.client_ca_file"},
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
	c := Default()
	c.Target = "identity"
	c.Discovery = "etcd"
	c.NATS.Embedded = false
	c.GRPCAddr = "nope"
	c.DB.Driver = "postgres"
	c.DB.DSN = ""
	c.Identity.Argon2.MemoryKiB = 1024
	c.Identity.Argon2.Time = 0
	c.TrustedProxies = []string{"bad"}
	c.TLS.CertFile = "x.crt"
	err := c.Validate()
	want := []string{"grpc_addr", "db.dsn", "nats.url", "etcd.endpoints", "identity.argon2.memory_kib",
		"identity.argon2.time", "trusted_proxies", "tls.key_file"}
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
admin:
  token_ttl: 2h
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
	})
	fs := newFS()
	c, err := Load(path, env, fs, []string{"--data-dir", "/flag/data", "--log-level=debug"})
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
		{"derived dsn follows final data dir", c.DB.DSN, filepath.Join("/flag/data", "identity.db")},
		{"derived key file", c.Identity.KeyFile, filepath.Join("/flag/data", "keyring.json")},
		{"advertise defaults to grpc addr", c.AdvertiseAddr, "127.0.0.1:1001"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
	if c.Admin.TokenTTL != 2*time.Hour || c.Etcd.DialTimeout != 3*time.Second {
		t.Errorf("durations from YAML: ttl=%v dial=%v", c.Admin.TokenTTL, c.Etcd.DialTimeout)
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
		{"duration as int", "admin:\n  token_ttl: 8\n", "token_ttl"},
		{"bad duration", "admin:\n  token_ttl: eight hours\n", "token_ttl"},
		{"negative uint", "identity:\n  argon2:\n    memory_kib: -1\n", "memory_kib"},
		{"not yaml", "target: [\n", "config file"},
		{"two documents", "target: all\n---\ntarget: identity\n", "more than one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tt.yaml), noEnv, nil, nil)
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
identity:
  argon2: {memory_kib: 65536, time: 3, threads: 2, salt_len: 16, key_len: 32}
  hash_workers: 4
  hash_queue: 16
  key_file: /secrets/keyring.json
  sched_policy: inherit
policy: {min_length: 12, require_classes: 4, history: 10, max_failures: 3, lock_minutes: 30, max_age_days: 0}
admin: {token_ttl: 30m}
trusted_proxies: [10.0.0.0/8]
tls: {cert_file: /tls/tls.crt, key_file: /tls/tls.key, client_ca_file: /tls/ca.crt}
`)
	c, err := Load(path, noEnv, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, c)
	if c.Identity.Argon2 != (crypto.Argon2Params{MemoryKiB: 65536, Time: 3, Threads: 2, SaltLen: 16, KeyLen: 32}) ||
		c.Identity.HashWorkers != 4 || c.Identity.KeyFile != "/secrets/keyring.json" || c.Identity.SchedPolicy != "inherit" ||
		c.Policy.MinLength != 12 || c.Admin.TokenTTL != 30*time.Minute || c.Etcd.LeaseTTL != 15 ||
		c.TLS.ClientCAFile != "/tls/ca.crt" || c.Log.Format != "console" || !slices.Equal(c.TrustedProxies, []string{"10.0.0.0/8"}) {
		t.Fatalf("got %+v", c)
	}
	if c.DB.DSN != "postgres://u:p@db/uias" {
		t.Fatalf("dsn = %q", c.DB.DSN)
	}
}

func TestLoadEnvErrors(t *testing.T) {
	env := envMap(map[string]string{
		"UIAS_ETCD_LEASE_TTL":  "ten",
		"UIAS_ADMIN_TOKEN_TTL": "8",
		"UIAS_ARGON2_THREADS":  "300",
	})
	_, err := Load("", env, nil, nil)
	for _, name := range []string{"UIAS_ETCD_LEASE_TTL", "UIAS_ADMIN_TOKEN_TTL", "UIAS_ARGON2_THREADS"} {
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
		"UIAS_HASH_WORKERS": "2", "UIAS_HASH_QUEUE": "-1", "UIAS_ARGON2_MEMORY_KIB": "32768",
		"UIAS_TRUSTED_PROXIES": "10.0.0.0/8,192.168.0.0/16", "UIAS_ADMIN_TOKEN_TTL": "1h",
		"UIAS_ETCD_LEASE_TTL": "20", "UIAS_SCHED_POLICY": "inherit",
	})
	c, err := Load("", env, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, c)
	if c.Target != "gateway" || c.Discovery != "etcd" || c.AdvertiseAddr != "gw:9091" || c.Identity.HashQueue != -1 ||
		c.Identity.Argon2.MemoryKiB != 32768 || len(c.TrustedProxies) != 2 || c.Admin.TokenTTL != time.Hour || c.Etcd.LeaseTTL != 20 ||
		c.Identity.SchedPolicy != "inherit" {
		t.Fatalf("got %+v", c)
	}
}

func TestLoadThenValidate(t *testing.T) {
	c, err := Load("", noEnv, newFS(), []string{"--target=identity"})
	if err != nil {
		t.Fatalf("Load reports only source problems, got %v", err)
	}
	err = c.Validate()
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
	r := c.Redacted()
	for _, s := range []string{r.DB.DSN, r.NATS.URL, strings.Join(r.Etcd.Endpoints, ",")} {
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
