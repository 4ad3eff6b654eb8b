package ctl

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unicode"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

const tokenFileName = "token"

// errNotLoggedIn is returned when no token can be found.
var errNotLoggedIn = errors.New(`not logged in: run "uias ctl login --user NAME", ` +
	`or set UIAS_TOKEN (or UIAS_ADMIN_USER and UIAS_ADMIN_PASSWORD)`)

// session is a connection to the AdminService with the command deadline.
type session struct {
	ctx    context.Context
	cancel context.CancelFunc
	conn   *grpc.ClientConn
	client identityv1.AdminServiceClient
	// tokenFromFile is set when the token was read from the token file, so an
	// "unauthenticated" answer can suggest logging in again.
	tokenFromFile bool
	// oneOff is set when the token was got for this invocation alone
	// (UIAS_ADMIN_USER + UIAS_ADMIN_PASSWORD): it is revoked at the end.
	oneOff bool
}

func (s *session) close() {
	s.cancel()
	_ = s.conn.Close()
}

// dial connects to the server; it does not authenticate.
func (a *app) dial() (*session, error) {
	creds, err := a.transportCredentials()
	if err != nil {
		return nil, err
	}
	conn, err := grpc.NewClient(a.g.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, fmt.Errorf("cannot connect to %s: %w", a.g.addr, err)
	}
	ctx, cancel := context.WithTimeout(a.ctx, a.g.timeout)
	return &session{ctx: ctx, cancel: cancel, conn: conn, client: identityv1.NewAdminServiceClient(conn)}, nil
}

func (a *app) transportCredentials() (credentials.TransportCredentials, error) {
	if a.g.tlsCA == "" {
		if !isLoopback(a.g.addr) {
			fmt.Fprintf(a.stderr, "warning: connecting to %s without TLS; tokens and passwords travel in clear (use --tls-ca FILE)\n", a.g.addr)
		}
		return insecure.NewCredentials(), nil
	}
	pem, err := os.ReadFile(a.g.tlsCA)
	if err != nil {
		return nil, fmt.Errorf("reading --tls-ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-ca %s holds no PEM certificates", a.g.tlsCA)
	}
	return credentials.NewTLS(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}), nil
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	return err == nil && ip.IsLoopback()
}

// authSession dials and attaches the admin token to the session context.
func (a *app) authSession() (*session, error) {
	s, err := a.dial()
	if err != nil {
		return nil, err
	}
	token, fromFile, err := a.findToken()
	if err != nil {
		s.close()
		return nil, err
	}
	if token == "" {
		user, pass := a.env("UIAS_ADMIN_USER"), a.env("UIAS_ADMIN_PASSWORD")
		if user == "" || pass == "" {
			s.close()
			return nil, errNotLoggedIn
		}
		resp, err := s.client.AdminLogin(s.ctx, &identityv1.AdminLoginRequest{LoginName: user, Password: pass})
		if err != nil {
			s.close()
			return nil, fmt.Errorf("logging in as UIAS_ADMIN_USER %q: %w", user, err)
		}
		token = resp.GetToken()
		s.oneOff = true
	}
	s.tokenFromFile = fromFile
	s.ctx = metadata.AppendToOutgoingContext(s.ctx, "authorization", "Bearer "+token)
	if a.g.remark != "" {
		s.ctx = metadata.AppendToOutgoingContext(s.ctx, grpcx.MetadataRemark, url.PathEscape(a.g.remark))
	}
	return s, nil
}

