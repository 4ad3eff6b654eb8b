// Package mailtest runs a real SMTP server (emersion/go-smtp) on loopback
// for tests of the reports' mailing (the audit package's and the
// end-to-end ones), and reads the messages it takes. It is not linked
// into the uias binary.
package mailtest

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/http/httptest"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Options say how the server speaks.
type Options struct {
	// ImplicitTLS speaks TLS from the first byte (SMTPS); NoTLS offers
	// no STARTTLS. Neither: STARTTLS offered.
	ImplicitTLS, NoTLS bool
	// User and Pass, when set, are required (AUTH PLAIN) before MAIL.
	User, Pass string
}

// Server is a running SMTP server.
type Server struct {
	// Addr is its host:port (127.0.0.1).
	Addr string
	// Roots trusts its certificate (for 127.0.0.1, ::1, example.com);
	// CAPEM is the same certificate as PEM.
	Roots *x509.CertPool
	CAPEM []byte

	mu         sync.Mutex
	got        []Message
	failData   int
	rejectData int
}

// Message is one message the server took.
type Message struct {
	From string
	To   []string
	Data []byte
	// TLS is whether it came over TLS.
	TLS bool
}

// Start starts a server until the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	// the test TLS server's certificate, and the pool that trusts it
	hs := httptest.NewUnstartedServer(nil)
	hs.StartTLS()
	cert := hs.TLS.Certificates[0]
	ms := &Server{Roots: x509.NewCertPool()}
	ms.Roots.AddCert(hs.Certificate())
	ms.CAPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})
	hs.Close()

	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, tlsOn := c.TLSConnectionState()
		return &session{ms: ms, o: o, tls: tlsOn}, nil
	}))
	s.Domain = "mail.test"
	s.ReadTimeout, s.WriteTimeout = 10*time.Second, 10*time.Second
	if !o.NoTLS {
		s.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	var l net.Listener
	var err error
	if o.ImplicitTLS {
		l, err = tls.Listen("tcp", "127.0.0.1:0", s.TLSConfig)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatal(err)
	}
	ms.Addr = l.Addr().String()
	go func() { _ = s.Serve(l) }()
	t.Cleanup(func() { _ = s.Close() })
	return ms
}

// Messages is what the server took so far.
func (ms *Server) Messages() []Message {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return slices.Clone(ms.got)
}

// RejectData answers the next n messages 554 (a permanent refusal).
func (ms *Server) RejectData(n int) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.rejectData = n
}

// FailData answers the next n messages 451 (a temporary refusal).
func (ms *Server) FailData(n int) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	ms.failData = n
}

type session struct {
	ms     *Server
	o      Options
	tls    bool
	authed bool
	cur    Message
}

func (s *session) AuthMechanisms() []string {
	if s.o.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != s.o.User || pass != s.o.Pass {
			return smtp.ErrAuthFailed
		}
		s.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if s.o.User != "" && !s.authed {
		return smtp.ErrAuthRequired
	}
	s.cur = Message{From: from}
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.To = append(s.cur.To, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.ms.mu.Lock()
	defer s.ms.mu.Unlock()
	if s.ms.rejectData > 0 {
		s.ms.rejectData--
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: "message too big for this system"}
	}
	if s.ms.failData > 0 {
		s.ms.failData--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "mailbox busy, try later"}
	}
	s.cur.Data, s.cur.TLS = b, s.tls
	s.ms.got = append(s.ms.got, s.cur)
	return nil
}

func (s *session) Reset()        { s.cur = Message{} }
func (s *session) Logout() error { return nil }

// Parse reads a multipart message: its header, its decoded subject and
// its parts by file name (the text under "").
func Parse(t testing.TB, data []byte) (h mail.Header, subject string, files map[string][]byte) {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	if err != nil {
		t.Fatal(err)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/mixed" {
		t.Fatalf("content type %q: %v", m.Header.Get("Content-Type"), err)
	}
	files = map[string][]byte{}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if p.Header.Get("Content-Transfer-Encoding") == "base64" {
			if b, err = base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(string(b))); err != nil {
				t.Fatal(err)
			}
		}
		files[p.FileName()] = b
	}
	return m.Header, subject, files
}
