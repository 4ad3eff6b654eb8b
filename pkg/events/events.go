// Package events carries domain change and audit events from a component's database to
// NATS JetStream through a transactional outbox: events are written in the same
// transaction as the change they describe (AddToOutbox), and a Relay publishes them in
// order with their ID as the JetStream message id, so a retried publish is deduplicated.
package events

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/pkg/jsonenc"
)

// Event is one change or audit event.
type Event struct {
	ID      string    // unique id (used as Nats-Msg-Id)
	Subject string    // e.g. uias.changes.identity.user.created / uias.audit.identity.login
	Type    string    // e.g. user.created
	Time    time.Time // when it happened
	Payload []byte    // JSON
}

// Stream names and the subjects they capture.
const (
	StreamChanges = "CHANGES" // subjects "uias.changes.>"
	StreamAudit   = "AUDIT"   // subjects "uias.audit.>"

	SubjectsChanges = "uias.changes.>"
	SubjectsAudit   = "uias.audit.>"

	// DuplicateWindow is how long JetStream remembers message ids for deduplication.
	DuplicateWindow = 2 * time.Minute
)

// Message headers set by the relay besides jetstream.MsgIDHeader (Nats-Msg-Id = Event.ID).
const (
	HeaderType = "Uias-Event-Type"
	HeaderTime = "Uias-Event-Time" // RFC 3339 with nanoseconds, UTC
)

// NewID returns a random 128-bit event id (32 hex characters); see package
// ids for ids that sort by creation.
func NewID() string { return ids.Random() }

// StreamConfigs returns the configurations EnsureStreams applies.
func StreamConfigs() []jetstream.StreamConfig {
	return []jetstream.StreamConfig{
		{
			Name:        StreamChanges,
			Description: "UIAS domain change events",
			Subjects:    []string{SubjectsChanges},
			Storage:     jetstream.FileStorage,
			Duplicates:  DuplicateWindow,
		},
		{
			Name:        StreamAudit,
			Description: "UIAS audit records",
			Subjects:    []string{SubjectsAudit},
			Storage:     jetstream.FileStorage,
			Duplicates:  DuplicateWindow,
		},
	}
}

// EnsureStreams makes sure the CHANGES and AUDIT streams exist with the
// expected configuration (file storage, 2 minute duplicate window): a
// missing stream is created, one whose subjects or duplicate window differ
// is updated, and one that is already right is only read
// ($JS.API.STREAM.INFO). So components whose NATS user may neither create
// nor edit streams (microservices mode, deploy/nats) pass once an operator
// has run "uias nats setup", and the setup itself uses the same function.
func EnsureStreams(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range StreamConfigs() {
		s, err := js.Stream(ctx, cfg.Name)
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound):
			_, err = js.CreateStream(ctx, cfg)
			if err != nil {
				return streamErr(js, "create", cfg.Name, err)
			}
		case err != nil:
			return streamErr(js, "read", cfg.Name, err)
		case !StreamUpToDate(s.CachedInfo().Config, cfg):
			// The retention is not ours to reset: the audit component
			// (audit.stream_max_age) or an operator sets it.
			cfg.MaxAge = s.CachedInfo().Config.MaxAge
			if _, err := js.UpdateStream(ctx, cfg); err != nil {
				return streamErr(js, "update", cfg.Name, err)
			}
		}
	}
	return nil
}

// StreamUpToDate reports whether have carries what EnsureStreams sets in want
// (subjects, storage, duplicate window).
func StreamUpToDate(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Storage == want.Storage && have.Duplicates == want.Duplicates
}

// ErrStreamsNotAllowed reports that this NATS user may not create or edit
// the UIAS streams (see EnsureStreams).
var ErrStreamsNotAllowed = errors.New("this NATS user may not create or change UIAS streams: run \"uias nats setup\" with the setup credentials (docs/operators.md)")

// streamErr names the stream and the operation; a request the server refused
// for lack of permissions (it answers nothing, so the request times out)
// becomes ErrStreamsNotAllowed.
func streamErr(js jetstream.JetStream, op, name string, err error) error {
	if nc := js.Conn(); nc != nil && errors.Is(nc.LastError(), nats.ErrPermissionViolation) &&
		strings.Contains(nc.LastError().Error(), "$JS.API.STREAM.") {
		return fmt.Errorf("events: %s JetStream stream %s: %w", op, name, ErrStreamsNotAllowed)
	}
	return fmt.Errorf("events: %s JetStream stream %s: %w", op, name, err)
}

