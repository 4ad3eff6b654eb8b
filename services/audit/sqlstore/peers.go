package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/uias/uias/services/audit"
)

// The logs of peer centres (migration 0005, ADR 0029).

var _ audit.PeerStore = (*Store)(nil)

const peerRecordCols = "origin, " + recordCols

// SetLocalOrigin names this centre's own log (audit.origin): the origin
// of the records of audit_records when they are read.
func (s *Store) SetLocalOrigin(origin string) {
	if audit.ValidOrigin(origin) {
		s.local.Store(&origin)
	}
}

// LocalOrigin is the name SetLocalOrigin gave ("" if none).
func (s *Store) LocalOrigin() string {
	if p := s.local.Load(); p != nil {
		return *p
	}
	return ""
}

// AppendPeer implements audit.PeerStore.
func (s *Store) AppendPeer(ctx context.Context, b audit.PeerBatch) (audit.PeerAppended, error) {
	var out audit.PeerAppended
	if !audit.ValidOrigin(b.Origin) {
		return out, fmt.Errorf("audit store: invalid origin %q", b.Origin)
	}
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		out = audit.PeerAppended{}
		var first, size, lastMS int64
		err := tx.QueryRowContext(ctx, s.db.Rebind("SELECT first_seq, size, last_record_ms FROM audit_peers WHERE origin = ?"+
			s.db.ForUpdate()), b.Origin).Scan(&first, &size, &lastMS)
		fresh := errors.Is(err, sql.ErrNoRows)
		if err != nil && !fresh {
			return classify(err, "lock the peer log")
		}
		var add []audit.Record
		inBatch := map[int64]string{}
		for _, r := range b.Records {
			switch {
			case !fresh && r.Seq < first:
				out.Duplicates++ // archived at the peer before it shared: none held
				continue
			case r.Seq < size:
				held, ok := inBatch[r.Seq]
				if !ok {
					err := tx.QueryRowContext(ctx, s.db.Rebind("SELECT event_id FROM audit_peer_records WHERE origin = ? AND seq = ?"),
						b.Origin, r.Seq).Scan(&held)
					if errors.Is(err, sql.ErrNoRows) { // a record of a skipped gap: stored now
						add = append(add, r)
						inBatch[r.Seq] = r.EventID
						lastMS = max(lastMS, r.Time.UnixMilli())
						continue
					}
					if err != nil {
						return classify(err, "peer record held")
					}
				}
				if held != r.EventID {
					out.Conflicts = append(out.Conflicts, r.Seq)
				}
				out.Duplicates++
				continue
			case r.Seq > size && (size > 0 || len(add) > 0 || !fresh):
				if !b.SkipGap {
					return fmt.Errorf("%w: record %d of log %q came, %d expected", audit.ErrPeerGap, r.Seq, b.Origin, size)
				}
				out.Skipped = append(out.Skipped, audit.SeqRange{From: size, To: r.Seq})
			case r.Seq > size: // the first record held: the peer archived those before it
				first = r.Seq
			}
			add = append(add, r)
			inBatch[r.Seq] = r.EventID
			size = r.Seq + 1
			lastMS = max(lastMS, r.Time.UnixMilli())
		}
		if err := insertRows(ctx, s.db, tx, "audit_peer_records", peerRecordCols, nRecordCols+1, len(add), func(args []any, i int) ([]any, error) {
			return recordArgs(append(args, b.Origin), &add[i]), nil
		}); err != nil {
			return err
		}
		for _, c := range b.Checkpoints {
			res, err := tx.ExecContext(ctx, s.db.Rebind("INSERT INTO audit_peer_checkpoints (origin, size, root, time_ms, note) VALUES (?, ?, ?, ?, ?) "+
				"ON CONFLICT DO NOTHING"), b.Origin, c.Size, c.Root[:], c.Time.UnixMilli(), string(c.Note))
			if err != nil {
				return classify(err, "insert peer checkpoint")
			}
			if n, _ := res.RowsAffected(); n > 0 {
				out.Checkpoints++
			}
		}
		if fresh {
			_, err = tx.ExecContext(ctx, s.db.Rebind("INSERT INTO audit_peers (origin, first_seq, size, last_record_ms, received_ms) "+
				"VALUES (?, ?, ?, ?, ?)"), b.Origin, first, size, lastMS, b.At.UnixMilli())
		} else {
			_, err = tx.ExecContext(ctx, s.db.Rebind("UPDATE audit_peers SET size = ?, last_record_ms = ?, received_ms = ? "+
				"WHERE origin = ?"), size, lastMS, b.At.UnixMilli(), b.Origin)
		}
		if err != nil {
			return classify(err, "peer log state")
		}
		out.Added, out.Size = len(add), size
		for _, r := range add {
			out.Stored = append(out.Stored, r.Seq)
		}
		return nil
	})
	if err != nil {
		return audit.PeerAppended{}, classify(err, "append peer records")
	}
	if out.Added > 0 || out.Checkpoints > 0 {
		s.peers.Store(true)
	}
	return out, nil
}