// findToken returns the token from --token/UIAS_TOKEN or the token file;
// "" when there is none.
func (a *app) findToken() (token string, fromFile bool, err error) {
	if t := strings.TrimSpace(a.g.token); t != "" {
		return t, false, nil
	}
	dir, derr := a.configDir()
	if derr != nil {
		// Without a config dir there can be no token file.
		return "", false, nil //nolint:nilerr // not an error: fall back to env login
	}
	path := filepath.Join(dir, tokenFileName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("reading token file: %w", err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(a.stderr, "warning: %s is accessible by other users (mode %v); it should be 0600\n", path, fi.Mode().Perm())
	}
	return strings.TrimSpace(string(b)), true, nil
}

// configDir is $UIAS_CONFIG_DIR, $XDG_CONFIG_HOME/uias or ~/.config/uias.
func (a *app) configDir() (string, error) {
	if d := a.env("UIAS_CONFIG_DIR"); d != "" {
		return d, nil
	}
	if d := a.env("XDG_CONFIG_HOME"); d != "" {
		return filepath.Join(d, "uias"), nil
	}
	if h := a.env("HOME"); h != "" {
		return filepath.Join(h, ".config", "uias"), nil
	}
	return "", errors.New("cannot find a configuration directory: set UIAS_CONFIG_DIR or HOME")
}

// saveToken writes the token file (mode 0600) atomically and returns its path.
func (a *app) saveToken(token string) (string, error) {
	dir, err := a.configDir()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("creating %s: %w", dir, err)
	}
	f, err := os.CreateTemp(dir, ".token-*")
	if err != nil {
		return "", fmt.Errorf("writing token file: %w", err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return "", fmt.Errorf("writing token file: %w", err)
	}
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("writing token file: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("writing token file: %w", err)
	}
	path := filepath.Join(dir, tokenFileName)
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("writing token file: %w", err)
	}
	return path, nil
}

// readSecretLines reads one line of standard input for each of whats (none
// for none), each required to be non-empty.
func (a *app) readSecretLines(whats ...string) ([]string, error) {
	if len(whats) == 0 {
		return nil, nil
	}
	if a.stdin == nil {
		return nil, usagef("%s expected on standard input, but there is none", strings.Join(whats, " and "))
	}
	r := bufio.NewReader(a.stdin)
	lines := make([]string, len(whats))
	for i, what := range whats {
		line, err := r.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading %s from standard input: %w", what, err)
		}
		if lines[i] = strings.TrimRight(line, "\r\n"); lines[i] == "" {
			return nil, usagef("%s expected on line %d of standard input, but it is empty or missing", what, i+1)
		}
	}
	return lines, nil
}

// readSecretLine reads the first line of stdin (without the line ending).
func (a *app) readSecretLine(what string) (string, error) {
	if a.stdin == nil {
		return "", usagef("%s expected on standard input, but there is none", what)
	}
	line, err := bufio.NewReader(a.stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading %s from standard input: %w", what, err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", usagef("%s expected on the first line of standard input, but it is empty", what)
	}
	return line, nil
}

// describe renders an error as "<message> (<code>, <reason>)" for gRPC
// status errors (the ErrorInfo reason, when there is one).
func (a *app) describe(err error) string {
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return err.Error()
	}
	st := se.GRPCStatus()
	msg := st.Message()
	// Keep any context added around the status error.
	if full := err.Error(); !strings.HasPrefix(full, "rpc error:") {
		if i := strings.Index(full, ": rpc error:"); i >= 0 {
			msg = full[:i] + ": " + msg
		}
	}
	switch st.Code() {
	case codes.Unavailable:
		// Every answer of a UIAS server carries an ErrorInfo; without one,
		// this client's own call failed in the transport.
		if apierr.Info(st) == nil {
			switch {
			case a.g.tlsCA == "" && speaksTLS(a.g.addr):
				// ("error reading server preface: EOF" says nothing of it;
				// asked first: a TLS server answers plain HTTP/1 too)
				msg = a.g.addr + " speaks TLS: give the CA of its certificate with --tls-ca FILE (or UIAS_TLS_CA)"
			case a.g.tlsCA == "" && answersHTTP1(a.g.addr):
				// The gRPC library's words for this ("http2: frame too
				// large, note that the frame header looked like an
				// HTTP/1.1 header") do not tell an operator what to do.
				msg = a.g.addr + " answered in HTTP/1, not gRPC: it is probably the REST (HTTP) port; " +
					"give the gRPC address with --addr / UIAS_ADDR (default " + defaultAddr + ")"
			default:
				msg = "cannot reach the UIAS server at " + a.g.addr + " (check --addr / UIAS_ADDR): " + msg
			}
		}
	case codes.DeadlineExceeded:
		msg += " (consider --timeout)"
	case codes.InvalidArgument:
		msg += a.flagOfField(st)
	case codes.Unimplemented:
		msg += servedBy(st.Message())
	}
	if info := apierr.Info(st); info != nil && info.GetReason() != "" && !plainReason(info.GetReason(), st.Code()) {
		// the reason the docs' error tables are keyed by (trial7 L5)
		return fmt.Sprintf("%s (%s, %s)", msg, st.Code(), info.GetReason())
	}
	return fmt.Sprintf("%s (%s)", msg, st.Code())
}

