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
	if g, ok := fastGrant(data); ok {
		return g, nil
	}
	var g authz.Grant
	err := json.Unmarshal(data, &g)
	return g, err
}

// jsonScan is a cursor over a compact JSON object.
type jsonScan struct {
	b []byte
	i int
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
	if !s.byte('"') {
		return "", false
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := string(s.b[start:s.i])
			s.i++
			return v, true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", false
		}
		s.i++
	}
	return "", false
}

func (s *jsonScan) time() (time.Time, bool) {
	v, ok := s.str()
	if !ok {
		return time.Time{}, false
	}
	var t time.Time
	if err := t.UnmarshalText([]byte(v)); err != nil {
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

func subjectKind(s string) authz.SubjectKind {
	switch authz.SubjectKind(s) {
	case authz.SubjectUser:
		return authz.SubjectUser
	case authz.SubjectGroup:
		return authz.SubjectGroup
	case authz.SubjectOrg:
		return authz.SubjectOrg
	}
	return authz.SubjectKind(s)
}

func fastGrant(b []byte) (authz.Grant, bool) {
	var g authz.Grant
	s := &jsonScan{b: b}
	if !s.byte('{') {
		return g, false
	}
	if s.byte('}') {
		return g, s.i == len(b)
	}
	seen := 0
	for {
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return g, false
		}
		var bit int
		switch key {
		case "id":
			bit = 1
			g.ID, ok = s.str()
		case "role":
			bit = 2
			g.Role, ok = s.str()
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
		default:
			return g, false
		}
		// A key twice: encoding/json's rules apply (the last wins, merged).
		if !ok || seen&bit != 0 {
			return g, false
		}
		seen |= bit
		if s.byte('}') {
			return g, s.i == len(b)
		}
		if !s.byte(',') {
			return g, false
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
		key, ok := s.str()
		if !ok || !s.byte(':') {
			return false
		}
		v, ok := s.str()
		if !ok {
			return false
		}
		switch key {
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
			out.ID = v
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
