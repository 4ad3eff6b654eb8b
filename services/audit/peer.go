package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
)

// Audit across centres (ADR 0029).
//
// A level-2 centre shares its log: every record, with its Seq, and every
// signed checkpoint, as it stands in the centre's store, is published to
// its AUDIT_LOG stream (LogMessage). Level 1 sources each peer's AUDIT_LOG
// through the peer's JetStream domain (stream AUDIT_<PEER>) and keeps the
// records per origin (PeerStore), apart from its own log: a peer's record
// keeps its place in the peer's tree and is verified against the peer's
// checkpoints (VerifyPeer), never chained into level 1's own tree.

// Subjects of the shared log (stream StreamLog).
const (
	StreamLog         = "AUDIT_LOG"
	SubjectLogRecord  = "uias.auditlog.record"
	SubjectLogCheckpt = "uias.auditlog.checkpoint"
)

// PeerStreamFor is the stream at level 1 that sources centre's AUDIT_LOG.
func PeerStreamFor(centre string) string {
	return events.PeerStreamName("AUDIT", centre)
}

// LogMessage is one message of a shared log: a record or a checkpoint of
// log Origin.
type LogMessage struct {
	Origin     string      `json:"origin"`
	Record     *LogRecord  `json:"record,omitempty"`
	Checkpoint *LogCheckpt `json:"checkpoint,omitempty"`
}

// LogRecord is a record as shared: every field of its leaf.
type LogRecord struct {
	Seq        int64             `json:"seq"`
	EventID    string            `json:"event_id"`
	Type       string            `json:"type"`
	Component  string            `json:"component"`
	TimeMS     int64             `json:"time_ms"`
	Serial     string            `json:"serial,omitempty"`
	TraceID    string            `json:"trace_id,omitempty"`
	AppID      string            `json:"app_id,omitempty"`
	API        string            `json:"api,omitempty"`
	Actor      string            `json:"actor,omitempty"`
	Subject    string            `json:"subject,omitempty"`
	Org        string            `json:"org,omitempty"`
	Result     string            `json:"result,omitempty"`
	Reason     string            `json:"reason,omitempty"`
	DurationMS float64           `json:"duration_ms,omitempty"`
	ClientIP   string            `json:"client_ip,omitempty"`
	Detail     map[string]string `json:"detail,omitempty"`
}

// LogCheckpt is a signed checkpoint as shared: its note.
type LogCheckpt struct {
	Size int64  `json:"size"`
	Note string `json:"note"`
}

// RecordMessage is the shared form of r of log origin.
func RecordMessage(origin string, r *Record) LogMessage {
	return LogMessage{Origin: origin, Record: &LogRecord{Seq: r.Seq, EventID: r.EventID, Type: r.Type, Component: r.Component,
		TimeMS: r.Time.UnixMilli(), Serial: r.Serial, TraceID: r.TraceID, AppID: r.AppID, API: r.API, Actor: r.Actor,
		Subject: r.Subject, Org: r.Org, Result: r.Result, Reason: r.Reason, DurationMS: r.DurationMS, ClientIP: r.ClientIP,
		Detail: r.Detail}}
}

// MsgID is the message's JetStream id (dedupe): origin, kind, number.
func (m LogMessage) MsgID() string {
	if m.Record != nil {
		return m.Origin + ".r." + strconv.FormatInt(m.Record.Seq, 10)
	}
	if m.Checkpoint != nil {
		return m.Origin + ".c." + strconv.FormatInt(m.Checkpoint.Size, 10)
	}
	return m.Origin
}

// Rec is the record the message carries (its Origin set).
func (m LogMessage) Rec() Record {
	l := m.Record
	return Record{Seq: l.Seq, EventID: l.EventID, Type: l.Type, Component: l.Component, Time: time.UnixMilli(l.TimeMS).UTC(),
		Serial: l.Serial, TraceID: l.TraceID, AppID: l.AppID, API: l.API, Actor: l.Actor, Subject: l.Subject, Org: l.Org,
		Result: l.Result, Reason: l.Reason, DurationMS: l.DurationMS, ClientIP: l.ClientIP, Detail: l.Detail, Origin: m.Origin}
}

