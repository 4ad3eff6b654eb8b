package audit

import (
	"context"
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

// hashedBatch is a run of consecutive records with their leaf hashes.
type hashedBatch struct {
	recs   []*Record
	hashes []tlog.Hash
	done   chan struct{} // closed once hashes are set
}

// scanHashed reads the records from seq from on (Store.ScanRecords) in one
// goroutine, hashes them in batches on up to GOMAXPROCS others, and calls
// fn with each record and its leaf hash in order on the caller's
// goroutine. fn returning an error stops everything; that error is
// returned.
func scanHashed(ctx context.Context, st Store, from int64, fn func(r *Record, leaf tlog.Hash) error) error {
	const batch = 512
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := max(1, runtime.GOMAXPROCS(0))
	jobs := make(chan *hashedBatch, workers)
	ordered := make(chan *hashedBatch, 2*workers) // in scan order
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			buf := make([]byte, 0, 1024)
			for b := range jobs {
				b.hashes = make([]tlog.Hash, len(b.recs))
				for i, r := range b.recs {
					b.hashes[i], buf = r.leafHashBuf(buf)
				}
				close(b.done)
			}
		})
	}
	scanErr := make(chan error, 1)
	go func() {
		defer close(ordered)
		defer close(jobs)
		cur := &hashedBatch{done: make(chan struct{})}
		send := func() error {
			for _, ch := range []chan *hashedBatch{ordered, jobs} {
				select {
				case ch <- cur:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			cur = &hashedBatch{done: make(chan struct{})}
			return nil
		}
		err := st.ScanRecords(ctx, from, func(r *Record) error {
			cur.recs = append(cur.recs, r)
			if len(cur.recs) == batch {
				return send()
			}
			return nil
		})
		if err == nil && len(cur.recs) > 0 {
			err = send()
		}
		scanErr <- err
	}()
	var fnErr error
	for b := range ordered {
		if fnErr != nil {
			continue // drain: the scan stops at its next send
		}
		select {
		case <-b.done:
		case <-ctx.Done():
			fnErr = ctx.Err()
			cancel()
			continue
		}
		for i, r := range b.recs {
			if err := fn(r, b.hashes[i]); err != nil {
				fnErr = err
				cancel()
				break
			}
		}
	}
	wg.Wait()
	err := <-scanErr
	if fnErr != nil {
		return fnErr
	}
	return err
}
