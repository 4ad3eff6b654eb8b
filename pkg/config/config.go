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
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/uias/uias/pkg/log"
)

// TargetAll runs every registered component in one process.
const TargetAll = "all"

// Discovery modes.
const (
	DiscoveryInproc = "inproc"
	DiscoveryEtcd   = "etcd"
)

// MaxKeepaliveMinTime bounds grpc.keepalive_min_time: the components'
// connections to each other ping every minute (discovery.ClientKeepalive),
// and a ping a little early must not count as too many.
const MaxKeepaliveMinTime = 30 * time.Second

// metrics.max_apps: its default, and its bound (each labelled application
// costs some series per method it calls: a Prometheus keeps about
// max_apps × methods called × (buckets + codes) of them).
const (
	DefaultMetricsMaxApps = 1000
	MaxMetricsMaxApps     = 100000
)

// Database drivers.
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Config is the platform configuration of a process (what every component
// shares: target, addresses, logging, storage, NATS, etcd, TLS) plus one
// Section per registered component, under the component's own YAML key.
type Config struct {
	Target        string     `yaml:"target"`         // all, or a comma list of components
	DataDir       string     `yaml:"data_dir"`       // ./data
	GRPCAddr      string     `yaml:"grpc_addr"`      // 127.0.0.1:9090
	HTTPAddr      string     `yaml:"http_addr"`      // 127.0.0.1:8080
	AdvertiseAddr string     `yaml:"advertise_addr"` // registered in etcd (default = GRPCAddr)
	Log           log.Config `yaml:"log"`
	DB            struct {
		Driver string `yaml:"driver"` // sqlite|postgres
		// DSN: the PostgreSQL DSN shared by every component (each keeps its
		// own tables and migrations); for sqlite empty means one file per
		// component, <DataDir>/<component>.db.
		DSN string `yaml:"dsn"`
		// PasswordFile holds the PostgreSQL password (e.g. a mounted
		// Secret), merged into the DSN when the database is opened so it
		// never sits in the config file or the process list. Password
		// (UIAS_DB_PASSWORD, environment only) takes precedence.
		PasswordFile string `yaml:"password_file"`
		Password     string `yaml:"-"`
	} `yaml:"db"`
	NATS NATS `yaml:"nats"`
	Etcd struct {
		Endpoints   []string      `yaml:"endpoints"`
		DialTimeout time.Duration `yaml:"dial_timeout"` // 5s
		LeaseTTL    int           `yaml:"lease_ttl"`    // seconds, 10
		// Username and the password from PasswordFile (or
		// UIAS_ETCD_PASSWORD, environment only, which takes precedence)
		// authenticate to etcd (etcd's auth must be enabled).
		Username     string `yaml:"username"`
		PasswordFile string `yaml:"password_file"`
		Password     string `yaml:"-"`
		// TLS to etcd (https:// endpoints): CAFile verifies the servers
		// (default: the system roots); CertFile and KeyFile are the client
		// certificate when etcd requires one (--client-cert-auth).
		TLS struct {
			CAFile   string `yaml:"ca_file"`
			CertFile string `yaml:"cert_file"`
			KeyFile  string `yaml:"key_file"`
		} `yaml:"tls"`
	} `yaml:"etcd"`
	Discovery string `yaml:"discovery"` // inproc|etcd (all => inproc; other targets => etcd)
	// TrustedProxies are the CIDRs of reverse proxies (load balancers) in
	// front of the REST edge whose X-Forwarded-For is believed. Default:
	// none, so a client cannot choose its own address.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// InternalKeyFile holds the key UIAS components share to sign, on calls
	// between them, the client address and caller they act for (the edge's
	// credentials). Without it, a component reached over the network does
	// not believe those values. InternalKey (UIAS_INTERNAL_KEY, environment
	// only) takes precedence.
	InternalKeyFile string `yaml:"internal_key_file"`
	InternalKey     string `yaml:"-"`
	// TLS of the gRPC and HTTP listeners (optional; TLS 1.2 or newer, AEAD
	// suites only). The files are read again when they change. With
	// ClientCAFile, client certificates signed by it are verified (and may
	// be bound to an App_ID); it is also the set of roots components trust
	// for each other's servers. PeopleCAFile holds the CAs of people's
	// certificates (certificate login at the CAS page): browsers are asked
	// for certificates of these CAs too, but they are no root of the
	// internal hops, and only they sign people in. CRLFile holds the
	// certificate revocation lists of those CAs (PEM "X509 CRL" blocks, or
	// one DER list): a client certificate (or intermediate) they list is
	// refused; read again when it changes. AllowPlaintext lets a listener
	// bound beyond loopback run without TLS (refused otherwise: JR/T
	// 0185-2020 9.2.2, passwords and secrets would cross the network in
	// clear), for a network the operator trusts (logged loudly at start).
	TLS struct {
		CertFile       string `yaml:"cert_file"`
		KeyFile        string `yaml:"key_file"`
		ClientCAFile   string `yaml:"client_ca_file"`
		PeopleCAFile   string `yaml:"people_ca_file"`
		CRLFile        string `yaml:"crl_file"`
		AllowPlaintext bool   `yaml:"allow_plaintext"`
	} `yaml:"tls"`
	// Metrics: Enabled serves /metrics on http_addr. auto (the default)
	// serves it only when http_addr is a loopback address. MaxApps bounds
	// the distinct App_IDs the per-application metrics label (later
	// applications count as app_id="other"), 1000.
	Metrics struct {
		Enabled Toggle `yaml:"enabled"`
		MaxApps int    `yaml:"max_apps"`
	} `yaml:"metrics"`
	// GRPC tunes the gRPC server.
	GRPC struct {
		// Reflection registers the gRPC reflection service; auto (the
		// default) only when grpc_addr is a loopback address.
		Reflection Toggle `yaml:"reflection"`
		// KeepaliveMinTime is the shortest client ping interval tolerated
		// (more frequent pings: the connection is closed), 10s; at most
		// MaxKeepaliveMinTime (30s).
		KeepaliveMinTime time.Duration `yaml:"keepalive_min_time"`
		// MaxConnectionIdle closes connections idle this long, 15m;
		// MaxConnectionAge closes connections this old, 30m, after
		// MaxConnectionAgeGrace for calls in flight, 1m.
		MaxConnectionIdle     time.Duration `yaml:"max_connection_idle"`
		MaxConnectionAge      time.Duration `yaml:"max_connection_age"`
		MaxConnectionAgeGrace time.Duration `yaml:"max_connection_age_grace"`
	} `yaml:"grpc"`

	// Sections are the components' own settings by component name (the
	// YAML key). Load and Default fill them from the SectionDefs given.
	Sections map[string]Section `yaml:"-"`
}

// NATS is where the process's NATS connection goes and with which
// credentials. The embedded server (target all) accepts no network
// connections, so the credentials and TLS settings are for an external NATS
// (nats.url, microservices mode): each component runs as its own NATS user
// whose permissions allow only its own subjects (deploy/nats).
type NATS struct {
	URL      string `yaml:"url"`      // empty => embedded (target all only)
	Embedded bool   `yaml:"embedded"` // derived: true when URL is empty and target is all
	// At most one way to authenticate: User with a password
	// (UIAS_NATS_PASSWORD from the environment only, which takes
	// precedence, or PasswordFile), an NKEY seed file, or a credentials
	// file (JWT + NKEY seed, decentralised auth).
	User            string `yaml:"user"`
	PasswordFile    string `yaml:"password_file"`
	Password        string `yaml:"-"`
	NKeySeedFile    string `yaml:"nkey_seed_file"`
	CredentialsFile string `yaml:"credentials_file"`
	// TLS to the NATS server: CAFile verifies the server; CertFile and
	// KeyFile are a client certificate for servers that ask for one.
	TLS struct {
		CAFile   string `yaml:"ca_file"`
		CertFile string `yaml:"cert_file"`
		KeyFile  string `yaml:"key_file"`
	} `yaml:"tls"`
}

// HasCredentials reports whether a NATS user is configured.
func (n NATS) HasCredentials() bool {
	return n.User != "" || n.NKeySeedFile != "" || n.CredentialsFile != ""
}

// Section is one component's own configuration: a struct with yaml tags
// decoded from the component's key of the YAML file, which binds its
// environment variables and flags and checks itself.
type Section interface {
	// Bind declares the section's environment variables and flags.
	Bind(b *Binder)
	// Complete fills derived fields from the platform settings (e.g. a file
	// under DataDir); it runs after every source is applied.
	Complete(platform *Config)
	// Validate checks the section; report problems as *FieldError with the
	// full key path ("identity.hash_workers") joined with errors.Join.
	Validate(platform *Config) error
}

// SectionDef declares a component's section: its name (YAML key) and a
// constructor returning the defaults.
type SectionDef struct {
	Name string
	New  func() Section
}

// Section returns the section of component name (nil if none).
func (c *Config) Section(name string) Section { return c.Sections[name] }

// base returns the platform defaults without derived fields, with fresh
// default sections.
func base(defs []SectionDef) Config {
	var c Config
	c.Target = TargetAll
	c.DataDir = "./data"
	c.GRPCAddr = "127.0.0.1:9090"
	c.HTTPAddr = "127.0.0.1:8080"
	c.Log = log.Config{Level: "info", Format: "json"}
	c.DB.Driver = DriverSQLite
	c.Etcd.DialTimeout = 5 * time.Second
	c.Etcd.LeaseTTL = 10
	c.TrustedProxies = []string{}
	c.Metrics.Enabled = ToggleAuto
	c.Metrics.MaxApps = DefaultMetricsMaxApps
	c.GRPC.Reflection = ToggleAuto
	c.GRPC.KeepaliveMinTime = 10 * time.Second
	c.GRPC.MaxConnectionIdle = 15 * time.Minute
	c.GRPC.MaxConnectionAge = 30 * time.Minute
	c.GRPC.MaxConnectionAgeGrace = time.Minute
	c.Sections = make(map[string]Section, len(defs))
	for _, d := range defs {
		c.Sections[d.Name] = d.New()
	}
	return c
}

// Default returns the default configuration (monolithic target "all") with
// the given component sections, derived fields filled in.
func Default(defs ...SectionDef) Config {
	c := base(defs)
	c.Complete()
	return c
}

// Complete fills empty derived fields from the others: Discovery (inproc for
// target all, etcd otherwise), AdvertiseAddr (= GRPCAddr) and NATS.Embedded
// (true when NATS.URL is empty and the target is all), then each section's.
// Load calls it; call it yourself after changing e.g. DataDir on a Config
// whose derived fields you cleared.
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
	if c.NATS.URL == "" && c.Target == TargetAll {
		c.NATS.Embedded = true
	}
	for _, name := range c.sectionNames() {
		c.Sections[name].Complete(c)
	}
}

