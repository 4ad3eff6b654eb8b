package audit

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// peerArchiveTag ends the names of the archives of peer logs.
const peerArchiveTag = ".peer"

// PeerRetention is the retention of one peer log held here: its verifier
// keys (note.Verifiers and their text, for the archives' header).
type PeerRetention struct {
	Peer  Peer
	Known note.Verifiers
	Keys  []string
}

// ApplyPeerRetention archives and removes the records of peer log
// p.Peer older than now - r.Keep (ADR 0029 amendment 2): the whole log
// held must verify against the peer's signed checkpoints first (a log
// with a problem, or whose keys are not configured, keeps everything, with
// the problem as the error); records are removed only up to a checkpoint
// of the peer (the largest one at most as large as the old records), after
// they are written to an archive file in r.Dir in the format of this
// centre's own archives (audit-<origin>-<from>-<to>.peer.jsonl, verifiable with
// uias ctl audit verify --archive and the peer's keys); the tree hashes of
// the removed records are kept (Peer.Frontier), so the records still held
// verify as before. Each archive is recorded in this centre's own log
// (type audit.archive, reason RETENTION, detail origin). It returns the
// archive made, nil when nothing was due.
func (l *Log) ApplyPeerRetention(ctx context.Context, st PeerStore, p PeerRetention, r Retention, now time.Time) (*ArchiveResult, error) {
	if r.Keep <= 0 {
		return nil, nil
	}
	l.archiving.Lock()
	defer l.archiving.Unlock()
	cutoff := now.Add(-r.Keep)
	rep, rp, err := replayPeer(ctx, st, p.Peer, p.Known, cutoff)
	if err != nil {
		return nil, err
	}
	if !rep.OK() {
		return nil, fmt.Errorf("the log of %q is kept whole: %w", p.Peer.Origin, rep.Problem)
	}
	// up to a checkpoint past the first record held, at most as large as
	// the records older than the cut-off: the largest within
	// MaxPerArchive records (the next pass takes the rest), else the
	// smallest (checkpoints further apart than that)
	from := p.Peer.First
	maxPer := r.MaxPerArchive
	if maxPer <= 0 {
		maxPer = 1_000_000 // as this centre's own archives
	}
	var cp *Checkpoint
	for i := range rp.cps {
		c := &rp.cps[i]
		if c.Size <= from || c.Size > rp.young {
			continue
		}
		if cp == nil || c.Size-from <= maxPer {
			cp = c
		}
	}
	if cp == nil {
		return nil, nil
	}
	to := cp.Size
	frontier, err := rp.hashes.frontier(to)
	if err != nil {
		return nil, err
	}
	h := ArchiveHeader{Format: ArchiveFormat, Origin: p.Peer.Origin, From: from, To: to, Checkpoint: string(cp.Note),
		VerifierKeys: p.Keys, Created: now.UTC(), Outside: p.Peer.Frontier}
	// ".peer": never the name of this centre's own archives, whatever the
	// origins' names (review sec29b L1)
	name := archiveName(p.Peer.Origin, from, to, peerArchiveTag)
	scan := func(fn func(r *Record) error) error { return st.ScanPeerRecords(ctx, p.Peer.Origin, fn) }
	a, err := writeArchiveFile(r.Dir, name, &h, cp, false, scan)
	if errors.Is(err, ErrArchiveExists) {
		// left by a stop between writing and removing (the records are
		// still held: made again), or another instance's (it removes
		// them: nothing to do here)
		held, perr := st.Peers(ctx)
		if perr != nil {
			return nil, perr
		}
		i := slices.IndexFunc(held, func(h Peer) bool { return h.Origin == p.Peer.Origin })
		if i < 0 || held[i].First != from {
			return nil, nil
		}
		a, err = writeArchiveFile(r.Dir, name, &h, cp, true, scan)
	}
	if err != nil {
		return nil, err
	}
	if err := st.PrunePeer(ctx, p.Peer.Origin, from, to, frontier); err != nil {
		if errors.Is(err, ErrPeerPruned) {
			return nil, nil // another instance did it
		}
		return nil, err
	}
	at := time.UnixMilli(now.UnixMilli()).UTC()
	rec := Record{EventID: fmt.Sprintf("archive:%s:%d-%d", p.Peer.Origin, from, to), Type: TypeArchive, Component: "audit", Time: at,
		API: "archive", Actor: "audit", Subject: "audit:" + p.Peer.Origin, Result: "success", Reason: ReasonRetention,
		Detail: map[string]string{"origin": p.Peer.Origin, "from": strconv.FormatInt(from, 10), "to": strconv.FormatInt(to, 10),
			"file": filepath.Base(a.File), "sha256": a.SHA256, "checkpoint_size": strconv.FormatInt(cp.Size, 10),
			"before": cutoff.UTC().Format(time.RFC3339Nano)}}
	if _, err := l.Append(ctx, []Record{rec}); err != nil {
		return a, fmt.Errorf("records %d-%d of %q were archived to %s and removed, but the record of it was not written: %w",
			from, to-1, p.Peer.Origin, filepath.Base(a.File), err)
	}
	return a, nil
}
