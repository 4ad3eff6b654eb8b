package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/uias/uias/pkg/apierr"
)

// Retention says which records the log archives and removes.
type Retention struct {
	// Keep is how long records stay (0: forever).
	Keep time.Duration
	// Dir is where archives are written.
	Dir string
	// MaxPerArchive caps the records of one archive file (default 1,000,000).
	MaxPerArchive int64
}

// TypeArchive is the event type of the record the log adds for each
// archive it made (retention, a backup or a removal by the security
// auditor). Records of this type written by the audit component itself are
// never removed from the database (Store's Prune keeps them): the records
// of backups and removals stay queryable.
const TypeArchive = "audit.archive"

// The reasons of an audit.archive record: why the archive was made.
const (
	// ReasonRetention: archived and removed by retention (audit.retention).
	ReasonRetention = "RETENTION"
	// ReasonBackup: archived on demand by the security auditor, not removed.
	ReasonBackup = "BACKUP"
	// ReasonRemovedByAuditor: archived and removed on demand by the
	// security auditor.
	ReasonRemovedByAuditor = "REMOVED_BY_AUDITOR"
)

// IsArchiveRecord reports whether r is a record the log added for an
// archive (type audit.archive, written by the audit component: other
// components cannot publish under its name).
func IsArchiveRecord(r *Record) bool { return r.Type == TypeArchive && r.Component == "audit" }

// removes reports whether the archive record r accounts for records
// removed from the database (all but backups).
func removes(r *Record) bool { return IsArchiveRecord(r) && r.Reason != ReasonBackup }

// archivePass is one archiving of the records older than before, oldest
// first, which ApplyRetention and ArchiveBefore share.
type archivePass struct {
	// after: a backup starts at the first record at or after it (zero:
	// at the oldest stored record).
	after  time.Time
	before time.Time
	dir    string
	max    int64
	// remove: the records are removed once archived (retention, a removal
	// by the auditor); else they stay (a backup).
	remove bool
	reason string
	actor  string
}

// archived is what an archivePass did.
type archived struct {
	files []ArchiveResult
	// unsigned: records older than before are beyond the latest
	// checkpoint, and were left for a later pass.
	unsigned bool
	// signed is the size of the latest checkpoint (0: none).
	signed int64
}

// archiveBefore writes the records older than p.before that the latest
// signed checkpoint covers when it begins, from the oldest still stored, to archive files in
// p.dir (at most p.max records each), and records each archive in the log
// (type audit.archive: range, file name, SHA-256). With p.remove the
// records are removed from the database in the transaction that adds the
// record (the tree hashes stay: later proofs, consistency proofs and
// Verify keep working); without, the file is a backup (its own name, see
// archiveName) and the records stay.
func (l *Log) archiveBefore(ctx context.Context, p archivePass, now time.Time) (archived, error) {
	l.archiving.Lock()
	defer l.archiving.Unlock()
	var out archived
	if p.max <= 0 {
		p.max = 1_000_000
	}
	next := int64(-1) // a backup: the next record to archive
	// bound: the size of the latest checkpoint when the pass began; the
	// pass archives no further, so that it does not chase the checkpoints
	// that its own archive records (and records arriving meanwhile) bring
	bound := int64(-1)
	for ctx.Err() == nil {
		from, err := l.store.Pruned(ctx)
		if err != nil {
			return out, err
		}
		if !p.remove && next >= 0 {
			from = next
		} else if !p.remove && !p.after.IsZero() {
			first, found, err := l.store.FirstAtOrAfter(ctx, from, p.after)
			if err != nil {
				return out, err
			}
			if !found {
				return out, nil
			}
			from = first
		}
		cp, err := l.store.LatestCheckpoint(ctx)
		if err != nil {
			return out, err
		}
		size, err := l.store.Size(ctx)
		if err != nil {
			return out, err
		}
		limit, found, err := l.store.FirstAtOrAfter(ctx, from, p.before)
		if err != nil {
			return out, err
		}
		if !found {
			limit = size
		}
		if cp == nil {
			out.unsigned = limit > from
			return out, nil
		}
		if bound < 0 {
			bound = cp.Size
		}
		out.signed = bound
		out.unsigned = limit > bound
		to := min(limit, bound, from+p.max)
		if to <= from {
			return out, nil
		}
		a, committed, err := l.archiveOne(ctx, p, from, to, cp, now)
		if err != nil {
			return out, err
		}
		if !committed {
			continue // another instance removed them meanwhile
		}
		out.files = append(out.files, *a)
		next = to
	}
	return out, ctx.Err()
}

