// Package hessian reads and writes the small part of the Hessian 2.0 wire
// format (http://hessian.caucho.com/doc/hessian-serialization.html) that a
// legacy remote call with string arguments and an int result needs: a call
// ('C' method, argument count, arguments) as a Java HessianProxyFactory
// client sends it, optionally behind the "H 2 0" version envelope, and the
// reply ('R' value) or fault ('F' map).
//
// The decoder is strict and bounded: it accepts null, booleans, ints and
// strings (in every encoding the specification allows, chunked included)
// as arguments and nothing else; it refuses unknown tags, overlong
// encodings it cannot represent, trailing bytes, more arguments than
// MaxArgs and strings longer than MaxString; it allocates no more than the
// input's length.
package hessian

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Limits of Decode.
const (
	MaxCall   = 256 << 10 // bytes of a call
	MaxArgs   = 16        // arguments of a call
	MaxString = 128 << 10 // UTF-16 units of one string
	maxMethod = 256       // UTF-16 units of a method name
)

// Value is a decoded argument: nil, bool, int32 or string.
type Value any

// Call is a decoded call.
type Call struct {
	Method string
	Args   []Value
}

// Error says why a call was refused and where.
type Error struct {
	Offset int
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("hessian: at byte %d: %s", e.Offset, e.Reason)
}

func bad(off int, format string, a ...any) error {
	return &Error{Offset: off, Reason: fmt.Sprintf(format, a...)}
}

type reader struct {
	b   []byte
	off int
}

func (r *reader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, bad(r.off, "the call ends early")
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *reader) need(n int) error {
	if len(r.b)-r.off < n {
		return bad(r.off, "the call ends early (%d more bytes needed)", n)
	}
	return nil
}

// DecodeCall reads one call that must fill b exactly.
func DecodeCall(b []byte) (*Call, error) {
	if len(b) > MaxCall {
		return nil, bad(0, "a call of %d bytes exceeds the limit of %d", len(b), MaxCall)
	}
	r := &reader{b: b}
	if len(b) >= 3 && b[0] == 'H' {
		if b[1] != 2 || b[2] != 0 {
			return nil, bad(1, "version %d.%d is not supported (Hessian 2.0 only)", b[1], b[2])
		}
		r.off = 3
	}
	c, err := r.byte()
	if err != nil {
		return nil, err
	}
	if c != 'C' {
		if c == 'c' {
			return nil, bad(r.off-1, "a Hessian 1.0 call: configure the client for Hessian 2 (HessianProxyFactory.setHessian2Request(true))")
		}
		return nil, bad(r.off-1, "expected a call ('C'), found byte 0x%02x", c)
	}
	m, err := r.value(maxMethod)
	if err != nil {
		return nil, err
	}
	method, ok := m.(string)
	if !ok || method == "" {
		return nil, bad(r.off, "the method name must be a non-empty string")
	}
	n, err := r.value(0)
	if err != nil {
		return nil, err
	}
	count, ok := n.(int32)
	if !ok || count < 0 || count > MaxArgs {
		return nil, bad(r.off, "the argument count must be an int from 0 to %d", MaxArgs)
	}
	call := &Call{Method: method, Args: make([]Value, 0, count)}
	for range count {
		v, err := r.value(MaxString)
		if err != nil {
			return nil, err
		}
		call.Args = append(call.Args, v)
	}
	if r.off != len(b) {
		return nil, bad(r.off, "%d bytes follow the last argument", len(b)-r.off)
	}
	return call, nil
}

