// Package config loads and validates the UIAS process configuration.
//
// Sources, lowest to highest precedence: built-in defaults, a YAML file
// (snake_case keys, unknown keys are errors), UIAS_* environment variables,
// command-line flags. Fields derived from others (discovery, advertise_addr,
// the SQLite DSN, the key file, embedded NATS) are filled in last, so e.g.
// --data-dir also moves the default database and key file.
package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/log"
	"github.com/uias/uias/pkg/sched"
)

// Targets.
const (
	TargetAll      = "all"
	TargetIdentity = "identity"
	TargetGateway  = "gateway"
)

// Discovery modes.
const (
	DiscoveryInproc = "inproc"
	DiscoveryEtcd   = "etcd"
)

// Database drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// PolicyDefaults are the password/lockout policy defaults for new apps.
type PolicyDefaults struct {
	MinLength      int `yaml:"min_length"`      // 8
	RequireClasses int `yaml:"require_classes"` // 3 of {lower, upper, digit, symbol}
	History        int `yaml:"history"`         // 5 previous passwords may not be reused
	MaxFailures    int `yaml:"max_failures"`    // 5 failed logins lock the account
	LockMinutes    int `yaml:"lock_minutes"`    // 15
	MaxAgeDays     int `yaml:"max_age_days"`    // 90 (0 = never expires)
}

// Config is the whole process configuration.
type Config struct {
	Target        string     `yaml:"target"`         // all|identity|gateway
	DataDir       string     `yaml:"data_dir"`       // ./data
	GRPCAddr      string     `yaml:"grpc_addr"`      // 127.0.0.1:9090
	HTTPAddr      string     `yaml:"http_addr"`      // 127.0.0.1:8080
	AdvertiseAddr string     `yaml:"advertise_addr"` // registered in etcd (default = GRPCAddr)
	Log           log.Config `yaml:"log"`
	DB            struct {
		Driver string `yaml:"driver"` // sqlite|postgres
		DSN    string `yaml:"dsn"`    // sqlite default: <DataDir>/identity.db
	} `yaml:"db"`
	NATS struct {
		URL      string `yaml:"url"`      // empty => embedded (target all only)
		Embedded bool   `yaml:"embedded"` // derived: true when URL is empty and target is all
	} `yaml:"nats"`
	Etcd struct {
		Endpoints   []string      `yaml:"endpoints"`
		DialTimeout time.Duration `yaml:"dial_timeout"` // 5s
		LeaseTTL    int           `yaml:"lease_ttl"`    // seconds, 10
	} `yaml:"etcd"`
	Discovery string `yaml:"discovery"` // inproc|etcd (all => inproc; other targets => etcd)
	Identity  struct {
		Argon2      crypto.Argon2Params `yaml:"argon2"`
		HashWorkers int                 `yaml:"hash_workers"` // 0 = GOMAXPROCS
		HashQueue   int                 `yaml:"hash_queue"`   // 0 = 4*workers, -1 = no queue
		KeyFile     string              `yaml:"key_file"`     // default <DataDir>/keyring.json
		// UserCacheTTL bounds how long an administrator read (GetUser) may
		// serve a user changed through another instance when its change
		// event is late; 0 turns the user cache off. Default 5s.
		UserCacheTTL time.Duration `yaml:"user_cache_ttl"`
		// SchedPolicy is the Linux CPU scheduling policy of a process that
		// runs the identity service: "batch" (default) switches the whole
		// process to SCHED_BATCH so that short request work does not
		// preempt running password hashes (see package sched); "inherit"
		// leaves the policy the process was started with.
		SchedPolicy string `yaml:"sched_policy"`
	} `yaml:"identity"`
	Policy PolicyDefaults `yaml:"policy"`
	Admin  struct {
		TokenTTL time.Duration `yaml:"token_ttl"` // 8h
	} `yaml:"admin"`
	TrustedProxies []string `yaml:"trusted_proxies"` // CIDRs allowed to set X-Forwarded-For
	TLS            struct {
		CertFile     string `yaml:"cert_file"`
		KeyFile      string `yaml:"key_file"`
		ClientCAFile string `yaml:"client_ca_file"`
	} `yaml:"tls"` // optional; MinVersion TLS 1.2
}