// SQLDSN is the DSN component name opens: the shared DSN, or for sqlite
// without one, <DataDir>/<name>.db.
func (c *Config) SQLDSN(name string) string {
	if c.DB.DSN == "" && c.DB.Driver == DriverSQLite {
		return filepath.Join(c.DataDir, name+".db")
	}
	return c.DB.DSN
}

// Targets splits Target into component names ("all" stays one name).
func (c *Config) Targets() []string { return splitList(c.Target) }

func (c *Config) sectionNames() []string {
	names := make([]string, 0, len(c.Sections))
	for n := range c.Sections {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// binding ties one setting to its environment variable and (optionally) flag.
type binding struct {
	env   string
	flag  string // "" = no flag
	usage string
	set   func(v string) error
	get   func() string // flag default shown in -help
}

// Binder collects the environment variables and flags of the platform
// settings and of every section (Section.Bind). Each method binds one
// setting, given by pointer, to env (UIAS_...) and optionally to a flag
// ("" = none); values are parsed when a source sets them.
type Binder struct{ binds []binding }

// Func binds a setting with its own parser and printer.
func (b *Binder) Func(env, flagName, usage string, set func(string) error, get func() string) {
	if get == nil {
		get = func() string { return "" }
	}
	b.binds = append(b.binds, binding{env: env, flag: flagName, usage: usage, set: set, get: get})
}

// String binds a string (surrounding spaces trimmed).
func (b *Binder) String(p *string, env, flagName, usage string) {
	b.Func(env, flagName, usage, func(v string) error { *p = strings.TrimSpace(v); return nil },
		func() string { return *p })
}

// Secret binds a string from the environment only, never a flag (flags are
// visible to every user of the machine in the process list).
func (b *Binder) Secret(p *string, env string) {
	b.Func(env, "", "", func(v string) error { *p = v; return nil }, nil)
}

// List binds a comma-separated list.
func (b *Binder) List(p *[]string, env, flagName, usage string) {
	b.Func(env, flagName, usage, func(v string) error { *p = splitList(v); return nil },
		func() string { return strings.Join(*p, ",") })
}

// Int binds an int.
func (b *Binder) Int(p *int, env, flagName, usage string) {
	b.Func(env, flagName, usage, func(v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*p = n
		return nil
	}, func() string { return strconv.Itoa(*p) })
}

// Uint binds an unsigned integer of the given bit size (8, 16, 32, 64).
func (b *Binder) Uint(set func(uint64), get func() uint64, bits int, env, flagName, usage string) {
	b.Func(env, flagName, usage, func(v string) error {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 10, bits)
		if err != nil {
			return fmt.Errorf("%q is not an integer between 0 and %d", v, uint64(1)<<bits-1)
		}
		set(n)
		return nil
	}, func() string { return strconv.FormatUint(get(), 10) })
}

// Duration binds a time.Duration ("30s", "8h").
func (b *Binder) Duration(p *time.Duration, env, flagName, usage string) {
	b.Func(env, flagName, usage, func(v string) error {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 30s, 8h)", v)
		}
		*p = d
		return nil
	}, func() string { return p.String() })
}

