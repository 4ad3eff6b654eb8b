package log

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestMaskIDNumber(t *testing.T) {
	tests := []struct{ in, want string }{
		{"110101199003071234", "110*************34"},
		{"11010119900307123X", "110*************3X"},
		{"11010119900307123x", "110*************3x"},
		{"110101900307123", "110**********23"}, // old 15-digit ID
		{"1234567", "*******"},                 // short: fully masked
		{"12", "**"},
		{"", ""},
		{"证件号码一二三四五六七八", "证件号*******七八"}, // unicode: runes, not bytes
	}
	for _, tt := range tests {
		if got := MaskIDNumber(tt.in); got != tt.want {
			t.Errorf("MaskIDNumber(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"张三", "张*"},
		{"欧阳娜娜", "欧***"},
		{"李", "*"},
		{" 王小明 ", "王**"},
		{"Alice Smith", "A**********"},
		{"", ""},
		{"   ", ""},
	}
	for _, tt := range tests {
		if got := MaskName(tt.in); got != tt.want {
			t.Errorf("MaskName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	tests := []struct{ in, want string }{
		{"13812345678", "138****5678"},
		{"+8613812345678", "+86*******5678"},
		{"12345678", "********"}, // short: fully masked
		{"1", "*"},
		{"", ""},
		{"一二三四五六七八九十", "一二三***七八九十"},
	}
	for _, tt := range tests {
		if got := MaskPhone(tt.in); got != tt.want {
			t.Errorf("MaskPhone(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskSecret(t *testing.T) {
	for in, want := range map[string]string{"": "", "x": "****", "correct horse battery staple": "****", "密码": "****"} {
		if got := MaskSecret(in); got != want {
			t.Errorf("MaskSecret(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestMaskEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice@example.com", "a***@example.com"},
		{"a@example.com", "a***@example.com"},
		{"张三@例子.中国", "张***@例子.中国"},
		{"@example.com", "***@example.com"},
		{"not-an-email", "***"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := MaskEmail(tt.in); got != tt.want {
			t.Errorf("MaskEmail(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskText(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"id18", "id=110101199003071234 ok", "id=110*************34 ok"},
		{"id18 X", "证件号11010119900307123X已登记", "证件号110*************3X已登记"},
		{"id15", "old 110101900307123.", "old 110**********23."},
		{"mobile", "call 13812345678 now", "call 138****5678 now"},
		{"mobile +86", "tel:+8613812345678", "tel:+86138****5678"},
		{"several", "13812345678,110101199003071234;13900001111", "138****5678,110*************34;139****1111"},
		{"at start and end", "13812345678", "138****5678"},
		{"other numbers untouched", "order 12345 at 2024-01-02 qty 1234567890", "order 12345 at 2024-01-02 qty 1234567890"},
		{"12 digits untouched", "ref 138123456789", "ref 138123456789"},
		{"11 digits not starting with 1", "x 23812345678", "x 23812345678"},
		{"empty", "", ""},
		{"unicode only", "你好，世界", "你好，世界"},
		// A UIAS id (pkg/ids) with a run of 15 digits is an id, not an
		// old ID number; the same digits elsewhere are masked.
		{"hex id", "user:01a23df7adef018123456789084d0cb1", "user:01a23df7adef018123456789084d0cb1"},
		{"hex id, 31 chars", "user:1a23df7adef018123456789084d0cb1", "user:1a23df7adef018**********84d0cb1"},
		{"hex id with a letter beside", "user:01a23df7adef018123456789084d0cb1x", "user:01a23df7adef018**********84d0cb1x"},
		{"hex id, then a mobile", "user:01a23df7adef018123456789084d0cb1 13812345678", "user:01a23df7adef018123456789084d0cb1 138****5678"},
		{"32 digits", "n 01230123012301230123012301230123", "n 01230123012301230123012301230123"},
		{"old ID number on its own", "k 110101900307123", "k 110**********23"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MaskText(tt.in); got != tt.want {
				t.Errorf("MaskText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestFieldsNeverLogClearValues(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	lg := zap.New(core)
	const id, phone, secret, email = "110101199003071234", "13812345678", "s3cr3t-p@ss", "alice@example.com"
	lg.Info("user registered", IDNumber("id_number", id), Phone("phone", phone), Secret("password", secret), Email("email", email))

	entries := logs.All()
	if len(entries) != 1 {
		t.Fatalf("got %d entries", len(entries))
	}
	fields := entries[0].ContextMap()
	for key, clear := range map[string]string{"id_number": id, "phone": phone, "password": secret, "email": email} {
		v, _ := fields[key].(string)
		if v == "" || strings.Contains(v, clear) {
			t.Errorf("field %s = %q, must be masked and non-empty", key, v)
		}
	}
	if fields["id_number"] != "110*************34" {
		t.Errorf("id_number = %v", fields["id_number"])
	}
}

func TestNewJSONOutput(t *testing.T) {
	var buf bytes.Buffer
	lg, err := NewTo(Config{Level: "warn", Format: "json"}, &buf)
	if err != nil {
		t.Fatal(err)
	}
	lg.Info("hidden")
	lg.Warn("shown", IDNumber("id", "110101199003071234"))
	_ = lg.Sync()
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want 1 line (info filtered), got %q", buf.String())
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("not JSON: %v: %s", err, lines[0])
	}
	if m["msg"] != "shown" || m["level"] != "warn" || m["id"] != "110*************34" {
		t.Fatalf("entry = %v", m)
	}
	if strings.Contains(buf.String(), "110101199003071234") {
		t.Fatal("clear ID number in output")
	}
}

func TestNewConfigErrors(t *testing.T) {
	if _, err := New(Config{}); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	if _, err := New(Config{Level: "debug", Format: "console"}); err != nil {
		t.Fatalf("console: %v", err)
	}
	if _, err := New(Config{Level: "loud"}); err == nil || !strings.Contains(err.Error(), "loud") {
		t.Fatalf("bad level: %v", err)
	}
	if _, err := New(Config{Format: "xml"}); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Fatalf("bad format: %v", err)
	}
}
