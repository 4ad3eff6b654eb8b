package audit_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
)

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		"":                                 "",
		"alice":                            "alice",
		"张三":                               "张三",
		"a\nb":                             `a\u000ab`,
		"line\r\n{\"result\":\"success\"}": `line\u000d\u000a{"result":"success"}`,
		"evil\u202egnp.exe":                `evil\u202egnp.exe`,
		"zero\u200bwidth":                  `zero\u200bwidth`,
		"bell\x07\x1b[31mred":              `bell\u0007\u001b[31mred`,
		"bad\xffutf8":                      `bad\xffutf8`,
		`back\slash`:                       `back\\slash`,
		`fake\u000a`:                       `fake\\u000a`,
		"tag\U000E0041":                    `tag\U000e0041`,
		"sep\u2028":                        `sep\u2028`,
		strings.Repeat("x", audit.MaxText): strings.Repeat("x", audit.MaxText),
	} {
		if got := audit.Text(in); got != want {
			t.Errorf("AuditText(%q) = %q, want %q", in, got, want)
		}
	}
}

// No caller-supplied value, however long or hostile, yields more than
// MaxAuditText bytes, raw control or format characters, or invalid UTF-8.
func TestTextCaps(t *testing.T) {
	for _, in := range []string{
		strings.Repeat("A", 1<<20),
		strings.Repeat("\n", 10000),
		strings.Repeat("张", 1000),
		strings.Repeat("a\u202e", 500),
		strings.Repeat("x", audit.MaxText+1),
		strings.Repeat("x", audit.MaxText-1) + "\n",
		strings.Repeat("\xff", 300),
	} {
		got := audit.Text(in)
		if len(got) > audit.MaxText {
			t.Errorf("%d bytes from %.20q", len(got), in)
		}
		if !utf8.ValidString(got) {
			t.Errorf("invalid UTF-8 from %.20q", in)
		}
		for _, r := range got {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Errorf("raw %U kept from %.20q", r, in)
			}
		}
		if len(in) > audit.MaxText && !strings.HasSuffix(got, "…") {
			t.Errorf("cut value %.20q does not end with an ellipsis: %.20q", in, got[len(got)-10:])
		}
		if strings.HasSuffix(strings.TrimSuffix(got, "…"), `\`) {
			t.Errorf("an escape was cut in half: %q", got[len(got)-12:])
		}
	}
}

// Every record a Builder makes escapes and caps what callers chose.
func TestBuilderEscapesCallerText(t *testing.T) {
	b := audit.NewBuilder("test", nil)
	ctx := caller.With(context.Background(), &caller.Caller{RequestID: "r1"})
	claimed := strings.Repeat("A", 10000) + "\n{\"result\":\"success\"}"
	ev := b.CallerDenied(ctx, claimed, "BAD_APP_CREDENTIALS", time.Now())
	var rec events.AuditRecord
	if err := json.Unmarshal(ev.Payload, &rec); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{rec.Subject, rec.Detail["app_id"]} {
		if len(f) > audit.MaxText || strings.ContainsAny(f, "\n") || !strings.HasSuffix(f, "…") {
			t.Errorf("field %.30q… (%d bytes)", f, len(f))
		}
	}
	ev = b.Event(ctx, audit.Action{API: "x", Subject: "login:a\u202eb", Detail: map[string]string{"k\n": "v\x00"}})
	rec = events.AuditRecord{}
	_ = json.Unmarshal(ev.Payload, &rec)
	if rec.Subject != `login:a\u202eb` || rec.Detail[`k\u000a`] != `v\u0000` {
		t.Errorf("record %+v", rec)
	}
}