// EventFromMsg rebuilds the Event carried by a JetStream message published
// by the relay (a pack carries several: EventsFromMsg).
func EventFromMsg(msg jetstream.Msg) (Event, error) {
	return eventOf(msg.Subject(), msg.Headers(), msg.Data())
}

// AuditRecord is the standard audit payload.
type AuditRecord struct {
	Serial     string            `json:"serial"`
	TraceID    string            `json:"trace_id"`
	AppID      string            `json:"app_id"`
	API        string            `json:"api"`
	Actor      string            `json:"actor"`
	Subject    string            `json:"subject"`
	Org        string            `json:"org"`
	Result     string            `json:"result"`
	Reason     string            `json:"reason"`
	DurationMS float64           `json:"duration_ms"`
	ClientIP   string            `json:"client_ip"`
	Time       time.Time         `json:"time"`
	Detail     map[string]string `json:"detail,omitempty"`
}

// AppendJSON appends the record as JSON to b: the bytes json.Marshal
// writes for it (without its reflection; a record is made for every API
// call), so readers decode it with encoding/json as always. Its error,
// with b as given, is json.Marshal's: a NaN or infinite duration, a time
// outside the years 0-9999. A field added to AuditRecord is one line here,
// in the struct's order (TestAuditRecordAppendJSON compares every field
// with encoding/json).
func (r *AuditRecord) AppendJSON(b []byte) ([]byte, error) {
	b0 := b
	b, err := r.appendHead(b)
	if err != nil {
		return b0, err
	}
	if len(r.Detail) > 0 { // omitempty
		b = jsonenc.AppendStringMap(append(b, `,"detail":`...), r.Detail)
	}
	return append(b, '}'), nil
}

// DetailField is an entry of an audit record's detail (AppendJSONDetail).
type DetailField struct{ Key, Value string }

// AppendJSONDetail is AppendJSON with the detail given as fields, in any
// order, instead of r.Detail (which it ignores): the bytes AppendJSON
// writes for the record whose Detail map was set from the fields one by
// one (of fields with the same key the last counts). A producer builds
// its records' details so, without a map.
func (r *AuditRecord) AppendJSONDetail(b []byte, detail []DetailField) ([]byte, error) {
	b0 := b
	b, err := r.appendHead(b)
	if err != nil {
		return b0, err
	}
	if len(detail) > 0 { // omitempty
		// The fields' order by key (JSON of a map: sorted keys), as
		// indexes: sorting the fields themselves would move strings.
		var small [32]uint16
		order := small[:0]
		if len(detail) > len(small) {
			order = make([]uint16, 0, len(detail))
		}
		for i := range detail {
			order = append(order, uint16(i))
		}
		if len(order) <= len(small) { // insertion sort: a few fields
			for i := 1; i < len(order); i++ {
				for j := i; j > 0 && detail[order[j]].Key < detail[order[j-1]].Key; j-- {
					order[j], order[j-1] = order[j-1], order[j]
				}
			}
		} else {
			slices.SortStableFunc(order, func(x, y uint16) int { return strings.Compare(detail[x].Key, detail[y].Key) })
		}
		b = append(b, `,"detail":{`...)
		first := true
		for k, i := range order {
			f := &detail[i]
			if k+1 < len(order) && detail[order[k+1]].Key == f.Key {
				continue // a later field of the same key
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			b = jsonenc.AppendString(b, f.Key)
			b = jsonenc.AppendString(append(b, ':'), f.Value)
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// appendHead appends the record up to its detail (AppendJSON).
func (r *AuditRecord) appendHead(b []byte) ([]byte, error) {
	var err error
	b = jsonenc.AppendString(append(b, `{"serial":`...), r.Serial)
	b = jsonenc.AppendString(append(b, `,"trace_id":`...), r.TraceID)
	b = jsonenc.AppendString(append(b, `,"app_id":`...), r.AppID)
	b = jsonenc.AppendString(append(b, `,"api":`...), r.API)
	b = jsonenc.AppendString(append(b, `,"actor":`...), r.Actor)
	b = jsonenc.AppendString(append(b, `,"subject":`...), r.Subject)
	b = jsonenc.AppendString(append(b, `,"org":`...), r.Org)
	b = jsonenc.AppendString(append(b, `,"result":`...), r.Result)
	b = jsonenc.AppendString(append(b, `,"reason":`...), r.Reason)
	if b, err = jsonenc.AppendFloat(append(b, `,"duration_ms":`...), r.DurationMS); err != nil {
		return b, err
	}
	b = jsonenc.AppendString(append(b, `,"client_ip":`...), r.ClientIP)
	return jsonenc.AppendTime(append(b, `,"time":`...), r.Time)
}
