package audit

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/bits"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/apierr"
)

// ArchiveFormat names the archive file format: one JSON header line, then
// the archived records' leaves (the canonical JSON the tree hashes,
// Record.LeafData), one per line, in log order.
const ArchiveFormat = "uias-audit-archive/1"

// ArchiveHeader is the first line of an archive: which records it holds,
// the signed checkpoint they verify against, and the hashes of the parts
// of that checkpoint's tree outside the archived range (so the root can be
// recomputed from the archived records alone).
type ArchiveHeader struct {
	Format string `json:"format"`
	Origin string `json:"origin"`
	// From and To: the records [From, To) of the log.
	From int64 `json:"from"`
	To   int64 `json:"to"`
	// Checkpoint is the signed note of a checkpoint of size >= To.
	Checkpoint string `json:"checkpoint"`
	// VerifierKeys are the log's verifier keys when the archive was made
	// (pin them instead: uias ctl audit verify --archive --verifier-key).
	VerifierKeys []string `json:"verifier_keys"`
	// Outside are the hashes of the subtrees of the checkpoint's tree that
	// lie wholly outside [From, To), as the RFC 6962 recursion meets them.
	Outside []SubtreeHash `json:"outside"`
	Created time.Time     `json:"created"`
}

// SubtreeHash is the hash of the leaves [Lo, Hi) of a tree.
type SubtreeHash struct {
	Lo   int64  `json:"lo"`
	Hi   int64  `json:"hi"`
	Hash []byte `json:"hash"`
}

// split is the RFC 6962 split of n > 1 leaves: the largest power of two
// smaller than n.
func split(n int64) int64 { return int64(1) << (63 - bits.LeadingZeros64(uint64(n-1))) }

// rangeRoot computes the RFC 6962 hash of the leaves [lo, hi) of a tree:
// subtrees inside [from, to) from the leaves (leaf), those wholly outside
// from outside.
func rangeRoot(lo, hi, from, to int64, leaf func(i int64) (tlog.Hash, error), outside func(lo, hi int64) (tlog.Hash, error)) (tlog.Hash, error) {
	if hi <= from || lo >= to {
		return outside(lo, hi)
	}
	if hi-lo == 1 {
		return leaf(lo)
	}
	k := split(hi - lo)
	l, err := rangeRoot(lo, lo+k, from, to, leaf, outside)
	if err != nil {
		return tlog.Hash{}, err
	}
	r, err := rangeRoot(lo+k, hi, from, to, leaf, outside)
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.NodeHash(l, r), nil
}

// storedSubtree is the hash of leaves [lo, hi) of the stored tree.
func storedSubtree(ctx context.Context, st Store, lo, hi int64) (tlog.Hash, error) {
	n := hi - lo
	if n&(n-1) == 0 && lo%n == 0 {
		level := bits.TrailingZeros64(uint64(n))
		hs, err := st.ReadHashes(ctx, []int64{tlog.StoredHashIndex(level, lo>>level)})
		if err != nil {
			return tlog.Hash{}, err
		}
		return hs[0], nil
	}
	k := split(n)
	l, err := storedSubtree(ctx, st, lo, lo+k)
	if err != nil {
		return tlog.Hash{}, err
	}
	r, err := storedSubtree(ctx, st, lo+k, hi)
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.NodeHash(l, r), nil
}

// ErrArchiveExists: an archive of the range is already there.
var ErrArchiveExists = errors.New("archive: a file of this range exists")

// ArchiveResult describes an archive file written.
type ArchiveResult struct {
	File           string
	SHA256         string
	From, To       int64
	CheckpointSize int64
}

// WriteArchive writes the records [from, to) of the log, with the
// checkpoint cp (cp.Size >= to) and what verifies them against it, to a new
// file in dir (written to a temporary name, synced, then renamed). It
// refuses (and writes nothing) when the records do not match the
// checkpoint: tampered records are never archived and removed.
// An archive of the same range already in dir is ErrArchiveExists unless
// replace is set. The file is named audit-<origin>-<from>-<to>.jsonl.
func (l *Log) WriteArchive(ctx context.Context, dir string, from, to int64, cp *Checkpoint, now time.Time, replace bool) (*ArchiveResult, error) {
	return l.writeArchive(ctx, dir, "", from, to, cp, now, replace)
}

// archiveName is the file name of the archive of [from, to) of the log
// origin: audit-<origin>-<from>-<to><tag>.jsonl. The files of retention
// and of removals have no tag (one per range: a range is removed once);
// a backup's tag is ".backup-<time>", so that backups never stand in the
// way of the removal of the same range, nor of each other.
func archiveName(origin string, from, to int64, tag string) string {
	return fmt.Sprintf("audit-%s-%012d-%012d%s.jsonl", strings.NewReplacer("/", "_").Replace(origin), from, to, tag)
}