// base returns the defaults without derived fields.
func base() Config {
	var c Config
	c.Target = TargetAll
	c.DataDir = "./data"
	c.GRPCAddr = "127.0.0.1:9090"
	c.HTTPAddr = "127.0.0.1:8080"
	c.Log = log.Config{Level: "info", Format: "json"}
	c.DB.Driver = DriverSQLite
	c.Etcd.DialTimeout = 5 * time.Second
	c.Etcd.LeaseTTL = 10
	c.Identity.Argon2 = crypto.DefaultArgon2()
	c.Identity.UserCacheTTL = 5 * time.Second
	c.Identity.SchedPolicy = sched.PolicyBatch
	c.Policy = PolicyDefaults{MinLength: 8, RequireClasses: 3, History: 5, MaxFailures: 5, LockMinutes: 15, MaxAgeDays: 90}
	c.Admin.TokenTTL = 8 * time.Hour
	c.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
	return c
}

// Default returns the default configuration (monolithic target "all"), with
// derived fields filled in.
func Default() Config {
	c := base()
	c.Complete()
	return c
}

// Complete fills empty derived fields from the others: Discovery (inproc for
// target all, etcd otherwise), AdvertiseAddr (= GRPCAddr), DB.DSN
// (<DataDir>/identity.db for sqlite), Identity.KeyFile
// (<DataDir>/keyring.json) and NATS.Embedded (true when NATS.URL is empty and
// the target is all). Load calls it; call it yourself after changing e.g.
// DataDir on a Config whose derived fields you cleared.
func (c *Config) Complete() {
	if c.Discovery == "" {
		if c.Target == TargetAll {
			c.Discovery = DiscoveryInproc
		} else {
			c.Discovery = DiscoveryEtcd
		}
	}
	if c.AdvertiseAddr == "" {
		c.AdvertiseAddr = c.GRPCAddr
	}
	if c.DB.Driver == "" {
		c.DB.Driver = DriverSQLite
	}
	if c.DB.DSN == "" && c.DB.Driver == DriverSQLite && c.DataDir != "" {
		c.DB.DSN = filepath.Join(c.DataDir, "identity.db")
	}
	if c.Identity.KeyFile == "" && c.DataDir != "" {
		c.Identity.KeyFile = filepath.Join(c.DataDir, "keyring.json")
	}
	if c.NATS.URL == "" && c.Target == TargetAll {
		c.NATS.Embedded = true
	}
}

// binding ties one setting to its environment variable and (optionally) flag.
type binding struct {
	env   string
	flag  string // "" = no flag
	usage string
	set   func(c *Config, v string) error
	get   func(c *Config) string // flag default shown in -help
}

func str(p func(c *Config) *string) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error { *p(c) = strings.TrimSpace(v); return nil },
		func(c *Config) string { return *p(c) }
}

func list(p func(c *Config) *[]string) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error { *p(c) = splitList(v); return nil },
		func(c *Config) string { return strings.Join(*p(c), ",") }
}

func integer(p func(c *Config) *int) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not an integer", v)
			}
			*p(c) = n
			return nil
		},
		func(c *Config) string { return strconv.Itoa(*p(c)) }
}

func uint32v(p func(c *Config) *uint32) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 32)
			if err != nil {
				return fmt.Errorf("%q is not a non-negative integer", v)
			}
			*p(c) = uint32(n)
			return nil
		},
		func(c *Config) string { return strconv.FormatUint(uint64(*p(c)), 10) }
}

func duration(p func(c *Config) *time.Duration) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a duration (e.g. 30s, 8h)", v)
			}
			*p(c) = d
			return nil
		},
		func(c *Config) string { return p(c).String() }
}

func boolean(p func(c *Config) *bool) (func(*Config, string) error, func(*Config) string) {
	return func(c *Config, v string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				return fmt.Errorf("%q is not a boolean (true/false)", v)
			}
			*p(c) = b
			return nil
		},
		func(c *Config) string { return strconv.FormatBool(*p(c)) }
}

func bind(env, flagName, usage string, f func(*Config, string) error, g func(*Config) string) binding {
	return binding{env: env, flag: flagName, usage: usage, set: f, get: g}
}

