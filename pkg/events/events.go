// Package events carries domain change and audit events from a component's database to
// NATS JetStream through a transactional outbox: events are written in the same
// transaction as the change they describe (AddToOutbox), and a Relay publishes them in
// order with their ID as the JetStream message id, so a retried publish is deduplicated.
package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/uias/uias/pkg/ids"
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

// EnsureStreams creates the CHANGES and AUDIT streams, or updates them to the expected
// configuration (file storage, 2 minute duplicate window).
func EnsureStreams(ctx context.Context, js jetstream.JetStream) error {
	for _, cfg := range StreamConfigs() {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("events: create or update JetStream stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// EventFromMsg rebuilds the Event carried by a JetStream message published by the relay.
func EventFromMsg(msg jetstream.Msg) (Event, error) {
	h := msg.Headers()
	ev := Event{
		ID:      h.Get(jetstream.MsgIDHeader),
		Subject: msg.Subject(),
		Type:    h.Get(HeaderType),
		Payload: msg.Data(),
	}
	if ts := h.Get(HeaderTime); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return ev, fmt.Errorf("events: message %q has an invalid %s header: %w", ev.ID, HeaderTime, err)
		}
		ev.Time = t
	}
	return ev, nil
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
