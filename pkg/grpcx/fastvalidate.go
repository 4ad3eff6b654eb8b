package grpcx

import (
	"strings"
	"sync"
	"unicode/utf8"

	"buf.build/gen/go/bufbuild/protovalidate/protocolbuffers/go/buf/validate"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Requests that keep their rules, accepted without protovalidate.
//
// protovalidate evaluates the shared UIAS string rules (uias.text,
// uias.code, uias.name: proto/uias/validate/v1) as CEL programs running a
// regular expression, on nearly every string field of every request: the
// largest part of what validation costs a call (about 15% of an authz
// Check). Nearly every request keeps its rules, so a check written in Go,
// compiled once per message type from the same annotations (fastPlan),
// answers first:
//
//   - it finds every rule of the request kept: the request is valid, and
//     protovalidate does not run;
//   - it finds a rule broken, or the message type uses a rule it does not
//     know (a field CEL expression, a message or oneof rule, a
//     well-known format, ...): protovalidate decides, as before.
//
// So every refusal, and every message a caller reads, is protovalidate's;
// the Go check only ever accepts. It must accept nothing protovalidate
// refuses: it checks each rule it knows at least as strictly (it skips the
// rules of an unset field with presence, as protovalidate does; a rule
// that an ignore setting would skip is still checked, and if that fails,
// protovalidate decides).
// TestFastValidationAgrees pins that on every UIAS message type with a
// corpus of good and bad values.

// fastPlans caches, per message type, its fastPlan (nil: protovalidate
// always decides).
var fastPlans sync.Map // protoreflect.MessageDescriptor -> *fastPlan

// fastValid reports whether m keeps every rule of its type, as checked by
// its fastPlan. false means "not known": protovalidate decides.
func fastValid(m protoreflect.Message) bool {
	md := m.Descriptor()
	v, ok := fastPlans.Load(md)
	if !ok {
		v, _ = fastPlans.LoadOrStore(md, buildFastPlan(md))
	}
	p := v.(*fastPlan)
	return p != nil && p.valid(m)
}

// fastPlan is the Go check of a message type's rules: its fields that carry
// rules or messages that do.
type fastPlan struct {
	fields []fastField
}

// fastField checks one field.
type fastField struct {
	fd       protoreflect.FieldDescriptor
	required bool
	// value checks a singular scalar, each item of a list, each value of
	// a map (nil: nothing to check).
	value *valueCheck
	// key checks each key of a map.
	key *valueCheck
	// minN, maxN bound a list's items or a map's pairs (maxN < 0: none).
	minN, maxN int
	// msg checks a set message, each message of a list, each message
	// value of a map.
	msg *fastPlan
}

func (p *fastPlan) valid(m protoreflect.Message) bool {
	for i := range p.fields {
		if !p.fields[i].valid(m) {
			return false
		}
	}
	return true
}

func (f *fastField) valid(m protoreflect.Message) bool {
	fd := f.fd
	switch {
	case fd.IsList():
		if !m.Has(fd) {
			return !f.required && f.minN == 0
		}
		l := m.Get(fd).List()
		n := l.Len()
		if n < f.minN || (f.maxN >= 0 && n > f.maxN) {
			return false
		}
		for i := range n {
			v := l.Get(i)
			if f.value != nil && !f.value.valid(v) {
				return false
			}
			if f.msg != nil && !f.msg.valid(v.Message()) {
				return false
			}
		}
		return true
	case fd.IsMap():
		if !m.Has(fd) {
			return !f.required && f.minN == 0
		}
		mp := m.Get(fd).Map()
		n := mp.Len()
		if n < f.minN || (f.maxN >= 0 && n > f.maxN) {
			return false
		}
		ok := true
		mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			ok = (f.key == nil || f.key.valid(k.Value())) &&
				(f.value == nil || f.value.valid(v)) &&
				(f.msg == nil || f.msg.valid(v.Message()))
			return ok
		})
		return ok
	case fd.Message() != nil:
		if !m.Has(fd) {
			return !f.required
		}
		return f.msg == nil || f.msg.valid(m.Get(fd).Message())
	default:
		if !m.Has(fd) {
			if f.required {
				return false
			}
			if fd.HasPresence() {
				return true // protovalidate skips the rules of an unset field with presence
			}
		}
		return f.value == nil || f.value.valid(m.Get(fd))
	}
}