func bindings() []binding {
	var b []binding
	add := func(env, flagName, usage string, f func(*Config, string) error, g func(*Config) string) {
		b = append(b, bind(env, flagName, usage, f, g))
	}
	s, g := str(func(c *Config) *string { return &c.Target })
	add("UIAS_TARGET", "target", "what to run: all|identity|gateway", s, g)
	s, g = str(func(c *Config) *string { return &c.DataDir })
	add("UIAS_DATA_DIR", "data-dir", "directory for the SQLite database, key ring and embedded NATS", s, g)
	s, g = str(func(c *Config) *string { return &c.GRPCAddr })
	add("UIAS_GRPC_ADDR", "grpc-addr", "gRPC listen address host:port", s, g)
	s, g = str(func(c *Config) *string { return &c.HTTPAddr })
	add("UIAS_HTTP_ADDR", "http-addr", "HTTP (REST gateway, metrics, health) listen address host:port", s, g)
	s, g = str(func(c *Config) *string { return &c.AdvertiseAddr })
	add("UIAS_ADVERTISE_ADDR", "advertise-addr", "gRPC address registered in etcd (default: grpc-addr)", s, g)
	s, g = str(func(c *Config) *string { return &c.Log.Level })
	add("UIAS_LOG_LEVEL", "log-level", "log level: debug|info|warn|error", s, g)
	s, g = str(func(c *Config) *string { return &c.Log.Format })
	add("UIAS_LOG_FORMAT", "log-format", "log format: json|console", s, g)
	s, g = str(func(c *Config) *string { return &c.DB.Driver })
	add("UIAS_DB_DRIVER", "db-driver", "database driver: sqlite|postgres", s, g)
	s, g = str(func(c *Config) *string { return &c.DB.DSN })
	add("UIAS_DB_DSN", "db-dsn", "database DSN (default for sqlite: <data-dir>/identity.db)", s, g)
	s, g = str(func(c *Config) *string { return &c.NATS.URL })
	add("UIAS_NATS_URL", "nats-url", "NATS server URL(s), comma-separated (empty with target all: embedded NATS)", s, g)
	s, g = boolean(func(c *Config) *bool { return &c.NATS.Embedded })
	add("UIAS_NATS_EMBEDDED", "", "", s, g)
	s, g = list(func(c *Config) *[]string { return &c.Etcd.Endpoints })
	add("UIAS_ETCD_ENDPOINTS", "etcd-endpoints", "etcd endpoints, comma-separated (required unless target is all)", s, g)
	s, g = duration(func(c *Config) *time.Duration { return &c.Etcd.DialTimeout })
	add("UIAS_ETCD_DIAL_TIMEOUT", "", "", s, g)
	s, g = integer(func(c *Config) *int { return &c.Etcd.LeaseTTL })
	add("UIAS_ETCD_LEASE_TTL", "", "", s, g)
	s, g = str(func(c *Config) *string { return &c.Discovery })
	add("UIAS_DISCOVERY", "", "", s, g)
	s, g = uint32v(func(c *Config) *uint32 { return &c.Identity.Argon2.MemoryKiB })
	add("UIAS_ARGON2_MEMORY_KIB", "", "", s, g)
	s, g = uint32v(func(c *Config) *uint32 { return &c.Identity.Argon2.Time })
	add("UIAS_ARGON2_TIME", "", "", s, g)
	add("UIAS_ARGON2_THREADS", "", "", func(c *Config, v string) error {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 8)
		if err != nil {
			return fmt.Errorf("%q is not an integer between 0 and 255", v)
		}
		c.Identity.Argon2.Threads = uint8(n)
		return nil
	}, nil)
	s, g = integer(func(c *Config) *int { return &c.Identity.HashWorkers })
	add("UIAS_HASH_WORKERS", "", "", s, g)
	s, g = integer(func(c *Config) *int { return &c.Identity.HashQueue })
	add("UIAS_HASH_QUEUE", "", "", s, g)
	s, g = str(func(c *Config) *string { return &c.Identity.KeyFile })
	add("UIAS_KEY_FILE", "", "", s, g)
	s, g = duration(func(c *Config) *time.Duration { return &c.Identity.UserCacheTTL })
	add("UIAS_USER_CACHE_TTL", "", "", s, g)
	s, g = str(func(c *Config) *string { return &c.Identity.SchedPolicy })
	add("UIAS_SCHED_POLICY", "", "", s, g)
	s, g = duration(func(c *Config) *time.Duration { return &c.Admin.TokenTTL })
	add("UIAS_ADMIN_TOKEN_TTL", "", "", s, g)
	s, g = list(func(c *Config) *[]string { return &c.TrustedProxies })
	add("UIAS_TRUSTED_PROXIES", "", "", s, g)
	s, g = str(func(c *Config) *string { return &c.TLS.CertFile })
	add("UIAS_TLS_CERT_FILE", "", "", s, g)
	s, g = str(func(c *Config) *string { return &c.TLS.KeyFile })
	add("UIAS_TLS_KEY_FILE", "", "", s, g)
	s, g = str(func(c *Config) *string { return &c.TLS.ClientCAFile })
	add("UIAS_TLS_CLIENT_CA_FILE", "", "", s, g)
	return b
}

