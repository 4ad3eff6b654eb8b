package ctl

import (
	"flag"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
)

// userFingerCmd is "user finger enroll|list|delete": a person's enrolled
// fingers (FingerService). Templates go in from a file and never come back.
func userFingerCmd() command {
	return command{
		usage: "enroll USER --position N --record FILE | list USER | delete USER --position N",
		help: "Enrolls (or replaces) the template of one finger from an ISO/IEC 19794-2:2005 or ANSI INCITS\n" +
			"378-2004 finger minutiae record (--record FILE, \"-\": standard input), lists a person's\n" +
			"enrolled fingers (position, quality, format, minutiae; never the template) or deletes one.\n" +
			"Finger positions: 1 right thumb ... 5 right little, 6 left thumb ... 10 left little.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			pos := fs.Int("position", 0, "finger `position` 1-10")
			record := fs.String("record", "", "finger minutiae record `file` (\"-\": standard input)")
			return func(args []string) error {
				if len(args) == 0 {
					return usagef("needs enroll, list or delete")
				}
				verb, args := args[0], args[1:]
				if err := wantArgs(args, "USER"); err != nil {
					return err
				}
				user := args[0]
				switch verb {
				case "enroll":
					if *pos < 1 || *pos > 10 {
						return usagef("--position must be 1-10")
					}
					if err := required("record", *record); err != nil {
						return err
					}
					b, err := a.readRecord(*record)
					if err != nil {
						return err
					}
					return a.withSession(func(s *session) error {
						f, err := identityv1.NewFingerServiceClient(s.conn).EnrollFinger(s.ctx,
							&identityv1.EnrollFingerRequest{UserId: user, Position: int32(*pos), Record: b})
						if err != nil {
							return err
						}
						return a.output(f, func(tw *tabwriter.Writer) { fingerTable(tw, f) })
					})
				case "list":
					return a.withSession(func(s *session) error {
						r, err := identityv1.NewFingerServiceClient(s.conn).ListFingers(s.ctx, &identityv1.ListFingersRequest{UserId: user})
						if err != nil {
							return err
						}
						return a.output(r, func(tw *tabwriter.Writer) { fingerTable(tw, r.GetFingers()...) })
					})
				case "delete":
					if *pos < 1 || *pos > 10 {
						return usagef("--position must be 1-10")
					}
					return a.withSession(func(s *session) error {
						r, err := identityv1.NewFingerServiceClient(s.conn).DeleteFinger(s.ctx,
							&identityv1.DeleteFingerRequest{UserId: user, Position: int32(*pos)})
						if err != nil {
							return err
						}
						return a.output(r, func(tw *tabwriter.Writer) {
							fmt.Fprintf(tw, "Deleted finger %d of user %s.\n", *pos, user)
						})
					})
				}
				return usagef("unknown finger subcommand %q (want enroll, list or delete)", verb)
			}
		},
	}
}

// appFingerBypassCmd is "app finger-bypass ID [--on|--off --reason R]".
func appFingerBypassCmd() command {
	return command{
		usage: "ID [--on | --off] [--reason R]",
		help: "Shows, or turns on or off, the application's emergency fingerprint bypass: while on,\n" +
			"Authenticate with auth type 2 (fingerprint) checks the password instead. A change needs\n" +
			"--reason, which the audit record keeps.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			on := fs.Bool("on", false, "turn the bypass on")
			off := fs.Bool("off", false, "turn the bypass off")
			reason := fs.String("reason", "", "why (recorded in the audit event)")
			return func(args []string) error {
				if err := wantArgs(args, "ID"); err != nil {
					return err
				}
				if *on && *off {
					return usagef("--on and --off exclude each other")
				}
				return a.withSession(func(s *session) error {
					c := identityv1.NewFingerServiceClient(s.conn)
					var b *identityv1.FingerprintBypass
					var err error
					if *on || *off {
						if err := required("reason", *reason); err != nil {
							return err
						}
						b, err = c.SetFingerprintBypass(s.ctx, &identityv1.SetFingerprintBypassRequest{AppId: args[0], Enabled: *on, Reason: *reason})
					} else {
						b, err = c.GetFingerprintBypass(s.ctx, &identityv1.GetFingerprintBypassRequest{AppId: args[0]})
					}
					if err != nil {
						return err
					}
					return a.output(b, func(tw *tabwriter.Writer) {
						state := "off"
						if b.GetEnabled() {
							state = "ON"
						}
						fmt.Fprintf(tw, "Fingerprint bypass of %s:\t%s\n", b.GetAppId(), state)
						if b.GetSetBy() != "" {
							fmt.Fprintf(tw, "Reason:\t%s\nSet by:\t%s\nAt:\t%s\n", b.GetReason(), b.GetSetBy(),
								b.GetUpdateTime().AsTime().Format("2006-01-02 15:04:05Z07:00"))
						}
					})
				})
			}
		},
	}
}

func (a *app) readRecord(path string) ([]byte, error) {
	if path == "-" {
		if a.stdin == nil {
			return nil, usagef("no standard input")
		}
		return io.ReadAll(io.LimitReader(a.stdin, 1<<16+1))
	}
	return os.ReadFile(path)
}

func fingerTable(tw *tabwriter.Writer, fs ...*identityv1.EnrolledFinger) {
	fmt.Fprintln(tw, "USER\tPOSITION\tQUALITY\tFORMAT\tMINUTIAE\tUPDATED")
	for _, f := range fs {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%d\t%s\n", f.GetUserId(), f.GetPosition(), f.GetQuality(), f.GetFormat(),
			f.GetMinutiae(), f.GetUpdateTime().AsTime().Format("2006-01-02 15:04:05Z07:00"))
	}
}