// valueCheck is the rules of one scalar value.
type valueCheck struct {
	kind protoreflect.Kind
	// strings and bytes
	minLen, maxLen     int // characters (strings) or bytes (bytes); maxLen < 0: none
	minBytes, maxBytes int // strings: bytes; maxBytes < 0: none
	notContains        []string
	text, code, name   bool
	// integers (int32, int64, uint32, uint64): bounds as given; each one
	// checked on its own (an "outside the range" pair is never met, so
	// protovalidate decides)
	lt, lte, gt, gte     *int64
	ult, ulte, ugt, ugte *uint64
	definedOnly          protoreflect.EnumValueDescriptors // enums: values defined
	hasLen               bool                              // minLen or maxLen set (strings: runes counted)
}

func (c *valueCheck) valid(v protoreflect.Value) bool {
	switch c.kind {
	case protoreflect.StringKind:
		return c.validString(v.String())
	case protoreflect.BytesKind:
		n := len(v.Bytes())
		return n >= c.minLen && (c.maxLen < 0 || n <= c.maxLen)
	case protoreflect.EnumKind:
		return c.definedOnly == nil || c.definedOnly.ByNumber(v.Enum()) != nil
	case protoreflect.Int32Kind, protoreflect.Int64Kind:
		x := v.Int()
		return (c.lt == nil || x < *c.lt) && (c.lte == nil || x <= *c.lte) &&
			(c.gt == nil || x > *c.gt) && (c.gte == nil || x >= *c.gte)
	case protoreflect.Uint32Kind, protoreflect.Uint64Kind:
		x := v.Uint()
		return (c.ult == nil || x < *c.ult) && (c.ulte == nil || x <= *c.ulte) &&
			(c.ugt == nil || x > *c.ugt) && (c.ugte == nil || x >= *c.ugte)
	}
	return false
}

func (c *valueCheck) validString(s string) bool {
	if len(s) < c.minBytes || (c.maxBytes >= 0 && len(s) > c.maxBytes) {
		return false
	}
	if c.hasLen {
		n := utf8.RuneCountInString(s)
		if n < c.minLen || (c.maxLen >= 0 && n > c.maxLen) {
			return false
		}
	}
	for _, sub := range c.notContains {
		if strings.Contains(s, sub) {
			return false
		}
	}
	return (!c.text || isText(s)) && (!c.code || isCode(s)) && (!c.name || isName(s))
}

// isText is uias.text, this.matches(r'^[^\p{Cc}]*$'): no rune of Unicode
// category Cc (U+0000-U+001F, U+007F-U+009F). Bytes that are not UTF-8
// decode as U+FFFD (not Cc) there, as for range over a string; an ASCII byte
// is always a rune of its own, and U+0080-U+009F is always C2 80-C2 9F (C2 is
// never a continuation byte), so the bytes tell.
func isText(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x20 || b == 0x7f {
			return false
		}
		if b == 0xc2 && i+1 < len(s) && s[i+1] >= 0x80 && s[i+1] <= 0x9f {
			return false
		}
	}
	return true
}

// isCode is uias.code, ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$.
func isCode(s string) bool {
	if len(s) == 0 || len(s) > 64 || !isAlnum(s[0]) {
		return false
	}
	return isNameBytes(s[1:])
}

// isName is uias.name, ^[A-Za-z0-9_.-]{1,64}$.
func isName(s string) bool {
	return len(s) >= 1 && len(s) <= 64 && isNameBytes(s)
}

func isNameBytes(s string) bool {
	for i := 0; i < len(s); i++ {
		if b := s[i]; !isAlnum(b) && b != '_' && b != '.' && b != '-' {
			return false
		}
	}
	return true
}

func isAlnum(b byte) bool {
	return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
}

// The shared UIAS rules the Go check knows (proto/uias/validate/v1).
const (
	ruleText = "uias.validate.v1.text"
	ruleCode = "uias.validate.v1.code"
	ruleName = "uias.validate.v1.name"
)

// buildFastPlan compiles the Go check of md's rules; nil when md, or a
// message within it, uses a rule the check does not know.
func buildFastPlan(md protoreflect.MessageDescriptor) *fastPlan {
	b := planBuilder{plans: map[protoreflect.FullName]*fastPlan{}}
	p, ok := b.plan(md)
	if !ok {
		return nil
	}
	return p
}

type planBuilder struct {
	plans map[protoreflect.FullName]*fastPlan // built or being built (cycles)
}

