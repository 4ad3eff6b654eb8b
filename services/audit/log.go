package audit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/apierr"
)

// Policy says when the log signs a checkpoint: after Every new records, or
// Interval after the previous one when records came since.
type Policy struct {
	Every    int64
	Interval time.Duration
}

// Log is the audit log: it appends records as leaves of the Merkle tree,
// signs checkpoints and answers proofs.
type Log struct {
	store  Store
	signer *Signer
	policy Policy
	now    func() time.Time
	// published is told of every new checkpoint after it is stored (e.g.
	// to publish it on NATS for witnesses).
	published func(Checkpoint)
	// started stands in for the time of the previous checkpoint when
	// there is none yet.
	started time.Time
	// witness, if any, keeps the latest checkpoint outside the store;
	// Verify checks that the log extends it.
	witness *Witness
	// archiving makes one archive pass at a time in this process
	// (retention's and an auditor's): two would write the same file, one
	// over the other's, and record a digest the file no longer has.
	archiving sync.Mutex
}

// LogOptions configure NewLog.
type LogOptions struct {
	Policy Policy
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// OnCheckpoint is called with every new checkpoint once it is stored.
	OnCheckpoint func(Checkpoint)
	// Witness, if not nil, keeps the latest checkpoint outside the store
	// (the caller advances it); Verify also checks that the log extends
	// it.
	Witness *Witness
}

// NewLog returns the log kept in st, signing with s.
func NewLog(st Store, s *Signer, o LogOptions) *Log {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Policy.Every <= 0 {
		o.Policy.Every = 1000
	}
	if o.Policy.Interval <= 0 {
		o.Policy.Interval = 10 * time.Second
	}
	if o.OnCheckpoint == nil {
		o.OnCheckpoint = func(Checkpoint) {}
	}
	return &Log{store: st, signer: s, policy: o.Policy, now: o.Now, published: o.OnCheckpoint, started: o.Now(),
		witness: o.Witness}
}

// Witness is the log's witness (nil when it has none).
func (l *Log) Witness() *Witness { return l.witness }

// Signer is the log's checkpoint signer.
func (l *Log) Signer() *Signer { return l.signer }

// Store is the log's store.
func (l *Log) Store() Store { return l.store }

// AppendResult says what Append did.
type AppendResult struct {
	Added      int         // records stored
	Duplicates int         // records whose event id was already stored (or repeated in the batch)
	Size       int64       // the log's size afterwards
	Checkpoint *Checkpoint // the checkpoint signed with them, if one was due
}

// Append adds recs (in order) to the log in one transaction, skipping
// those whose event id is already stored: each event is stored exactly
// once however often it is delivered. Their tree hashes are written with
// them, and a checkpoint when one is due.
func (l *Log) Append(ctx context.Context, recs []Record) (AppendResult, error) {
	var res AppendResult
	err := l.store.InAppend(ctx, func(tx AppendTx) error {
		var err error
		res, err = l.appendIn(ctx, tx, recs)
		return err
	})
	if err != nil {
		return AppendResult{}, err
	}
	if res.Checkpoint != nil {
		l.published(*res.Checkpoint)
	}
	return res, nil
}

// appendIn is Append within the transaction tx. The batch's tree hashes
// are computed in memory: one read of the stored hashes the new records
// build on (the roots of the complete subtrees of the log so far, at most
// one per bit of its size), then tlog's hashes record after record with
// the batch's own hashes at hand; the store writes them with the records.
func (l *Log) appendIn(ctx context.Context, tx AppendTx, recs []Record) (AppendResult, error) {
	res := AppendResult{}
	size, err := tx.Size(ctx)
	if err != nil {
		return res, err
	}
	ids := make([]string, len(recs))
	for i := range recs {
		ids[i] = recs[i].EventID
	}
	known, err := tx.Known(ctx, ids)
	if err != nil {
		return res, err
	}
	add := make([]Record, 0, len(recs))
	for _, r := range recs {
		if known[r.EventID] {
			res.Duplicates++
			continue
		}
		known[r.EventID] = true
		r.Seq = size + int64(len(add))
		if r.DurationMS == 0 {
			// -0 becomes 0: SQLite stores -0 as 0, so a leaf saying -0
			// never matched the record read back (Verify reported it as
			// changed); both are "no time", and the leaf now says 0
			r.DurationMS = 0
		}
		add = append(add, r)
	}
	mem, err := newBatchHashes(ctx, tx, size, int64(len(add)))
	if err != nil {
		return res, err
	}
	// the leaf hashes in parallel (the seq is part of the leaf), then the
	// tree in order
	leaves := leafHashes(add)
	for i := range add {
		hs, err := tlog.StoredHashesForRecordHash(size+int64(i), leaves[i], mem)
		if err != nil {
			return res, fmt.Errorf("tree hashes of record %d: %w", size+int64(i), err)
		}
		mem.hashes = append(mem.hashes, hs...)
	}
	res.Added, res.Size = len(add), size+int64(len(add))
	if len(add) > 0 {
		if err := tx.Append(ctx, add, mem.first, mem.hashes); err != nil {
			return res, err
		}
	}
	cp, err := l.checkpointIfDue(ctx, tx, res.Size, mem)
	res.Checkpoint = cp
	return res, err
}

