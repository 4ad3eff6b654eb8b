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

// userBindCertsCmd is "user bind-certs FILE...": certificates the CA
// issued, each bound to the person it names (BindCertificates).
func userBindCertsCmd() command {
	return command{
		usage: "[--dry-run] FILE...",
		help: "Binds certificates issued by the people's CA to the people they name, in bulk: each certificate whose subject\n" +
			"carries one registered person's ID number and display name is bound to that person (as bind-cert with\n" +
			"identity.policy.cert_identity_check). FILEs are PEM (every CERTIFICATE block: a CA's bundle) or DER. One line per\n" +
			"certificate says what became of it (bound, already_bound, no_person, invalid, homed_elsewhere, too_many);\n" +
			"--dry-run binds nothing and says what it would do (would_bind). A system administrator's command.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			dry := fs.Bool("dry-run", false, "bind nothing; say what would be bound")
			return func(args []string) error {
				if len(args) == 0 {
					return usagef("needs one or more certificate FILEs")
				}
				var ders [][]byte
				for _, f := range args {
					ds, err := readCertsFile(f)
					if err != nil {
						return err
					}
					ders = append(ders, ds...)
				}
				return a.withSession(func(s *session) error {
					all := &identityv1.BindCertificatesResponse{}
					for len(ders) > 0 {
						n := min(len(ders), 500)
						r, err := s.client.BindCertificates(s.ctx, &identityv1.BindCertificatesRequest{Certificates: ders[:n], DryRun: *dry})
						if err != nil {
							return err
						}
						all.Lines = append(all.Lines, r.GetLines()...)
						all.Bound += r.GetBound()
						ders = ders[n:]
					}
					return a.output(all, func(tw *tabwriter.Writer) {
						fmt.Fprintln(tw, "SHA-256\tOUTCOME\tUSER\tMESSAGE")
						for _, l := range all.GetLines() {
							fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", dash(l.GetSha256()), l.GetOutcome(), dash(l.GetUserId()), l.GetMessage())
						}
						verb := "bound"
						if *dry {
							verb = "would be bound"
						}
						fmt.Fprintf(tw, "%d of %d certificates %s.\n", all.GetBound(), len(all.GetLines()), verb)
					})
				})
			}
		},
	}
}

// readCertsFile returns every certificate of a file: the CERTIFICATE
// blocks of a PEM file, or the file itself when it is one DER certificate.
func readCertsFile(file string) ([][]byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, usagef("%v", err)
	}
	var out [][]byte
	for rest := b; ; {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			out = append(out, blk.Bytes)
		}
	}
	if len(out) == 0 {
		if _, err := smx509.ParseCertificate(b); err != nil {
			return nil, usagef("%s holds no PEM CERTIFICATE and is not a DER certificate", file)
		}
		out = append(out, b)
	}
	return out, nil
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
