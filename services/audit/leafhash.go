package audit

import (
	"context"
	"errors"
	"runtime"
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
// stored, their leaf hashes, and the stored tree hashes from index
// hashBase on (up to the first one missing).
type verifyChunk struct {
	lo, hi   int64
	recs     []*Record
	leaves   []tlog.Hash
	hashBase int64
	hashes   []tlog.Hash
	err      error
	done     chan struct{} // closed once the above are set
}

// verifyChunkSize is the records a reader of scanChunks takes at a time.
const verifyChunkSize = 8192

// scanChunks reads the log from seq from on in chunks of consecutive
// records, each read (records and stored tree hashes, on connections of
// their own) and hashed by one of up to GOMAXPROCS goroutines, and calls fn
// with the chunks in order on the caller's goroutine. The last chunk
// starts at size or below and reads to the end. fn returning an error
// stops everything; that error is returned.
func scanChunks(ctx context.Context, st Store, from, size int64, fn func(c *verifyChunk) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := max(1, runtime.GOMAXPROCS(0))
	jobs := make(chan *verifyChunk, workers)
	ordered := make(chan *verifyChunk, workers) // in log order
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 0, 1024)
			for c := range jobs {
				buf = c.read(ctx, st, buf)
				close(c.done)
			}
		})
	}
	go func() {
		defer close(ordered)
		defer close(jobs)
		for lo := from; ; lo += verifyChunkSize {
			c := &verifyChunk{lo: lo, hi: lo + verifyChunkSize, done: make(chan struct{})}
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
		}
	}()
	var err error
	for c := range ordered {
		if err != nil {
			continue // drain
		}
		select {
		case <-c.done:
		case <-ctx.Done():
			err = ctx.Err()
			cancel()
			continue
		}
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
// returns buf for the next chunk.
func (c *verifyChunk) read(ctx context.Context, st Store, buf []byte) []byte {
	err := st.ScanRecords(ctx, c.lo, func(r *Record) error {
		if c.hi >= 0 && r.Seq >= c.hi {
			return errChunkEnd
		}
		c.recs = append(c.recs, r)
		return nil
	})
	if err != nil && !errors.Is(err, errChunkEnd) {
		c.err = err
		return buf
	}
	c.leaves = make([]tlog.Hash, len(c.recs))
	for i, r := range c.recs {
		c.leaves[i], buf = r.leafHashBuf(buf)
	}
	// the stored hashes of the records the chunk should hold (or holds,
	// when the last one goes beyond)
	end := c.hi
	if n := len(c.recs); end < 0 {
		end = c.lo
		if n > 0 {
			end = max(end, c.recs[n-1].Seq+1)
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

// stored returns the stored hash at index idx if the chunk has it.
func (c *verifyChunk) stored(idx int64) (tlog.Hash, bool) {
	if j := idx - c.hashBase; j >= 0 && j < int64(len(c.hashes)) {
		return c.hashes[j], true
	}
	return tlog.Hash{}, false
}