// batchHashes is the tree hashes an append needs, in memory: those it
// writes (from index first on) and the roots of the complete subtrees of
// the log before it (read once). Anything else is read from the store.
type batchHashes struct {
	ctx    context.Context
	tx     AppendTx
	first  int64
	hashes []tlog.Hash
	roots  map[int64]tlog.Hash
}

func newBatchHashes(ctx context.Context, tx AppendTx, size, n int64) (*batchHashes, error) {
	b := &batchHashes{ctx: ctx, tx: tx, first: tlog.StoredHashIndex(0, size), roots: map[int64]tlog.Hash{}}
	b.hashes = make([]tlog.Hash, 0, tlog.StoredHashIndex(0, size+n)-b.first)
	var idx []int64
	var lo int64
	for level := 62; level >= 0; level-- {
		if size&(int64(1)<<level) != 0 {
			idx = append(idx, tlog.StoredHashIndex(level, lo>>level))
			lo += int64(1) << level
		}
	}
	if len(idx) == 0 {
		return b, nil
	}
	hs, err := tx.ReadHashes(ctx, idx)
	if err != nil {
		return nil, err
	}
	for i, x := range idx {
		b.roots[x] = hs[i]
	}
	return b, nil
}

// ReadHashes implements tlog.HashReader.
func (b *batchHashes) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	var miss []int64
	for i, x := range idx {
		if j := x - b.first; j >= 0 && j < int64(len(b.hashes)) {
			out[i] = b.hashes[j]
		} else if h, ok := b.roots[x]; ok {
			out[i] = h
		} else {
			miss = append(miss, x)
		}
	}
	if len(miss) == 0 {
		return out, nil
	}
	got, err := b.tx.ReadHashes(b.ctx, miss)
	if err != nil {
		return nil, err
	}
	for i, x := range idx {
		if j := x - b.first; j >= 0 && j < int64(len(b.hashes)) {
			continue
		} else if _, ok := b.roots[x]; ok {
			continue
		}
		out[i], got = got[0], got[1:]
	}
	return out, nil
}

// CheckpointIfDue signs a checkpoint when records came since the latest
// one and Interval has passed (or Every records are waiting). The ingest
// loop calls it when idle.
func (l *Log) CheckpointIfDue(ctx context.Context) (*Checkpoint, error) {
	var cp *Checkpoint
	err := l.store.InAppend(ctx, func(tx AppendTx) error {
		size, err := tx.Size(ctx)
		if err != nil {
			return err
		}
		cp, err = l.checkpointIfDue(ctx, tx, size, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
			return tx.ReadHashes(ctx, idx)
		}))
		return err
	})
	if err != nil {
		return nil, err
	}
	if cp != nil {
		l.published(*cp)
	}
	return cp, nil
}

// checkpointIfDue signs and stores a checkpoint of size when due.
func (l *Log) checkpointIfDue(ctx context.Context, tx AppendTx, size int64, r tlog.HashReader) (*Checkpoint, error) {
	if size == 0 {
		return nil, nil
	}
	last, err := tx.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	var lastSize int64
	lastTime := l.started
	if last != nil {
		lastSize, lastTime = last.Size, last.Time
	}
	now := l.now()
	if size <= lastSize || (size-lastSize < l.policy.Every && now.Before(lastTime.Add(l.policy.Interval))) {
		return nil, nil
	}
	if !l.extendsWitness(size, r) {
		// Never a signed checkpoint of a log that does not extend the one
		// kept in the witness file (its end cut off or rewritten): two
		// signed, inconsistent views of the log. The witness pass reports
		// the problem; signing resumes once the log extends it again
		// (trial11 D1). The records are kept meanwhile.
		return nil, nil
	}
	root, err := tlog.TreeHash(size, r)
	if err != nil {
		return nil, fmt.Errorf("tree hash of size %d: %w", size, err)
	}
	cp, err := l.signer.Sign(size, root, now)
	if err != nil {
		return nil, fmt.Errorf("sign checkpoint: %w", err)
	}
	if err := tx.AddCheckpoint(ctx, cp); err != nil {
		return nil, err
	}
	return &cp, nil
}

// extendsWitness reports whether the log of size (its tree hashes read
// from r) extends the checkpoint kept by the log's witness (true when
// there is none): at least as large, and the same root at its size.
func (l *Log) extendsWitness(size int64, r tlog.HashReader) bool {
	if l.witness == nil {
		return true
	}
	c := l.witness.Latest()
	if c == nil {
		return true
	}
	if size < c.Size {
		return false
	}
	root, err := tlog.TreeHash(c.Size, r)
	return err == nil && root == c.Root
}

// storeReader is the store as a tlog.HashReader.
func (l *Log) storeReader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return l.store.ReadHashes(ctx, idx) })
}