// EnvVars returns the names of all environment variables Load reads.
func EnvVars() []string {
	var names []string
	for _, b := range bindings() {
		names = append(names, b.env)
	}
	return names
}

// Load builds the configuration: defaults, then the YAML file at path (if
// path != ""), then UIAS_* environment variables read through env (nil means
// os.LookupEnv; empty values are ignored), then flags.
//
// If fs is not nil, Load registers its flags on fs (--target, --grpc-addr,
// --http-addr, --data-dir, --db-driver, --db-dsn, --nats-url,
// --etcd-endpoints, --log-level, --log-format, --advertise-addr; names
// already defined on fs are left alone) and parses args with it. Only flags
// given on the command line override. If path is "" and fs has a "config"
// flag (registered by the caller), its value is used as the file path.
//
// Finally derived fields are completed (see Complete). Load reports only
// problems reading the sources (unreadable file, bad YAML or unknown keys,
// unparsable env values, bad flags — all env/flag problems joined); call
// Validate on the result to check the values themselves. flag.ErrHelp is
// returned as is when args ask for help.
func Load(path string, env func(string) (string, bool), fs *flag.FlagSet, args []string) (Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	binds := bindings()
	flagSet := map[string]string{}
	if fs != nil {
		defaults := base()
		for _, b := range binds {
			if b.flag == "" || fs.Lookup(b.flag) != nil {
				continue
			}
			fs.String(b.flag, b.get(&defaults), b.usage)
		}
		if err := fs.Parse(args); err != nil {
			return Config{}, err
		}
		fs.Visit(func(f *flag.Flag) { flagSet[f.Name] = f.Value.String() })
		if path == "" {
			if f := fs.Lookup("config"); f != nil {
				path = f.Value.String()
			}
		}
	}

	c := base()
	if path != "" {
		if err := loadFile(&c, path); err != nil {
			return c, err
		}
	}
	var errs []error
	for _, b := range binds {
		v, ok := env(b.env)
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		if err := b.set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("environment variable %s: %w", b.env, err))
		}
	}
	for _, b := range binds {
		if b.flag == "" {
			continue
		}
		v, ok := flagSet[b.flag]
		if !ok {
			continue
		}
		if err := b.set(&c, v); err != nil {
			errs = append(errs, fmt.Errorf("flag --%s: %w", b.flag, err))
		}
	}
	c.Complete()
	return c, errors.Join(errs...)
}

func loadFile(c *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return fmt.Errorf("config file %s:\n  %s", path, strings.Join(explainYAMLErrors(te.Errors, data), "\n  "))
		}
		return fmt.Errorf("config file %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	// A second document would be silently ignored; reject it instead.
	var extra any
	if err := dec.Decode(&extra); err == nil {
		return fmt.Errorf("config file %s: contains more than one YAML document", path)
	}
	return nil
}

var (
	yamlLine     = regexp.MustCompile(`^line (\d+): `)
	unknownField = regexp.MustCompile(`field (\S+) not found in type \S+`)
)

