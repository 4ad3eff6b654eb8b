package hessian

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func call(args ...[]byte) []byte {
	b := []byte{'H', 2, 0, 'C'}
	b = AppendString(b, "authenticate")
	b = AppendInt(b, int32(len(args)))
	for _, a := range args {
		b = append(b, a...)
	}
	return b
}

func str(s string) []byte { return AppendString(nil, s) }

func TestDecodeCall(t *testing.T) {
	long := strings.Repeat("é", 1500) + strings.Repeat("x", 70000) + "😀"
	c, err := DecodeCall(call(str("OA"), str(""), []byte{'N'}, str(long), str("密码"), AppendInt(nil, 2), []byte{'T'},
		AppendInt(nil, -300000), AppendInt(nil, 1000), AppendInt(nil, -16)))
	if err != nil {
		t.Fatal(err)
	}
	want := []Value{"OA", "", nil, long, "密码", int32(2), true, int32(-300000), int32(1000), int32(-16)}
	if c.Method != "authenticate" || len(c.Args) != len(want) {
		t.Fatalf("%q %d args", c.Method, len(c.Args))
	}
	for i := range want {
		if c.Args[i] != want[i] {
			t.Fatalf("arg %d: %#v, want %#v", i, c.Args[i], want[i])
		}
	}
	// Without the version envelope too.
	if _, err := DecodeCall(call(str("a"))[3:]); err != nil {
		t.Fatal(err)
	}
	s, _, err := (&Call{Args: []Value{"a", nil}}).Strings()
	if err != nil || s[0] != "a" || s[1] != "" {
		t.Fatalf("Strings: %q %v", s, err)
	}
	if _, i, err := (&Call{Args: []Value{"a", int32(1)}}).Strings(); !errors.Is(err, ErrNotString) || i != 1 {
		t.Fatalf("Strings of an int: %d %v", i, err)
	}
}

func TestDecodeCallRefuses(t *testing.T) {
	cases := []struct {
		name   string
		b      []byte
		reason string
	}{
		{"empty", nil, "ends early"},
		{"version", []byte{'H', 1, 0, 'C'}, "version 1.0"},
		{"hessian 1", []byte("c\x01\x00m"), "Hessian 1.0 call"},
		{"not a call", []byte{'R', 0x90}, "expected a call"},
		{"method not a string", []byte{'C', 0x90, 0x90}, "method name"},
		{"count", append(append([]byte{'C'}, str("m")...), 0xb0), "argument count"},
		{"lone surrogate", call([]byte{0x01, 0xed, 0xa0, 0x80}), "unpaired"},
		{"short string", call([]byte{0x05, 'a'}), "declared but only"},
		{"bad utf8", call([]byte{0x02, 0xff, 0xfe}), "not valid UTF-8"},
		{"list", call([]byte{'V'}), "type tag 0x56 is not accepted"},
		{"trailing", append(call(str("a")), 0x90), "follow the last argument"},
		{"missing args", call(str("a"))[:len(call(str("a")))-2], "ends early"},
		{"straddle", call([]byte{'R', 0, 1, 0xf0, 0x9f, 0x98, 0x80, 'S', 0, 1, 'x'}), "straddles"},
		{"too big", make([]byte, MaxCall+1), "exceeds the limit"},
	}
	for _, c := range cases {
		_, err := DecodeCall(c.b)
		var he *Error
		if !errors.As(err, &he) || !strings.Contains(he.Reason, c.reason) {
			t.Errorf("%s: %v, want %q", c.name, err, c.reason)
		}
	}
}

