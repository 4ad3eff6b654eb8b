package audit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"strconv"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Report is the outcome of Verify.
type Report struct {
	// Records is the number of records checked (read in order until the
	// first problem).
	Records int64
	// Checkpoints is the number of checkpoints whose signature and root
	// matched the records.
	Checkpoints int
	// Signed is the size of the latest checkpoint that matched; records
	// beyond it are not signed yet (they will be at the next checkpoint).
	Signed int64
	// Archived is the number of leading records archived and removed
	// (retention): their stored tree hashes are checked against the
	// checkpoints instead; the records, in their archive files.
	Archived int64
	// Kept is the number of records among the archived ones that stay
	// stored (the records of earlier archives, see TypeArchive): each is
	// checked against a signed checkpoint by its inclusion proof.
	Kept int64
	// Problem is the first thing found wrong, nil when the log is whole.
	Problem *Problem
}

// OK reports whether nothing was found wrong.
func (r *Report) OK() bool { return r.Problem == nil }

// Problem says what is wrong and where.
type Problem struct {
	// Seq is the first record found bad (missing, changed, moved,
	// inserted), or -1 when the problem is a checkpoint itself.
	Seq int64
	// Checkpoint is the size of the checkpoint concerned, if any.
	Checkpoint int64
	// What says it in words.
	What string
	// Unverified: no signature could be checked with the keys given (a
	// key not pinned, or another log's): nothing is shown altered.
	Unverified bool
}

func (p *Problem) Error() string { return p.What }

// Verify reads the whole log in order, recomputes every leaf and tree hash
// from the records, and checks them against the stored hashes (which serve
// the proofs) and against every signed checkpoint (whose signatures it
// checks with known). It reports the first record found bad: deleted,
// changed, inserted, moved or cut off. Errors are failures to read the
// store, not findings.
func Verify(ctx context.Context, st Store, origin string, known note.Verifiers) (*Report, error) {
	rep := &Report{}
	var cps []*Checkpoint
	err := st.Checkpoints(ctx, func(c *Checkpoint) error {
		cps = append(cps, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !checkCheckpoints(rep, cps, origin, known) {
		return rep, nil
	}
	size, err := st.Size(ctx)
	if err != nil {
		return nil, err
	}
	pruned, err := st.Pruned(ctx)
	if err != nil {
		return nil, err
	}

	v := &verifier{st: st, cps: cps, size: size, ctx: ctx}
	if pruned > 0 {
		// The archived records are gone; their stored tree hashes stand
		// for them, checked against the checkpoints that cover them (the
		// records themselves: uias ctl audit verify --archive).
		if p, err := v.skipArchived(ctx, pruned, size); p != nil || err != nil {
			rep.Problem, rep.Archived = p, pruned
			return rep, err
		}
		rep.Archived = pruned
		p, kept, err := checkKept(ctx, st, cps, pruned)
		rep.Kept = kept
		if p != nil || err != nil {
			rep.Problem = p
			return rep, err
		}
	}
	errStop := errors.New("stop")
	claimed := pruned == 0 // an archive record of the log says [.., pruned) was archived
	wantTo := strconv.FormatInt(pruned, 10)
	claimedKept, claimSeq := "", int64(-1) // how many records it says stay below pruned
	err = scanChunks(ctx, st, pruned, size, func(c *verifyChunk) error {
		v.cur = c
		for i, seq := range c.seqs {
			if to, ok := c.archiveTo[i]; ok && to == wantTo {
				claimed = true
				if k, ok := c.archiveKept[i]; ok {
					claimedKept, claimSeq = k, seq
				}
			}
			if p := v.record(seq, c.leaves[i]); p != nil {
				rep.Problem = p
				return errStop
			}
		}
		return nil
	})
	rep.Records, rep.Checkpoints, rep.Signed = v.n-pruned, v.matched, v.signed
	switch {
	case errors.Is(err, errStop):
		return rep, nil
	case err != nil:
		return nil, err
	}
	n := v.n
	if size < n {
		// More records than the size read before the scan: appended while
		// the log was read (it is live), unless the size has not grown
		// to them (then they were written behind the log's back).
		now, err := st.Size(ctx)
		if err != nil {
			return nil, err
		}
		if now >= n {
			size = n
		}
	}
	switch {
	case v.next < len(cps):
		rep.Problem = &Problem{Seq: n, Checkpoint: cps[v.next].Size,
			What: fmt.Sprintf("records %d to %d are missing: the checkpoint of size %d covers them (log cut off)", n, cps[v.next].Size-1, cps[v.next].Size)}
	case size > n:
		rep.Problem = &Problem{Seq: n, What: fmt.Sprintf("records %d to %d are missing: the log's size is %d (log cut off)", n, size-1, size)}
	case size < n:
		rep.Problem = &Problem{Seq: size, What: fmt.Sprintf("record %d is beyond the log's size %d (inserted)", size, size)}
	case !claimed:
		rep.Problem = &Problem{Seq: 0, What: fmt.Sprintf("records 0 to %d are gone, but no archive record of the log says they were archived (deleted behind the log's back)", pruned-1)}
	case claimedKept != "" && claimedKept != strconv.FormatInt(rep.Kept, 10):
		rep.Problem = &Problem{Seq: claimSeq, What: fmt.Sprintf("the records of archives below %d are %d, but the record of the removal (%d) says %s stay (one deleted behind the log's back)",
			pruned, rep.Kept, claimSeq, claimedKept)}
	}
	return rep, nil
}

// checkCheckpoints checks the signature of every checkpoint of cps and that
// its signed size and root are the stored ones; false when one fails, with
// rep.Problem that of the first one (in cps's order) that does. The
// signatures are checked on up to GOMAXPROCS goroutines (an Ed25519 check
// each, about a hundred for a log of 100,000 records: the part of Verify
// that would otherwise keep one CPU alone).
func checkCheckpoints(rep *Report, cps []*Checkpoint, origin string, known note.Verifiers) bool {
	problems := make([]*Problem, len(cps))
	check := func(i int) {
		c := cps[i]
		got, err := OpenCheckpoint(c.Note, origin, known)
		switch {
		case err != nil:
			problems[i] = &Problem{Seq: -1, Checkpoint: c.Size, What: fmt.Sprintf("checkpoint of size %d: %v", c.Size, err)}
		case got.Size != c.Size || got.Root != c.Root:
			problems[i] = &Problem{Seq: -1, Checkpoint: c.Size,
				What: fmt.Sprintf("checkpoint of size %d: the stored size or root differs from its signed text", c.Size)}
		}
	}
	workers := min(runtime.GOMAXPROCS(0), len(cps))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(cps); i += workers {
				check(i)
			}
		})
	}
	wg.Wait()
	for _, p := range problems {
		if p != nil {
			rep.Problem = p
			return false
		}
	}
	return true
}