// flagOfField names the running command's flag for the request field a
// refusal names (ErrorInfo metadata "field", e.g. id_number: --id-number),
// as " (flag --id-number)"; "" when the command has no such flag or the
// message names it already.
func (a *app) flagOfField(st *status.Status) string {
	field := apierr.Info(st).GetMetadata()[apierr.MetaField]
	if field == "" || a.flags == nil {
		return ""
	}
	name := strings.ReplaceAll(field, "_", "-")
	if a.flags.Lookup(name) == nil || strings.Contains(st.Message(), "--"+name) {
		return ""
	}
	return " (flag --" + name + ")"
}

// servedBy says which component serves the service an "unknown service"
// refusal names (a server running other components: in microservices mode
// each component has its own gRPC address); "" for other messages.
func servedBy(msg string) string {
	svc, ok := strings.CutPrefix(msg, "unknown service ")
	if !ok {
		return ""
	}
	parts := strings.Split(svc, ".")
	if len(parts) < 4 || parts[0] != "uias" {
		return ""
	}
	return fmt.Sprintf(" (%s is served by the %s component: the server at --addr runs without it; "+
		"with components in their own processes give the %s component's gRPC address with --addr / UIAS_ADDR)", svc, parts[1], parts[1])
}

// probeTimeout bounds each step of answersHTTP1.
const probeTimeout = 2 * time.Second

// answersHTTP1 reports whether addr (host:port, plaintext) answers an
// HTTP/1.1 request with an HTTP/1 response. ctl asks only after a call
// failed in the transport, to tell "this is the REST port" from "nothing
// there".
func answersHTTP1(addr string) bool {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return false // a resolver target (dns:///..., unix:...): not probed
	}
	c, err := net.DialTimeout("tcp", addr, probeTimeout)
	if err != nil {
		return false
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := io.WriteString(c, "HEAD / HTTP/1.1\r\nHost: uias\r\nConnection: close\r\n\r\n"); err != nil {
		return false
	}
	buf := make([]byte, len("HTTP/1."))
	if _, err := io.ReadFull(c, buf); err != nil {
		return false
	}
	return string(buf) == "HTTP/1."
}

// speaksTLS reports whether addr (host:port) answers a TLS ClientHello
// with a ServerHello (a handshake record), whatever its certificate. ctl
// asks only after a plaintext call failed in the transport.
func speaksTLS(addr string) bool {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return false
	}
	d := &net.Dialer{Timeout: probeTimeout}
	// A handshake whatever the certificate (nothing is trusted or kept of
	// it; no request follows): a server that completes one, or refuses it
	// with a TLS alert, speaks TLS; garbage or a plain answer does not.
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{MinVersion: tls.VersionTLS12,
		InsecureSkipVerify: true}) //nolint:gosec // a probe: it reads whether the port speaks TLS, and sends nothing
	if err != nil {
		var rec tls.RecordHeaderError
		return !errors.As(err, &rec) && !errors.Is(err, io.EOF) && strings.Contains(err.Error(), "tls:")
	}
	_ = c.Close()
	return true
}

// call wraps an RPC error with advice when the stored token was refused.
func (s *session) wrap(err error) error {
	if err == nil {
		return nil
	}
	if s.tokenFromFile && status.Code(err) == codes.Unauthenticated {
		st := status.Convert(err)
		return status.Error(codes.Unauthenticated, st.Message()+`; the stored token may have expired, run "uias ctl login"`)
	}
	return err
}

// plainReason: reason says no more than code (NOT_FOUND for NotFound).
func plainReason(reason string, code codes.Code) bool {
	var b strings.Builder
	for i, r := range code.String() {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return reason == b.String()
}
