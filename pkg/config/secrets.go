package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Toggle is a switch that is on, off, or auto: decided by the process (for
// example on only when listening on loopback).
type Toggle string

// Toggle values (true/false also accept the other spellings of
// strconv.ParseBool, and on/off).
const (
	ToggleAuto Toggle = "auto"
	ToggleOn   Toggle = "true"
	ToggleOff  Toggle = "false"
)

// On resolves the toggle: auto (or empty) gives auto.
func (t Toggle) On(auto bool) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(string(t))) {
	case "", string(ToggleAuto):
		return auto, nil
	case "on", "yes":
		return true, nil
	case "off", "no":
		return false, nil
	}
	b, err := strconv.ParseBool(string(t))
	if err != nil {
		return false, fmt.Errorf("%q is not true, false or auto", string(t))
	}
	return b, nil
}

// Loopback reports whether the listen address addr (host:port) accepts
// connections only from this machine: its host is localhost or a loopback
// IP. An empty or unspecified host (all interfaces) or any other name is
// not loopback.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	return err == nil && LoopbackHost(host)
}

// LoopbackHost reports whether host (a URL's host name, no port) is this
// machine: localhost or a loopback IP.
func LoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// MetricsOn reports whether /metrics is served: metrics.enabled, or for
// auto, whether http_addr is loopback.
func (c Config) MetricsOn() bool {
	on, _ := c.Metrics.Enabled.On(Loopback(c.HTTPAddr))
	return on
}

// ReflectionOn reports whether gRPC reflection is served: grpc.reflection,
// or for auto, whether grpc_addr is loopback.
func (c Config) ReflectionOn() bool {
	on, _ := c.GRPC.Reflection.On(Loopback(c.GRPCAddr))
	return on
}

// secret returns value (from the environment) when set, else the content of
// file (trailing newline removed), else "". field names the file setting in
// errors, which never contain the secret.
func secret(value, file, field string) (string, error) {
	if value != "" {
		return value, nil
	}
	if file == "" {
		return "", nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", &FieldError{Field: field, Msg: fmt.Sprintf("cannot read %s: %v", file, err)}
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", &FieldError{Field: field, Msg: fmt.Sprintf("%s is empty", file)}
	}
	return s, nil
}

// DBPassword is the database password: UIAS_DB_PASSWORD or db.password_file
// ("" if neither).
func (c Config) DBPassword() (string, error) {
	return secret(c.DB.Password, c.DB.PasswordFile, "db.password_file")
}

// NATSPassword is the NATS password: UIAS_NATS_PASSWORD or
// nats.password_file ("" if neither).
func (c Config) NATSPassword() (string, error) { return c.NATS.ReadPassword() }

// ReadPassword is the NATS password: UIAS_NATS_PASSWORD or
// nats.password_file ("" if neither).
func (n NATS) ReadPassword() (string, error) {
	return secret(n.Password, n.PasswordFile, "nats.password_file")
}

// EtcdPassword is the etcd password: UIAS_ETCD_PASSWORD or
// etcd.password_file ("" if neither).
func (c Config) EtcdPassword() (string, error) {
	return secret(c.Etcd.Password, c.Etcd.PasswordFile, "etcd.password_file")
}

// OpenDSN is the DSN component name opens (SQLDSN) with the database
// password merged in (see DBPassword), which replaces any password in the
// DSN. The result holds the password: pass it to the driver, never log it.
func (c Config) OpenDSN(name string) (string, error) {
	dsn := c.SQLDSN(name)
	if c.DB.Driver != DriverPostgres {
		return dsn, nil
	}
	pw, err := c.DBPassword()
	if err != nil || pw == "" {
		return dsn, err
	}
	return WithPassword(dsn, pw)
}

// WithPassword sets the password of a PostgreSQL DSN, in URL form
// (postgres://user@host/db) or key=value form (host=... user=...).
func WithPassword(dsn, password string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", &FieldError{Field: "db.dsn", Msg: "is not a valid URL"}
		}
		user := ""
		if u.User != nil {
			user = u.User.Username()
		}
		u.User = url.UserPassword(user, password)
		return u.String(), nil
	}
	// key=value: a later keyword overrides an earlier one.
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return strings.TrimSpace(dsn) + " password='" + r.Replace(password) + "'", nil
}
