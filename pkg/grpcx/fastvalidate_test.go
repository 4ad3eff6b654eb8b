package grpcx

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/uias/uias/pkg/apierr"

	// every UIAS request type, with its rules
	_ "github.com/uias/uias/proto/gen/uias/audit/v1"
	_ "github.com/uias/uias/proto/gen/uias/authz/v1"
	_ "github.com/uias/uias/proto/gen/uias/identity/v1"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	_ "github.com/uias/uias/proto/gen/uias/sync/v1"
	_ "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// strCorpus: good and bad strings for the shared rules: Chinese, control
// characters (C0, DEL, C1) alone and inside text, characters next to them
// that are not controls, bytes that are not UTF-8, code and name shapes,
// and lengths around every limit the protos use.
func strCorpus() []string {
	c := []string{
		"", "a", "A", "0", "abc", "张三", "王小明", "李四-01", "中文名称 with spaces", "ç", "Ünïcödé", "😀", "emoji 😀 ok",
		"a.b_c-d", "abc.DEF-123_x", "-a", "_x", ".", ".a", "a.", "a b", "a/b", "a:b", "a@b", "中",
		"tab\there", "\t", "line\nbreak", "\n", "\r\n", "\x00", "nul\x00in", "\x01", "\x1f", "\x7f", "del\x7f",
		"\u0080", "x\u0085next", "\u009f", "\u00a0nbsp", "\u00a1", "中文\u200b零宽", "\u2028", "\ufeffbom", "\ufffd",
		"\xe0\xc2\x85", "\xc2", "a\xc2", "\xc2\x7f", "\xc2\xa0", "\xff\xfe", "\xed\xa0\x80", "\xf4\x90\x80\x80",
		"\xc0\x80", "\xe2\x80", "名\x1b[31m", "<script>", "'; DROP TABLE users; --", "x-uias-client-ip",
	}
	for _, n := range []int{7, 8, 9, 10, 11, 15, 16, 17, 19, 20, 21, 31, 32, 33, 63, 64, 65, 127, 128, 129,
		253, 254, 255, 256, 257, 299, 300, 301, 511, 512, 513, 1023, 1024, 1025, 2047, 2048, 2049, 8191, 8192, 8193} {
		c = append(c, strings.Repeat("a", n), "z"+strings.Repeat("9", n-1), strings.Repeat("中", n/3)+strings.Repeat("a", n%3),
			strings.Repeat("b", n-1)+"\x00", strings.Repeat("界", (n+2)/3))
	}
	return c
}

