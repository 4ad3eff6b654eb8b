package audit

import (
	"context"
	"errors"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/store"
	"golang.org/x/mod/sumdb/tlog"
)

// Store errors (store.Classify maps driver errors onto them).
var (
	ErrNotFound    = store.ErrNotFound
	ErrUnavailable = store.ErrUnavailable
	ErrConflict    = store.ErrConflict
)

// AppendTx is the log's write transaction (Store.InAppend): it holds the
// log's write lock, so appends of several instances never interleave, and
// everything written commits together or not at all.
type AppendTx interface {
	// Size is the number of records in the log.
	Size(ctx context.Context) (int64, error)
	// Known returns the ids among ids that are already stored.
	Known(ctx context.Context, ids []string) (map[string]bool, error)
	// ReadHashes returns the stored hashes at the given indexes (see
	// tlog.StoredHashIndex), in order.
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// Append stores recs (their Seq set, consecutive from Size), the
	// tree hashes from index firstHash on, and the new size.
	Append(ctx context.Context, recs []Record, firstHash int64, hashes []tlog.Hash) error
	// LatestCheckpoint returns the checkpoint of the largest size (nil if none).
	LatestCheckpoint(ctx context.Context) (*Checkpoint, error)
	// AddCheckpoint stores a checkpoint.
	AddCheckpoint(ctx context.Context, c Checkpoint) error
	// Pruned is the number of leading records removed (archived).
	Pruned(ctx context.Context) (int64, error)
	// Prune removes the records below seq below (archived), keeping their
	// tree hashes, and sets Pruned to below. The records of archives
	// (IsArchiveRecord) stay: what was archived and removed when stays
	// queryable; Verify checks them by their inclusion proofs. It returns
	// how many records stay below below (the record of the removal says so,
	// and Verify counts them: one deleted is caught).
	Prune(ctx context.Context, below int64) (kept int64, err error)
}

// Store keeps the log: records, tree hashes and checkpoints.
type Store interface {
	// InAppend runs fn in one transaction holding the log's write lock;
	// when fn fails nothing it wrote is kept.
	InAppend(ctx context.Context, fn func(tx AppendTx) error) error
	// Size is the number of records in the log.
	Size(ctx context.Context) (int64, error)
	// ReadHashes returns stored hashes by index (tlog.HashReader).
	ReadHashes(ctx context.Context, indexes []int64) ([]tlog.Hash, error)
	// LatestCheckpoint returns the checkpoint of the largest size (nil if none).
	LatestCheckpoint(ctx context.Context) (*Checkpoint, error)
	// CheckpointAt returns the checkpoint of exactly size (ErrNotFound).
	CheckpointAt(ctx context.Context, size int64) (*Checkpoint, error)
	// Checkpoints calls fn for every checkpoint in increasing size.
	Checkpoints(ctx context.Context, fn func(c *Checkpoint) error) error
	// GetRecord returns the record at seq (ErrNotFound).
	GetRecord(ctx context.Context, seq int64) (*Record, error)
	// ScanRecords calls fn for the records from seq from on, in seq order,
	// as they are stored (nothing is checked).
	ScanRecords(ctx context.Context, from int64, fn func(r *Record) error) error
	// ScanHashes calls fn for at most limit stored hashes from index from
	// on, in index order.
	ScanHashes(ctx context.Context, from int64, limit int, fn func(index int64, h tlog.Hash) error) error
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Pruned is the number of leading records removed (archived): the
	// records start at this seq, but for the archive records kept below
	// it (see AppendTx.Prune).
	Pruned(ctx context.Context) (int64, error)
	// FirstAtOrAfter returns the smallest seq >= from of a record whose
	// time is at or after t (found false when there is none).
	FirstAtOrAfter(ctx context.Context, from int64, t time.Time) (seq int64, found bool, err error)
}

// LeafScanner is a Store that hands Verify a run of records as their
// leaves and stored tree hashes in bulk, without a Record each (optional:
// sqlstore reads a run in one query, which costs a fraction of reading it
// row by row through the driver: on SQLite through an aggregate function
// of its own that takes the columns as stored, on PostgreSQL as one
// string_agg value).
type LeafScanner interface {
	// ScanLeaves calls fn, in seq order, for every record with
	// lo <= seq < hi (hi < 0: to the end) with its seq, its type, its
	// leaf built from its columns as stored (LeafColumns.AppendLeaf; empty
	// when it has none) and its stored tree hashes (tlog's hashes stored
	// with the record, concatenated; nil when there are none). leaf and
	// hashes are valid during the call only. handled is false when the
	// store cannot read this run so (old layout, a value it cannot take
	// apart): what fn was given is void, and Verify reads the run through
	// ScanRecords and ScanHashes.
	ScanLeaves(ctx context.Context, lo, hi int64, fn func(seq int64, typ string, leaf, hashes []byte) error) (handled bool, err error)
}

// Reasons of the audit component's errors.
const (
	ReasonNotCheckpointed = "AUDIT_NOT_CHECKPOINTED"
	ReasonBadRange        = "AUDIT_BAD_RANGE"
	ReasonArchived        = "AUDIT_RECORD_ARCHIVED"
)

var (
	errNotCheckpointed = apierr.New(apierr.FailedPrecondition, ReasonNotCheckpointed,
		"the log has no signed checkpoint covering this yet; try again after the next checkpoint")
	errBadRange = apierr.New(apierr.InvalidArgument, ReasonBadRange, "the sizes or record number are out of range")
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonNotCheckpointed, Code: apierr.FailedPrecondition,
			Doc: "Audit log: no signed checkpoint covers the requested record or tree size yet (checkpoints follow every audit.checkpoint_every records or audit.checkpoint_interval); ask again after the next one."},
		apierr.Reason{Name: ReasonBadRange, Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "Audit log: a record number or tree size is out of range (beyond the log, or an old size larger than the new one)."},
		apierr.Reason{Name: ReasonArchived, Code: apierr.NotFound,
			Doc: "Audit log: the record was backed up to an archive file and removed from the database; check it in the file (uias ctl audit verify --archive FILE)."},
	)
}

func isNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
