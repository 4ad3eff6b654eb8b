package server

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/adminauth"
	"github.com/uias/uias/pkg/apierr"
	auditv1 "github.com/uias/uias/proto/gen/uias/audit/v1"
	"github.com/uias/uias/services/audit"
)

// ArchiveOptions configure the archives on demand and the backup reminder
// (Server.WithArchives).
type ArchiveOptions struct {
	// Dir is audit.archive_dir.
	Dir string
	// Reminder is audit.backup_reminder (0: off).
	Reminder time.Duration
	// MinRemovalAge is audit.min_removal_age (0: no floor).
	MinRemovalAge time.Duration
	// OnRemoved is told of every removal of records [from, to) by actor
	// (the alert audit_removal; nil: nothing).
	OnRemoved func(actor string, from, to int64)
	// Checker decides GetArchiveStatus's permission (its handler asks).
	Checker adminauth.Checker
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// WithArchives sets the options of ArchiveRecords and GetArchiveStatus
// (without, GetArchiveStatus refuses everyone).
func (s *Server) WithArchives(o ArchiveOptions) *Server {
	if o.Now == nil {
		o.Now = time.Now
	}
	s.archives = o
	return s
}

func (s *Server) now() time.Time {
	if s.archives.Now == nil {
		return time.Now()
	}
	return s.archives.Now()
}

// ArchiveRecords implements AuditLogService: a backup, or a removal, of
// the records older than a time (audit.Log.ArchiveBefore).
func (s *Server) ArchiveRecords(ctx context.Context, r *auditv1.ArchiveRecordsRequest) (*auditv1.ArchiveRecordsResponse, error) {
	if err := wholeLog(ctx); err != nil {
		return nil, err
	}
	if s.archives.Dir == "" {
		return nil, apierr.New(apierr.FailedPrecondition, "FAILED_PRECONDITION", "no archive directory is set (audit.archive_dir or data_dir)")
	}
	var before time.Time
	if r.GetBefore() != nil {
		before = r.GetBefore().AsTime()
	}
	var after time.Time
	if r.GetAfter() != nil {
		after = r.GetAfter().AsTime()
	}
	o, err := s.log.ArchiveBefore(ctx, audit.ArchiveRequest{After: after, Before: before, Remove: r.GetRemove(), Actor: "user:" + adminauth.From(ctx).ID,
		Dir: s.archives.Dir, MinRemovalAge: s.archives.MinRemovalAge}, s.now())
	if err != nil {
		if o != nil && len(o.Archives) > 0 {
			return nil, fmt.Errorf("%w (records %d to %d were archived before the failure)", err, o.From, o.To-1)
		}
		return nil, err
	}
	out := &auditv1.ArchiveRecordsResponse{From: o.From, To: o.To, Records: o.Records(), Removed: r.GetRemove() && o.Records() > 0,
		Unsigned: o.Unsigned}
	if out.Removed && s.archives.OnRemoved != nil {
		s.archives.OnRemoved("user:"+adminauth.From(ctx).ID, o.From, o.To)
	}
	for _, a := range o.Archives {
		out.Archives = append(out.Archives, &auditv1.ArchiveFile{File: filepath.Base(a.File), Sha256: a.SHA256, From: a.From, To: a.To,
			CheckpointSize: a.CheckpointSize})
	}
	out.Message = archiveMessage(o, after, before, r.GetRemove())
	return out, nil
}

// archiveMessage says what ArchiveRecords did, in words.
func archiveMessage(o *audit.ArchiveOutcome, after, before time.Time, remove bool) string {
	var b strings.Builder
	at := before.UTC().Format(time.RFC3339Nano) // the cut-off as given: a record of the same second may be newer
	period := "older than " + at
	if !after.IsZero() {
		period = "from " + after.UTC().Format(time.RFC3339Nano) + " on and older than " + at
	}
	switch {
	case o.Records() == 0 && o.Unsigned:
		fmt.Fprintf(&b, "nothing archived: no stored record %s is covered by a signed checkpoint yet", period)
	case o.Records() == 0:
		fmt.Fprintf(&b, "nothing archived: no stored record is %s", period)
	default:
		files := "files"
		if len(o.Archives) == 1 {
			files = "file"
		}
		fmt.Fprintf(&b, "records %d to %d (%d, %s) archived to %d %s", o.From, o.To-1, o.Records(), period, len(o.Archives), files)
		if remove {
			b.WriteString(" and removed from the database")
		} else {
			b.WriteString("; they stay in the database (a backup)")
		}
		if o.Unsigned {
			fmt.Fprintf(&b, "; records older than %s beyond the latest checkpoint (size %d) are not signed yet and were not archived", at, o.Signed)
		}
	}
	if o.Unsigned {
		b.WriteString(": ask again after the next checkpoint (audit.checkpoint_interval)")
	}
	return b.String()
}

// GetArchiveStatus implements AuditLogService. Its permission (audit.records
// archive: the status and its reminder are for whoever backs the log up,
// the security auditor) is asked here: with if_allowed, an administrator
// without it is answered allowed = false rather than refused (uias ctl
// login asks every administrator, and a refusal would be audited as an
// attempt).
func (s *Server) GetArchiveStatus(ctx context.Context, r *auditv1.GetArchiveStatusRequest) (*auditv1.ArchiveStatus, error) {
	adm := adminauth.From(ctx)
	if adm == nil {
		return nil, apierr.New(apierr.Unauthenticated, adminauth.ReasonBadToken, "no administrator")
	}
	if s.archives.Checker == nil {
		return nil, adminauth.Denied("the audit component does not decide GetArchiveStatus here")
	}
	if p, ok := s.archives.Checker.(adminauth.Prober); ok && r.GetIfAllowed() {
		// Asked as a probe: a denial is no attempt to read the log.
		allowed, err := p.Allowed(ctx, adm, adminauth.AuditArchive)
		if err != nil {
			return nil, err
		}
		if !allowed {
			return &auditv1.ArchiveStatus{}, nil
		}
	} else if err := s.archives.Checker.Authorize(ctx, adm, adminauth.AuditArchive, ""); err != nil {
		if r.GetIfAllowed() && apierr.CodeOf(err) == apierr.PermissionDenied {
			return &auditv1.ArchiveStatus{}, nil
		}
		return nil, err
	}
	if err := wholeLog(ctx); err != nil {
		return nil, err
	}
	st, err := s.log.ArchiveStatusOf(ctx)
	if err != nil {
		return nil, err
	}
	out := &auditv1.ArchiveStatus{Allowed: true, LastBackup: archiveRun(st.LastBackup), LastArchive: archiveRun(st.LastArchive),
		BackupReminderSeconds: int64(s.archives.Reminder / time.Second), BackupDue: st.BackupDue(s.archives.Reminder, s.now()),
		Archived: st.Pruned}
	if !st.Oldest.IsZero() {
		out.OldestRecord = timestamppb.New(st.Oldest)
	}
	return out, nil
}

func archiveRun(r *audit.Record) *auditv1.ArchiveRun {
	if r == nil {
		return nil
	}
	from, _ := strconv.ParseInt(r.Detail["from"], 10, 64)
	to, _ := strconv.ParseInt(r.Detail["to"], 10, 64)
	return &auditv1.ArchiveRun{Time: timestamppb.New(r.Time), Reason: r.Reason, Actor: r.Actor, From: from, To: to, File: r.Detail["file"],
		Seq: r.Seq}
}