// archiveOne archives the records [from, to) and records it (see
// archiveBefore); committed is false when another instance removed the
// range first (nothing was recorded).
func (l *Log) archiveOne(ctx context.Context, p archivePass, from, to int64, cp *Checkpoint, now time.Time) (*ArchiveResult, bool, error) {
	now = time.UnixMilli(now.UnixMilli()).UTC()
	eventID := fmt.Sprintf("archive:%d-%d", from, to)
	tag := ""
	if !p.remove {
		stamp := now.Format("20060102T150405.000Z")
		eventID = fmt.Sprintf("backup:%d-%d:%s", from, to, stamp)
		tag = ".backup-" + stamp
	}
	a, err := l.writeArchive(ctx, p.dir, tag, from, to, cp, now, false)
	if errors.Is(err, ErrArchiveExists) {
		if !p.remove {
			return nil, false, fmt.Errorf("archive: a backup of records %d to %d made at %s exists already; try again", from, to-1,
				now.Format(time.RFC3339Nano))
		}
		if pr, err := l.store.Pruned(ctx); err != nil || pr != from {
			return nil, false, err // another instance archived it
		}
		// left by a stop between writing and removing: made again
		a, err = l.writeArchive(ctx, p.dir, tag, from, to, cp, now, true)
	}
	if err != nil {
		return nil, false, err
	}
	actor := p.actor
	if actor == "" {
		actor = "audit"
	}
	rec := Record{EventID: eventID, Type: TypeArchive, Component: "audit", Time: now,
		API: "archive", Actor: actor, Subject: "audit:records", Result: "success", Reason: p.reason,
		Detail: map[string]string{"from": strconv.FormatInt(from, 10), "to": strconv.FormatInt(to, 10),
			"file": filepath.Base(a.File), "sha256": a.SHA256, "checkpoint_size": strconv.FormatInt(cp.Size, 10),
			"before": p.before.UTC().Format(time.RFC3339Nano)}}
	if !p.after.IsZero() {
		// a backup of a period: it leaves the older records unbacked, so
		// it does not answer the backup reminder (ArchiveStatusOf)
		rec.Detail["after"] = p.after.UTC().Format(time.RFC3339Nano)
	}
	var res AppendResult
	raced := false
	err = l.store.InAppend(ctx, func(tx AppendTx) error {
		if p.remove {
			pr, err := tx.Pruned(ctx)
			if err != nil {
				return err
			}
			if pr != from { // another instance archived meanwhile
				raced = true
				return nil
			}
			kept, err := tx.Prune(ctx, to)
			if err != nil {
				return err
			}
			rec.Detail["kept"] = strconv.FormatInt(kept, 10)
		}
		var err error
		res, err = l.appendIn(ctx, tx, []Record{rec})
		return err
	})
	if err != nil || raced {
		return nil, false, err
	}
	if res.Checkpoint != nil {
		l.published(*res.Checkpoint)
	}
	return a, true, nil
}