// Peers implements audit.PeerStore.
func (s *Store) Peers(ctx context.Context) ([]audit.Peer, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT p.origin, p.first_seq, p.size, p.last_record_ms, p.received_ms, p.frontier, "+
		"(SELECT COUNT(*) FROM audit_peer_checkpoints c WHERE c.origin = p.origin), "+
		"(SELECT COALESCE(MAX(size), 0) FROM audit_peer_checkpoints c WHERE c.origin = p.origin) FROM audit_peers p ORDER BY p.origin")
	if err != nil {
		return nil, classify(err, "peers")
	}
	defer rows.Close()
	var out []audit.Peer
	for rows.Next() {
		var p audit.Peer
		var lastMS, recvMS int64
		var frontier string
		if err := rows.Scan(&p.Origin, &p.First, &p.Size, &lastMS, &recvMS, &frontier, &p.Checkpoints, &p.Signed); err != nil {
			return nil, classify(err, "peers")
		}
		if frontier != "" {
			if err := json.Unmarshal([]byte(frontier), &p.Frontier); err != nil {
				return nil, fmt.Errorf("audit store: the frontier of peer log %q is unreadable: %w", p.Origin, err)
			}
		}
		if lastMS > 0 {
			p.LastRecord = time.UnixMilli(lastMS).UTC()
		}
		p.LastReceived = time.UnixMilli(recvMS).UTC()
		out = append(out, p)
	}
	return out, classify(rows.Err(), "peers")
}

// ScanPeerRecords implements audit.PeerStore.
func (s *Store) ScanPeerRecords(ctx context.Context, origin string, fn func(r *audit.Record) error) error {
	const page = 2000
	from := int64(-1)
	for {
		rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT "+recordCols+" FROM audit_peer_records WHERE origin = ? AND seq > ? "+
			"ORDER BY seq LIMIT ?"), origin, from, page)
		if err != nil {
			return classify(err, "peer records")
		}
		var recs []*audit.Record
		for rows.Next() {
			r, err := scanRecord(rows)
			if err != nil {
				rows.Close()
				return classify(err, "peer records")
			}
			r.Origin = origin
			recs = append(recs, r)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return classify(err, "peer records")
		}
		for _, r := range recs {
			if err := fn(r); err != nil {
				return err
			}
			from = r.Seq
		}
		if len(recs) < page {
			return nil
		}
	}
}

// PeerCheckpoints implements audit.PeerStore.
func (s *Store) PeerCheckpoints(ctx context.Context, origin string) ([]audit.Checkpoint, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT "+checkpointCols+" FROM audit_peer_checkpoints WHERE origin = ? ORDER BY size"), origin)
	if err != nil {
		return nil, classify(err, "peer checkpoints")
	}
	defer rows.Close()
	var out []audit.Checkpoint
	for rows.Next() {
		c, err := scanCheckpoint(rows)
		if err != nil {
			return nil, classify(err, "peer checkpoints")
		}
		out = append(out, *c)
	}
	return out, classify(rows.Err(), "peer checkpoints")
}