// FuzzDecodeCall: no input panics; refusals are Errors inside the input;
// what is accepted re-encodes (strings and ints) to a call that decodes to
// the same values, and holds no more string bytes than the input.
func FuzzDecodeCall(f *testing.F) {
	f.Add(call(str("OA"), str("x"), []byte{'N'}))
	f.Add(call(str(strings.Repeat("y", 2000))))
	f.Add([]byte{'C', 0x01, 'm', 0x91, 'R', 0, 1, 'a', 'S', 0, 1, 'b'})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCall(b)
		if err != nil {
			var he *Error
			if !errors.As(err, &he) || he.Offset < 0 || he.Offset > len(b) {
				t.Fatalf("error %#v", err)
			}
			return
		}
		total := len(c.Method)
		var again [][]byte
		for _, a := range c.Args {
			switch v := a.(type) {
			case string:
				total += len(v)
				again = append(again, str(v))
			case int32:
				again = append(again, AppendInt(nil, v))
			case nil:
				again = append(again, []byte{'N'})
			case bool:
				again = append(again, map[bool][]byte{true: {'T'}, false: {'F'}}[v])
			}
		}
		if total > len(b) {
			t.Fatalf("%d string bytes from %d input bytes", total, len(b))
		}
		re := []byte{'C'}
		re = AppendString(re, c.Method)
		re = AppendInt(re, int32(len(c.Args)))
		re = append(re, bytes.Join(again, nil)...)
		c2, err := DecodeCall(re)
		if err != nil || len(c2.Args) != len(c.Args) {
			t.Fatalf("re-encoded call: %v", err)
		}
		for i := range c.Args {
			if c.Args[i] != c2.Args[i] {
				t.Fatalf("arg %d: %#v then %#v", i, c.Args[i], c2.Args[i])
			}
		}
	})
}

// TestHessianJS: calls serialized by the npm hessian.js 2.11.0 (as a Java
// HessianProxyFactory client would send them) decode; our replies and
// faults decode in hessian.js.
func TestHessianJS(t *testing.T) {
	node := nodeClients(t)
	args := []string{"OA", "oa", "m001", "null", "Pässwörd-1 密码 😀", "1", "ip=1.2.3.4|x=" + strings.Repeat("z", 3000)}
	out, err := exec.Command("node", append([]string{filepath.Join("testdata", "call.js"), "encode"}, args...)...).Output()
	if err != nil {
		t.Fatalf("node encode: %v", stderrOf(err))
	}
	c, err := DecodeCall(out)
	if err != nil {
		t.Fatalf("decode hessian.js call: %v", err)
	}
	got, _, err := c.Strings()
	if err != nil || c.Method != "authenticate" || len(got) != 7 {
		t.Fatalf("call %q %q %v", c.Method, got, err)
	}
	for i, a := range args {
		if a == "null" {
			a = ""
		}
		if got[i] != a {
			t.Fatalf("arg %d: %q, want %q", i, got[i], a)
		}
	}
	for _, tc := range []struct {
		b    []byte
		want string
	}{
		{EncodeReply(0), `{"kind":"R","value":0}`},
		{EncodeReply(-5), `{"kind":"R","value":-5}`},
		{EncodeReply(-99), `{"kind":"R","value":-99}`},
		{EncodeReply(100000), `{"kind":"R","value":100000}`},
		{EncodeFault("ServiceException", "bad envelope"), `{"kind":"F","value":{"code":"ServiceException","message":"bad envelope"}}`},
	} {
		file := filepath.Join(t.TempDir(), "reply.bin")
		if err := os.WriteFile(file, tc.b, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command("node", filepath.Join("testdata", "call.js"), "decode", file).Output()
		if err != nil {
			t.Fatalf("node decode: %v", stderrOf(err))
		}
		var a, b any
		_ = json.Unmarshal(out, &a)
		_ = json.Unmarshal([]byte(tc.want), &b)
		if ja, _ := json.Marshal(a); string(ja) != mustJSON(b) {
			t.Fatalf("hessian.js read %s, want %s", out, tc.want)
		}
	}
	_ = node
}

func mustJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return err.Error() + ": " + string(ee.Stderr)
	}
	return err.Error()
}

// nodeClients installs the npm clients (scripts/legacy-clients.sh) and
// points node at them; it skips the test, saying why, when node or the
// npm registry is unreachable.
func nodeClients(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the hessian.js interoperability test needs it")
	}
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "scripts", "legacy-clients.sh")
	out, err := exec.Command(script).Output()
	if err != nil {
		t.Skipf("npm clients not installed (registry unreachable?): %s", stderrOf(err))
	}
	dir := strings.TrimSpace(string(out))
	t.Setenv("NODE_PATH", filepath.Join(dir, "node_modules"))
	return dir
}
