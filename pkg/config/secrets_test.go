package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// The PostgreSQL password comes from a file (a mounted Secret) or the
// environment and is merged into the DSN only when the database is opened:
// the config file, flags and the process list never hold it, and whatever
// characters it has reach the server intact.
func TestOpenDSNMergesPassword(t *testing.T) {
	dir := t.TempDir()
	for _, pw := range []string{"plain", `it's a "pass" w\ord`, "p@ss:word/?#&=", " spaced "} {
		file := filepath.Join(dir, "pw")
		writeFileT(t, file, pw+"\n")
		for _, dsn := range []string{
			"postgres://uias@db.example:5432/uias?sslmode=verify-full",
			"postgres://uias:old-inline@db.example:5432/uias?sslmode=verify-full",
			"host=db.example port=5432 user=uias dbname=uias sslmode=verify-full",
			"host=db.example user=uias password=old-inline dbname=uias sslmode=verify-full",
		} {
			c := Default()
			c.DB.Driver, c.DB.DSN, c.DB.PasswordFile = DriverPostgres, dsn, file
			got, err := c.OpenDSN("identity")
			if err != nil {
				t.Fatalf("%q: %v", dsn, err)
			}
			pc, err := pgconn.ParseConfig(got)
			if err != nil {
				t.Fatalf("%q with password %q: %v", dsn, pw, err)
			}
			if pc.Password != pw || pc.User != "uias" || pc.Host != "db.example" || pc.Database != "uias" {
				t.Errorf("%q with password %q: user %q password %q host %q db %q", dsn, pw, pc.User, pc.Password, pc.Host, pc.Database)
			}
			if strings.Contains(fmt.Sprintf("%+v", c.Redacted()), pw) && pw != "plain" {
				t.Errorf("redacted config shows the password %q", pw)
			}
		}
	}
	// The environment wins over the file; the config keeps no password.
	c := Default()
	c.DB.Driver, c.DB.DSN = DriverPostgres, "postgres://uias@db/uias"
	c.DB.Password, c.DB.PasswordFile = "from-env", filepath.Join(dir, "pw")
	got, _ := c.OpenDSN("identity")
	if pc, err := pgconn.ParseConfig(got); err != nil || pc.Password != "from-env" {
		t.Fatalf("environment password: %v %v", pc, err)
	}
	if c.DB.DSN != "postgres://uias@db/uias" || strings.Contains(fmt.Sprintf("%+v", c.Redacted()), "from-env") {
		t.Fatal("the password leaked into the config")
	}
	// SQLite ignores nothing silently: a password there is a mistake.
	s := Default()
	s.DB.Password = "x"
	if err := s.Validate(); err == nil || !strings.Contains(err.Error(), "db.password_file") {
		t.Fatalf("sqlite with a password: %v", err)
	}
	// A file that cannot be read is named, the secret never shown.
	c.DB.Password, c.DB.PasswordFile = "", filepath.Join(dir, "nope")
	if _, err := c.OpenDSN("identity"); err == nil || !strings.Contains(err.Error(), "db.password_file") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestLoadSecuritySettings(t *testing.T) {
	path := writeFile(t, `
target: identity
db: {driver: postgres, dsn: "postgres://uias@db/uias", password_file: /run/secrets/db}
nats: {url: "nats://nats:4222", user: identity, password_file: /run/secrets/nats}
etcd:
  endpoints: ["https://etcd:2379"]
  username: uias
  password_file: /run/secrets/etcd
  tls: {ca_file: /tls/etcd-ca.crt, cert_file: /tls/etcd.crt, key_file: /tls/etcd.key}
metrics: {enabled: true}
grpc: {reflection: false, keepalive_min_time: 20s, max_connection_idle: 5m, max_connection_age: 1h, max_connection_age_grace: 30s}
`)
	env := envMap(map[string]string{"UIAS_DB_PASSWORD": "pw1", "UIAS_NATS_PASSWORD": "pw2", "UIAS_ETCD_PASSWORD": "pw3",
		"UIAS_METRICS_ENABLED": "false"})
	c, err := Load(path, env, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	mustValid(t, c)
	if c.DB.PasswordFile != "/run/secrets/db" || c.NATS.User != "identity" || c.Etcd.Username != "uias" ||
		c.Etcd.TLS.KeyFile != "/tls/etcd.key" || c.DB.Password != "pw1" || c.NATS.Password != "pw2" || c.Etcd.Password != "pw3" {
		t.Fatalf("got %+v", c)
	}
	if c.MetricsOn() || c.ReflectionOn() || c.GRPC.KeepaliveMinTime != 20*time.Second || c.GRPC.MaxConnectionAge != time.Hour {
		t.Fatalf("metrics %v reflection %v grpc %+v", c.MetricsOn(), c.ReflectionOn(), c.GRPC)
	}
}

func TestLoopbackAndToggles(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "localhost:8080": true, "[::1]:9090": true, "127.1.2.3:1": true,
		":8080": false, "0.0.0.0:8080": false, "[::]:9090": false, "10.0.0.5:8080": false, "uias.internal:8080": false,
		"bad": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v", addr, got)
		}
	}
	c := Default()
	if !c.MetricsOn() || !c.ReflectionOn() {
		t.Fatal("defaults on loopback should serve metrics and reflection (make run)")
	}
	c.HTTPAddr, c.GRPCAddr = ":8080", "0.0.0.0:9090"
	if c.MetricsOn() || c.ReflectionOn() {
		t.Fatal("auto beyond loopback should be off")
	}
	c.Metrics.Enabled, c.GRPC.Reflection = "on", "yes"
	if !c.MetricsOn() || !c.ReflectionOn() {
		t.Fatal("explicitly on")
	}
}

func writeFileT(t *testing.T, name, content string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