// verifier recomputes the tree record by record (a stack of the roots of
// the complete subtrees, RFC 6962 section 2.1) and compares.
type verifier struct {
	st      Store
	cps     []*Checkpoint
	next    int   // next checkpoint to reach
	n       int64 // records checked
	matched int
	signed  int64
	stack   []node
	cur     *verifyChunk // the chunk of the records being checked
	// size is the log's size read before the scan (the log is live: it
	// may grow meanwhile); ctx reads it again.
	size int64
	ctx  context.Context
}

// grewTo reports whether the log's size, read again, now covers record n
// (the log grew while it was read).
func (v *verifier) grewTo(n int64) bool {
	now, err := v.st.Size(v.ctx)
	return err == nil && now > n
}

type node struct {
	level int
	hash  tlog.Hash
}

// record checks the next stored record, seq, whose leaf hash is leafHash.
func (v *verifier) record(seq int64, leafHash tlog.Hash) *Problem {
	n := v.n
	if seq != n {
		if seq > n && n >= v.size && !v.grewTo(n) {
			// past the end of the log: not a record missing but one
			// written behind its back (trial11 D2)
			return &Problem{Seq: seq, What: fmt.Sprintf("record %d is beyond the end of the log (its size is %d): it was inserted", seq, max(n, v.size))}
		}
		return &Problem{Seq: n, What: fmt.Sprintf("record %d is missing (the next stored record is %d)", n, seq)}
	}
	// the hashes record n adds: its leaf and every subtree it completes
	idx := tlog.StoredHashIndex(0, n)
	h := leafHash
	level := 0
	for i := 0; ; i++ {
		stored, ok := v.cur.stored(idx + int64(i))
		switch {
		case !ok && i == 0:
			return &Problem{Seq: n, What: fmt.Sprintf("record %d has no stored leaf hash: it was inserted behind the log's back, or its hash deleted", n)}
		case !ok:
			return &Problem{Seq: n, What: fmt.Sprintf("tree hashes of record %d are missing", n)}
		case stored != h && i == 0:
			return &Problem{Seq: n, What: fmt.Sprintf("record %d does not match its leaf hash: it was changed, moved or inserted", n)}
		case stored != h:
			return &Problem{Seq: n, What: fmt.Sprintf("the stored tree hashes of record %d were changed", n)}
		}
		if len(v.stack) == 0 || v.stack[len(v.stack)-1].level != level {
			break
		}
		h = tlog.NodeHash(v.stack[len(v.stack)-1].hash, h)
		v.stack = v.stack[:len(v.stack)-1]
		level++
	}
	v.stack = append(v.stack, node{level: level, hash: h})
	v.n++
	for v.next < len(v.cps) && v.cps[v.next].Size == v.n {
		c := v.cps[v.next]
		if v.root() != c.Root {
			return &Problem{Seq: v.signed, Checkpoint: c.Size,
				What: fmt.Sprintf("records %d to %d do not match the checkpoint of size %d: one of them was changed together with its tree hashes", v.signed, c.Size-1, c.Size)}
		}
		v.matched++
		v.signed = c.Size
		v.next++
	}
	return nil
}

