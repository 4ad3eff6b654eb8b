package audit_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/audit"
	"github.com/uias/uias/services/audit/storetest"
)

func TestFromEvent(t *testing.T) {
	at := time.Date(2026, 12, 1, 10, 0, 0, 123456789, time.UTC)
	payload, _ := json.Marshal(events.AuditRecord{Serial: "r1", TraceID: "r1", AppID: "app", API: "authenticate", Actor: "app:app",
		Subject: "user:u", Org: "o", Result: "failure", Reason: "BAD_CREDENTIALS", DurationMS: 2.5, ClientIP: "192.0.2.1",
		Time: at, Detail: map[string]string{"k": "v"}})
	r := audit.FromEvent(events.Event{ID: "e1", Subject: "uias.audit.identity.authenticate", Type: "audit.authenticate", Time: at, Payload: payload})
	if r.EventID != "e1" || r.Component != "identity" || r.API != "authenticate" || r.Result != "failure" || r.ClientIP != "192.0.2.1" ||
		!r.Time.Equal(at.Truncate(time.Millisecond)) || r.Detail["k"] != "v" || r.DurationMS != 2.5 {
		t.Fatalf("record %+v", r)
	}
	// not an audit record: kept, escaped, never dropped
	bad := audit.FromEvent(events.Event{ID: "e2", Subject: "uias.audit.ticket.x", Type: "audit.session.create", Time: at,
		Payload: []byte("not json\n" + strings.Repeat("x", 1000))})
	if bad.API != "session.create" || bad.Component != "ticket" || !strings.HasPrefix(bad.Detail[audit.MalformedDetail], `not json\u000a`) ||
		len(bad.Detail[audit.MalformedDetail]) > 256 || bad.Time.IsZero() {
		t.Fatalf("malformed event: %+v", bad)
	}
}

// Records encoded by AuditRecord.AppendJSON (as every access and audit
// record is made) are read by the ingest's decoder (FromEvent) as those
// json.Marshal wrote, hostile values included, and make the same leaves.
func TestFromEventReadsAppendJSON(t *testing.T) {
	at := time.Date(2026, 12, 2, 16, 10, 0, 123456789, time.UTC)
	for _, v := range []string{"plain", "ctl \x00\x1f\n\t \" \\", "<b>&amp;</b>", "sep\u2028\u2029", "bad \xff\xfe utf8", "é中文🙂", "\u202e"} {
		rec := events.AuditRecord{Serial: v, TraceID: v, AppID: v, API: "authz.check", Actor: "user:" + v, Subject: v, Org: v,
			Result: "success", Reason: v, DurationMS: 1.234, ClientIP: "192.0.2.1", Time: at, Detail: map[string]string{"code": v, v: "x"}}
		payload, err := rec.AppendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		old, _ := json.Marshal(rec)
		ev := events.Event{ID: "e1", Subject: "uias.audit.authz.access", Type: "access", Time: at}
		ev.Payload = payload
		got := audit.FromEvent(ev)
		ev.Payload = old
		want := audit.FromEvent(ev)
		if _, bad := got.Detail[audit.MalformedDetail]; bad || got.Serial == "" {
			t.Fatalf("%q: not read as a record: %+v", v, got)
		}
		if !bytes.Equal(got.LeafData(), want.LeafData()) || got.Actor != want.Actor || got.Detail["code"] != want.Detail["code"] {
			t.Fatalf("%q: read as %+v, want %+v", v, got, want)
		}
	}
}

func TestLeafData(t *testing.T) {
	recs := storetest.Records("ev", 2)
	a, b := recs[0], recs[0]
	a.Detail = map[string]string{"x": "1", "a": "2", "m": "3"}
	b.Detail = map[string]string{"m": "3", "x": "1", "a": "2"}
	if !bytes.Equal(a.LeafData(), b.LeafData()) {
		t.Fatal("leaf data depends on map order")
	}
	nilDetail, emptyDetail := recs[1], recs[1]
	nilDetail.Detail, emptyDetail.Detail = nil, map[string]string{}
	if nilDetail.LeafHash() != emptyDetail.LeafHash() {
		t.Fatal("no detail and empty detail hash differently")
	}
	moved := a
	moved.Seq = 5
	if moved.LeafHash() == a.LeafHash() {
		t.Fatal("the record number is not part of the leaf")
	}
	for _, f := range []func(r *audit.Record){
		func(r *audit.Record) { r.Result = "denied" }, func(r *audit.Record) { r.Time = r.Time.Add(time.Millisecond) },
		func(r *audit.Record) { r.DurationMS += 0.001 }, func(r *audit.Record) { r.Detail["a"] = "3" },
		func(r *audit.Record) { r.EventID = "other" }, func(r *audit.Record) { r.ClientIP = "" },
	} {
		c := a
		c.Detail = map[string]string{"x": "1", "a": "2", "m": "3"}
		f(&c)
		if c.LeafHash() == a.LeafHash() {
			t.Fatalf("a change leaves the leaf hash: %+v", c)
		}
	}
}

