package audit

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"
)

// oldLeaf is the leaf as the first version wrote it, with encoding/json:
// every log written since hashes these bytes, so the hand-written encoder
// must reproduce them exactly.
type oldLeaf struct {
	V          int               `json:"v"`
	Seq        int64             `json:"seq"`
	EventID    string            `json:"event_id"`
	Type       string            `json:"type"`
	Component  string            `json:"component"`
	TimeMS     int64             `json:"time_ms"`
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
	Detail     map[string]string `json:"detail"`
}

func oldLeafData(r *Record) []byte {
	d := r.Detail
	if d == nil {
		d = map[string]string{}
	}
	b, _ := json.Marshal(oldLeaf{V: 1, Seq: r.Seq, EventID: r.EventID, Type: r.Type, Component: r.Component,
		TimeMS: r.Time.UnixMilli(), Serial: r.Serial, TraceID: r.TraceID, AppID: r.AppID, API: r.API,
		Actor: r.Actor, Subject: r.Subject, Org: r.Org, Result: r.Result, Reason: r.Reason,
		DurationMS: r.DurationMS, ClientIP: r.ClientIP, Detail: d})
	return b
}

// hostile are strings that exercise every escaping rule.
var hostile = []string{"", "plain", `q"uote`, `back\slash`, "<script>&amp;</script>", "\x00\x01\x07\b\f\n\r\t\x1f\x7f",
	"张三 \u202e", "line\u2028para\u2029", "bad \xff\xfe utf8 \xc3", "\xed\xa0\x80 surrogate", "emoji 😀", "\u00e9\u0301",
	strings.Repeat("x", 300), "tab\tand\"quote<>&", "\u2027\u202a"}

func randString(rng *rand.Rand) string {
	if rng.IntN(3) == 0 {
		return hostile[rng.IntN(len(hostile))]
	}
	n := rng.IntN(24)
	b := make([]byte, n)
	for i := range b {
		switch rng.IntN(4) {
		case 0:
			b[i] = byte(rng.IntN(256)) // anything, invalid UTF-8 too
		case 1:
			b[i] = byte(rng.IntN(0x20))
		default:
			b[i] = byte(0x20 + rng.IntN(0x5f))
		}
	}
	return string(b)
}

func randFloat(rng *rand.Rand) float64 {
	switch rng.IntN(8) {
	case 0:
		return 0
	case 1:
		return math.Copysign(0, -1)
	case 2:
		return float64(rng.IntN(100000)) / 100
	case 3:
		return rng.Float64() * 1e-7
	case 4:
		return rng.Float64() * 1e25
	case 5:
		return -rng.Float64() * math.Pow(10, float64(rng.IntN(40)-20))
	case 6:
		return math.Float64frombits(rng.Uint64())
	}
	return 1e21
}

// TestLeafDataMatchesEncodingJSON: the hand-written leaf is byte for byte
// what encoding/json wrote, on random and hostile records.
func TestLeafDataMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for i := range 20000 {
		r := Record{Seq: rng.Int64N(1 << 40), EventID: randString(rng), Type: randString(rng), Component: randString(rng),
			Time: time.UnixMilli(rng.Int64N(1<<42) - 1<<40), Serial: randString(rng), TraceID: randString(rng),
			AppID: randString(rng), API: randString(rng), Actor: randString(rng), Subject: randString(rng), Org: randString(rng),
			Result: randString(rng), Reason: randString(rng), DurationMS: randFloat(rng), ClientIP: randString(rng)}
		if i%5 != 0 {
			r.Detail = map[string]string{}
			for range rng.IntN(20) {
				r.Detail[randString(rng)] = randString(rng)
			}
		}
		want, got := oldLeafData(&r), r.LeafData()
		if string(got) != string(want) {
			t.Fatalf("record %d:\n got %q\nwant %q", i, got, want)
		}
		if r.LeafHash() != tlog.RecordHash(want) {
			t.Fatalf("record %d: leaf hash differs", i)
		}
		if d := EncodeDetail(r.Detail); len(r.Detail) > 0 {
			want, _ := json.Marshal(r.Detail)
			if d != string(want) {
				t.Fatalf("record %d: detail %q, encoding/json %q", i, d, want)
			}
			var viaJSON map[string]string
			jerr := json.Unmarshal([]byte(d), &viaJSON)
			got, err := DecodeDetail(d)
			if (err == nil) != (jerr == nil) || fmt.Sprint(got) != fmt.Sprint(viaJSON) {
				t.Fatalf("record %d: detail %q decodes to %v (%v), encoding/json %v (%v)", i, d, got, err, viaJSON, jerr)
			}
		}
	}
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		r := Record{DurationMS: f}
		if got := r.LeafData(); got != nil || oldLeafData(&r) != nil || r.LeafHash() != tlog.RecordHash(nil) {
			t.Fatalf("duration %v: leaf %q", f, got)
		}
	}
}

// TestDecodeDetail: the hand decoder agrees with encoding/json on plain
// and odd inputs (those it does not take go to encoding/json).
func TestDecodeDetail(t *testing.T) {
	for _, s := range []string{`{"a":"b"}`, `{"a":"b","c":"d"}`, `{"a":"b","a":"c"}`, `{"":""}`, `{"名前":"张三"}`,
		`{ "a":"b"}`, `{"a":"b" }`, `{"a":"b",}`, `{"a":"b"}x`, `{"a\"b":"c"}`, `{"a":1}`, `{"a":"é"}`,
		"{\"a\":\"\xff\"}", `{"a":"b"`, `{"a"}`, `{"a":"b"}}`, `[1]`, `{"a":"b","c"}`, `null`} {
		var want map[string]string
		jerr := json.Unmarshal([]byte(s), &want)
		got, err := DecodeDetail(s)
		if (err == nil) != (jerr == nil) || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%q: %v (%v), encoding/json %v (%v)", s, got, err, want, jerr)
		}
	}
}

func BenchmarkLeafHash(b *testing.B) {
	r := Record{Seq: 123456, EventID: "0b8f4c2a9e1d4f6a8c3b", Type: "audit.authenticate", Component: "identity",
		Time: time.Now(), Serial: "f00dfeedcafe0001", TraceID: "f00dfeedcafe0002", AppID: "app-12", API: "authenticate",
		Actor: "app:app-12", Subject: "user:u4711", Org: "org-3", Result: "success", Reason: "OK", DurationMS: 12.5,
		ClientIP: "10.1.2.3", Detail: map[string]string{"login": "zhang.san", "method": "password"}}
	b.Run("encoding/json", func(b *testing.B) {
		for range b.N {
			_ = tlog.RecordHash(oldLeafData(&r))
		}
	})
	b.Run("hand", func(b *testing.B) {
		buf := make([]byte, 0, 512)
		for range b.N {
			_, buf = r.leafHashBuf(buf)
		}
	})
}
