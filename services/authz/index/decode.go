package index

import (
	"encoding/json"
	"time"

	"github.com/uias/uias/services/authz"
)

// decodeGrant reads the JSON of a grant as encoding/json would, quickly:
// a replica's start reads a million of them. It understands exactly what
// json.Marshal writes for authz.Grant (no whitespace, no escapes, known
// keys); anything else is handed to encoding/json.
func decodeGrant(data []byte) (authz.Grant, error) {
	var g authz.Grant
	err := decodeGrantInto(&g, data, "", nil)
	return g, err
}

// decodeGrantInto is decodeGrant into g, taking the strings it finds from
// in (when not nil) and the grant id from id when the JSON holds the same.
func decodeGrantInto(g *authz.Grant, data []byte, id string, in *Decoder) error {
	if fastGrant(g, data, id, in) {
		return nil
	}
	*g = authz.Grant{}
	return json.Unmarshal(data, g)
}

// Decoder decodes changes for a snapshot load (Decoder.PrepareInto)
// keeping one copy of each creator, scope org and grantable role among
// the grants it decodes (few values for a million grants; the index
// replaces role and subject ids by its own copies). A Decoder is used by
// one goroutine at a time.
type Decoder struct {
	strs map[string]string
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder { return &Decoder{strs: map[string]string{}} }

// plain returns b as a new string (ids the index replaces by its own copy).
func (s *jsonScan) plain() (string, bool) {
	b, ok := s.raw()
	return string(b), ok
}

// intern returns b as a string, the same string for the same bytes.
func (d *Decoder) intern(b []byte) string {
	if d == nil {
		return string(b)
	}
	if s, ok := d.strs[string(b)]; ok {
		return s
	}
	s := string(b)
	d.strs[s] = s
	return s
}

// jsonScan is a cursor over a compact JSON object.
type jsonScan struct {
	b  []byte
	i  int
	in *Decoder
}

func (s *jsonScan) byte(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes (a backslash, a control character or
// a byte >= 0x80 hands the whole object to encoding/json, which also
// checks and replaces invalid UTF-8).
func (s *jsonScan) str() (string, bool) {
	b, ok := s.raw()
	if !ok {
		return "", false
	}
	return s.in.intern(b), true
}

// raw reads a string without escapes and returns its bytes (in s.b).
func (s *jsonScan) raw() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
		s.i++
	}
	return nil, false
}

func (s *jsonScan) time() (time.Time, bool) {
	v, ok := s.raw()
	if !ok {
		return time.Time{}, false
	}
	var t time.Time
	if err := t.UnmarshalText(v); err != nil {
		return time.Time{}, false
	}
	return t, true
}

func (s *jsonScan) strList() ([]string, bool) {
	if !s.byte('[') {
		return nil, false
	}
	out := []string{}
	if s.byte(']') {
		return out, true
	}
	for {
		v, ok := s.str()
		if !ok {
			return nil, false
		}
		out = append(out, v)
		if s.byte(']') {
			return out, true
		}
		if !s.byte(',') {
			return nil, false
		}
	}
}

func subjectKind(b []byte) authz.SubjectKind {
	switch authz.SubjectKind(b) {
	case authz.SubjectUser:
		return authz.SubjectUser
	case authz.SubjectGroup:
		return authz.SubjectGroup
	case authz.SubjectOrg:
		return authz.SubjectOrg
	}
	return authz.SubjectKind(b)
}

// fastGrant decodes b into g (zero on entry), or reports it cannot.
func fastGrant(g *authz.Grant, b []byte, id string, in *Decoder) bool {
	s := &jsonScan{b: b, in: in}
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return s.i == len(b)
	}
	seen := 0
	for {
		key, ok := s.raw()
		if !ok || !s.byte(':') {
			return false
		}
		var bit int
		switch string(key) {
		case "id":
			bit = 1
			var v []byte
			if v, ok = s.raw(); ok {
				if string(v) == id {
					g.ID = id
				} else {
					g.ID = string(v)
				}
			}
		case "role":
			bit = 2
			g.Role, ok = s.plain()
		case "subject":
			bit = 4
			ok = s.subject(&g.Subject)
		case "valid_from":
			bit = 8
			g.ValidFrom, ok = s.time()
		case "valid_until":
			bit = 16
			g.ValidUntil, ok = s.time()
		case "scope_org":
			bit = 32
			g.ScopeOrg, ok = s.str()
		case "delegable":
			bit = 64
			switch {
			case s.i+4 <= len(b) && string(b[s.i:s.i+4]) == "true":
				g.Delegable, s.i = true, s.i+4
			case s.i+5 <= len(b) && string(b[s.i:s.i+5]) == "false":
				s.i += 5
			default:
				ok = false
			}
		case "grantable":
			bit = 128
			g.Grantable, ok = s.strList()
		case "created_at":
			bit = 256
			g.CreatedAt, ok = s.time()
		case "created_by":
			bit = 512
			g.CreatedBy, ok = s.str()
		case "permission":
			bit = 1024
			ok = s.permission(&g.Permission)
		default:
			return false
		}
		// A key twice: encoding/json's rules apply (the last wins, merged).
		if !ok || seen&bit != 0 {
			return false
		}
		seen |= bit
		if s.byte('}') {
			return s.i == len(b)
		}
		if !s.byte(',') {
			return false
		}
	}
}

// permission reads a direct grant's permission: the three keys, each once,
// in any order.
func (s *jsonScan) permission(out *authz.Permission) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	seen := 0
	for {
		key, ok := s.raw()
		if !ok || !s.byte(':') {
			return false
		}
		v, ok := s.str()
		if !ok {
			return false
		}
		var bit int
		switch string(key) {
		case "app":
			bit, out.App = 1, v
		case "resource":
			bit, out.Resource = 2, v
		case "operation":
			bit, out.Operation = 4, v
		default:
			return false
		}
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}

func (s *jsonScan) subject(out *authz.Subject) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	seen := 0
	for {
		key, ok := s.raw()
		if !ok || !s.byte(':') {
			return false
		}
		v, ok := s.raw()
		if !ok {
			return false
		}
		switch string(key) {
		case "kind":
			if seen&1 != 0 {
				return false
			}
			seen |= 1
			out.Kind = subjectKind(v)
		case "id":
			if seen&2 != 0 {
				return false
			}
			seen |= 2
			out.ID = string(v)
		default:
			return false
		}
		if s.byte('}') {
			return true
		}
		if !s.byte(',') {
			return false
		}
	}
}