// explainYAMLErrors adds the offending key (yaml.v3 only reports the line)
// and a hint for durations to each decoding error.
func explainYAMLErrors(msgs []string, data []byte) []string {
	lines := strings.Split(string(data), "\n")
	out := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if sm := unknownField.FindStringSubmatch(m); sm != nil {
			out = append(out, strings.Replace(m, sm[0], fmt.Sprintf("unknown key %q (check the spelling; keys are snake_case)", sm[1]), 1))
			continue
		}
		if sm := yamlLine.FindStringSubmatch(m); sm != nil {
			if n, err := strconv.Atoi(sm[1]); err == nil && n >= 1 && n <= len(lines) {
				line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[n-1]), "- "))
				if key, _, ok := strings.Cut(line, ":"); ok && key != "" && !strings.ContainsAny(key, "{[") {
					m += fmt.Sprintf(" (key %q)", key)
				}
			}
		}
		if strings.Contains(m, "time.Duration") {
			m += `; durations are strings such as "30s", "5m" or "8h"`
		}
		out = append(out, m)
	}
	return out
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// FieldError reports one invalid configuration field. Field uses the YAML key
// path (e.g. "etcd.endpoints").
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return "config " + e.Field + ": " + e.Msg }

// Validate checks every field and returns errors.Join of a *FieldError per
// problem (nil when the configuration is valid). Messages never include
// secrets (DSNs, URLs with credentials).
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}

	switch c.Target {
	case TargetAll, TargetIdentity, TargetGateway:
	default:
		bad("target", "%q is not a valid target (use all, identity or gateway)", c.Target)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	// Each target needs only the listeners it runs: identity serves gRPC,
	// the gateway HTTP, target all both.
	if c.Target != TargetGateway || c.GRPCAddr != "" {
		if err := checkListenAddr(c.GRPCAddr); err != nil {
			bad("grpc_addr", "%q %v", c.GRPCAddr, err)
		}
	}
	if err := checkListenAddr(c.HTTPAddr); err != nil && (c.Target != TargetIdentity || c.HTTPAddr != "") {
		bad("http_addr", "%q %v", c.HTTPAddr, err)
	}
	if c.Discovery == DiscoveryEtcd && c.Target != TargetGateway && !(c.AdvertiseAddr == c.GRPCAddr && portZero(c.GRPCAddr)) {
		// Only registered (and dialled by others) with etcd discovery. A
		// port-0 grpc_addr advertises the address actually listened on.
		if err := checkDialAddr(c.AdvertiseAddr); err != nil {
			bad("advertise_addr", "%q %v", c.AdvertiseAddr, err)
		}
	}

	if _, err := log.ParseLevel(c.Log.Level); err != nil {
		bad("log.level", "%q is not a valid level (use debug, info, warn or error)", c.Log.Level)
	}
	switch strings.ToLower(c.Log.Format) {
	case "", "json", "console":
	default:
		bad("log.format", "%q is not a valid format (use json or console)", c.Log.Format)
	}

	switch c.DB.Driver {
	case DriverSQLite:
		if c.DB.DSN == "" {
			bad("db.dsn", "must not be empty (set data_dir or db.dsn)")
		}
	case DriverPostgres:
		if c.DB.DSN == "" {
			bad("db.dsn", "is required when db.driver is postgres")
		}
	default:
		bad("db.driver", "%q is not a supported driver (use sqlite or postgres)", c.DB.Driver)
	}

	if c.NATS.URL == "" && c.Target == TargetIdentity { // the gateway publishes nothing
		bad("nats.url", "is required when target is %q (embedded NATS is only available with target all)", c.Target)
	}
	if c.NATS.Embedded && c.Target != TargetAll {
		bad("nats.embedded", "embedded NATS is only available with target all")
	}
	for i, u := range splitList(c.NATS.URL) {
		if err := checkURLOrHostPort(u, "nats", "tls", "ws", "wss"); err != nil {
			bad("nats.url", "entry %d %v", i+1, err)
		}
	}

	switch c.Discovery {
	case DiscoveryInproc:
		if c.Target != TargetAll {
			bad("discovery", "inproc discovery only works with target all; use etcd")
		}
	case DiscoveryEtcd:
	default:
		bad("discovery", "%q is not a valid discovery mode (use inproc or etcd)", c.Discovery)
	}
	if len(c.Etcd.Endpoints) == 0 && (c.Target != TargetAll || c.Discovery == DiscoveryEtcd) {
		if c.Target != TargetAll {
			bad("etcd.endpoints", "at least one endpoint is required when target is %q", c.Target)
		} else {
			bad("etcd.endpoints", "at least one endpoint is required when discovery is etcd")
		}
	}
	for i, ep := range c.Etcd.Endpoints {
		if err := checkURLOrHostPort(ep, "http", "https", "unix", "unixs"); err != nil {
			bad("etcd.endpoints", "entry %d %v", i+1, err)
		}
	}
	if c.Etcd.DialTimeout <= 0 {
		bad("etcd.dial_timeout", "must be positive (e.g. 5s), got %s", c.Etcd.DialTimeout)
	}
	if c.Etcd.LeaseTTL < 1 {
		bad("etcd.lease_ttl", "must be at least 1 second, got %d", c.Etcd.LeaseTTL)
	}

	a := c.Identity.Argon2
	if a.MemoryKiB < 8*1024 {
		bad("identity.argon2.memory_kib", "must be at least 8192 (8 MiB), got %d", a.MemoryKiB)
	} else if a.MemoryKiB > 1<<20 {
		bad("identity.argon2.memory_kib", "must be at most 1048576 (1 GiB), got %d", a.MemoryKiB)
	}
	if a.Time < 1 || a.Time > 64 {
		bad("identity.argon2.time", "must be between 1 and 64, got %d", a.Time)
	}
	if a.Threads < 1 {
		bad("identity.argon2.threads", "must be at least 1, got %d", a.Threads)
	}
	if a.SaltLen < 16 || a.SaltLen > 1024 {
		bad("identity.argon2.salt_len", "must be between 16 and 1024 bytes, got %d", a.SaltLen)
	}
	if a.KeyLen < 16 || a.KeyLen > 1024 {
		bad("identity.argon2.key_len", "must be between 16 and 1024 bytes, got %d", a.KeyLen)
	}
	if c.Identity.HashWorkers < 0 {
		bad("identity.hash_workers", "must be 0 (number of CPUs) or more, got %d", c.Identity.HashWorkers)
	}
	if c.Identity.HashQueue < -1 {
		bad("identity.hash_queue", "must be -1 (no queue), 0 (4 per worker) or more, got %d", c.Identity.HashQueue)
	}
	if c.Identity.UserCacheTTL < 0 || c.Identity.UserCacheTTL > time.Hour {
		bad("identity.user_cache_ttl", "must be between 0 (no cache) and 1h, got %s", c.Identity.UserCacheTTL)
	}
	if c.Identity.SchedPolicy != sched.PolicyBatch && c.Identity.SchedPolicy != sched.PolicyInherit {
		bad("identity.sched_policy", "must be %q or %q, got %q", sched.PolicyBatch, sched.PolicyInherit, c.Identity.SchedPolicy)
	}
	if c.Identity.KeyFile == "" {
		bad("identity.key_file", "must not be empty (set data_dir or identity.key_file)")
	}

	p := c.Policy
	for _, f := range []struct {
		name string
		v    int
	}{
		{"policy.min_length", p.MinLength}, {"policy.require_classes", p.RequireClasses},
		{"policy.history", p.History}, {"policy.max_failures", p.MaxFailures},
		{"policy.lock_minutes", p.LockMinutes}, {"policy.max_age_days", p.MaxAgeDays},
	} {
		if f.v < 0 {
			bad(f.name, "must not be negative, got %d", f.v)
		}
	}
	if p.RequireClasses > 4 {
		bad("policy.require_classes", "must be at most 4 (lower, upper, digit, symbol), got %d", p.RequireClasses)
	}

	if c.Admin.TokenTTL <= 0 {
		bad("admin.token_ttl", "must be positive (e.g. 8h), got %s", c.Admin.TokenTTL)
	}

	for i, cidr := range c.TrustedProxies {
		if _, err := netip.ParsePrefix(strings.TrimSpace(cidr)); err != nil {
			bad("trusted_proxies", "entry %d %q is not a CIDR (e.g. 10.0.0.0/8 or ::1/128)", i+1, cidr)
		}
	}

	if c.TLS.CertFile != "" && c.TLS.KeyFile == "" {
		bad("tls.key_file", "is required when tls.cert_file is set")
	}
	if c.TLS.KeyFile != "" && c.TLS.CertFile == "" {
		bad("tls.cert_file", "is required when tls.key_file is set")
	}
	if c.TLS.ClientCAFile != "" && c.TLS.CertFile == "" {
		bad("tls.client_ca_file", "requires tls.cert_file and tls.key_file (client certificates need server TLS)")
	}
	return errors.Join(errs...)
}

