package audit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"strings"
	"time"
)

// SMTP security: STARTTLS (required: a server that does not offer it is
// refused), TLS from the first byte (SMTPS, port 465), or none (the mail
// server on the same host or a trusted network; no password then).
const (
	SMTPStartTLS = "starttls"
	SMTPTLS      = "tls"
	SMTPNone     = "none"
)

// SMTPSender hands messages to a mail server.
type SMTPSender struct {
	// Addr is host:port of the mail server.
	Addr string
	// Security is SMTPStartTLS (default), SMTPTLS or SMTPNone.
	Security string
	// TLS is the client configuration (its roots: the server's CA;
	// ServerName defaults to Addr's host; TLS 1.2 at least).
	TLS *tls.Config
	// User and Password log in with AUTH PLAIN (after TLS only).
	User, Password string
	// Timeout bounds one message's whole conversation (default 1 minute).
	Timeout time.Duration
}

// Send sends msg from from to every address of to.
func (s *SMTPSender) Send(ctx context.Context, from string, to []string, msg []byte) error {
	host, _, err := net.SplitHostPort(s.Addr)
	if err != nil {
		return fmt.Errorf("mail server address %q: %w", s.Addr, err)
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("mail server %s: %w", s.Addr, err)
	}
	defer func() { _ = conn.Close() }()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	cfg := s.tlsConfig(host)
	encrypted := false
	if s.Security == SMTPTLS {
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("mail server %s: TLS: %w", s.Addr, err)
		}
		conn, encrypted = tc, true
	}
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return s.fail(ctx, "greeting", err)
	}
	defer func() { _ = c.Close() }()
	hello, _ := os.Hostname()
	if hello == "" {
		hello = "localhost"
	}
	if err := c.Hello(hello); err != nil {
		return s.fail(ctx, "EHLO", err)
	}
	if s.Security == "" || s.Security == SMTPStartTLS {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return fmt.Errorf("mail server %s does not offer STARTTLS: nothing sent in clear (set smtp_security to tls for a server that speaks TLS at once, or none for one on a trusted network)", s.Addr)
		}
		if err := c.StartTLS(cfg); err != nil {
			return s.fail(ctx, "STARTTLS", err)
		}
		encrypted = true
	}
	if s.User != "" {
		if !encrypted {
			return errors.New("a mail server password is sent over TLS only")
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("mail server %s does not offer AUTH: set no smtp_user for it", s.Addr)
		}
		if err := c.Auth(smtp.PlainAuth("", s.User, s.Password, host)); err != nil {
			return s.fail(ctx, "AUTH", err)
		}
	}
	if err := c.Mail(from); err != nil {
		return s.fail(ctx, "MAIL FROM", err)
	}
	for _, a := range to {
		if err := c.Rcpt(a); err != nil {
			return s.fail(ctx, "RCPT TO "+a, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		return s.fail(ctx, "DATA", err)
	}
	if _, err := w.Write(msg); err != nil {
		return s.fail(ctx, "DATA", err)
	}
	if err := w.Close(); err != nil {
		return s.fail(ctx, "DATA", err)
	}
	_ = c.Quit() // the message is taken
	return nil
}

func (s *SMTPSender) tlsConfig(host string) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.TLS != nil {
		cfg = s.TLS.Clone()
		cfg.MinVersion = max(cfg.MinVersion, tls.VersionTLS12)
	}
	if cfg.ServerName == "" {
		cfg.ServerName = host
	}
	return cfg
}

// fail names the step that failed, and the deadline when it was that. A
// permanent refusal (5xx) of a recipient or of the data is a
// RejectedError: that message will never be taken.
func (s *SMTPSender) fail(ctx context.Context, step string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("mail server %s: %s: %w (%w)", s.Addr, step, ctx.Err(), err)
	}
	out := fmt.Errorf("mail server %s: %s: %w", s.Addr, step, err)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 && (step == "DATA" || strings.HasPrefix(step, "RCPT TO")) {
		return &RejectedError{Err: out}
	}
	return out
}