// skipArchived starts the verifier after the pruned archived records: it
// checks the stored tree hashes of every checkpoint they cover against the
// checkpoint's root, and takes the roots of the complete subtrees of
// [0, pruned) from the stored hashes.
func (v *verifier) skipArchived(ctx context.Context, pruned, size int64) (*Problem, error) {
	if pruned > size {
		return &Problem{Seq: size, What: fmt.Sprintf("the log says %d records were archived but holds only %d", pruned, size)}, nil
	}
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return v.st.ReadHashes(ctx, idx) })
	for v.next < len(v.cps) && v.cps[v.next].Size <= pruned {
		c := v.cps[v.next]
		root, err := tlog.TreeHash(c.Size, reader)
		if err != nil {
			return &Problem{Seq: 0, Checkpoint: c.Size, What: fmt.Sprintf("stored tree hashes of the archived records are missing: %v", err)}, nil
		}
		if root != c.Root {
			return &Problem{Seq: v.signed, Checkpoint: c.Size, What: fmt.Sprintf(
				"the stored tree hashes of the archived records %d to %d do not match the checkpoint of size %d", v.signed, c.Size-1, c.Size)}, nil
		}
		v.matched++
		v.signed = c.Size
		v.next++
	}
	// complete subtrees of [0, pruned), largest first
	var lo int64
	for level := 62; level >= 0; level-- {
		if pruned&(int64(1)<<level) == 0 {
			continue
		}
		hs, err := v.st.ReadHashes(ctx, []int64{tlog.StoredHashIndex(level, lo>>level)})
		if err != nil {
			return &Problem{Seq: lo, What: fmt.Sprintf("stored tree hashes of the archived records are missing: %v", err)}, nil
		}
		v.stack = append(v.stack, node{level: level, hash: hs[0]})
		lo += int64(1) << level
	}
	v.n = pruned
	return nil, nil
}

// root is the tree hash of the records so far.
func (v *verifier) root() tlog.Hash {
	h := v.stack[len(v.stack)-1].hash
	for i := len(v.stack) - 2; i >= 0; i-- {
		h = tlog.NodeHash(v.stack[i].hash, h)
	}
	return h
}

// checkKept checks the records stored below pruned (the archive records
// that pruning keeps) against the first checkpoint that covers each, by
// the inclusion proof of its leaf hash in that checkpoint's tree (from the
// stored tree hashes, which the checkpoint's signed root vouches for):
// such a record changed, or one inserted there, is a problem. It returns
// how many it checked.
func checkKept(ctx context.Context, st Store, cps []*Checkpoint, pruned int64) (*Problem, int64, error) {
	var p *Problem
	var n int64
	errStop := errors.New("stop")
	reader := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, idx) })
	err := st.ScanRecords(ctx, 0, func(r *Record) error {
		if r.Seq >= pruned {
			return errStop
		}
		i := sort.Search(len(cps), func(i int) bool { return cps[i].Size > r.Seq })
		if i == len(cps) {
			p = &Problem{Seq: r.Seq, What: fmt.Sprintf("record %d is stored among the archived records but no checkpoint covers it (inserted)", r.Seq)}
			return errStop
		}
		c := cps[i]
		proof, err := tlog.ProveRecord(c.Size, r.Seq, reader)
		if err == nil {
			err = tlog.CheckRecord(proof, c.Size, c.Root, r.Seq, r.LeafHash())
		}
		if err != nil {
			p = &Problem{Seq: r.Seq, Checkpoint: c.Size, What: fmt.Sprintf(
				"record %d, kept among the archived records, is not in the checkpoint of size %d: it was changed or inserted (%v)", r.Seq, c.Size, err)}
			return errStop
		}
		n++
		return nil
	})
	if errors.Is(err, errStop) {
		err = nil
	}
	return p, n, err
}