// ApplyRetention archives (WriteArchive) and then removes the records older
// than now - r.Keep that a checkpoint covers, oldest first, and adds to the
// log one record per archive (type audit.archive, reason RETENTION: range,
// file name, SHA-256) in the transaction that removes them. The tree
// hashes stay: later proofs, consistency proofs and Verify keep working.
// It returns the archives made.
func (l *Log) ApplyRetention(ctx context.Context, r Retention, now time.Time) ([]ArchiveResult, error) {
	if r.Keep <= 0 {
		return nil, nil
	}
	res, err := l.archiveBefore(ctx, archivePass{before: now.Add(-r.Keep), dir: r.Dir, max: r.MaxPerArchive, remove: true,
		reason: ReasonRetention}, now)
	return res.files, err
}

// ArchiveRequest is an archive on demand (ArchiveBefore).
type ArchiveRequest struct {
	// Before: the records older than this are archived (required, not in
	// the future).
	Before time.Time
	// After: a backup of the period [After, Before) (zero: from the oldest
	// stored record); not with Remove.
	After time.Time
	// Remove: the records are removed from the database once archived;
	// else the archive is a backup and they stay.
	Remove bool
	// Actor who asked ("user:<id>"), the archive records' actor.
	Actor string
	// Dir is where archives are written; MaxPerArchive caps the records
	// of one file (default 1,000,000).
	Dir           string
	MaxPerArchive int64
	// MinRemovalAge: a removal of records younger than this is refused
	// (audit.min_removal_age; 0: no floor). A backup is not bound by it.
	MinRemovalAge time.Duration
}

// ReasonRemovalTooRecent refuses a removal of records younger than
// audit.min_removal_age.
const ReasonRemovalTooRecent = "AUDIT_REMOVAL_TOO_RECENT"

func init() {
	apierr.Register(apierr.Reason{Name: ReasonRemovalTooRecent, Code: apierr.FailedPrecondition,
		Doc: "Audit log: a removal (backup --remove) of records younger than audit.min_removal_age (default 4380h, six months, as the Cybersecurity Law art. 21 keeps network logs) is refused; a backup without removal is not."})
}

// ArchiveOutcome says what ArchiveBefore did.
type ArchiveOutcome struct {
	// Archives are the files written, oldest first (none: no stored record
	// older than Before that a checkpoint covers).
	Archives []ArchiveResult
	// From and To: the records [From, To) archived (From == To: none).
	From, To int64
	// Unsigned: records older than Before are not covered by a signed
	// checkpoint yet and were not archived (ask again after the next
	// checkpoint).
	Unsigned bool
	// Signed is the size of the latest checkpoint.
	Signed int64
}

// Records is the number of records archived.
func (o *ArchiveOutcome) Records() int64 { return o.To - o.From }

// ArchiveBefore archives, on demand, the stored records older than
// req.Before that a signed checkpoint covers, from the oldest still stored,
// to files in req.Dir (the format of retention's archives), and adds to
// the log one record per file (type audit.archive, actor req.Actor, reason
// BACKUP, or REMOVED_BY_AUDITOR with req.Remove, when the records are
// removed from the database as by retention). A backup is named apart
// from the archive of a removal, so that it never blocks a later removal
// or retention of the same records. now is the clock.
func (l *Log) ArchiveBefore(ctx context.Context, req ArchiveRequest, now time.Time) (*ArchiveOutcome, error) {
	switch {
	case req.Before.IsZero():
		return nil, apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest,
			"before is required (and after 0001-01-01): the records older than it are archived")
	case req.Before.After(now):
		return nil, apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, fmt.Sprintf(
			"before (%s) is in the future (now %s): only records already written can be archived",
			req.Before.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339)))
	case !req.After.IsZero() && req.Remove:
		return nil, apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest,
			"after is for a backup of a period: a removal always starts at the oldest stored record (the log stays whole after it); "+
				"back the period up without remove, or remove what is older than before").WithMeta(apierr.MetaField, "after")
	case !req.After.IsZero() && !req.After.Before(req.Before):
		return nil, apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest, fmt.Sprintf(
			"after (%s) must be before before (%s): the period is the records from after to before",
			req.After.UTC().Format(time.RFC3339), req.Before.UTC().Format(time.RFC3339))).WithMeta(apierr.MetaField, "after")
	}
	if floor := now.Add(-req.MinRemovalAge); req.Remove && req.MinRemovalAge > 0 && req.Before.After(floor) {
		return nil, apierr.New(apierr.FailedPrecondition, ReasonRemovalTooRecent, fmt.Sprintf(
			"records younger than %s (audit.min_removal_age) may not be removed from the database: remove only those before %s or earlier; "+
				"a backup without removal may reach up to now", fmtAge(req.MinRemovalAge), floor.UTC().Format(time.RFC3339)))
	}
	reason := ReasonBackup
	if req.Remove {
		reason = ReasonRemovedByAuditor
	}
	res, err := l.archiveBefore(ctx, archivePass{after: req.After, before: req.Before, dir: req.Dir, max: req.MaxPerArchive, remove: req.Remove,
		reason: reason, actor: req.Actor}, now)
	out := &ArchiveOutcome{Archives: res.files, Unsigned: res.unsigned, Signed: res.signed}
	if len(res.files) > 0 {
		out.From, out.To = res.files[0].From, res.files[len(res.files)-1].To
	} else if p, perr := l.store.Pruned(ctx); perr == nil {
		out.From, out.To = p, p
	}
	return out, err
}

