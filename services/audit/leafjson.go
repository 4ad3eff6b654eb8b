package audit

import (
	"crypto/sha256"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/jsonenc"
)

// The leaf of a record is canonical JSON whose bytes are fixed forever:
// logs written since the first version hash them. They were made with
// encoding/json (a struct of the record's fields, HTML escaping on, detail
// keys sorted). This file writes exactly the same bytes by hand
// (pkg/jsonenc), without reflection or a map sort through interfaces: leaf
// encoding was most of the CPU of hashing a record. leafjson_test.go compares both encoders on
// random and hostile inputs.

// LeafColumns is a record as a store keeps it in columns: what a store
// that reads the log in bulk (LeafScanner) builds leaves from without a
// Record. Detail is the stored detail text (EncodeDetail's JSON; "" stands
// for "{}"), put into the leaf as it is: an equivalent but differently
// written detail no longer matches the leaf, which Verify then reports.
type LeafColumns struct {
	Seq                                                              int64
	EventID, Type, Component                                         string
	TimeMS                                                           int64
	Serial, TraceID, AppID, API, Actor, Subject, Org, Result, Reason string
	DurationMS                                                       float64
	ClientIP                                                         string
	Detail                                                           string
}

// AppendLeaf appends the leaf of the record c holds: the same bytes as
// (*Record).LeafData of that record, read back from its columns. False
// when it has none (see appendLeaf).
func (c *LeafColumns) AppendLeaf(dst []byte) ([]byte, bool) {
	dst, ok := appendLeafHead(dst, c)
	if !ok {
		return dst, false
	}
	if c.Detail == "" {
		dst = append(dst, '{', '}')
	} else {
		dst = append(dst, c.Detail...)
	}
	return append(dst, '}'), true
}

// appendLeaf appends the record's leaf (see LeafData); false when it has
// none (a NaN or infinite duration, which encoding/json refused: such a
// leaf was empty).
func (r *Record) appendLeaf(dst []byte) ([]byte, bool) {
	c := LeafColumns{Seq: r.Seq, EventID: r.EventID, Type: r.Type, Component: r.Component, TimeMS: r.Time.UnixMilli(),
		Serial: r.Serial, TraceID: r.TraceID, AppID: r.AppID, API: r.API, Actor: r.Actor, Subject: r.Subject, Org: r.Org,
		Result: r.Result, Reason: r.Reason, DurationMS: r.DurationMS, ClientIP: r.ClientIP}
	dst, ok := appendLeafHead(dst, &c)
	if !ok {
		return dst, false
	}
	dst = jsonenc.AppendStringMap(dst, r.Detail)
	return append(dst, '}'), true
}

// appendLeafHead appends the leaf up to its detail (`..."detail":`); false
// for a NaN or infinite duration.
func appendLeafHead(dst []byte, r *LeafColumns) ([]byte, bool) {
	dst = append(dst, `{"v":1,"seq":`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, `,"event_id":`...)
	dst = jsonenc.AppendString(dst, r.EventID)
	dst = append(dst, `,"type":`...)
	dst = jsonenc.AppendString(dst, r.Type)
	dst = append(dst, `,"component":`...)
	dst = jsonenc.AppendString(dst, r.Component)
	dst = append(dst, `,"time_ms":`...)
	dst = strconv.AppendInt(dst, r.TimeMS, 10)
	dst = append(dst, `,"serial":`...)
	dst = jsonenc.AppendString(dst, r.Serial)
	dst = append(dst, `,"trace_id":`...)
	dst = jsonenc.AppendString(dst, r.TraceID)
	dst = append(dst, `,"app_id":`...)
	dst = jsonenc.AppendString(dst, r.AppID)
	dst = append(dst, `,"api":`...)
	dst = jsonenc.AppendString(dst, r.API)
	dst = append(dst, `,"actor":`...)
	dst = jsonenc.AppendString(dst, r.Actor)
	dst = append(dst, `,"subject":`...)
	dst = jsonenc.AppendString(dst, r.Subject)
	dst = append(dst, `,"org":`...)
	dst = jsonenc.AppendString(dst, r.Org)
	dst = append(dst, `,"result":`...)
	dst = jsonenc.AppendString(dst, r.Result)
	dst = append(dst, `,"reason":`...)
	dst = jsonenc.AppendString(dst, r.Reason)
	dst = append(dst, `,"duration_ms":`...)
	dst, err := jsonenc.AppendFloat(dst, r.DurationMS)
	ok := err == nil
	if !ok {
		return dst, false
	}
	dst = append(dst, `,"client_ip":`...)
	dst = jsonenc.AppendString(dst, r.ClientIP)
	return append(dst, `,"detail":`...), true
}

// leafHashBuf is r.LeafHash() using buf as scratch space; it returns the
// buffer for the next call.
func (r *Record) leafHashBuf(buf []byte) (tlog.Hash, []byte) {
	buf = append(buf[:0], 0) // RFC 6962 leaf prefix
	buf, ok := r.appendLeaf(buf)
	if !ok {
		buf = buf[:1]
	}
	return tlog.Hash(sha256.Sum256(buf)), buf
}

// EncodeDetail is the JSON of a record's detail as stored (keys sorted,
// {} when empty).
func EncodeDetail(d map[string]string) string {
	if len(d) == 0 {
		return "{}"
	}
	return string(jsonenc.AppendStringMap(make([]byte, 0, 64), d))
}

// DecodeDetail reads a stored detail (EncodeDetail's JSON) as
// encoding/json.Unmarshal would into a map[string]string: by hand for the
// plain form EncodeDetail writes when no string needs escaping (no
// whitespace, no backslash, no control character, valid UTF-8), through
// encoding/json otherwise. "{}" and "" are an empty (nil) map.
func DecodeDetail(s string) (map[string]string, error) {
	if s == "{}" || s == "" {
		return nil, nil
	}
	if m, ok := decodePlainDetail(s); ok {
		return m, nil
	}
	var m map[string]string
	err := json.Unmarshal([]byte(s), &m)
	return m, err
}

// decodePlainDetail decodes {"k":"v",...} whose strings have no escapes;
// false for anything else.
func decodePlainDetail(s string) (map[string]string, bool) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return nil, false
	}
	m := make(map[string]string, 4)
	i := 1
	str := func() (string, bool) {
		if i >= len(s) || s[i] != '"' {
			return "", false
		}
		start := i + 1
		ascii := true
		for j := start; j < len(s); j++ {
			switch c := s[j]; {
			case c == '"':
				v := s[start:j]
				if !ascii && !utf8.ValidString(v) {
					return "", false
				}
				i = j + 1
				return v, true
			case c == '\\' || c < 0x20:
				return "", false
			case c >= utf8.RuneSelf:
				ascii = false
			}
		}
		return "", false
	}
	for {
		k, ok := str()
		if !ok || i >= len(s) || s[i] != ':' {
			return nil, false
		}
		i++
		v, ok := str()
		if !ok || i >= len(s) {
			return nil, false
		}
		m[k] = v
		switch s[i] {
		case ',':
			i++
		case '}':
			if i != len(s)-1 {
				return nil, false
			}
			return m, true
		default:
			return nil, false
		}
	}
}