func (b *planBuilder) plan(md protoreflect.MessageDescriptor) (*fastPlan, bool) {
	if p, ok := b.plans[md.FullName()]; ok {
		return p, true
	}
	p := &fastPlan{}
	b.plans[md.FullName()] = p
	if !noRules(md.Options(), validate.E_Message) {
		return nil, false
	}
	for i := range md.Oneofs().Len() {
		if !noRules(md.Oneofs().Get(i).Options(), validate.E_Oneof) {
			return nil, false
		}
	}
	for i := range md.Fields().Len() {
		fd := md.Fields().Get(i)
		f, ok := b.field(fd)
		if !ok {
			return nil, false
		}
		if f.required || f.value != nil || f.key != nil || f.minN > 0 || f.maxN >= 0 || f.msg != nil {
			p.fields = append(p.fields, f)
		}
	}
	return p, true
}

// noRules reports whether options carry no (or an empty) ext.
func noRules(options proto.Message, ext protoreflect.ExtensionType) bool {
	if options == nil || !proto.HasExtension(options, ext) {
		return true
	}
	r, ok := proto.GetExtension(options, ext).(proto.Message)
	if !ok {
		return false
	}
	empty := true
	r.ProtoReflect().Range(func(protoreflect.FieldDescriptor, protoreflect.Value) bool {
		empty = false
		return false
	})
	return empty && len(r.ProtoReflect().GetUnknown()) == 0
}

// field compiles the check of one field; false when it uses a rule the Go
// check does not know.
func (b *planBuilder) field(fd protoreflect.FieldDescriptor) (fastField, bool) {
	f := fastField{fd: fd, maxN: -1}
	var rules *validate.FieldRules
	if o := fd.Options(); o != nil && proto.HasExtension(o, validate.E_Field) {
		rules, _ = proto.GetExtension(o, validate.E_Field).(*validate.FieldRules)
		if rules == nil {
			return f, false
		}
	}
	var typed protoreflect.FieldDescriptor // the set member of the type oneof
	var typedValue protoreflect.Value
	if rules != nil {
		rm := rules.ProtoReflect()
		if len(rm.GetUnknown()) > 0 {
			return f, false
		}
		known := true
		rm.Range(func(rd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch rd.Name() {
			case "required":
				f.required = v.Bool()
			case "ignore": // skipping a rule never refuses: checking it anyway is stricter
			default:
				if rd.ContainingOneof() == nil || rd.Message() == nil {
					known = false // cel, cel_expression, ...
					return false
				}
				typed, typedValue = rd, v
			}
			return true
		})
		if !known {
			return f, false
		}
	}
	var elem protoreflect.FieldDescriptor // what the nested message plan applies to
	switch {
	case fd.IsList():
		if typed != nil {
			if typed.Name() != "repeated" {
				return f, false
			}
			ok := true
			var items *validate.FieldRules
			rangeRules(typedValue.Message(), &ok, func(rd protoreflect.FieldDescriptor, v protoreflect.Value) {
				switch rd.Name() {
				case "min_items":
					f.minN = int(min(v.Uint(), 1<<31))
				case "max_items":
					f.maxN = int(min(v.Uint(), 1<<31))
				case "items":
					items, _ = v.Message().Interface().(*validate.FieldRules)
				default:
					ok = false
				}
			})
			if !ok {
				return f, false
			}
			if items != nil {
				if f.value, ok = itemCheck(fd, items); !ok {
					return f, false
				}
			}
		}
		elem = fd
	case fd.IsMap():
		if typed != nil {
			if typed.Name() != "map" {
				return f, false
			}
			ok := true
			rangeRules(typedValue.Message(), &ok, func(rd protoreflect.FieldDescriptor, v protoreflect.Value) {
				var sub *validate.FieldRules
				switch rd.Name() {
				case "min_pairs":
					f.minN = int(min(v.Uint(), 1<<31))
				case "max_pairs":
					f.maxN = int(min(v.Uint(), 1<<31))
				case "keys":
					sub, _ = v.Message().Interface().(*validate.FieldRules)
					if f.key, ok = itemCheck(fd.MapKey(), sub); !ok {
						return
					}
				case "values":
					sub, _ = v.Message().Interface().(*validate.FieldRules)
					if f.value, ok = itemCheck(fd.MapValue(), sub); !ok {
						return
					}
				default:
					ok = false
				}
			})
			if !ok {
				return f, false
			}
		}
		elem = fd.MapValue()
	default:
		if typed != nil {
			c, ok := scalarCheck(fd, typed, typedValue.Message())
			if !ok {
				return f, false
			}
			f.value = c
		}
		elem = fd
	}
	if md := elem.Message(); md != nil {
		p, ok := b.plan(md)
		if !ok {
			return f, false
		}
		f.msg = p
	}
	return f, true
}