// PrunePeer implements audit.PeerStore.
func (s *Store) PrunePeer(ctx context.Context, origin string, from, to int64, frontier []audit.SubtreeHash) error {
	if to <= from {
		return fmt.Errorf("audit store: bad range %d-%d to remove of peer log %q", from, to, origin)
	}
	fj, err := json.Marshal(frontier)
	if err != nil {
		return err
	}
	return classify(s.db.InTx(ctx, func(tx *sql.Tx) error {
		var first, size int64
		err := tx.QueryRowContext(ctx, s.db.Rebind("SELECT first_seq, size FROM audit_peers WHERE origin = ?"+s.db.ForUpdate()), origin).
			Scan(&first, &size)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && first != from) {
			return audit.ErrPeerPruned
		}
		if err != nil {
			return classify(err, "lock the peer log")
		}
		if to > size {
			return fmt.Errorf("audit store: records %d-%d of peer log %q are not held", from, to-1, origin)
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind("DELETE FROM audit_peer_records WHERE origin = ? AND seq < ?"), origin, to); err != nil {
			return classify(err, "remove peer records")
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind("UPDATE audit_peers SET first_seq = ?, frontier = ? WHERE origin = ?"), to, string(fj), origin)
		return classify(err, "peer frontier")
	}), "remove peer records")
}

// hasPeers reports whether peer records are held (read once, then kept
// true by AppendPeer): the reads of all origins take the union of the
// own and the peers' records only then, and the plain own table else.
//
// "None" is kept for PeerRecheck (review rr29 C1: the check ran before
// every read of a centre holding no peer logs): records another instance
// stores meanwhile show in this one's reads within that time; this
// instance's own AppendPeer counts at once.
func (s *Store) hasPeers(ctx context.Context) (bool, error) {
	if s.peers.Load() {
		return true, nil
	}
	now := time.Now
	if s.now != nil {
		now = s.now
	}
	at := now()
	if last := s.peersChecked.Load(); last != 0 && at.Sub(time.Unix(0, last)) < PeerRecheck {
		return false, nil
	}
	var n int
	err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM (SELECT 1 FROM audit_peers LIMIT 1) p").Scan(&n)
	if err != nil {
		return false, classify(err, "peers")
	}
	if n > 0 {
		s.peers.Store(true)
	} else {
		s.peersChecked.Store(at.UnixNano())
	}
	return n > 0, nil
}

// PeerRecheck is how long a store that found no peer logs held says so
// without looking again.
const PeerRecheck = time.Minute

// recordSource is where a read of records of one origin or all of them
// takes them from: From (" FROM ..."), the origin column's expression, a
// condition on origin (on Where), and whether several origins interleave
// (the order and the page keys then name the origin).
type recordSource struct {
	from, originCol string
	onlyOrigin      string
	union           bool
	// ownCol is the own records' origin (a literal).
	ownCol string
}

// source is the recordSource of origin ("": all origins held).
func (s *Store) source(ctx context.Context, origin string) (recordSource, error) {
	local := s.LocalOrigin()
	lit := "'" + strings.ReplaceAll(local, "'", "") + "'" // a valid origin has no quote
	own := recordSource{from: " FROM audit_records", originCol: lit, ownCol: lit}
	switch {
	case origin == local && local != "":
		return own, nil
	case origin != "":
		return recordSource{from: " FROM audit_peer_records", originCol: "origin", onlyOrigin: origin}, nil
	}
	peers, err := s.hasPeers(ctx)
	if err != nil || !peers {
		return own, err
	}
	return recordSource{from: " FROM (SELECT " + lit + " AS origin, " + recordCols + " FROM audit_records UNION ALL SELECT " +
		peerRecordCols + " FROM audit_peer_records) recs", originCol: "origin", union: true, ownCol: lit}, nil
}

// order is the ORDER BY of newest first (time, then origin when several
// interleave, then seq).
func (src recordSource) order() string {
	if src.union {
		return " ORDER BY time_ms DESC, origin DESC, seq DESC"
	}
	return " ORDER BY time_ms DESC, seq DESC"
}

func scanRecordFrom(sc interface{ Scan(...any) error }) (*audit.Record, error) {
	var r audit.Record
	var ms int64
	var detail string
	if err := sc.Scan(&r.Seq, &r.EventID, &r.Type, &r.Component, &ms, &r.Serial, &r.TraceID, &r.AppID, &r.API,
		&r.Actor, &r.Subject, &r.Org, &r.Result, &r.Reason, &r.DurationMS, &r.ClientIP, &detail, &r.Origin); err != nil {
		return nil, err
	}
	finishRecord(&r, ms, detail)
	return &r, nil
}
