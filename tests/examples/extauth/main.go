// Command extauth is an example external authenticator for UIAS: a
// vendor's program that implements uias.authn.v1.ExternalAuthenticatorService
// (proto/uias/authn/v1/authenticator.proto) and checks one kind of
// credential, here a personal PIN set up out of band (the vendor's own
// enrolment, keyed by the UIAS user id). docs/integrators.md, "Writing an
// external authenticator", walks through it; main_test.go runs it over
// TLS with a client certificate against UIAS's own client.
//
//	extauth -listen :9443 -cert server.pem -key server-key.pem \
//	    -client-ca uias-ca.pem -pins pins.json
//
// pins.json maps UIAS user ids to the hex SHA-256 of each person's PIN.
package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net"
	"os"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	authnv1 "github.com/uias/uias/proto/gen/uias/authn/v1"
)

// <!-- extauth-example:begin -->

// Enrolments is the vendor's own store: who enrolled what. Lookup answers
// the hex SHA-256 of a person's PIN ("" when they have none), or an error
// when the store cannot be read (the backend down).
type Enrolments interface {
	Lookup(ctx context.Context, userID string) (string, error)
}

// Server implements the contract UIAS calls.
type Server struct {
	authnv1.UnimplementedExternalAuthenticatorServiceServer
	Pins Enrolments
}

// Verify answers one check. It never logs the credential.
func (s *Server) Verify(ctx context.Context, r *authnv1.VerifyRequest) (*authnv1.VerifyResponse, error) {
	// Always echo the user id UIAS asked about: UIAS ignores an answer
	// about anyone else.
	res := &authnv1.VerifyResponse{UserId: r.GetUserId()}
	want, err := s.Pins.Lookup(ctx, r.GetUserId())
	switch {
	case err != nil:
		// No verdict: UIAS counts nothing and asks the person to retry.
		log.Printf("request %s: enrolment store: %v", r.GetRequestId(), err)
		res.Verdict, res.Reason = authnv1.Verdict_VERDICT_UNAVAILABLE, "STORE_DOWN"
	case want == "":
		res.Verdict, res.Reason = authnv1.Verdict_VERDICT_REJECTED, "NOT_ENROLLED"
	default:
		got := sha256.Sum256(r.GetCredential())
		wantSum, _ := hex.DecodeString(want)
		if subtle.ConstantTimeCompare(got[:], wantSum) == 1 {
			res.Verdict, res.Reason = authnv1.Verdict_VERDICT_ACCEPTED, "MATCH"
		} else {
			// A rejection counts towards the person's lockout in UIAS.
			res.Verdict, res.Reason = authnv1.Verdict_VERDICT_REJECTED, "NO_MATCH"
		}
	}
	log.Printf("request %s: user %s: %s %s", r.GetRequestId(), r.GetUserId(), res.GetVerdict(), res.GetReason())
	return res, nil
}

// NewGRPCServer serves s over TLS with cert, and, with clientCAs, only to
// clients (UIAS identity) holding a certificate they signed.
func NewGRPCServer(s *Server, cert tls.Certificate, clientCAs *x509.CertPool) *grpc.Server {
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAs != nil {
		tc.ClientCAs, tc.ClientAuth = clientCAs, tls.RequireAndVerifyClientCert
	}
	g := grpc.NewServer(grpc.Creds(credentials.NewTLS(tc)))
	authnv1.RegisterExternalAuthenticatorServiceServer(g, s)
	return g
}

// <!-- extauth-example:end -->

// filePins reads pins.json at each check (a real vendor has a database).
type filePins string

func (f filePins) Lookup(_ context.Context, userID string) (string, error) {
	b, err := os.ReadFile(string(f))
	if err != nil {
		return "", err
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return "", errors.New("pins file is not a JSON object of strings")
	}
	return m[userID], nil
}

func main() {
	listen := flag.String("listen", ":9443", "address to listen on")
	certFile := flag.String("cert", "", "server certificate (PEM)")
	keyFile := flag.String("key", "", "server key (PEM)")
	clientCA := flag.String("client-ca", "", "CA of UIAS's client certificate (PEM; empty: none asked)")
	pins := flag.String("pins", "pins.json", "user id -> hex SHA-256 of the PIN (JSON)")
	flag.Parse()
	cert, err := tls.LoadX509KeyPair(*certFile, *keyFile)
	if err != nil {
		log.Fatal(err)
	}
	var cas *x509.CertPool
	if *clientCA != "" {
		b, err := os.ReadFile(*clientCA)
		if err != nil {
			log.Fatal(err)
		}
		cas = x509.NewCertPool()
		if !cas.AppendCertsFromPEM(b) {
			log.Fatal("no certificate in ", *clientCA)
		}
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	log.Fatal(NewGRPCServer(&Server{Pins: filePins(*pins)}, cert, cas).Serve(ln))
}