// rangeRules calls each for every set field of rules; it sets *ok to false
// when rules hold fields it cannot read.
func rangeRules(rules protoreflect.Message, ok *bool, each func(protoreflect.FieldDescriptor, protoreflect.Value)) {
	if len(rules.GetUnknown()) > 0 {
		*ok = false
		return
	}
	rules.Range(func(rd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if rd.Name() == "example" && !rd.IsExtension() {
			return true // examples document, they never refuse
		}
		each(rd, v)
		return *ok
	})
}

// itemCheck compiles the rules of a list's items or a map's keys or values
// (of field fd: the list itself, or a map's key or value field): only
// typed rules (and ignore).
func itemCheck(fd protoreflect.FieldDescriptor, rules *validate.FieldRules) (*valueCheck, bool) {
	if rules == nil {
		return nil, false
	}
	rm := rules.ProtoReflect()
	if len(rm.GetUnknown()) > 0 {
		return nil, false
	}
	var typed protoreflect.FieldDescriptor
	var typedValue protoreflect.Value
	ok := true
	rm.Range(func(rd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case rd.Name() == "ignore":
		case rd.ContainingOneof() != nil && rd.Message() != nil:
			typed, typedValue = rd, v
		default:
			ok = false
		}
		return ok
	})
	if !ok {
		return nil, false
	}
	if typed == nil {
		return nil, true
	}
	return scalarCheck(fd, typed, typedValue.Message())
}

// scalarCheck compiles the typed rules (typed: the member of FieldRules'
// type oneof that is set, with value rules) of a scalar of fd's kind.
func scalarCheck(fd protoreflect.FieldDescriptor, typed protoreflect.FieldDescriptor, rules protoreflect.Message) (*valueCheck, bool) {
	c := &valueCheck{kind: fd.Kind(), maxLen: -1, maxBytes: -1}
	want := map[protoreflect.Kind]protoreflect.Name{
		protoreflect.StringKind: "string", protoreflect.BytesKind: "bytes", protoreflect.EnumKind: "enum",
		protoreflect.Int32Kind: "int32", protoreflect.Int64Kind: "int64",
		protoreflect.Uint32Kind: "uint32", protoreflect.Uint64Kind: "uint64",
	}[fd.Kind()]
	if want == "" || typed.Name() != want {
		return nil, false
	}
	ok := true
	rangeRules(rules, &ok, func(rd protoreflect.FieldDescriptor, v protoreflect.Value) {
		if rd.IsExtension() {
			if c.kind != protoreflect.StringKind || rd.Kind() != protoreflect.BoolKind {
				ok = false
				return
			}
			switch rd.FullName() {
			case ruleText:
				c.text = c.text || v.Bool()
			case ruleCode:
				c.code = c.code || v.Bool()
			case ruleName:
				c.name = c.name || v.Bool()
			default:
				ok = false
			}
			return
		}
		n := func() int { return int(min(v.Uint(), 1<<31)) } // the length rules' value
		switch {
		case c.kind == protoreflect.StringKind && rd.Name() == "max_bytes":
			c.maxBytes = n()
		case c.kind == protoreflect.StringKind && rd.Name() == "min_bytes":
			c.minBytes = n()
		case c.kind == protoreflect.StringKind && rd.Name() == "max_len":
			c.maxLen, c.hasLen = n(), true
		case c.kind == protoreflect.StringKind && rd.Name() == "min_len":
			c.minLen, c.hasLen = n(), true
		case c.kind == protoreflect.StringKind && rd.Name() == "not_contains":
			c.notContains = append(c.notContains, v.String())
		case c.kind == protoreflect.BytesKind && rd.Name() == "max_len":
			c.maxLen = n()
		case c.kind == protoreflect.BytesKind && rd.Name() == "min_len":
			c.minLen = n()
		case c.kind == protoreflect.EnumKind && rd.Name() == "defined_only":
			if v.Bool() {
				c.definedOnly = fd.Enum().Values()
			}
		case c.kind == protoreflect.Int32Kind || c.kind == protoreflect.Int64Kind:
			x := v.Int()
			switch rd.Name() {
			case "lt":
				c.lt = &x
			case "lte":
				c.lte = &x
			case "gt":
				c.gt = &x
			case "gte":
				c.gte = &x
			default:
				ok = false
			}
		case c.kind == protoreflect.Uint32Kind || c.kind == protoreflect.Uint64Kind:
			x := v.Uint()
			switch rd.Name() {
			case "lt":
				c.ult = &x
			case "lte":
				c.ulte = &x
			case "gt":
				c.ugt = &x
			case "gte":
				c.ugte = &x
			default:
				ok = false
			}
		default:
			ok = false
		}
	})
	if !ok {
		return nil, false
	}
	return c, true
}