func checkPort(port string, allowZero bool) error {
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 || (n == 0 && !allowZero) {
		return fmt.Errorf("has an invalid port %q", port)
	}
	return nil
}

func checkListenAddr(addr string) error {
	if addr == "" {
		return errors.New("must not be empty")
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("is not host:port (%s)", splitErr(err))
	}
	return checkPort(port, true)
}

// checkDialAddr checks an address other processes dial: it needs a concrete
// host and a non-zero port.
func checkDialAddr(addr string) error {
	if addr == "" {
		return errors.New("must not be empty")
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("is not host:port (%s)", splitErr(err))
	}
	if err := checkPort(port, false); err != nil {
		return err
	}
	if host == "" {
		return errors.New("needs a host other processes can reach (set advertise_addr)")
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsUnspecified() {
		return errors.New("is an unspecified address other processes cannot dial (set advertise_addr)")
	}
	return nil
}

// checkURLOrHostPort accepts scheme://host[:port] with one of schemes, or
// host:port. Errors never include the value (it may carry credentials).
func checkURLOrHostPort(v string, schemes ...string) error {
	if strings.Contains(v, "://") {
		u, err := url.Parse(v)
		if err != nil {
			return errors.New("is not a valid URL")
		}
		ok := false
		for _, s := range schemes {
			ok = ok || u.Scheme == s
		}
		if !ok {
			return fmt.Errorf("has unsupported scheme %q (use %s)", u.Scheme, strings.Join(schemes, ", "))
		}
		if u.Host == "" && !strings.HasPrefix(u.Scheme, "unix") {
			return errors.New("has no host")
		}
		return nil
	}
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("is neither a URL nor host:port (%s)", splitErr(err))
	}
	return checkPort(port, false)
}

