package ctl

import (
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/emmansun/gmsm/smx509"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"

	"github.com/uias/uias/pkg/x509cert"
)

// userBindCertCmd is "user bind-cert USER --cert FILE | --sha256 HEX": binds
// a person's client certificate (the X.509 certificate login of the CAS
// page, authentication level 2).
func userBindCertCmd() command {
	return command{
		usage: "USER (--cert FILE | --sha256 HEX)",
		help: "Binds a client certificate to the person: presented to the single sign-on login page over\n" +
			"HTTPS (verified against tls.client_ca_file), it signs them in at authentication level 2.\n" +
			"--cert reads the certificate (PEM, the first CERTIFICATE block; its expiry is recorded);\n" +
			"--sha256 gives its SHA-256 thumbprint instead (openssl x509 -noout -fingerprint -sha256).\n" +
			"A certificate belongs to one person.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			file := fs.String("cert", "", "PEM `file` of the person's client certificate")
			sha := fs.String("sha256", "", "SHA-256 thumbprint (`hex`) of the certificate")
			return func(args []string) error {
				if err := wantArgs(args, "USER"); err != nil {
					return err
				}
				req := &identityv1.BindUserCertificateRequest{UserId: args[0], Sha256: *sha}
				switch {
				case *file != "" && *sha != "":
					return usagef("--cert and --sha256 exclude each other")
				case *file == "" && *sha == "":
					return usagef("needs --cert FILE or --sha256 HEX")
				case *file != "":
					der, err := readCertPEM(*file)
					if err != nil {
						return err
					}
					req.Certificate = der
					if c, err := smx509.ParseCertificate(der); err == nil && time.Now().After(c.NotAfter) {
						// Bound all the same (a renewal may follow), but it
						// signs no one in until then.
						fmt.Fprintf(a.stderr, "Warning: this certificate expired on %s: it signs no one in (the login page says it expired); bind the renewed one.\n",
							c.NotAfter.UTC().Format(time.RFC3339))
					}
				}
				return a.withSession(func(s *session) error {
					c, err := s.client.BindUserCertificate(s.ctx, req)
					if err != nil {
						return err
					}
					return a.output(c, func(tw *tabwriter.Writer) { certTable(tw, c) })
				})
			}
		},
	}
}

// userUnbindCertCmd is "user unbind-cert USER --sha256 HEX".
func userUnbindCertCmd() command {
	return command{
		usage: "USER (--sha256 HEX | --cert FILE)",
		help:  "Removes a certificate binding of the person: the certificate signs no one in any more.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			file := fs.String("cert", "", "PEM `file` of the certificate")
			sha := fs.String("sha256", "", "SHA-256 thumbprint (`hex`) of the certificate")
			return func(args []string) error {
				if err := wantArgs(args, "USER"); err != nil {
					return err
				}
				fp := *sha
				switch {
				case *file != "" && *sha != "":
					return usagef("--cert and --sha256 exclude each other")
				case *file == "" && *sha == "":
					return usagef("needs --sha256 HEX or --cert FILE")
				case *file != "":
					der, err := readCertPEM(*file)
					if err != nil {
						return err
					}
					fp = x509cert.Thumbprint(der)
				}
				return a.withSession(func(s *session) error {
					r, err := s.client.UnbindUserCertificate(s.ctx, &identityv1.UnbindUserCertificateRequest{UserId: args[0], Sha256: fp})
					if err != nil {
						return err
					}
					return a.output(r, func(tw *tabwriter.Writer) {
						fmt.Fprintf(tw, "Unbound certificate %s from user %s.\n", fp, args[0])
					})
				})
			}
		},
	}
}

// userCertsCmd is "user certs USER": the person's certificate bindings.
func userCertsCmd() command {
	return command{
		usage: "USER",
		help:  "Lists the client certificates bound to the person (thumbprint, expiry when known, when bound).",
		setup: func(a *app, _ *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if err := wantArgs(args, "USER"); err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					r, err := s.client.ListUserCertificates(s.ctx, &identityv1.ListUserCertificatesRequest{UserId: args[0]})
					if err != nil {
						return err
					}
					return a.output(r, func(tw *tabwriter.Writer) { certTable(tw, r.GetCertificates()...) })
				})
			}
		},
	}
}

// readCertPEM returns the DER of the first CERTIFICATE block of a PEM file.
func readCertPEM(file string) ([]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("--cert: %v", err)
	}
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			return nil, usagef("--cert: %s holds no PEM CERTIFICATE", file)
		}
		if blk.Type == "CERTIFICATE" {
			if _, err := smx509.ParseCertificate(blk.Bytes); err != nil {
				return nil, usagef("--cert: %s: %v", file, err)
			}
			return blk.Bytes, nil
		}
	}
}

func certTable(tw *tabwriter.Writer, cs ...*identityv1.UserCertificate) {
	fmt.Fprintln(tw, "USER\tSHA-256\tNOT AFTER\tBOUND")
	for _, c := range cs {
		notAfter := "-"
		if c.GetNotAfter() != nil {
			notAfter = ts(c.GetNotAfter())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.GetUserId(), c.GetSha256(), notAfter, ts(c.GetCreateTime()))
	}
}
