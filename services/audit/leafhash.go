package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"math/bits"
	"runtime"
	"runtime/trace"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// Leaf hashes (canonical JSON + SHA-256) are most of the CPU work of
// verifying and much of appending; they do not depend on each other, so
// they are computed in parallel while the log's order-dependent work (the
// tree, the comparisons) stays on one goroutine.

// leafHashes returns the leaf hashes of recs, computed by up to GOMAXPROCS
// goroutines.
func leafHashes(recs []Record) []tlog.Hash {
	out := make([]tlog.Hash, len(recs))
	workers := min(runtime.GOMAXPROCS(0), (len(recs)+63)/64)
	if workers <= 1 {
		buf := make([]byte, 0, 1024)
		for i := range recs {
			out[i], buf = recs[i].leafHashBuf(buf)
		}
		return out
	}
	var wg sync.WaitGroup
	per := (len(recs) + workers - 1) / workers
	for lo := 0; lo < len(recs); lo += per {
		hi := min(lo+per, len(recs))
		wg.Go(func() {
			buf := make([]byte, 0, 1024)
			for i := lo; i < hi; i++ {
				out[i], buf = recs[i].leafHashBuf(buf)
			}
		})
	}
	wg.Wait()
	return out
}

// verifyChunk is the records [lo, hi) of the log (hi < 0: to the end) as
// stored: their seqs and leaf hashes, the detail "to" of the archive
// records among them, and the stored tree hashes from index hashBase on
// (up to the first one missing).
type verifyChunk struct {
	lo, hi    int64
	seqs      []int64
	leaves    []tlog.Hash
	archiveTo map[int]string // index in seqs -> Detail["to"] of a TypeArchive record
	// archiveKept: index in seqs -> Detail["kept"] of such a record (the
	// records kept below "to" when it was written; absent in older logs)
	archiveKept map[int]string
	hashBase    int64
	hashes      []tlog.Hash
	err         error
	done        chan struct{} // closed once the above are set
}

// verifyChunkSize is the most records a reader of scanChunks takes at a
// time; verifyChunkMin the fewest (but for the last chunk).
const (
	verifyChunkSize = 8192
	verifyChunkMin  = 1024
)

// chunkSize is the records of the chunk starting at lo when the log ends
// at size, for workers readers: the largest chunks first, smaller ones
// towards the end (a quarter of what is left per reader), so that the
// readers finish together instead of one reading the last chunk alone.
func chunkSize(lo, size int64, workers int) int64 {
	return min(verifyChunkSize, max(verifyChunkMin, (size-lo)/int64(4*workers)))
}

// scanChunks reads the log from seq from on in chunks of consecutive
// records and calls fn with the chunks in order on the caller's goroutine.
// Each chunk is read (records and stored tree hashes, on a connection of
// its own) and hashed by one of 2*GOMAXPROCS goroutines, of which at most
// GOMAXPROCS read from the store at once: while one waits (for the
// store's allocator lock, a file read), another hashes a chunk already
// read, so that every CPU has work. The last chunk starts at size or
// below and reads to the end. fn returning an error stops everything;
// that error is returned. Both show as regions in a runtime trace (uias
// bench --trace).
func scanChunks(ctx context.Context, st Store, from, size int64, fn func(c *verifyChunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	procs := max(1, runtime.GOMAXPROCS(0))
	workers := 2 * procs
	reading := make(chan struct{}, procs) // a token per reader in the store
	jobs := make(chan *verifyChunk, workers)
	ordered := make(chan *verifyChunk, 2*workers) // in log order; chunks read ahead of the one awaited
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 0, 1024)
			for c := range jobs {
				r := trace.StartRegion(ctx, "audit verify: read and hash a chunk")
				buf = c.read(ctx, st, reading, buf)
				r.End()
				close(c.done)
			}
		})
	}
	go func() {
		defer close(ordered)
		defer close(jobs)
		for lo := from; ; {
			c := &verifyChunk{lo: lo, hi: lo + chunkSize(lo, size, procs), done: make(chan struct{})}
			last := c.hi >= size
			if last {
				c.hi = -1
			}
			for _, ch := range []chan *verifyChunk{ordered, jobs} {
				select {
				case ch <- c:
				case <-ctx.Done():
					return
				}
			}
			if last {
				return
			}
			lo = c.hi
		}
	}()
	var err error
	for c := range ordered {
		if err != nil {
			continue // drain
		}
		r := trace.StartRegion(ctx, "audit verify: wait for the next chunk")
		select {
		case <-c.done:
		case <-ctx.Done():
			err = ctx.Err()
			cancel()
			r.End()
			continue
		}
		r.End()
		if err = c.err; err == nil {
			err = fn(c)
		}
		if err != nil {
			cancel()
		}
	}
	wg.Wait()
	return err
}

var errChunkEnd = errors.New("end of chunk")