// writeArchive is WriteArchive to the file archiveName(tag).
func (l *Log) writeArchive(ctx context.Context, dir, tag string, from, to int64, cp *Checkpoint, now time.Time, replace bool) (*ArchiveResult, error) {
	if from < 0 || to <= from || cp == nil || cp.Size < to {
		return nil, errBadRange
	}
	h := ArchiveHeader{Format: ArchiveFormat, Origin: l.signer.Origin(), From: from, To: to, Checkpoint: string(cp.Note),
		VerifierKeys: l.signer.VerifierKeys(), Created: now.UTC()}
	// the outside hashes, from the stored tree
	if _, err := rangeRoot(0, cp.Size, from, to, func(int64) (tlog.Hash, error) { return tlog.Hash{}, nil },
		func(lo, hi int64) (tlog.Hash, error) {
			sh, err := storedSubtree(ctx, l.store, lo, hi)
			if err != nil {
				return sh, err
			}
			h.Outside = append(h.Outside, SubtreeHash{Lo: lo, Hi: hi, Hash: sh[:]})
			return sh, nil
		}); err != nil {
		return nil, fmt.Errorf("archive: tree hashes: %w", err)
	}
	return writeArchiveFile(dir, archiveName(h.Origin, from, to, tag), &h, cp, replace,
		func(fn func(r *Record) error) error { return l.store.ScanRecords(ctx, from, fn) })
}