// Bool binds a boolean.
func (b *Binder) Bool(p *bool, env, flagName, usage string) {
	b.Func(env, flagName, usage, func(v string) error {
		x, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true/false)", v)
		}
		*p = x
		return nil
	}, func() string { return strconv.FormatBool(*p) })
}

// bind declares the platform settings of c and then every section's.
func (c *Config) bind() []binding {
	b := &Binder{}
	b.String(&c.Target, "UIAS_TARGET", "target", "what to run: all, or a comma list of components (e.g. identity,gateway)")
	b.String(&c.DataDir, "UIAS_DATA_DIR", "data-dir", "directory for SQLite databases, key ring and embedded NATS")
	b.String(&c.GRPCAddr, "UIAS_GRPC_ADDR", "grpc-addr", "gRPC listen address host:port")
	b.String(&c.HTTPAddr, "UIAS_HTTP_ADDR", "http-addr", "HTTP (REST gateway, metrics, health) listen address host:port")
	b.String(&c.AdvertiseAddr, "UIAS_ADVERTISE_ADDR", "advertise-addr", "gRPC address registered in etcd (default: grpc-addr)")
	b.String(&c.Log.Level, "UIAS_LOG_LEVEL", "log-level", "log level: debug|info|warn|error")
	b.String(&c.Log.Format, "UIAS_LOG_FORMAT", "log-format", "log format: json|console")
	b.String(&c.DB.Driver, "UIAS_DB_DRIVER", "db-driver", "database driver: sqlite|postgres")
	b.String(&c.DB.DSN, "UIAS_DB_DSN", "db-dsn", "database DSN (default for sqlite: <data-dir>/<component>.db)")
	b.String(&c.NATS.URL, "UIAS_NATS_URL", "nats-url", "NATS server URL(s), comma-separated (empty with target all: embedded NATS)")
	b.Bool(&c.NATS.Embedded, "UIAS_NATS_EMBEDDED", "", "")
	b.String(&c.NATS.NKeySeedFile, "UIAS_NATS_NKEY_SEED_FILE", "", "")
	b.String(&c.NATS.CredentialsFile, "UIAS_NATS_CREDENTIALS_FILE", "", "")
	b.String(&c.NATS.TLS.CAFile, "UIAS_NATS_TLS_CA_FILE", "", "")
	b.String(&c.NATS.TLS.CertFile, "UIAS_NATS_TLS_CERT_FILE", "", "")
	b.String(&c.NATS.TLS.KeyFile, "UIAS_NATS_TLS_KEY_FILE", "", "")
	b.List(&c.Etcd.Endpoints, "UIAS_ETCD_ENDPOINTS", "etcd-endpoints", "etcd endpoints, comma-separated (required unless target is all)")
	b.Duration(&c.Etcd.DialTimeout, "UIAS_ETCD_DIAL_TIMEOUT", "", "")
	b.Int(&c.Etcd.LeaseTTL, "UIAS_ETCD_LEASE_TTL", "", "")
	b.String(&c.Discovery, "UIAS_DISCOVERY", "", "")
	b.List(&c.TrustedProxies, "UIAS_TRUSTED_PROXIES", "", "")
	b.String(&c.InternalKeyFile, "UIAS_INTERNAL_KEY_FILE", "", "")
	b.Secret(&c.InternalKey, "UIAS_INTERNAL_KEY")
	b.String(&c.TLS.CertFile, "UIAS_TLS_CERT_FILE", "", "")
	b.String(&c.TLS.KeyFile, "UIAS_TLS_KEY_FILE", "", "")
	b.String(&c.TLS.ClientCAFile, "UIAS_TLS_CLIENT_CA_FILE", "", "")
	b.String(&c.TLS.PeopleCAFile, "UIAS_TLS_PEOPLE_CA_FILE", "", "")
	b.String(&c.TLS.CRLFile, "UIAS_TLS_CRL_FILE", "", "")
	b.Bool(&c.TLS.AllowPlaintext, "UIAS_TLS_ALLOW_PLAINTEXT", "tls-allow-plaintext",
		"serve without TLS on addresses beyond loopback (refused otherwise): only on a network you trust")
	b.String(&c.DB.PasswordFile, "UIAS_DB_PASSWORD_FILE", "", "")
	b.Secret(&c.DB.Password, "UIAS_DB_PASSWORD")
	b.String(&c.NATS.User, "UIAS_NATS_USER", "", "")
	b.String(&c.NATS.PasswordFile, "UIAS_NATS_PASSWORD_FILE", "", "")
	b.Secret(&c.NATS.Password, "UIAS_NATS_PASSWORD")
	b.String(&c.Etcd.Username, "UIAS_ETCD_USERNAME", "", "")
	b.String(&c.Etcd.PasswordFile, "UIAS_ETCD_PASSWORD_FILE", "", "")
	b.Secret(&c.Etcd.Password, "UIAS_ETCD_PASSWORD")
	b.String(&c.Etcd.TLS.CAFile, "UIAS_ETCD_TLS_CA_FILE", "", "")
	b.String(&c.Etcd.TLS.CertFile, "UIAS_ETCD_TLS_CERT_FILE", "", "")
	b.String(&c.Etcd.TLS.KeyFile, "UIAS_ETCD_TLS_KEY_FILE", "", "")
	b.Func("UIAS_METRICS_ENABLED", "", "", func(v string) error { c.Metrics.Enabled = Toggle(strings.TrimSpace(v)); return nil }, nil)
	b.Int(&c.Metrics.MaxApps, "UIAS_METRICS_MAX_APPS", "", "")
	b.Func("UIAS_GRPC_REFLECTION", "", "", func(v string) error { c.GRPC.Reflection = Toggle(strings.TrimSpace(v)); return nil }, nil)
	b.Duration(&c.GRPC.KeepaliveMinTime, "UIAS_GRPC_KEEPALIVE_MIN_TIME", "", "")
	b.Duration(&c.GRPC.MaxConnectionIdle, "UIAS_GRPC_MAX_CONNECTION_IDLE", "", "")
	b.Duration(&c.GRPC.MaxConnectionAge, "UIAS_GRPC_MAX_CONNECTION_AGE", "", "")
	b.Duration(&c.GRPC.MaxConnectionAgeGrace, "UIAS_GRPC_MAX_CONNECTION_AGE_GRACE", "", "")
	for _, name := range c.sectionNames() {
		c.Sections[name].Bind(b)
	}
	return b.binds
}