// read fills the chunk from the store, using buf to encode leaves; it
// returns buf for the next chunk. It reads from the store holding a token
// of reading (see scanChunks), given back once the records are read.
func (c *verifyChunk) read(ctx context.Context, st Store, reading chan struct{}, buf []byte) []byte {
	select {
	case reading <- struct{}{}:
	case <-ctx.Done():
		c.err = ctx.Err()
		return buf
	}
	held := true
	release := func() {
		if held {
			held = false
			<-reading
		}
	}
	defer release()
	if ls, ok := st.(LeafScanner); ok {
		handled, b := c.readLeaves(ctx, st, ls, release, buf)
		if buf = b; handled {
			return buf
		}
		select { // declined: read it row by row, again as a reader
		case reading <- struct{}{}:
			held = true
		case <-ctx.Done():
			c.err = ctx.Err()
			return buf
		}
	}
	var recs []*Record
	err := st.ScanRecords(ctx, c.lo, func(r *Record) error {
		if c.hi >= 0 && r.Seq >= c.hi {
			return errChunkEnd
		}
		recs = append(recs, r)
		return nil
	})
	release()
	if err != nil && !errors.Is(err, errChunkEnd) {
		c.err = err
		return buf
	}
	c.seqs = make([]int64, len(recs))
	c.leaves = make([]tlog.Hash, len(recs))
	for i, r := range recs {
		c.seqs[i] = r.Seq
		c.leaves[i], buf = r.leafHashBuf(buf)
		c.noteArchive(i, r)
	}
	// the stored hashes of the records the chunk should hold (or holds,
	// when the last one goes beyond)
	end := c.hi
	if n := len(recs); end < 0 {
		end = c.lo
		if n > 0 {
			end = max(end, recs[n-1].Seq+1)
		}
	}
	c.hashBase = tlog.StoredHashIndex(0, c.lo)
	if count := tlog.StoredHashIndex(0, end) - c.hashBase; count > 0 {
		c.hashes = make([]tlog.Hash, 0, count)
		want := c.hashBase
		err = st.ScanHashes(ctx, c.hashBase, int(count), func(i int64, h tlog.Hash) error {
			if i != want {
				return errChunkEnd // a gap: the rest counts as missing
			}
			c.hashes = append(c.hashes, h)
			want++
			return nil
		})
		if err != nil && !errors.Is(err, errChunkEnd) {
			c.err = err
		}
	}
	return buf
}

// noteArchive remembers the detail "to" of record i of the chunk, r, when
// it is the record of an archive whose records were removed (Verify checks
// that the removed records were archived; a backup removes nothing).
func (c *verifyChunk) noteArchive(i int, r *Record) {
	if !removes(r) {
		return
	}
	if c.archiveTo == nil {
		c.archiveTo, c.archiveKept = map[int]string{}, map[int]string{}
	}
	c.archiveTo[i] = r.Detail["to"]
	if k, ok := r.Detail["kept"]; ok {
		c.archiveKept[i] = k
	}
}

// readLeaves fills the chunk through ls (see LeafScanner); false when the
// store did not handle the run (the chunk is left empty). It calls read
// once the store has read the run (at the first record, or on return).
func (c *verifyChunk) readLeaves(ctx context.Context, st Store, ls LeafScanner, read func(), buf []byte) (bool, []byte) {
	defer read()
	c.hashBase = tlog.StoredHashIndex(0, c.lo)
	next := c.lo // the tree hashes are contiguous up to the first gap
	var archives []int
	handled, err := ls.ScanLeaves(ctx, c.lo, c.hi, func(seq int64, typ string, leaf, hashes []byte) error {
		if len(c.seqs) == 0 {
			read() // the run is read: what is left is hashing
		}
		buf = append(append(buf[:0], 0), leaf...) // RFC 6962 leaf prefix
		c.seqs = append(c.seqs, seq)
		c.leaves = append(c.leaves, tlog.Hash(sha256.Sum256(buf)))
		if typ == TypeArchive {
			archives = append(archives, len(c.seqs)-1)
		}
		if seq != next || hashes == nil {
			next = -1 // a record or its tree row is missing: the rest counts as missing
			return nil
		}
		k := 1 + bits.TrailingZeros64(uint64(seq+1)) // tlog stores the leaf and each subtree it completes
		for j := range k {
			var h tlog.Hash
			if len(hashes) == k*tlog.HashSize {
				copy(h[:], hashes[j*tlog.HashSize:])
			} else {
				h[0] = 0xff // a row of the wrong length: compares unequal
			}
			c.hashes = append(c.hashes, h)
		}
		next++
		return nil
	})
	if !handled || err != nil {
		c.seqs, c.leaves, c.hashes, c.err = nil, nil, nil, err
		return err != nil, buf
	}
	// the few archive records: their detail, read as a record
	for _, i := range archives {
		r, err := st.GetRecord(ctx, c.seqs[i])
		if err != nil {
			c.err = err
			return true, buf
		}
		c.noteArchive(i, r)
	}
	return true, buf
}

// stored returns the stored hash at index idx if the chunk has it.
func (c *verifyChunk) stored(idx int64) (tlog.Hash, bool) {
	if j := idx - c.hashBase; j >= 0 && j < int64(len(c.hashes)) {
		return c.hashes[j], true
	}
	return tlog.Hash{}, false
}
