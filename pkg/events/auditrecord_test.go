package events_test

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/uias/uias/pkg/events"
)

// hostileText are values whose escaping encoding/json gets a say in.
var hostileText = []string{
	"", "plain", `quote " and \ backslash`, "\x00\x01\x1f\x7f", "\b\f\n\r\t", "<script>&amp;</script>",
	"line\u2028sep\u2029para", "bad utf8 \xff\xfe end", "\xc3", "é中文🙂", "\u202e bidi \u200b",
}

// fill sets every string field of r to v (and every map to one entry of
// v), found by reflection, so that a field added to AuditRecord but not
// to AppendJSON fails the comparison.
func fill(r *events.AuditRecord, v string) {
	rv := reflect.ValueOf(r).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v + rv.Type().Field(i).Name)
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]string{"z" + v: v, "a": "1", v: "k"}))
		case reflect.Float64:
			f.SetFloat(float64(len(v)) + 0.125)
		}
	}
}

func appendJSON(t testing.TB, r *events.AuditRecord) []byte {
	t.Helper()
	got, err := r.AppendJSON([]byte("prefix"))
	if err != nil {
		t.Fatalf("%+v: %v", r, err)
	}
	if !bytes.HasPrefix(got, []byte("prefix")) {
		t.Fatalf("%s: lost what it appended to", got)
	}
	return got[len("prefix"):]
}

// checkRecord compares AppendJSON with encoding/json and decodes it back.
func checkRecord(t testing.TB, r events.AuditRecord) {
	t.Helper()
	want, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	got := appendJSON(t, &r)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendJSON\n got %s\nwant %s", got, want)
	}
	// The same bytes from the detail as fields in any order, each key
	// given first with a value a later field of the key replaces, whatever
	// r.Detail holds meanwhile.
	fields := make([]events.DetailField, 0, 2*len(r.Detail))
	for k := range r.Detail {
		fields = append(fields, events.DetailField{Key: k, Value: "stale " + k})
	}
	for k, v := range r.Detail {
		fields = append(fields, events.DetailField{Key: k, Value: v})
	}
	withFields := r
	withFields.Detail = map[string]string{"ignored": "x"}
	if got, err := withFields.AppendJSONDetail([]byte("prefix"), fields); err != nil || !bytes.Equal(got, append([]byte("prefix"), want...)) {
		t.Fatalf("AppendJSONDetail\n got %s (%v)\nwant prefix%s", got, err, want)
	}
	var back, wantBack events.AuditRecord
	if err := json.Unmarshal(got, &back); err != nil {
		t.Fatalf("%s does not decode: %v", got, err)
	}
	_ = json.Unmarshal(want, &wantBack)
	if !reflect.DeepEqual(back, wantBack) {
		t.Fatalf("decoded %+v, encoding/json's decodes to %+v", back, wantBack)
	}
}

func TestAuditRecordAppendJSON(t *testing.T) {
	checkRecord(t, events.AuditRecord{}) // zero: no detail, zero time
	for _, v := range hostileText {
		var r events.AuditRecord
		fill(&r, v)
		for _, tm := range []time.Time{{}, time.Date(2026, 12, 2, 16, 10, 0, 123456789, time.UTC),
			time.Date(2026, 12, 2, 16, 10, 0, 120000000, time.FixedZone("x", 8*3600))} {
			r.Time = tm
			checkRecord(t, r)
		}
	}
	many := map[string]string{}
	for i := range 40 { // more fields than AppendJSONDetail orders on the stack
		many[string(rune('z'-i%26))+hostileText[i%len(hostileText)]] = hostileText[(i+3)%len(hostileText)]
	}
	checkRecord(t, events.AuditRecord{Detail: many})
	for _, d := range []float64{0, 0.001, 2.5, 1234.567, 1e-7, 1e21} {
		checkRecord(t, events.AuditRecord{DurationMS: d, Detail: map[string]string{}})
	}
	// What json.Marshal refuses is refused, and b is left as given.
	for _, r := range []events.AuditRecord{{DurationMS: math.NaN()}, {DurationMS: math.Inf(1)},
		{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}} {
		if _, err := json.Marshal(r); err == nil {
			t.Fatalf("encoding/json accepts %+v", r)
		}
		if got, err := r.AppendJSON([]byte("x")); err == nil || string(got) != "x" {
			t.Errorf("%+v: got %s, %v; want x and an error", r, got, err)
		}
		if got, err := r.AppendJSONDetail([]byte("x"), []events.DetailField{{Key: "k", Value: "v"}}); err == nil || string(got) != "x" {
			t.Errorf("%+v with fields: got %s, %v; want x and an error", r, got, err)
		}
	}
}

func FuzzAuditRecordAppendJSON(f *testing.F) {
	for _, v := range hostileText {
		f.Add(v, v, 1.5, int64(1764691800123456789))
	}
	f.Fuzz(func(t *testing.T, a, b string, d float64, ns int64) {
		if math.IsNaN(d) || math.IsInf(d, 0) {
			return
		}
		r := events.AuditRecord{Serial: a, Actor: b, Reason: a + b, DurationMS: d, Time: time.Unix(0, ns).UTC()}
		fill(&r, a)
		r.Actor, r.Detail["k"+b] = b, a
		checkRecord(t, r)
	})
}