// ArchiveStatus is when the log was last archived (ArchiveStatusOf).
type ArchiveStatus struct {
	// LastBackup is the latest archive record made on demand by the
	// security auditor (a backup or a removal); nil when there is none.
	LastBackup *Record
	// LastArchive is the latest archive record of any reason (retention
	// included); nil when there is none.
	LastArchive *Record
	// Oldest is the time of the oldest stored record after the archived
	// ones (zero: none).
	Oldest time.Time
	// Pruned is the number of leading records archived and removed.
	Pruned int64
}

// BackupDue reports whether a backup reminder of every is due at now: no
// backup by the security auditor for every, or never one while the
// oldest stored record is older than every. every <= 0: never.
func (s *ArchiveStatus) BackupDue(every time.Duration, now time.Time) bool {
	switch {
	case every <= 0:
		return false
	case s.LastBackup != nil:
		return !now.Before(s.LastBackup.Time.Add(every))
	default:
		return !s.Oldest.IsZero() && !now.Before(s.Oldest.Add(every))
	}
}

// statusPages bounds the archive records ArchiveStatusOf reads (newest
// first) in search of the latest backup: 100 pages of MaxPageSize, about
// eleven years of hourly retention passes.
const statusPages = 100

// ArchiveStatusOf finds the latest archive records of the log (the records
// of archives stay in the database, see TypeArchive).
func (l *Log) ArchiveStatusOf(ctx context.Context) (*ArchiveStatus, error) {
	qs, ok := l.store.(QueryStore)
	if !ok {
		return nil, errors.New("audit store: no queries")
	}
	out := &ArchiveStatus{}
	var err error
	if out.Pruned, err = l.store.Pruned(ctx); err != nil {
		return nil, err
	}
	switch r, err := l.store.GetRecord(ctx, out.Pruned); {
	case err == nil:
		out.Oldest = r.Time
	case !isNotFound(err):
		return nil, err
	}
	q := Query{API: "archive", PageSize: MaxPageSize}
	for range statusPages {
		recs, next, err := qs.QueryRecords(ctx, q)
		if err != nil {
			return nil, err
		}
		for i := range recs {
			r := &recs[i]
			if !IsArchiveRecord(r) {
				continue
			}
			if out.LastArchive == nil {
				out.LastArchive = r
			}
			if (r.Reason == ReasonBackup && r.Detail["after"] == "") || r.Reason == ReasonRemovedByAuditor {
				out.LastBackup = r
				return out, nil
			}
		}
		if next == "" {
			break
		}
		q.PageToken = next
	}
	return out, nil
}

// fmtAge writes a duration of whole days as days ("183 days"), else as Go
// writes it.
func fmtAge(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}
