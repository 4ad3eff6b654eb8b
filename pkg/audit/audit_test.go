package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
)

func decode(t *testing.T, ev events.Event) (events.AuditRecord, map[string]any) {
	t.Helper()
	var rec events.AuditRecord
	if err := json.Unmarshal(ev.Payload, &rec); err != nil {
		t.Fatal(err)
	}
	var keys map[string]any
	if err := json.Unmarshal(ev.Payload, &keys); err != nil {
		t.Fatal(err)
	}
	return rec, keys
}

func TestEventRecordsTheCaller(t *testing.T) {
	start := time.Date(2026, 11, 3, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
	b := audit.NewBuilder("ticket", func() time.Time { return start.Add(1500 * time.Microsecond) })
	ctx := caller.With(context.Background(), &caller.Caller{App: &caller.App{ID: "app-7"}, Principal: "u-1",
		ClientIP: netip.MustParseAddr("2001:db8::9"), RequestID: "req-42"})
	ev := b.Event(ctx, audit.Action{API: "session.create", Subject: "user:u-2", Org: "org-3",
		Result: audit.ResultSuccess, Reason: "OK", Start: start, Detail: map[string]string{"level": "2"}})

	if ev.Subject != "uias.audit.ticket.session.create" || ev.Type != "audit.session.create" {
		t.Fatalf("subject %q type %q", ev.Subject, ev.Type)
	}
	if err := events.ValidateEvent(ev); err != nil {
		t.Fatalf("the outbox would refuse the event: %v", err)
	}
	rec, keys := decode(t, ev)
	want := events.AuditRecord{Serial: "req-42", TraceID: "req-42", AppID: "app-7", API: "session.create",
		Actor: "user:u-1", Subject: "user:u-2", Org: "org-3", Result: "success", Reason: "OK",
		DurationMS: 1.5, ClientIP: "2001:db8::9", Time: start.Add(1500 * time.Microsecond).UTC()}
	if rec.Detail["level"] != "2" {
		t.Errorf("detail %v", rec.Detail)
	}
	rec.Detail = nil
	if !reflect.DeepEqual(rec, want) {
		t.Errorf("record\n got %+v\nwant %+v", rec, want)
	}
	if rec.Time.Location() != time.UTC || !ev.Time.Equal(rec.Time) {
		t.Errorf("time %v (event %v), want the same instant in UTC", rec.Time, ev.Time)
	}
	for _, k := range []string{"serial", "trace_id", "app_id", "api", "actor", "subject", "org", "result", "reason", "duration_ms", "client_ip", "time"} {
		if _, ok := keys[k]; !ok {
			t.Errorf("record lacks %q: %s", k, ev.Payload)
		}
	}
}

func TestEventWithoutCaller(t *testing.T) {
	b := audit.NewBuilder("identity", nil)
	start := time.Now()
	ev := b.Event(context.Background(), audit.Action{API: "authenticate", Result: audit.ResultFailure, Reason: "BAD_REQUEST", Start: start})
	rec, keys := decode(t, ev)
	if rec.Actor != "anonymous" || rec.AppID != "" || rec.ClientIP != "" || rec.Serial != "" {
		t.Fatalf("record of an unknown caller: %+v", rec)
	}
	if _, ok := keys["detail"]; ok {
		t.Errorf("empty detail is written: %s", ev.Payload)
	}
	if rec.DurationMS < 0 || rec.Time.Before(start.UTC()) {
		t.Errorf("duration %v time %v for a call started at %v", rec.DurationMS, rec.Time, start)
	}
	if b.Event(context.Background(), audit.Action{API: "x"}).ID == ev.ID {
		t.Fatal("two events got one id")
	}
}

func TestCallerDenied(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	b := audit.NewBuilder("identity", func() time.Time { return now })
	ctx := caller.With(context.Background(), &caller.Caller{ClientIP: netip.MustParseAddr("198.51.100.4"), RequestID: "r-9"})
	ev := b.CallerDenied(ctx, "claimed-app", "BAD_APP_CREDENTIALS", now.Add(-time.Millisecond))
	rec, _ := decode(t, ev)
	if ev.Subject != "uias.audit.identity.caller.denied" || rec.API != audit.APICallerDenied ||
		rec.Subject != "app:claimed-app" || rec.Detail["app_id"] != "claimed-app" || rec.Result != audit.ResultDenied ||
		rec.Reason != "BAD_APP_CREDENTIALS" || rec.Actor != "anonymous" || rec.ClientIP != "198.51.100.4" ||
		rec.Serial != "r-9" || rec.DurationMS != 1 {
		t.Fatalf("caller.denied record: subject %q %+v", ev.Subject, rec)
	}
}

// A signed call's records name the key that verified it; an unsigned
// call's have no such detail.
func TestEventRecordsTheSigningKey(t *testing.T) {
	b := audit.NewBuilder("identity", nil)
	thumb := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	sig := strings.Repeat("QUJD", 171) // an RSA 4096 signature's length
	signed := caller.With(context.Background(), &caller.Caller{App: &caller.App{ID: "app-7"}, SignedKey: thumb,
		Signed: &caller.SignedRequest{Signature: sig, Timestamp: "1800000000", Nonce: "nonce-0123456789ab",
			Target: "POST /v1/authenticate?x=1", BodySHA256: thumb}})
	rec, _ := decode(t, b.Event(signed, audit.Action{API: "authenticate", Result: audit.ResultSuccess, Start: time.Now()}))
	// The evidence, whole: with the application's copy of the request and
	// the key, a third party checks the signature.
	for k, v := range map[string]string{"signed_key": thumb, "signature": sig, "signed_timestamp": "1800000000",
		"signed_nonce": "nonce-0123456789ab", "signed_target": "POST /v1/authenticate?x=1", "signed_body_sha256": thumb} {
		if rec.Detail[k] != v {
			t.Fatalf("signed call: detail %s = %q, want %q", k, rec.Detail[k], v)
		}
	}
	unsigned := caller.With(context.Background(), &caller.Caller{App: &caller.App{ID: "app-7"}})
	rec, _ = decode(t, b.Event(unsigned, audit.Action{API: "authenticate", Result: audit.ResultSuccess, Start: time.Now()}))
	if _, ok := rec.Detail["signed_key"]; ok {
		t.Fatalf("unsigned call: detail %v", rec.Detail)
	}
}

// ResultOf: an administrator's change that ended well, with a domain
// error (its reason), or with another error.
func TestResultOf(t *testing.T) {
	for _, c := range []struct {
		err            error
		result, reason string
	}{
		{nil, audit.ResultSuccess, "OK"},
		{apierr.New(apierr.NotFound, "NOT_FOUND", "no such thing"), audit.ResultFailure, "NOT_FOUND"},
		{errors.New("disk on fire"), audit.ResultFailure, "ERROR"},
	} {
		if r, why := audit.ResultOf(c.err); r != c.result || why != c.reason {
			t.Errorf("ResultOf(%v) = %s %s, want %s %s", c.err, r, why, c.result, c.reason)
		}
	}
}
