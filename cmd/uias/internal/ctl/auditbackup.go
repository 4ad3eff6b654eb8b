package ctl

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
)

// parseWhen reads a time flag (--before, --from, --to): a date
// (YYYY-MM-DD, its midnight UTC) or an RFC 3339 time; the error names the
// flag and both forms.
func parseWhen(flag, s string) (time.Time, error) {
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, usagef("--%s must be a date (2026-12-01, midnight UTC) or an RFC 3339 time (2026-12-01T08:00:00Z), got %q", flag, s)
	}
	return t, nil
}

func auditBackupCmd() command {
	return command{
		usage: "--before DATE [--after DATE] [--remove --yes]",
		help: "Backs up the audit log: writes the stored records older than --before (a date, midnight UTC,\n" +
			"or an RFC 3339 time) that a signed checkpoint covers, from the oldest still stored (or, with\n" +
			"--after, from that time: a backup of a period), to archive\n" +
			"files in the audit component's audit.archive_dir (check them with audit verify --archive).\n" +
			"With --remove --yes they are then removed from the database, as retention removes them (they\n" +
			"exist only in the files afterwards). Each file is recorded in the log, and those records are\n" +
			"never removed. The security auditor only.",
		setup: func(a *app, fs *flag.FlagSet) func([]string) error {
			before := fs.String("before", "", "archive the records older than `DATE` (YYYY-MM-DD or RFC 3339)")
			after := fs.String("after", "", "back up only the records from `DATE` on (a period; not with --remove)")
			remove := fs.Bool("remove", false, "remove the archived records from the database")
			yes := fs.Bool("yes", false, "confirm --remove (it cannot be undone)")
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				if *before == "" {
					return usagef("--before is required: the records older than it are archived")
				}
				t, err := parseWhen("before", *before)
				if err != nil {
					return err
				}
				if *remove && !*yes {
					return usagef("removing records from the database cannot be undone (they then exist only in the archive files): add --yes")
				}
				if *yes && !*remove {
					return usagef("--yes confirms --remove; a backup alone needs no confirmation")
				}
				req := &auditv1.ArchiveRecordsRequest{Before: timestamppb.New(t), Remove: *remove}
				if *after != "" {
					if *remove {
						return usagef("--after backs up a period; a removal always starts at the oldest stored record (leave --after out)")
					}
					from, err := parseWhen("after", *after)
					if err != nil {
						return err
					}
					req.After = timestamppb.New(from)
				}
				return a.withSession(func(s *session) error {
					r, err := auditv1.NewAuditLogServiceClient(s.conn).ArchiveRecords(s.ctx, req)
					if err != nil {
						return err
					}
					return a.output(r, func(tw *tabwriter.Writer) {
						fmt.Fprintln(tw, r.GetMessage()+".")
						if len(r.GetArchives()) == 0 {
							return
						}
						row(tw, "FILE", "RECORDS", "CHECKPOINT", "SHA-256")
						for _, f := range r.GetArchives() {
							row(tw, f.GetFile(), fmt.Sprintf("%d to %d", f.GetFrom(), f.GetTo()-1), strconv.FormatInt(f.GetCheckpointSize(), 10),
								f.GetSha256())
						}
					})
				})
			}
		},
	}
}

func auditArchiveStatusCmd() command {
	return command{
		usage: "",
		help: "Says when the audit log was last backed up (audit backup) and last archived (retention\n" +
			"included), and whether the backup reminder (audit.backup_reminder) is due.",
		setup: func(a *app, _ *flag.FlagSet) func([]string) error {
			return func(args []string) error {
				if err := wantArgs(args); err != nil {
					return err
				}
				return a.withSession(func(s *session) error {
					st, err := auditv1.NewAuditLogServiceClient(s.conn).GetArchiveStatus(s.ctx, &auditv1.GetArchiveStatusRequest{})
					if err != nil {
						return err
					}
					return a.output(st, func(tw *tabwriter.Writer) {
						fields(tw, "last backup", describeRun(st.GetLastBackup()), "last archive", describeRun(st.GetLastArchive()),
							"records archived and removed", strconv.FormatInt(st.GetArchived(), 10))
						if st.GetOldestRecord() != nil {
							fields(tw, "oldest stored record", st.GetOldestRecord().AsTime().Format(time.RFC3339))
						}
						reminder := "off"
						if st.GetBackupReminderSeconds() > 0 {
							reminder = shortDuration(time.Duration(st.GetBackupReminderSeconds()) * time.Second)
						}
						due := "no"
						if st.GetBackupDue() {
							due = "yes: uias ctl audit backup --before " + time.Now().UTC().Truncate(time.Minute).Format(time.RFC3339)
						}
						fields(tw, "backup reminder", reminder, "backup due", due)
					})
				})
			}
		},
	}
}

// describeRun is an archive run in words.
func describeRun(r *auditv1.ArchiveRun) string {
	if r == nil {
		return "never"
	}
	return fmt.Sprintf("%s by %s (%s): records %d to %d, %s", r.GetTime().AsTime().Format(time.RFC3339), r.GetActor(), r.GetReason(),
		r.GetFrom(), r.GetTo()-1, r.GetFile())
}

// reminderTimeout bounds login's question for the backup reminder.
const reminderTimeout = 5 * time.Second

// backupReminder prints, on standard error, the reminder to back up the
// audit log when the administrator just logged in with token backs it up
// (audit.records archive: the security auditor) and a backup is due
// (audit.backup_reminder). Nothing else is said: any other administrator,
// a deployment without the audit component or any failure of the question
// leaves the login as it was.
func (a *app) backupReminder(s *session, token string) {
	ctx, cancel := context.WithTimeout(s.ctx, reminderTimeout)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
	st, err := auditv1.NewAuditLogServiceClient(s.conn).GetArchiveStatus(ctx, &auditv1.GetArchiveStatusRequest{IfAllowed: true})
	if err != nil || !st.GetAllowed() || !st.GetBackupDue() {
		return
	}
	every := time.Duration(st.GetBackupReminderSeconds()) * time.Second
	last := "has never been backed up"
	if b := st.GetLastBackup(); b != nil {
		last = "was last backed up on " + b.GetTime().AsTime().UTC().Format(time.DateOnly)
	}
	// Up to now (to the minute): a date would leave out today's records,
	// all of them on a log younger than a day.
	fmt.Fprintf(a.stderr, "Reminder: the audit log %s (audit.backup_reminder %s): uias ctl audit backup --before %s\n",
		last, shortDuration(every), time.Now().UTC().Truncate(time.Minute).Format(time.RFC3339))
}

// shortDuration is d without zero minutes and seconds (720h, not 720h0m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if len(s) > 2 && s[len(s)-2:] == "0s" && d >= time.Minute {
		s = s[:len(s)-2]
		if len(s) > 2 && s[len(s)-2:] == "0m" && d >= time.Hour {
			s = s[:len(s)-2]
		}
	}
	return s
}