// value reads null, a boolean, an int or a string (of at most maxStr
// UTF-16 units; 0: strings are not expected here).
func (r *reader) value(maxStr int) (Value, error) {
	start := r.off
	c, err := r.byte()
	if err != nil {
		return nil, err
	}
	switch {
	case c == 'N':
		return nil, nil
	case c == 'T':
		return true, nil
	case c == 'F':
		return false, nil
	case c >= 0x80 && c <= 0xbf: // int, one byte
		return int32(c) - 0x90, nil
	case c >= 0xc0 && c <= 0xcf: // int, two bytes
		if err := r.need(1); err != nil {
			return nil, err
		}
		v := (int32(c)-0xc8)<<8 | int32(r.b[r.off])
		r.off++
		return v, nil
	case c >= 0xd0 && c <= 0xd7: // int, three bytes
		if err := r.need(2); err != nil {
			return nil, err
		}
		v := (int32(c)-0xd4)<<16 | int32(r.b[r.off])<<8 | int32(r.b[r.off+1])
		r.off += 2
		return v, nil
	case c == 'I':
		if err := r.need(4); err != nil {
			return nil, err
		}
		v := int32(binary.BigEndian.Uint32(r.b[r.off:]))
		r.off += 4
		return v, nil
	case c <= 0x1f, c >= 0x30 && c <= 0x33, c == 'S', c == 'R':
		if maxStr == 0 {
			return nil, bad(start, "a string is not expected here")
		}
		return r.str(c, maxStr)
	}
	return nil, bad(start, "type tag 0x%02x is not accepted (only null, boolean, int and string arguments)", c)
}

// str reads a string whose first tag byte c was read: compact (0x00-0x1f,
// 0x30-0x33) or 'S' (final chunk), possibly after 'R' (non-final chunks).
// Lengths count UTF-16 code units, as Java writes them.
func (r *reader) str(c byte, maxStr int) (string, error) {
	var out []byte
	units := 0
	for {
		start := r.off - 1
		var n int
		final := true
		switch {
		case c <= 0x1f:
			n = int(c)
		case c >= 0x30 && c <= 0x33:
			if err := r.need(1); err != nil {
				return "", err
			}
			n = int(c-0x30)<<8 | int(r.b[r.off])
			r.off++
		case c == 'S' || c == 'R':
			if err := r.need(2); err != nil {
				return "", err
			}
			n = int(binary.BigEndian.Uint16(r.b[r.off:]))
			r.off += 2
			final = c == 'S'
		default:
			return "", bad(start, "string chunk expected, found byte 0x%02x", c)
		}
		if units+n > maxStr {
			return "", bad(start, "a string longer than %d characters", maxStr)
		}
		// Each unit takes at least one byte: refuse a length the rest of
		// the call cannot hold before reading (and allocating) anything.
		if n > len(r.b)-r.off {
			return "", bad(start, "a string of %d characters declared but only %d bytes left", n, len(r.b)-r.off)
		}
		for got := 0; got < n; {
			ch, size, u, err := r.char()
			if err != nil {
				return "", err
			}
			if got+u > n {
				return "", bad(r.off, "a character straddles the end of a string chunk")
			}
			out = utf8.AppendRune(out, ch)
			r.off += size
			got += u
		}
		units += n
		if final {
			return string(out), nil
		}
		var err error
		if c, err = r.byte(); err != nil {
			return "", err
		}
	}
}

// char reads one character at r.off: UTF-8, where Java writes a
// character outside the Basic Multilingual Plane as its two UTF-16
// surrogates, each in three bytes (as CESU-8 does); a four-byte UTF-8
// sequence is accepted too. It returns the character, the bytes it takes
// and the UTF-16 units it counts for.
func (r *reader) char() (rune, int, int, error) {
	if r.off >= len(r.b) {
		return 0, 0, 0, bad(r.off, "the call ends inside a string")
	}
	ch, size := utf8.DecodeRune(r.b[r.off:])
	if ch != utf8.RuneError || size > 1 {
		if ch > 0xffff {
			return ch, size, 2, nil
		}
		return ch, size, 1, nil
	}
	hi, ok := surrogate(r.b[r.off:])
	if !ok || hi >= 0xdc00 {
		return 0, 0, 0, bad(r.off, "a string is not valid UTF-8")
	}
	lo, ok := surrogate(r.b[r.off+3:])
	if !ok || lo < 0xdc00 {
		return 0, 0, 0, bad(r.off, "a string holds an unpaired UTF-16 surrogate")
	}
	return 0x10000 + (hi-0xd800)<<10 + (lo - 0xdc00), 6, 2, nil
}