var (
	textRE = regexp.MustCompile(`^[^\p{Cc}]*$`)
	codeRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)
	nameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,64}$`)
)

// TestSharedRulesInGo: the Go checks of uias.text, uias.code and uias.name
// answer as the regular expressions of their CEL rules
// (proto/uias/validate/v1/rules.proto), on the corpus, on every rune up to
// U+3000 alone and inside text, and on random bytes.
func TestSharedRulesInGo(t *testing.T) {
	check := func(s string) {
		t.Helper()
		if got, want := isText(s), textRE.MatchString(s); got != want {
			t.Errorf("uias.text %q: Go %v, regexp %v", s, got, want)
		}
		if got, want := isCode(s), codeRE.MatchString(s); got != want {
			t.Errorf("uias.code %q: Go %v, regexp %v", s, got, want)
		}
		if got, want := isName(s), nameRE.MatchString(s); got != want {
			t.Errorf("uias.name %q: Go %v, regexp %v", s, got, want)
		}
	}
	for _, s := range strCorpus() {
		check(s)
	}
	for r := rune(0); r < 0x3000; r++ {
		s := string(r)
		check(s)
		check("名" + s + "字")
		check("a" + s)
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		b := make([]byte, rnd.IntN(12))
		for i := range b {
			switch rnd.IntN(4) {
			case 0:
				b[i] = byte(rnd.IntN(256))
			case 1:
				b[i] = "aZ9_.- "[rnd.IntN(7)]
			case 2:
				b[i] = byte(0x80 + rnd.IntN(64))
			default:
				b[i] = byte(0xc0 + rnd.IntN(64))
			}
		}
		check(string(b))
	}
}

// TestFastValidationAgrees: on every UIAS message type, for requests made
// of the string corpus (one field set at a time, then random mixes with
// nested messages, lists and maps), a request the Go check accepts is one
// protovalidate accepts, and ValidateRequest answers exactly as
// protovalidate alone. It also shows the Go check covers the request types
// (most valid requests are accepted without protovalidate).
func TestFastValidationAgrees(t *testing.T) {
	var types []protoreflect.MessageType
	protoregistry.GlobalTypes.RangeMessages(func(mt protoreflect.MessageType) bool {
		if name := string(mt.Descriptor().FullName()); strings.HasPrefix(name, "uias.") && !strings.HasPrefix(name, "uias.validate.") {
			types = append(types, mt)
		}
		return true
	})
	if len(types) < 100 {
		t.Fatalf("only %d UIAS message types registered", len(types))
	}
	g := &gen{rnd: rand.New(rand.NewPCG(3, 4)), strs: strCorpus()}
	var planned, fast, valid, cases int
	var fallback []string
	try := func(m protoreflect.Message) {
		t.Helper()
		cases++
		full := validateFully(m.Interface())
		if full == nil {
			valid++
		}
		ok := fastValid(m)
		if ok {
			fast++
			if full != nil {
				t.Fatalf("%s: the Go check accepts what protovalidate refuses (%v): %v", m.Descriptor().FullName(), full, m.Interface())
			}
		}
		got := ValidateRequest(m.Interface())
		// The first of several violations in maps depends on Go's map
		// order (protovalidate's, call by call): there only the kind of
		// answer must match.
		if (got == nil) != (full == nil) || (got != nil && got.Error() != full.Error() &&
			(!severalMapEntries(m) || apierr.CodeOf(got) != apierr.CodeOf(full))) {
			t.Fatalf("%s: ValidateRequest %v, protovalidate %v", m.Descriptor().FullName(), got, full)
		}
	}
	for _, mt := range types {
		md := mt.Descriptor()
		if buildFastPlan(md) != nil {
			planned++
		} else {
			fallback = append(fallback, string(md.FullName()))
		}
		try(mt.New())
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			for _, v := range g.values(fd) {
				m := mt.New()
				m.Set(fd, v(m))
				try(m)
			}
		}
		for range 60 {
			m := mt.New()
			g.fill(m, 0)
			try(m)
		}
	}
	t.Logf("%d message types, %d with a Go check; %d requests, %d valid, %d of them accepted by the Go check", len(types), planned, cases, valid, fast)
	if len(fallback) > 0 {
		t.Logf("protovalidate alone for: %s", strings.Join(fallback, ", "))
	}
	if planned < len(types)*9/10 || fast < valid*8/10 {
		t.Fatalf("the Go check covers too little: %d of %d types, %d of %d valid requests", planned, len(types), fast, valid)
	}
	for _, m := range []protoreflect.ProtoMessage{&identityv1.GetUserRequest{}, &identityv1.AuthenticateRequest{}} {
		if buildFastPlan(m.ProtoReflect().Descriptor()) == nil {
			t.Errorf("%s has no Go check", m.ProtoReflect().Descriptor().FullName())
		}
	}
}

// TestFastValidationDynamic: a message built from its descriptor alone
// (dynamicpb) is checked as the generated one.
func TestFastValidationDynamic(t *testing.T) {
	md := (&identityv1.GetUserRequest{}).ProtoReflect().Descriptor()
	for _, id := range []string{"u-1", "", "bad\x00id", strings.Repeat("x", 300), "张三"} {
		m := dynamicpb.NewMessage(md)
		m.Set(md.Fields().ByName("id"), protoreflect.ValueOfString(id))
		gen := (&identityv1.GetUserRequest{Id: id}).ProtoReflect()
		if fastValid(m) != fastValid(gen) {
			t.Errorf("id %q: dynamic %v, generated %v", id, fastValid(m), fastValid(gen))
		}
		if (validateFully(m.Interface()) == nil) != (ValidateRequest(gen.Interface()) == nil) {
			t.Errorf("id %q: answers differ", id)
		}
	}
}

// severalMapEntries reports whether m, or a message within it, has a map
// with more than one entry.
func severalMapEntries(m protoreflect.Message) bool {
	found := false
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			found = v.Map().Len() > 1
			if !found && fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					found = severalMapEntries(mv.Message())
					return !found
				})
			}
		case fd.IsList() && fd.Message() != nil:
			for i := range v.List().Len() {
				if found = severalMapEntries(v.List().Get(i).Message()); found {
					break
				}
			}
		case fd.Message() != nil:
			found = severalMapEntries(v.Message())
		}
		return !found
	})
	return found
}

// gen makes field values from the corpus.
type gen struct {
	rnd  *rand.Rand
	strs []string
}

type valueFn func(m protoreflect.Message) protoreflect.Value

// values: the values a field is tried with, one field at a time: every
// corpus string, integer boundaries, enum values defined or not, list and
// map sizes around the limits the protos use.
func (g *gen) values(fd protoreflect.FieldDescriptor) []valueFn {
	var out []valueFn
	switch {
	case fd.IsList():
		sizes := []int{0, 1, 2, 3, 4, 5, 31, 32, 33, 63, 64, 65, 99, 100, 101, 255, 256, 257, 999, 1000, 1001, 4999, 5000, 5001}
		if fd.Message() != nil || fd.Kind() == protoreflect.BytesKind {
			sizes = []int{0, 1, 2, 5}
		}
		for _, n := range sizes {
			for _, elem := range g.scalars(fd, 3) {
				out = append(out, func(m protoreflect.Message) protoreflect.Value {
					l := m.NewField(fd).List()
					for range n {
						l.Append(elem(m))
					}
					return protoreflect.ValueOfList(l)
				})
			}
		}
		for _, elem := range g.scalars(fd, -1) {
			out = append(out, func(m protoreflect.Message) protoreflect.Value {
				l := m.NewField(fd).List()
				l.Append(elem(m))
				return protoreflect.ValueOfList(l)
			})
		}
	case fd.IsMap():
		keys := g.scalars(fd.MapKey(), -1)
		vals := g.scalars(fd.MapValue(), -1)
		for i, k := range keys {
			v := vals[i%len(vals)]
			out = append(out, func(m protoreflect.Message) protoreflect.Value {
				mp := m.NewField(fd).Map()
				mp.Set(k(m).MapKey(), v(m))
				return protoreflect.ValueOfMap(mp)
			})
		}
		for _, v := range vals {
			out = append(out, func(m protoreflect.Message) protoreflect.Value {
				mp := m.NewField(fd).Map()
				mp.Set(keys[1](m).MapKey(), v(m))
				return protoreflect.ValueOfMap(mp)
			})
		}
		for _, n := range []int{0, 1, 15, 16, 17, 31, 32, 33} {
			out = append(out, func(m protoreflect.Message) protoreflect.Value {
				mp := m.NewField(fd).Map()
				for i := range n {
					mp.Set(g.mapKey(fd.MapKey(), i), vals[1](m))
				}
				return protoreflect.ValueOfMap(mp)
			})
		}
	default:
		out = g.scalars(fd, -1)
	}
	return out
}

// scalars: the values of one element of fd's kind (at most max, if >= 0).
func (g *gen) scalars(fd protoreflect.FieldDescriptor, max int) []valueFn {
	var out []valueFn
	add := func(v protoreflect.Value) {
		out = append(out, func(protoreflect.Message) protoreflect.Value { return v })
	}
	switch fd.Kind() {
	case protoreflect.StringKind:
		strs := g.strs
		if max >= 0 {
			strs = []string{"a", "张三", "bad\x00"}
		}
		for _, s := range strs {
			add(protoreflect.ValueOfString(s))
		}
	case protoreflect.BytesKind:
		for _, n := range []int{0, 1, 65535, 65536, 65537, 262144, 262145, 1048576, 1048577} {
			add(protoreflect.ValueOfBytes(make([]byte, n)))
		}
	case protoreflect.BoolKind:
		add(protoreflect.ValueOfBool(true))
		add(protoreflect.ValueOfBool(false))
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		for i := range vals.Len() {
			add(protoreflect.ValueOfEnum(vals.Get(i).Number()))
		}
		add(protoreflect.ValueOfEnum(999))
		add(protoreflect.ValueOfEnum(-1))
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		for _, x := range []int32{-2147483648, -1, 0, 1, 2, 4, 5, 6, 9, 10, 11, 12, 100, 2147483647} {
			add(protoreflect.ValueOfInt32(x))
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		for _, x := range []int64{-9223372036854775808, -1, 0, 1, 2, 5, 6, 10, 11, 12, 1 << 40, 9223372036854775807} {
			add(protoreflect.ValueOfInt64(x))
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		for _, x := range []uint32{0, 1, 2, 5, 6, 10, 11, 12, 4294967295} {
			add(protoreflect.ValueOfUint32(x))
		}
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		for _, x := range []uint64{0, 1, 2, 5, 6, 10, 11, 12, 18446744073709551615} {
			add(protoreflect.ValueOfUint64(x))
		}
	case protoreflect.FloatKind:
		add(protoreflect.ValueOfFloat32(1.5))
	case protoreflect.DoubleKind:
		add(protoreflect.ValueOfFloat64(-2.5))
	case protoreflect.MessageKind, protoreflect.GroupKind:
		out = append(out, func(m protoreflect.Message) protoreflect.Value {
			return protoreflect.ValueOfMessage(g.newMessage(fd, 1, true))
		}, func(m protoreflect.Message) protoreflect.Value {
			return protoreflect.ValueOfMessage(g.newMessage(fd, 1, false))
		})
	}
	if max >= 0 && len(out) > max {
		out = out[:max]
	}
	return out
}

// mapKey is the i-th of distinct keys of kind fd.
func (g *gen) mapKey(fd protoreflect.FieldDescriptor, i int) protoreflect.MapKey {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return protoreflect.ValueOfString("k" + strings.Repeat("x", i)).MapKey()
	case protoreflect.BoolKind:
		return protoreflect.ValueOfBool(i%2 == 0).MapKey()
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return protoreflect.ValueOfInt32(int32(i)).MapKey()
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return protoreflect.ValueOfUint32(uint32(i)).MapKey()
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return protoreflect.ValueOfUint64(uint64(i)).MapKey()
	default:
		return protoreflect.ValueOfInt64(int64(i)).MapKey()
	}
}

// newMessage is a new message of the type of field fd (a list's element,
// a map's value): empty, or filled at random.
func (g *gen) newMessage(fd protoreflect.FieldDescriptor, depth int, fill bool) protoreflect.Message {
	md := fd.Message()
	if fd.IsMap() {
		md = fd.MapValue().Message()
	}
	var sub protoreflect.Message
	if mt, err := protoregistry.GlobalTypes.FindMessageByName(md.FullName()); err == nil {
		sub = mt.New()
	} else {
		sub = dynamicpb.NewMessage(md)
	}
	if fill {
		g.fill(sub, depth)
	}
	return sub
}

// fill sets a random choice of m's fields to random values (nested
// messages up to depth 3).
func (g *gen) fill(m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if g.rnd.IntN(10) < 3 || (fd.Message() != nil && !fd.IsMap() && depth >= 3) {
			continue
		}
		if fd.ContainingOneof() != nil && m.WhichOneof(fd.ContainingOneof()) != nil {
			continue
		}
		switch {
		case fd.IsList():
			l := m.Mutable(fd).List()
			for range g.rnd.IntN(4) {
				l.Append(g.one(m, fd, depth))
			}
		case fd.IsMap():
			mp := m.Mutable(fd).Map()
			for j := range g.rnd.IntN(3) {
				if fd.MapValue().Message() != nil {
					if depth >= 3 {
						break
					}
					mp.Set(g.mapKey(fd.MapKey(), j), protoreflect.ValueOfMessage(g.newMessage(fd, depth+1, true)))
					continue
				}
				k := g.one(m, fd.MapKey(), depth)
				if fd.MapKey().Kind() != protoreflect.StringKind {
					k = g.mapKey(fd.MapKey(), j).Value()
				}
				mp.Set(k.MapKey(), g.one(m, fd.MapValue(), depth))
			}
		default:
			m.Set(fd, g.one(m, fd, depth))
		}
	}
}

// one is a random value of one element of fd (a corpus string mostly
// short and good, so that whole requests are often valid).
func (g *gen) one(m protoreflect.Message, fd protoreflect.FieldDescriptor, depth int) protoreflect.Value {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return protoreflect.ValueOfMessage(g.newMessage(fd, depth+1, true))
	case protoreflect.StringKind:
		if g.rnd.IntN(3) > 0 {
			return protoreflect.ValueOfString([]string{"a", "abc", "张三", "a.b_c-d", "王小明", "X1"}[g.rnd.IntN(6)])
		}
		return protoreflect.ValueOfString(g.strs[g.rnd.IntN(len(g.strs))])
	}
	vs := g.scalars(fd, -1)
	return vs[g.rnd.IntN(len(vs))](m)
}

// BenchmarkValidateRequest: what validating one request costs, with the Go
// check first (as servers do) and by protovalidate alone.
func BenchmarkValidateRequest(b *testing.B) {
	reqs := map[string]protoreflect.ProtoMessage{
		"GetUser":      &identityv1.GetUserRequest{Id: "01JD6W8Q9T3YF2B7X4K5M6N7P8"},
		"Authenticate": &identityv1.AuthenticateRequest{AppUserId: "zhang.san", Password: "Zeta-Pass-001", AppCode: "oa"},
	}
	for name, m := range reqs {
		b.Run(name+"/go-first", func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if err := ValidateRequest(m); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/protovalidate", func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				if err := validateFully(m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