func splitErr(err error) string {
	var ae *net.AddrError
	if errors.As(err, &ae) {
		return ae.Err
	}
	return err.Error()
}

// TrustedProxyPrefixes parses TrustedProxies.
func (c Config) TrustedProxyPrefixes() ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(c.TrustedProxies))
	for i, s := range c.TrustedProxies {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, &FieldError{Field: "trusted_proxies", Msg: fmt.Sprintf("entry %d %q is not a CIDR", i+1, s)}
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

var dsnPassword = regexp.MustCompile(`(?i)(password\s*=\s*)('[^']*'|\S+)`)

// Redacted returns a copy safe to log: passwords in the database DSN and
// credentials in the NATS URL and etcd endpoints are replaced by "xxxxx".
func (c Config) Redacted() Config {
	c.DB.DSN = redactURLs(c.DB.DSN)
	c.DB.DSN = dsnPassword.ReplaceAllString(c.DB.DSN, "${1}xxxxx")
	c.NATS.URL = redactURLs(c.NATS.URL)
	eps := make([]string, len(c.Etcd.Endpoints))
	for i, e := range c.Etcd.Endpoints {
		eps[i] = redactURLs(e)
	}
	c.Etcd.Endpoints = eps
	return c
}

// redactURLs redacts userinfo in a comma-separated list of URLs.
func redactURLs(s string) string {
	if !strings.Contains(s, "@") {
		return s
	}
	parts := strings.Split(s, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil || u.User == nil {
			if strings.Contains(p, "@") && err != nil {
				parts[i] = "xxxxx"
			}
			continue
		}
		if _, hasPw := u.User.Password(); hasPw {
			parts[i] = u.Redacted()
		} else {
			// A bare user may be a token (nats://token@host).
			u.User = url.User("xxxxx")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// portZero reports whether addr asks for a random port.
func portZero(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}