// ParseLogMessage reads a message of a shared log.
func ParseLogMessage(b []byte) (LogMessage, error) {
	var m LogMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("shared audit log message: %w", err)
	}
	switch {
	case !ValidOrigin(m.Origin):
		return m, fmt.Errorf("shared audit log message: invalid origin %q", m.Origin)
	case (m.Record == nil) == (m.Checkpoint == nil):
		return m, errors.New("shared audit log message: neither one record nor one checkpoint")
	case m.Record != nil && (m.Record.Seq < 0 || m.Record.EventID == ""):
		return m, errors.New("shared audit log message: a record without seq or event id")
	}
	return m, nil
}

// CheckpointOf reads a peer's checkpoint note without checking its
// signature (VerifyPeer does, with the peer's keys): its size, root and
// time as the note states them.
func CheckpointOf(origin string, noteText []byte) (Checkpoint, error) {
	text, _, _ := strings.Cut(string(noteText), "\n\n")
	lines := strings.Split(text, "\n")
	if len(lines) < 3 || lines[0] != origin {
		return Checkpoint{}, fmt.Errorf("checkpoint is not of log %q", origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return Checkpoint{}, errors.New("checkpoint has an invalid tree size")
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return Checkpoint{}, errors.New("checkpoint has an invalid root hash")
	}
	c := Checkpoint{Size: size, Root: root, Note: noteText}
	for _, l := range lines[3:] {
		if v, ok := strings.CutPrefix(l, "time "); ok {
			if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
				c.Time = time.UnixMilli(ms).UTC()
			}
		}
	}
	return c, nil
}

// Peer is what level 1 holds of a peer centre's log.
type Peer struct {
	Origin string
	// First is the first record received (0 unless the peer had archived
	// and removed records before it shared its log); Size the next one
	// expected: records [First, Size) are held.
	First, Size int64
	// Checkpoints held, and the largest size signed.
	Checkpoints int64
	Signed      int64
	// Frontier: the tree hashes of the records [0, First) this centre
	// archived and removed (ApplyPeerRetention); none when First is 0 or
	// the peer had archived them before it shared its log.
	Frontier []SubtreeHash
	// LastRecord is the time of the newest record held: the log of this
	// origin is complete up to about then (records made later at the peer
	// arrive when the link allows). LastReceived is when level 1 last
	// stored something of it.
	LastRecord, LastReceived time.Time
}

// PeerBatch is what the receiver stores in one transaction: messages of
// one peer stream. Where the receiver is in that stream is the durable
// consumer's (acknowledged after the transaction); a batch delivered again
// after a crash between the two is told by the records' Seq, as a
// duplicate (ADR 0029 amendment 3).
type PeerBatch struct {
	Origin      string
	Records     []Record
	Checkpoints []Checkpoint
	At          time.Time
	// SkipGap stores a record past the next one expected instead of
	// failing with ErrPeerGap: the records in between are lost at level
	// 1 (PeerAppended.Skipped; sec28b M3). A record of a skipped range
	// that comes later is still stored.
	SkipGap bool
}

// SeqRange is the records [From, To) of a log.
type SeqRange struct{ From, To int64 }

// PeerAppended says what AppendPeer did.
type PeerAppended struct {
	Added, Duplicates, Checkpoints int
	// Size is the origin's next record expected after the batch.
	Size int64
	// Skipped are the records passed over (SkipGap): lost here.
	Skipped []SeqRange
	// Stored are the numbers of the records added.
	Stored []int64
	// Conflicts are the numbers of records re-sent with another event id
	// than the one held under that number (the peer's log rewritten, or
	// a forgery): the record held is kept, the other is not stored (review
	// sec28b L5).
	Conflicts []int64
}

