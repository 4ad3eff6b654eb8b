package audit

import (
	"crypto/sha256"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"unicode/utf8"

	"golang.org/x/mod/sumdb/tlog"
)

// The leaf of a record is canonical JSON whose bytes are fixed forever:
// logs written since the first version hash them. They were made with
// encoding/json (a struct of the record's fields, HTML escaping on, detail
// keys sorted). This file writes exactly the same bytes by hand, without
// reflection or a map sort through interfaces: leaf encoding was most of
// the CPU of hashing a record. leafjson_test.go compares both encoders on
// random and hostile inputs.

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string exactly as encoding/json's
// Marshal writes it: ", \ and control characters escaped (\b \f \n \r \t
// by name, others as \u00XX), <, > and & as \u003c \u003e \u0026, invalid
// UTF-8 bytes as \ufffd, U+2028 and U+2029 as \u2028 and \u2029.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendJSONFloat appends f as encoding/json writes a float64 (ES6 number
// formatting); false for NaN and infinities, which it refuses.
func appendJSONFloat(dst []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return dst, false
	}
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// e-09 becomes e-9, as encoding/json writes it
		n := len(dst)
		if n >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst, true
}

// appendJSONMap appends d as encoding/json writes a map[string]string
// (keys sorted; nil as {} here, as the leaf always wrote it).
func appendJSONMap(dst []byte, d map[string]string) []byte {
	if len(d) == 0 {
		return append(dst, '{', '}')
	}
	var small [16]string
	keys := small[:0]
	for k := range d {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendJSONString(dst, k)
		dst = append(dst, ':')
		dst = appendJSONString(dst, d[k])
	}
	return append(dst, '}')
}

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
	dst = appendJSONMap(dst, r.Detail)
	return append(dst, '}'), true
}

// appendLeafHead appends the leaf up to its detail (`..."detail":`); false
// for a NaN or infinite duration.
func appendLeafHead(dst []byte, r *LeafColumns) ([]byte, bool) {
	dst = append(dst, `{"v":1,"seq":`...)
	dst = strconv.AppendInt(dst, r.Seq, 10)
	dst = append(dst, `,"event_id":`...)
	dst = appendJSONString(dst, r.EventID)
	dst = append(dst, `,"type":`...)
	dst = appendJSONString(dst, r.Type)
	dst = append(dst, `,"component":`...)
	dst = appendJSONString(dst, r.Component)
	dst = append(dst, `,"time_ms":`...)
	dst = strconv.AppendInt(dst, r.TimeMS, 10)
	dst = append(dst, `,"serial":`...)
	dst = appendJSONString(dst, r.Serial)
	dst = append(dst, `,"trace_id":`...)
	dst = appendJSONString(dst, r.TraceID)
	dst = append(dst, `,"app_id":`...)
	dst = appendJSONString(dst, r.AppID)
	dst = append(dst, `,"api":`...)
	dst = appendJSONString(dst, r.API)
	dst = append(dst, `,"actor":`...)
	dst = appendJSONString(dst, r.Actor)
	dst = append(dst, `,"subject":`...)
	dst = appendJSONString(dst, r.Subject)
	dst = append(dst, `,"org":`...)
	dst = appendJSONString(dst, r.Org)
	dst = append(dst, `,"result":`...)
	dst = appendJSONString(dst, r.Result)
	dst = append(dst, `,"reason":`...)
	dst = appendJSONString(dst, r.Reason)
	dst = append(dst, `,"duration_ms":`...)
	dst, ok := appendJSONFloat(dst, r.DurationMS)
	if !ok {
		return dst, false
	}
	dst = append(dst, `,"client_ip":`...)
	dst = appendJSONString(dst, r.ClientIP)
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
	return string(appendJSONMap(make([]byte, 0, 64), d))
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
