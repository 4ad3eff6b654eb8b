package audit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A witness keeps the latest signed checkpoint of the log outside the
// database, as Certificate Transparency and Go's checksum database
// clients keep the latest signed tree head: someone who can write the
// database can remove the end of the log together with the checkpoints
// that cover it, and Verify then finds a whole, shorter log; the witness
// still holds a checkpoint the log must extend. Two keep one: the audit
// component (a file in its data directory, Witness) and every
// "uias ctl audit verify" (a file beside its token).

// ReadWitnessFile reads the signed checkpoint kept in the file path and
// checks its signature with known (the log origin's keys). It returns nil
// without an error when there is no such file.
func ReadWitnessFile(path, origin string, known note.Verifiers) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the witness file: %w", err)
	}
	c, err := OpenCheckpoint(b, origin, known)
	if err != nil {
		return nil, fmt.Errorf("the witness file %s does not hold a checkpoint of log %q signed by its keys: %w", path, origin, err)
	}
	return &c, nil
}

// WriteWitnessFile writes the signed checkpoint c to the file path (mode
// 0600, its directory made 0700 when missing): to a temporary file in the
// same directory, synced, then renamed over path, so that a crash leaves
// the old checkpoint or the new one, never a part.
func WriteWitnessFile(path string, c Checkpoint) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("writing the witness file: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("writing the witness file: %w", err)
	}
	tmp := f.Name()
	defer func() { _ = os.Remove(tmp) }() // no-op after the rename
	err = f.Chmod(0o600)
	if err == nil {
		_, err = f.Write(c.Note)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("writing the witness file: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // the rename itself durable, where the platform allows
		_ = d.Close()
	}
	return nil
}

// CheckExtends checks that the signed checkpoint latest extends the
// checkpoint old a witness kept: not smaller, the same root at the same
// size, else proof (tlog's consistency proof from old.Size to latest.Size)
// checks. Both signatures are checked by the caller. It returns nil when
// latest extends old, else the problem in words for a person.
func CheckExtends(old, latest Checkpoint, proof tlog.TreeProof) *Problem {
	switch {
	case latest.Size < old.Size:
		return &Problem{Seq: latest.Size, Checkpoint: old.Size, What: fmt.Sprintf(
			"records %d to %d are missing: the log's latest checkpoint has size %d, but a checkpoint of size %d signed on %s was verified before (log cut off)",
			latest.Size, old.Size-1, latest.Size, old.Size, old.Time.Format("2006-01-02 15:04:05Z"))}
	case latest.Size == old.Size && latest.Root != old.Root:
		return &Problem{Seq: -1, Checkpoint: old.Size, What: fmt.Sprintf(
			"the log's checkpoint of size %d has another root than the one verified before: the log was rewritten", old.Size)}
	case latest.Size == old.Size:
		return nil
	}
	if err := tlog.CheckTree(proof, latest.Size, latest.Root, old.Size, old.Root); err != nil {
		return &Problem{Seq: -1, Checkpoint: old.Size, What: fmt.Sprintf(
			"the log's latest checkpoint (size %d) does not extend the checkpoint of size %d verified before: the log was cut off and grew again, or was rewritten (%v)",
			latest.Size, old.Size, err)}
	}
	return nil
}

// Witness is the audit component's witness: the latest checkpoint it
// signed or found at its start, kept in a file outside the database. The
// log must always extend it: Check says where it does not.
type Witness struct {
	path   string
	signer *Signer
	mu     sync.Mutex
	cp     *Checkpoint
}

// OpenWitness reads the witness file path (none yet: an empty witness),
// whose checkpoint must be signed with s's keys.
func OpenWitness(path string, s *Signer) (*Witness, error) {
	known, err := VerifiersFromKeys(s.VerifierKeys())
	if err != nil {
		return nil, err
	}
	cp, err := ReadWitnessFile(path, s.Origin(), known)
	if err != nil {
		return nil, err
	}
	return &Witness{path: path, signer: s, cp: cp}, nil
}

// Path is the witness file.
func (w *Witness) Path() string { return w.path }