// Latest returns the latest checkpoint (errNotCheckpointed if none).
func (l *Log) Latest(ctx context.Context) (*Checkpoint, error) {
	cp, err := l.store.LatestCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	if cp == nil {
		return nil, errNotCheckpointed
	}
	return cp, nil
}

// checkpoint returns the checkpoint of size, or the latest when size is 0.
func (l *Log) checkpoint(ctx context.Context, size int64) (*Checkpoint, error) {
	if size == 0 {
		return l.Latest(ctx)
	}
	cp, err := l.store.CheckpointAt(ctx, size)
	if isNotFound(err) {
		return nil, errNotCheckpointed.WithMessage(fmt.Sprintf("no checkpoint of size %d: a size is that of a signed checkpoint "+
			"(one every audit.checkpoint_interval; uias ctl audit checkpoint shows the latest), not any record count", size))
	}
	return cp, err
}

// Inclusion is the proof that a record is in the tree of a checkpoint.
type Inclusion struct {
	Record     *Record
	LeafHash   tlog.Hash
	Proof      tlog.RecordProof
	Checkpoint *Checkpoint
}

// ProveInclusion proves that record seq is in the tree of the checkpoint
// of size (0: the latest checkpoint).
func (l *Log) ProveInclusion(ctx context.Context, seq, size int64) (*Inclusion, error) {
	if seq < 0 || size < 0 {
		return nil, errBadRange
	}
	cp, err := l.checkpoint(ctx, size)
	if err != nil {
		return nil, err
	}
	if seq >= cp.Size {
		if size == 0 {
			if n, err := l.store.Size(ctx); err == nil && seq >= n {
				return nil, errBadRange.WithMessage(fmt.Sprintf("there is no record %d: the log has %d records (0 to %d)", seq, n, n-1))
			}
			return nil, errNotCheckpointed.WithMessage(fmt.Sprintf("record %d is not in the latest checkpoint (size %d) yet", seq, cp.Size))
		}
		return nil, errBadRange.WithMessage(fmt.Sprintf("record %d is not in a tree of size %d", seq, cp.Size))
	}
	rec, err := l.store.GetRecord(ctx, seq)
	if isNotFound(err) {
		if pruned, perr := l.store.Pruned(ctx); perr == nil && seq < pruned {
			return nil, apierr.New(apierr.NotFound, ReasonArchived, fmt.Sprintf("record %d was backed up and removed from the "+
				"database (records 0 to %d are in archive files of audit.archive_dir): check it in its file with uias ctl "+
				"audit verify --archive FILE", seq, pruned-1))
		}
	}
	if err != nil {
		return nil, err
	}
	p, err := tlog.ProveRecord(cp.Size, seq, l.storeReader(ctx))
	if err != nil {
		return nil, err
	}
	return &Inclusion{Record: rec, LeafHash: rec.LeafHash(), Proof: p, Checkpoint: cp}, nil
}

// Consistency is the proof that the tree of New extends the tree of Old.
type Consistency struct {
	Old, New *Checkpoint
	Proof    tlog.TreeProof
}

// ProveConsistency proves that the checkpoint of newSize (0: the latest)
// extends the one of oldSize.
func (l *Log) ProveConsistency(ctx context.Context, oldSize, newSize int64) (*Consistency, error) {
	if oldSize <= 0 || newSize < 0 || (newSize != 0 && oldSize > newSize) {
		return nil, errBadRange
	}
	nw, err := l.checkpoint(ctx, newSize)
	if err != nil {
		return nil, err
	}
	if oldSize > nw.Size {
		return nil, errBadRange.WithMessage(fmt.Sprintf("old size %d exceeds the new size %d", oldSize, nw.Size))
	}
	old, err := l.checkpoint(ctx, oldSize)
	if err != nil {
		return nil, err
	}
	p, err := tlog.ProveTree(nw.Size, old.Size, l.storeReader(ctx))
	if err != nil {
		return nil, err
	}
	return &Consistency{Old: old, New: nw, Proof: p}, nil
}

// CheckpointAt returns the checkpoint of size.
func (l *Log) CheckpointAt(ctx context.Context, size int64) (*Checkpoint, error) {
	if size <= 0 {
		return nil, errBadRange
	}
	return l.checkpoint(ctx, size)
}

// Verify checks the whole stored log with the log's own keys (see
// Verify), and that it extends the checkpoint its witness keeps: a log cut
// off together with the checkpoints that covered its end verifies whole
// by itself, but not against the witness.
func (l *Log) Verify(ctx context.Context) (*Report, error) {
	known, err := VerifiersFromKeys(l.signer.VerifierKeys())
	if err != nil {
		return nil, err
	}
	rep, err := Verify(ctx, l.store, l.signer.Origin(), known)
	if err != nil || !rep.OK() || l.witness == nil {
		return rep, err
	}
	p, err := l.witness.Check(ctx, l.store)
	if err != nil {
		return nil, err
	}
	rep.Problem = p
	return rep, nil
}