// EnvVars returns the names of all environment variables Load reads for
// the given sections.
func EnvVars(defs ...SectionDef) []string {
	c := base(defs)
	var names []string
	for _, b := range c.bind() {
		names = append(names, b.env)
	}
	return names
}

// Load builds the configuration of the platform and the given component
// sections: defaults, then the YAML file at path (if path != ""), then
// UIAS_* environment variables read through env (nil means os.LookupEnv;
// empty values are ignored), then flags.
//
// If fs is not nil, Load registers its flags on fs (names already defined on
// fs are left alone) and parses args with it. Only flags given on the command
// line override. If path is "" and fs has a "config" flag (registered by the
// caller), its value is used as the file path.
//
// Finally derived fields are completed (see Complete). Load reports only
// problems reading the sources (unreadable file, bad YAML or unknown keys,
// unparsable env values, bad flags — all env/flag problems joined); call
// Validate on the result to check the values themselves. flag.ErrHelp is
// returned as is when args ask for help.
func Load(path string, env func(string) (string, bool), fs *flag.FlagSet, args []string, defs ...SectionDef) (Config, error) {
	if env == nil {
		env = os.LookupEnv
	}
	c := base(defs)
	binds := c.bind()
	flagSet := map[string]string{}
	if fs != nil {
		for _, b := range binds {
			if b.flag == "" || fs.Lookup(b.flag) != nil {
				continue
			}
			fs.String(b.flag, b.get(), b.usage)
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
		if err := b.set(v); err != nil {
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
		if err := b.set(v); err != nil {
			errs = append(errs, fmt.Errorf("flag --%s: %w", b.flag, err))
		}
	}
	c.Complete()
	return c, errors.Join(errs...)
}

// loadFile decodes the YAML file into c: the platform keys into c itself and
// each section's key into that section, strictly (unknown keys are errors)
// in one pass, so error lines point into the file.
func loadFile(c *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read config file: %w", err)
	}
	names := c.sectionNames()
	fields := []reflect.StructField{{Name: "Platform", Type: reflect.TypeOf(Config{}), Tag: `yaml:",inline"`}}
	for i, n := range names {
		fields = append(fields, reflect.StructField{Name: fmt.Sprintf("S%d", i), Type: reflect.TypeOf(c.Sections[n]),
			Tag: reflect.StructTag(fmt.Sprintf("yaml:%q", n))})
	}
	doc := reflect.New(reflect.StructOf(fields)).Elem()
	doc.Field(0).Set(reflect.ValueOf(*c))
	for i, n := range names {
		doc.Field(i + 1).Set(reflect.ValueOf(c.Sections[n]))
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(doc.Addr().Interface()); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			return fmt.Errorf("config file %s:\n  %s", path, strings.Join(explainYAMLErrors(te.Errors, data), "\n  "))
		}
		return fmt.Errorf("config file %s: %s", path, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	sections := c.Sections
	*c = doc.Field(0).Interface().(Config)
	c.Sections = sections
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

// Validate checks every platform field and every section, and returns
// errors.Join of a *FieldError per problem (nil when the configuration is
// valid). What depends on the components a process runs (listeners, NATS,
// etcd) is checked by ValidateRun once the target is resolved. Messages
// never include secrets (DSNs, URLs with credentials).
func (c Config) Validate() error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}

	targets := c.Targets()
	if len(targets) == 0 {
		bad("target", "must not be empty (use all, or a comma list of components)")
	}
	for _, t := range targets {
		if !targetName.MatchString(t) {
			bad("target", "%q is not a component name", t)
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir", "must not be empty")
	}
	if c.GRPCAddr != "" {
		if err := checkListenAddr(c.GRPCAddr); err != nil {
			bad("grpc_addr", "%q %v", c.GRPCAddr, err)
		}
	}
	if c.HTTPAddr != "" {
		if err := checkListenAddr(c.HTTPAddr); err != nil {
			bad("http_addr", "%q %v", c.HTTPAddr, err)
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
		if c.DB.DSN == "" && strings.TrimSpace(c.DataDir) == "" {
			bad("db.dsn", "must not be empty (set data_dir or db.dsn)")
		}
	case DriverPostgres:
		if c.DB.DSN == "" {
			bad("db.dsn", "is required when db.driver is postgres")
		}
	default:
		bad("db.driver", "%q is not a supported driver (use sqlite or postgres)", c.DB.Driver)
	}

	if c.NATS.Embedded && c.Target != TargetAll {
		bad("nats.embedded", "embedded NATS is only available with target all")
	}
	for i, u := range splitList(c.NATS.URL) {
		if err := checkURLOrHostPort(u, "nats", "tls", "ws", "wss"); err != nil {
			bad("nats.url", "entry %d %v", i+1, err)
		}
	}
	c.validateNATS(bad)

	switch c.Discovery {
	case DiscoveryInproc:
		if c.Target != TargetAll {
			bad("discovery", "inproc discovery only works with target all; use etcd")
		}
	case DiscoveryEtcd:
		if len(c.Etcd.Endpoints) == 0 {
			if c.Target != TargetAll {
				bad("etcd.endpoints", "at least one endpoint is required when target is %q", c.Target)
			} else {
				bad("etcd.endpoints", "at least one endpoint is required when discovery is etcd")
			}
		}
	default:
		bad("discovery", "%q is not a valid discovery mode (use inproc or etcd)", c.Discovery)
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
	if c.TLS.PeopleCAFile != "" && c.TLS.CertFile == "" {
		bad("tls.people_ca_file", "requires tls.cert_file and tls.key_file (client certificates need server TLS)")
	}
	if c.TLS.CRLFile != "" && c.TLS.ClientCAFile == "" && c.TLS.PeopleCAFile == "" {
		bad("tls.crl_file", "requires tls.client_ca_file or tls.people_ca_file (the lists revoke client certificates)")
	}
	if c.Etcd.TLS.CertFile != "" && c.Etcd.TLS.KeyFile == "" {
		bad("etcd.tls.key_file", "is required when etcd.tls.cert_file is set")
	}
	if c.Etcd.TLS.KeyFile != "" && c.Etcd.TLS.CertFile == "" {
		bad("etcd.tls.cert_file", "is required when etcd.tls.key_file is set")
	}
	if c.Etcd.Username == "" && (c.Etcd.PasswordFile != "" || c.Etcd.Password != "") {
		bad("etcd.username", "is required when an etcd password is set")
	}
	if c.NATS.User == "" && (c.NATS.PasswordFile != "" || c.NATS.Password != "") {
		bad("nats.user", "is required when a NATS password is set")
	}
	if c.DB.Driver == DriverSQLite && (c.DB.PasswordFile != "" || c.DB.Password != "") {
		bad("db.password_file", "a database password (db.password_file, UIAS_DB_PASSWORD) only applies when db.driver is postgres")
	}
	if _, err := c.Metrics.Enabled.On(true); err != nil {
		bad("metrics.enabled", "%v", err)
	}
	if c.Metrics.MaxApps < 1 || c.Metrics.MaxApps > MaxMetricsMaxApps {
		bad("metrics.max_apps", "must be between 1 and %d (distinct App_IDs labelled in the per-application metrics)", MaxMetricsMaxApps)
	}
	if _, err := c.GRPC.Reflection.On(true); err != nil {
		bad("grpc.reflection", "%v", err)
	}
	for _, d := range []struct {
		field string
		v     time.Duration
	}{
		{"grpc.keepalive_min_time", c.GRPC.KeepaliveMinTime}, {"grpc.max_connection_idle", c.GRPC.MaxConnectionIdle},
		{"grpc.max_connection_age", c.GRPC.MaxConnectionAge}, {"grpc.max_connection_age_grace", c.GRPC.MaxConnectionAgeGrace},
	} {
		if d.v < 0 {
			bad(d.field, "must not be negative (0 takes the default), got %s", d.v)
		}
	}
	if c.GRPC.KeepaliveMinTime > MaxKeepaliveMinTime {
		bad("grpc.keepalive_min_time", "must be at most %s: the components ping their connections to each other every minute "+
			"(a longer minimum closes them), got %s", MaxKeepaliveMinTime, c.GRPC.KeepaliveMinTime)
	}
	for _, name := range c.sectionNames() {
		if err := c.Sections[name].Validate(&c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// validateNATS checks the NATS credentials and TLS settings.
func (c Config) validateNATS(bad func(field, format string, a ...any)) {
	n := c.NATS
	ways := 0
	for _, set := range []bool{n.User != "", n.NKeySeedFile != "", n.CredentialsFile != ""} {
		if set {
			ways++
		}
	}
	if ways > 1 {
		bad("nats.user", "set only one of nats.user (with a password), nats.nkey_seed_file and nats.credentials_file")
	}
	if n.User != "" && n.PasswordFile == "" && n.Password == "" {
		bad("nats.password_file", "is required with nats.user (or set UIAS_NATS_PASSWORD)")
	}
	if n.Embedded && (ways > 0 || n.TLS.CAFile != "" || n.TLS.CertFile != "") {
		bad("nats.url", "NATS credentials and TLS are for an external NATS server: set nats.url (the embedded server accepts no network connections and needs none)")
	}
	if (n.TLS.CertFile == "") != (n.TLS.KeyFile == "") {
		bad("nats.tls.cert_file", "nats.tls.cert_file and nats.tls.key_file go together")
	}
}

var targetName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Run is what a resolved target needs from the platform settings.
type Run struct {
	GRPC bool // serves gRPC (a component with services runs here)
	HTTP bool // serves the REST edge
	NATS bool // a component here uses NATS
	// Register: components here are registered in etcd for others to dial.
	Register bool
}

// ValidateRun checks the settings that depend on what the process runs.
func (c Config) ValidateRun(r Run) error {
	var errs []error
	bad := func(field, format string, a ...any) {
		errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf(format, a...)})
	}
	if r.GRPC {
		if err := checkListenAddr(c.GRPCAddr); err != nil {
			bad("grpc_addr", "%q %v", c.GRPCAddr, err)
		}
	}
	if r.HTTP {
		if err := checkListenAddr(c.HTTPAddr); err != nil {
			bad("http_addr", "%q %v", c.HTTPAddr, err)
		}
	}
	if r.NATS && c.NATS.URL == "" && !c.NATS.Embedded {
		bad("nats.url", "is required when target is %q (embedded NATS is only available with target all)", c.Target)
	}
	if r.Register && c.Discovery == DiscoveryEtcd && !(c.AdvertiseAddr == c.GRPCAddr && portZero(c.GRPCAddr)) {
		// Only registered (and dialled by others) with etcd discovery. A
		// port-0 grpc_addr advertises the address actually listened on.
		if err := checkDialAddr(c.AdvertiseAddr); err != nil {
			bad("advertise_addr", "%q %v", c.AdvertiseAddr, err)
		}
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
	if c.InternalKey != "" {
		c.InternalKey = "xxxxx"
	}
	for _, p := range []*string{&c.DB.Password, &c.NATS.Password, &c.Etcd.Password} {
		if *p != "" {
			*p = "xxxxx"
		}
	}
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