// Latest is the checkpoint witnessed (nil: none yet).
func (w *Witness) Latest() *Checkpoint {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cp == nil {
		return nil
	}
	c := *w.cp
	return &c
}

// Check checks that the log in st extends the witnessed checkpoint: it
// holds at least as many records, its stored tree hashes give the
// checkpoint's root at its size, and the checkpoint is stored. It returns
// nil when it does (or nothing is witnessed yet), else the problem. Errors
// are failures to read the store.
func (w *Witness) Check(ctx context.Context, st Store) (*Problem, error) {
	c := w.Latest()
	if c == nil {
		return nil, nil
	}
	return w.check(ctx, st, *c)
}

func (w *Witness) check(ctx context.Context, st Store, c Checkpoint) (*Problem, error) {
	size, err := st.Size(ctx)
	if err != nil {
		return nil, err
	}
	if size < c.Size {
		return &Problem{Seq: size, Checkpoint: c.Size, What: fmt.Sprintf(
			"records %d to %d are missing: the log holds %d records, but its checkpoint of size %d (signed %s) is kept in the witness file %s (log cut off)",
			size, c.Size-1, size, c.Size, c.Time.Format("2006-01-02 15:04:05Z"), w.path)}, nil
	}
	if p := matchStored(ctx, st, c, fmt.Sprintf("the checkpoint of size %d kept in the witness file %s", c.Size, w.path)); p != nil {
		return p, nil
	}
	stored, err := st.CheckpointAt(ctx, c.Size)
	switch {
	case isNotFound(err):
		return &Problem{Seq: -1, Checkpoint: c.Size, What: fmt.Sprintf(
			"the checkpoint of size %d kept in the witness file %s was removed from the database", c.Size, w.path)}, nil
	case err != nil:
		return nil, err
	case stored.Root != c.Root:
		return &Problem{Seq: -1, Checkpoint: c.Size, What: fmt.Sprintf(
			"the database's checkpoint of size %d differs from the one kept in the witness file %s", c.Size, w.path)}, nil
	}
	return nil, nil
}

// matchStored checks that the stored tree hashes give c's root at c's
// size (what names c in the problem).
func matchStored(ctx context.Context, st Store, c Checkpoint, what string) *Problem {
	root, err := tlog.TreeHash(c.Size, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return st.ReadHashes(ctx, idx) }))
	if err != nil {
		return &Problem{Seq: -1, Checkpoint: c.Size, What: fmt.Sprintf(
			"the tree hashes of the first %d records are missing (%v): the log does not extend %s (log cut off or rewritten)", c.Size, err, what)}
	}
	if root != c.Root {
		return &Problem{Seq: -1, Checkpoint: c.Size, What: fmt.Sprintf(
			"the first %d records of the log are not those of %s: the log was rewritten or replaced", c.Size, what)}
	}
	return nil
}

// Advance makes c (a checkpoint of the log in st, signed with the log's
// keys) the witnessed checkpoint when it is larger than the one kept, and
// writes the file. It refuses, with the problem, a c the log does not
// reach (the log no longer extends the witnessed checkpoint, or c is not
// the log's); the witness then keeps the one it had. Errors are failures
// to read the store or to write the file.
func (w *Witness) Advance(ctx context.Context, st Store, c Checkpoint) (*Problem, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cp != nil && c.Size <= w.cp.Size {
		return nil, nil
	}
	if _, err := w.signer.Open(c.Note); err != nil {
		return &Problem{Seq: -1, Checkpoint: c.Size, What: fmt.Sprintf("checkpoint of size %d: %v", c.Size, err)}, nil
	}
	if w.cp != nil {
		if p, err := w.check(ctx, st, *w.cp); p != nil || err != nil {
			return p, err
		}
	}
	if p := matchStored(ctx, st, c, fmt.Sprintf("its checkpoint of size %d", c.Size)); p != nil {
		return p, nil
	}
	if err := WriteWitnessFile(w.path, c); err != nil {
		return nil, err
	}
	w.cp = &c
	return nil, nil
}