// writeArchiveFile writes the archive of h (the records [h.From, h.To)
// that scan hands over from h.From on, in order) as name in dir, checking
// them against cp with h.Outside first: see WriteArchive.
func writeArchiveFile(dir, name string, h *ArchiveHeader, cp *Checkpoint, replace bool, scan func(fn func(r *Record) error) error) (*ArchiveResult, error) {
	from, to := h.From, h.To
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, errArchiveDir(err)
	}
	final := filepath.Join(dir, name)
	f, err := os.CreateTemp(dir, "."+name+".*")
	if err != nil {
		return nil, errArchiveDir(err)
	}
	ok := false
	defer func() {
		if !ok {
			f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	sum := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, sum), 1<<20)
	hb, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	_, _ = w.Write(hb) // a bufio.Writer keeps its first error: Flush returns it
	_ = w.WriteByte('\n')
	leaves := make([]tlog.Hash, 0, to-from)
	next := from
	errDone := errors.New("done")
	err = scan(func(r *Record) error {
		if r.Seq >= to {
			return errDone
		}
		if r.Seq != next {
			return errLogDamaged(fmt.Sprintf("record %d is missing: run uias ctl audit verify; nothing archived", next))
		}
		d := r.LeafData()
		leaves = append(leaves, tlog.RecordHash(d))
		_, _ = w.Write(d)
		_ = w.WriteByte('\n')
		next++
		return nil
	})
	if _, ok := apierr.As(err); ok {
		return nil, err
	}
	if err != nil && !errors.Is(err, errDone) {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if next != to {
		return nil, errLogDamaged(fmt.Sprintf("records %d to %d are missing: run uias ctl audit verify; nothing archived", next, to-1))
	}
	root, err := rangeRoot(0, cp.Size, from, to, func(i int64) (tlog.Hash, error) { return leaves[i-from], nil },
		func(lo, hi int64) (tlog.Hash, error) { return outsideHash(h.Outside, lo, hi) })
	if err != nil {
		return nil, err
	}
	if root != cp.Root {
		return nil, errLogDamaged(fmt.Sprintf("records %d to %d do not match the checkpoint of size %d: run uias ctl audit verify; nothing archived",
			from, to-1, cp.Size))
	}
	if err := w.Flush(); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("archive: %w", err)
	}
	if replace {
		err = os.Rename(f.Name(), final)
	} else if err = os.Link(f.Name(), final); err == nil {
		err = os.Remove(f.Name())
	}
	switch {
	case errors.Is(err, os.ErrExist):
		return nil, ErrArchiveExists
	case err != nil:
		return nil, fmt.Errorf("archive: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return &ArchiveResult{File: final, SHA256: hex.EncodeToString(sum.Sum(nil)), From: from, To: to, CheckpointSize: cp.Size}, nil
}

func outsideHash(hs []SubtreeHash, lo, hi int64) (tlog.Hash, error) {
	for _, s := range hs {
		if s.Lo == lo && s.Hi == hi && len(s.Hash) == len(tlog.Hash{}) {
			return tlog.Hash(s.Hash), nil
		}
	}
	return tlog.Hash{}, fmt.Errorf("the archive lacks the hash of leaves %d to %d", lo, hi-1)
}

// ArchiveReport is the outcome of VerifyArchive.
type ArchiveReport struct {
	Header  ArchiveHeader
	Records int64 // records read and checked in order
	// Problem is the first thing found wrong (nil: every record of the
	// archive is in the tree of its signed checkpoint).
	Problem *Problem
}

// VerifyArchive checks an archive offline: the checkpoint's signature with
// known (nil: the keys the archive names, which proves less), that it holds
// the records From..To-1 in order, and that they with the archive's outside
// hashes give the checkpoint's root. Errors are unreadable files, not
// findings.
func VerifyArchive(r io.Reader, known note.Verifiers) (*ArchiveReport, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	line, err := br.ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	rep := &ArchiveReport{}
	if err := json.Unmarshal(line, &rep.Header); err != nil || rep.Header.Format != ArchiveFormat {
		return nil, fmt.Errorf("not an audit archive (%s)", ArchiveFormat)
	}
	h := rep.Header
	if known == nil {
		if known, err = VerifiersFromKeys(h.VerifierKeys); err != nil {
			return nil, fmt.Errorf("archive verifier keys: %w", err)
		}
	}
	cp, err := OpenCheckpoint([]byte(h.Checkpoint), h.Origin, known)
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		// Signed, but by none of the keys given: a key not pinned (or
		// another log's archive), not a record changed.
		var by []string
		for _, sig := range unverified.Note.UnverifiedSigs {
			by = append(by, fmt.Sprintf("%s+%08x", sig.Name, sig.Hash))
		}
		rep.Problem = &Problem{Seq: -1, Unverified: true, What: fmt.Sprintf("the archive's checkpoint is signed by %s, none of the verifier keys given: "+
			"pin the key that signs this log's checkpoints (the one whose name and hash those are), or the archive is not of this log",
			strings.Join(by, ", "))}
		return rep, nil
	}
	if err != nil {
		rep.Problem = &Problem{Seq: -1, What: fmt.Sprintf("the archive's checkpoint: %v", err)}
		return rep, nil
	}
	if h.From < 0 || h.To <= h.From || cp.Size < h.To {
		rep.Problem = &Problem{Seq: -1, What: fmt.Sprintf("the archive's range %d to %d is not in its checkpoint of size %d", h.From, h.To, cp.Size)}
		return rep, nil
	}
	leaves := make([]tlog.Hash, 0, h.To-h.From)
	next := h.From
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 {
			d := strings.TrimSuffix(string(line), "\n")
			var l struct {
				Seq *int64 `json:"seq"`
			}
			if json.Unmarshal([]byte(d), &l) != nil || l.Seq == nil {
				rep.Problem = &Problem{Seq: next, What: fmt.Sprintf("line %d of the archive is not a record (record %d expected)", next-h.From+2, next)}
				return rep, nil //nolint:nilerr // a line that is not a record is the finding, reported in rep
			}
			switch {
			case next >= h.To:
				rep.Problem = &Problem{Seq: *l.Seq, What: fmt.Sprintf("record %d is beyond the archive's range (inserted)", *l.Seq)}
				return rep, nil
			case *l.Seq != next:
				rep.Problem = &Problem{Seq: next, What: fmt.Sprintf("record %d is missing or moved (found record %d in its place)", next, *l.Seq)}
				return rep, nil
			}
			leaves = append(leaves, tlog.RecordHash([]byte(d)))
			next++
			rep.Records++
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if next != h.To {
		rep.Problem = &Problem{Seq: next, What: fmt.Sprintf("records %d to %d are missing (archive cut off)", next, h.To-1)}
		return rep, nil
	}
	root, err := rangeRoot(0, cp.Size, h.From, h.To, func(i int64) (tlog.Hash, error) { return leaves[i-h.From], nil },
		func(lo, hi int64) (tlog.Hash, error) { return outsideHash(h.Outside, lo, hi) })
	if err != nil {
		rep.Problem = &Problem{Seq: -1, What: err.Error()}
		return rep, nil //nolint:nilerr // a range the header cannot prove is the finding, reported in rep
	}
	if root != cp.Root {
		// (an archive holds no tree hashes of its own: which record
		// changed cannot be told, only that one did; trial11 D3)
		rep.Problem = &Problem{Seq: -1, Checkpoint: cp.Size, What: fmt.Sprintf(
			"records %d to %d do not match the signed checkpoint of size %d: one of them was changed (an archive cannot tell which: "+
				"compare it with another copy)", h.From, h.To-1, cp.Size)}
	}
	return rep, nil
}

// Reasons of archiving's refusals.
const (
	ReasonArchiveUnwritable = "AUDIT_ARCHIVE_UNWRITABLE"
	ReasonLogDamaged        = "AUDIT_LOG_DAMAGED"
)

func init() {
	apierr.Register(
		apierr.Reason{Name: ReasonArchiveUnwritable, Code: apierr.FailedPrecondition,
			Doc: "Audit backup or removal: the archive directory (audit.archive_dir) cannot be created or written on the server; nothing was archived or removed. The message says why (e.g. permission denied, no space)."},
		apierr.Reason{Name: ReasonLogDamaged, Code: apierr.FailedPrecondition,
			Doc: "Audit backup or removal: records of the range are missing or do not match the signed checkpoint (altered in the database); nothing was archived or removed. Run uias ctl audit verify."},
	)
}

// errArchiveDir refuses an archive whose directory cannot be written,
// with the system's reason (not the path).
func errArchiveDir(err error) error {
	why := err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		why = pe.Err.Error()
	}
	return apierr.Wrap(err, apierr.FailedPrecondition, ReasonArchiveUnwritable,
		"the archive directory (audit.archive_dir) cannot be written on the server ("+why+"): nothing archived or removed")
}

// errLogDamaged refuses an archive of records that are missing or do not
// match their checkpoint.
func errLogDamaged(msg string) error {
	return apierr.New(apierr.FailedPrecondition, ReasonLogDamaged, msg)
}