// Records the audit component adds about a peer's log (sec28b M3, L5).
const (
	TypePeerLog = "audit.peer_log"
	// ReasonPeerLogGap: records of a peer's log were lost on the way and
	// skipped (detail from, to).
	ReasonPeerLogGap = "AUDIT_PEER_LOG_GAP"
	// ReasonPeerLogConflict: a record came again under a number held with
	// other content (detail seqs).
	ReasonPeerLogConflict = "AUDIT_PEER_LOG_CONFLICT"
	// ReasonPeerLogUnmasked: records came with personal numbers in clear
	// and were stored masked (detail seqs; MaskPeerRecord).
	ReasonPeerLogUnmasked = "AUDIT_PEER_LOG_UNMASKED"
)

// PeerLogRecord is the record of a problem of peer log origin (reason
// ReasonPeerLogGap or ReasonPeerLogConflict) at now, with detail.
func PeerLogRecord(origin, reason string, detail map[string]string, now time.Time) Record {
	d := map[string]string{"origin": origin}
	for k, v := range detail {
		d[k] = v
	}
	return Record{EventID: ids.New(), Type: TypePeerLog, Component: "audit", Time: now.UTC().Truncate(time.Millisecond),
		API: "peer.receive", Subject: "audit:" + origin, Result: "failure", Reason: reason, Detail: d}
}

// ErrPeerGap: a peer record came with a number past the next one
// expected (a record in between was lost on the way): nothing of the
// batch is stored.
var ErrPeerGap = errors.New("audit: a record of the peer's log is missing before this one")

// PeerStore keeps the logs of peer centres, per origin.
type PeerStore interface {
	// AppendPeer stores b in one transaction: each record whose Seq is
	// the origin's next (Size) is added, one below it is a duplicate
	// (skipped when held with the same event id, a conflict with another,
	// stored when not held: a skipped gap filled), one above it fails
	// with ErrPeerGap unless b.SkipGap (only the origin's very first
	// record may start above 0: First); checkpoints are added once by
	// size.
	AppendPeer(ctx context.Context, b PeerBatch) (PeerAppended, error)
	// Peers returns the origins held, by name.
	Peers(ctx context.Context) ([]Peer, error)
	// ScanPeerRecords calls fn for origin's records in seq order, as they
	// are stored.
	ScanPeerRecords(ctx context.Context, origin string, fn func(r *Record) error) error
	// PeerCheckpoints returns origin's checkpoints, by size.
	PeerCheckpoints(ctx context.Context, origin string) ([]Checkpoint, error)
	// PrunePeer removes origin's records [from, to) (archived) in one
	// transaction, keeping frontier (the tree hashes of [0, to)) and
	// moving First to to; ErrPeerPruned when First is no longer from
	// (another instance pruned meanwhile): nothing is changed then.
	PrunePeer(ctx context.Context, origin string, from, to int64, frontier []SubtreeHash) error
}

// ErrPeerPruned: another instance removed the records first.
var ErrPeerPruned = errors.New("audit: the peer log's records were removed meanwhile")

// VerifyPeer recomputes the tree of peer log p from its records held and
// checks every checkpoint of it held against it, each signature with
// known (the peer's verifier keys). Records archived and removed here by
// retention (ApplyPeerRetention) are represented by the tree hashes kept
// at their removal (p.Frontier): checkpoints up to there were matched
// before, and their signatures are still checked. Records the peer
// archived before it shared its log (p.First > 0 without a frontier)
// cannot be recomputed: that is reported, unverified.
//
// It fails closed (sec28b H3): without known (no verifier keys
// configured) the log is never OK but unverified; with no checkpoint held
// it is "not verified yet" (unverified); a signed checkpoint larger than
// the records held, or fewer records held than the store counts (p.Size),
// is reported as records missing here (a cut tail).
func VerifyPeer(ctx context.Context, st PeerStore, p Peer, known note.Verifiers) (*Report, error) {
	rep, _, err := replayPeer(ctx, st, p, known, time.Time{})
	return rep, err
}