func TestOpenCheckpoint(t *testing.T) {
	s := storetest.Signer(t)
	var root [32]byte
	root[0] = 7
	cp, err := s.Sign(42, root, time.Unix(1_800_000_000, 5e6))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Open(cp.Note)
	if err != nil || got.Size != 42 || got.Root != root || got.Time.UnixMilli() != 1_800_000_000_005 {
		t.Fatalf("open: %+v %v", got, err)
	}
	known, _ := audit.VerifiersFromKeys(s.VerifierKeys())
	if _, err := audit.OpenCheckpoint(cp.Note, "another.log", known); err == nil {
		t.Fatal("a checkpoint of another log opened")
	}
	edited := bytes.Replace(cp.Note, []byte("\n42\n"), []byte("\n43\n"), 1)
	if _, err := s.Open(edited); err == nil {
		t.Fatal("an edited checkpoint opened")
	}
	if _, err := audit.VerifiersFromKeys([]string{"not a key"}); err == nil {
		t.Fatal("a bad verifier key parsed")
	}
	if audit.ValidOrigin("a b") || audit.ValidOrigin("") || !audit.ValidOrigin("centre-1.example/audit") {
		t.Fatal("ValidOrigin")
	}
}

func TestMask(t *testing.T) {
	for in, want := range map[string]string{
		"account:6222021234567890123":        "account:6222***********0123",
		"card 6222 0212":                     "card 6222 0212",
		"account:110101199003071234":         "account:110*************34",
		"phone 13812345678":                  "phone 138****5678",
		"event 01a232dc5ce6657f463732952287": "event 01a232dc5ce6657f463732952287",
		"id:a1234567890123b":                 "id:a1234567890123b",
		"short 23456789012":                  "short 23456789012",
		"acct=123456789012;x":                "acct=1234****9012;x",
		"":                                   "",
	} {
		if got := audit.Mask(in); got != want {
			t.Errorf("Mask(%q) = %q, want %q", in, got, want)
		}
	}
	payload, _ := json.Marshal(events.AuditRecord{API: "authenticate", Subject: "account:6222021234567890123",
		Actor: "user:13812345678", Detail: map[string]string{"id_number": "110101199003071234"}})
	r := audit.FromEvent(events.Event{ID: "e", Subject: "uias.audit.identity.authenticate", Type: "audit.authenticate", Payload: payload})
	if r.Subject != "account:6222***********0123" || r.Actor != "user:138****5678" || r.Detail["id_number"] != "110*************34" {
		t.Fatalf("record stored in clear: %+v", r)
	}
}

// An export's record keeps the caller's filter values as every caller
// text is kept: escaped (a bidi override cannot reorder the record on a
// screen) and cut; the remark whole (review sec9 L5).
func TestExportRecordFilterText(t *testing.T) {
	long := strings.Repeat("x", 1000)
	r := audit.ExportRecord(audit.Export{Report: "records", Format: audit.CSV, Remark: "备注", Filter: audit.Query{Text: "a\u202eb", Subject: long,
		Origin: "l2a.audit"}}, time.Now())
	if got := r.Detail["filter_text"]; got != `a\u202eb` {
		t.Errorf("filter_text %q", got)
	}
	if got := r.Detail["filter_subject"]; len(got) >= len(long) || !strings.HasSuffix(got, "…") {
		t.Errorf("filter_subject not cut: %d bytes", len(got))
	}
	if r.Detail["remark"] != "备注" {
		t.Errorf("remark %q", r.Detail["remark"])
	}
	if r.Detail["filter_origin"] != "l2a.audit" { // an export of one centre's log says so (ADR 0029)
		t.Errorf("filter_origin %q", r.Detail["filter_origin"])
	}
}