// surrogate decodes a UTF-16 surrogate written as three UTF-8-style bytes.
func surrogate(b []byte) (rune, bool) {
	if len(b) < 3 || b[0] != 0xed || b[1] < 0xa0 || b[1] > 0xbf || b[2]&0xc0 != 0x80 {
		return 0, false
	}
	return rune(b[0]&0x0f)<<12 | rune(b[1]&0x3f)<<6 | rune(b[2]&0x3f), true
}

// appendChars appends s as Java writes strings: characters outside the
// Basic Multilingual Plane as two three-byte surrogates.
func appendChars(b []byte, s string) []byte {
	for _, r := range s {
		if r <= 0xffff {
			b = utf8.AppendRune(b, r)
			continue
		}
		r -= 0x10000
		for _, sur := range []rune{0xd800 + r>>10, 0xdc00 + r&0x3ff} {
			b = append(b, 0xed, byte(0x80|(sur>>6)&0x3f), byte(0x80|sur&0x3f))
		}
	}
	return b
}

// EncodeReply is the reply to a call that returned v (an int).
func EncodeReply(v int32) []byte {
	b := []byte{'H', 2, 0, 'R'}
	return appendInt(b, v)
}

// EncodeFault is a fault reply: code (e.g. "ServiceException",
// "ProtocolException") and message, as a HessianProxy client raises them.
func EncodeFault(code, message string) []byte {
	b := []byte{'H', 2, 0, 'F', 'H'}
	for _, kv := range [][2]string{{"code", code}, {"message", message}} {
		b = AppendString(b, kv[0])
		b = AppendString(b, kv[1])
	}
	return append(b, 'Z')
}

func appendInt(b []byte, v int32) []byte {
	switch {
	case v >= -16 && v <= 47:
		return append(b, byte(v+0x90))
	case v >= -2048 && v <= 2047:
		return append(b, byte(0xc8+(v>>8)), byte(v))
	case v >= -262144 && v <= 262143:
		return append(b, byte(0xd4+(v>>16)), byte(v>>8), byte(v))
	}
	return binary.BigEndian.AppendUint32(append(b, 'I'), uint32(v))
}

// AppendInt appends v in its shortest Hessian 2.0 encoding.
func AppendInt(b []byte, v int32) []byte { return appendInt(b, v) }

// AppendString appends s (valid UTF-8) as a Hessian 2.0 string, in
// chunks of at most 65535 UTF-16 units.
func AppendString(b []byte, s string) []byte {
	units := 0
	for _, r := range s {
		units++
		if r > 0xffff {
			units++
		}
	}
	if units <= 31 {
		return appendChars(append(b, byte(units)), s)
	}
	if units <= 1023 {
		return appendChars(append(b, byte(0x30+units>>8), byte(units)), s)
	}
	// Chunks: split on rune boundaries.
	for len(s) > 0 {
		n, i := 0, 0
		for i < len(s) {
			r, size := utf8.DecodeRuneInString(s[i:])
			u := 1
			if r > 0xffff {
				u = 2
			}
			if n+u > 0xffff {
				break
			}
			n += u
			i += size
		}
		tag := byte('R')
		if i == len(s) {
			tag = 'S'
		}
		b = append(b, tag, byte(n>>8), byte(n))
		b = appendChars(b, s[:i])
		s = s[i:]
	}
	return b
}

// ErrNotString is returned by Strings for a non-string argument.
var ErrNotString = errors.New("hessian: argument is not a string")

// Strings returns the call's arguments as strings (null as ""), or
// ErrNotString with the index of the first that is not one.
func (c *Call) Strings() ([]string, int, error) {
	out := make([]string, len(c.Args))
	for i, a := range c.Args {
		switch v := a.(type) {
		case nil:
		case string:
			out[i] = v
		default:
			return nil, i, ErrNotString
		}
	}
	return out, 0, nil
}
