// Package audit is the audit component's domain: the append-only audit log
// kept as a transparency log (the design of Certificate Transparency, RFC
// 6962/9162, and of Go's checksum database). Every AUDIT event becomes one
// record, stored once (by event id); records are the leaves of a Merkle
// tree (golang.org/x/mod/sumdb/tlog) whose hashes are stored next to them,
// and signed checkpoints (tree size + root hash, golang.org/x/mod/sumdb/note
// with Ed25519) are made every N records or T seconds. Inclusion and
// consistency proofs come from the stored hashes; Verify recomputes the
// whole tree from the records and checks it against the stored hashes and
// every checkpoint, naming the first record that does not match.
//
// The package has no gRPC imports; storage is behind Store (sqlstore
// implements it on SQLite and PostgreSQL).
package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	pkgaudit "github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/events"
	"golang.org/x/mod/sumdb/tlog"
)

// Record is one stored audit record: the standard audit fields of the
// event (events.AuditRecord) plus where it sits in the log.
type Record struct {
	// Seq is the record's index in the log (its leaf number), from 0.
	Seq int64
	// EventID is the AUDIT event's id (Nats-Msg-Id): a record is stored
	// once per event id.
	EventID string
	// Type is the event type ("audit.authenticate"), Component the
	// component that wrote it (from the subject uias.audit.<component>.*).
	Type      string
	Component string
	// Time is when it happened, to the millisecond, UTC.
	Time       time.Time
	Serial     string
	TraceID    string
	AppID      string
	API        string
	Actor      string
	Subject    string
	Org        string
	Result     string
	Reason     string
	DurationMS float64
	ClientIP   string
	// Detail holds the event's further fields (masked by the component
	// that wrote them).
	Detail map[string]string
	// Origin names the log the record belongs to (audit.origin of the
	// centre that wrote it): set when read, never part of its leaf. A
	// record of a peer centre's log (peer.go) keeps that log's Seq.
	Origin string
}

// LeafData returns the bytes the tree hashes for r (its leaf): canonical
// JSON with a fixed field order and sorted detail keys, so the same record
// always hashes the same on every database (leafjson.go writes it). The
// record's Seq is part of it, so a record moved to another place no longer
// matches.
func (r *Record) LeafData() []byte {
	b, ok := r.appendLeaf(make([]byte, 0, 512))
	if !ok {
		return nil
	}
	return b
}

// LeafHash is the record's leaf hash in the tree.
func (r *Record) LeafHash() tlog.Hash {
	h, _ := r.leafHashBuf(make([]byte, 0, 512))
	return h
}

// MalformedDetail is the detail key under which a record keeps (escaped
// and capped) the payload of an event that is not a valid audit record:
// such events are stored too, never dropped.
const MalformedDetail = "malformed_payload"

// FromEvent makes the record of an AUDIT event (without Seq), masked
// (Mask). An event
// whose payload is not an audit record still yields a record, with the
// payload under MalformedDetail, so that nothing sent to AUDIT is lost and
// a bad event cannot stop the log.
func FromEvent(ev events.Event) Record {
	r := Record{EventID: ev.ID, Type: ev.Type, Component: componentOf(ev.Subject)}
	var a events.AuditRecord
	if err := json.Unmarshal(ev.Payload, &a); err != nil {
		r.Time = ev.Time
		r.Detail = map[string]string{MalformedDetail: pkgaudit.Text(string(ev.Payload))}
	} else {
		r.Time = a.Time
		if r.Time.IsZero() {
			r.Time = ev.Time
		}
		r.Serial, r.TraceID, r.AppID, r.API = a.Serial, a.TraceID, a.AppID, a.API
		r.Actor, r.Subject, r.Org, r.Result, r.Reason = a.Actor, a.Subject, a.Org, a.Result, a.Reason
		r.DurationMS, r.ClientIP, r.Detail = a.DurationMS, a.ClientIP, a.Detail
	}
	if r.API == "" {
		r.API = strings.TrimPrefix(r.Type, "audit.")
	}
	if len(r.Detail) > 0 { // the event's map is not ours to change
		d := make(map[string]string, len(r.Detail))
		for k, v := range r.Detail {
			d[k] = v
		}
		r.Detail = d
	}
	maskRecord(&r)
	r.Time = time.UnixMilli(r.Time.UnixMilli()).UTC()
	return r
}

// componentOf returns <component> of uias.audit.<component>.<api>.
func componentOf(subject string) string {
	rest, ok := strings.CutPrefix(subject, "uias.audit.")
	if !ok {
		return ""
	}
	c, _, _ := strings.Cut(rest, ".")
	return c
}

// Checkpoint is a signed statement of the log's size and root hash.
type Checkpoint struct {
	Size int64
	Root tlog.Hash
	Time time.Time
	// Note is the signed note (sumdb/note): the checkpoint text and its
	// signature lines.
	Note []byte
}

// String names the checkpoint for messages.
func (c Checkpoint) String() string { return fmt.Sprintf("checkpoint of size %d", c.Size) }