// peerReplay is what replayPeer computed besides its report.
type peerReplay struct {
	hashes *peerHashes
	cps    []Checkpoint // the origin's checkpoints, by size
	// young is the first record held at or after the time replayPeer was
	// given (p.Size if none).
	young int64
}

// replayPeer is VerifyPeer; it also returns the tree hashes computed and
// the first record at or after young.
func replayPeer(ctx context.Context, st PeerStore, p Peer, known note.Verifiers, young time.Time) (*Report, *peerReplay, error) {
	rep := &Report{}
	if known == nil {
		rep.Problem = &Problem{Seq: -1, Unverified: true, What: fmt.Sprintf("log %q is not verified: no verifier keys of it are "+
			"configured here (audit.peers[].verifier_keys)", p.Origin)}
		return rep, nil, nil
	}
	cps, err := st.PeerCheckpoints(ctx, p.Origin)
	if err != nil {
		return nil, nil, err
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	for _, c := range cps {
		if _, err := OpenCheckpoint(c.Note, p.Origin, known); err != nil {
			rep.Problem = &Problem{Seq: -1, Checkpoint: c.Size, Unverified: known == nil || isUnverified(err),
				What: fmt.Sprintf("checkpoint of size %d of log %q: %v", c.Size, p.Origin, err)}
			return rep, nil, nil
		}
	}
	hashes, ok := newPeerHashes(p.First, p.Frontier)
	if !ok {
		rep.Problem = &Problem{Seq: 0, Unverified: true, What: fmt.Sprintf("records 0-%d of log %q were archived at its centre "+
			"before it shared its log: its tree cannot be recomputed here (verify it at its centre)", p.First-1, p.Origin)}
		return rep, nil, nil
	}
	out := &peerReplay{hashes: hashes, cps: cps, young: -1}
	next := 0
	want := p.First
	rep.Archived = p.First
	// checkpoints of records removed here were matched before they went;
	// their signatures were checked above
	for next < len(cps) && cps[next].Size < p.First {
		rep.Checkpoints++
		rep.Signed = cps[next].Size
		next++
	}
	var problem *Problem
	errStop := errors.New("stop")
	check := func(n int64) bool { // checkpoints of size <= n
		for next < len(cps) && cps[next].Size <= n {
			c := cps[next]
			root, err := tlog.TreeHash(c.Size, hashes)
			if err != nil || root != c.Root {
				problem = &Problem{Seq: -1, Checkpoint: c.Size, What: fmt.Sprintf("the records of log %q held here do not match "+
					"its signed checkpoint of size %d: a record before %d was changed, removed or inserted here", p.Origin, c.Size, c.Size)}
				return false
			}
			rep.Checkpoints++
			rep.Signed = c.Size
			next++
		}
		return true
	}
	if !check(want) {
		rep.Problem = problem
		return rep, nil, nil
	}
	err = st.ScanPeerRecords(ctx, p.Origin, func(r *Record) error {
		if r.Seq != want {
			problem = &Problem{Seq: want, What: fmt.Sprintf("record %d of log %q is missing here (found %d next)", want, p.Origin, r.Seq)}
			return errStop
		}
		if out.young < 0 && !young.IsZero() && !r.Time.Before(young) {
			out.young = want
		}
		add, err := tlog.StoredHashes(want, r.LeafData(), hashes)
		if err != nil {
			return err
		}
		hashes.dense = append(hashes.dense, add...)
		want++
		rep.Records = want - p.First
		if !check(want) {
			return errStop
		}
		return nil
	})
	if errors.Is(err, errStop) {
		rep.Problem = problem
		return rep, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	if out.young < 0 {
		out.young = want
	}
	switch {
	case next < len(cps): // a signed checkpoint covers records not held
		c := cps[next]
		rep.Problem = &Problem{Seq: want, Checkpoint: c.Size, What: fmt.Sprintf("records %d-%d of log %q are missing here: its "+
			"signed checkpoint of size %d is held, only %d records are (removed here, or the tail was cut)", want, c.Size-1, p.Origin, c.Size, want)}
	case want < p.Size:
		rep.Problem = &Problem{Seq: want, What: fmt.Sprintf("records %d-%d of log %q are missing here: %d were stored, %d are held",
			want, p.Size-1, p.Origin, p.Size, want)}
	case rep.Checkpoints == 0:
		rep.Problem = &Problem{Seq: -1, Unverified: true, What: fmt.Sprintf("log %q is not verified yet: no signed checkpoint of it "+
			"is held here (%d records held, none signed)", p.Origin, want)}
	}
	return rep, out, nil
}

func isUnverified(err error) bool {
	var u *note.UnverifiedNoteError
	return errors.As(err, &u)
}

// peerHashes is a tlog.HashReader over the tree hashes of a peer log:
// the frontier kept when records were removed here (the hashes of the
// subtrees that make up the records [0, first)), then those computed
// from the records held, densely from the first record's leaf on.
type peerHashes struct {
	base  int64 // tlog.StoredHashIndex(0, first)
	front map[int64]tlog.Hash
	dense []tlog.Hash
}

// frontierRanges are the subtrees [lo, hi) that make up the leaves [0, n)
// (one per bit of n, largest first): what a tree of n leaves and more
// needs of them.
func frontierRanges(n int64) []SeqRange {
	var out []SeqRange
	lo := int64(0)
	for b := 62; b >= 0; b-- {
		if n&(1<<b) != 0 {
			out = append(out, SeqRange{From: lo, To: lo + 1<<b})
			lo += 1 << b
		}
	}
	return out
}

func subtreeIndex(r SeqRange) int64 {
	level := bits.TrailingZeros64(uint64(r.To - r.From))
	return tlog.StoredHashIndex(level, r.From>>level)
}

// newPeerHashes starts the hashes of a log whose records held begin at
// first, from its frontier (not ok when first > 0 and the frontier does
// not make up [0, first): the peer archived them before it shared).
func newPeerHashes(first int64, frontier []SubtreeHash) (*peerHashes, bool) {
	h := &peerHashes{base: tlog.StoredHashIndex(0, first), front: map[int64]tlog.Hash{}}
	for _, r := range frontierRanges(first) {
		i := slices.IndexFunc(frontier, func(s SubtreeHash) bool { return s.Lo == r.From && s.Hi == r.To })
		if i < 0 || len(frontier[i].Hash) != len(tlog.Hash{}) {
			return nil, false
		}
		h.front[subtreeIndex(r)] = tlog.Hash(frontier[i].Hash)
	}
	return h, true
}

// frontier is the frontier of the records [0, n) (n at least the first
// record held).
func (h *peerHashes) frontier(n int64) ([]SubtreeHash, error) {
	var out []SubtreeHash
	for _, r := range frontierRanges(n) {
		hs, err := h.ReadHashes([]int64{subtreeIndex(r)})
		if err != nil {
			return nil, err
		}
		out = append(out, SubtreeHash{Lo: r.From, Hi: r.To, Hash: hs[0][:]})
	}
	return out, nil
}

func (h *peerHashes) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		switch {
		case x >= h.base && x-h.base < int64(len(h.dense)):
			out[i] = h.dense[x-h.base]
		case x < h.base:
			v, ok := h.front[x]
			if !ok {
				return nil, fmt.Errorf("hash %d not kept", x)
			}
			out[i] = v
		default:
			return nil, fmt.Errorf("hash %d not computed", x)
		}
	}
	return out, nil
}
