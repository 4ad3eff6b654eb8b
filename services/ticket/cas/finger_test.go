package cas

import (
	"bytes"
	"encoding/base64"
	"testing"
)

func TestFingerRecordForms(t *testing.T) {
	rec := []byte{0x46, 0x4d, 0x52, 0x00, 0xfb, 0xff, 0x3e}
	std := base64.StdEncoding.EncodeToString(rec)
	for name, v := range map[string]string{
		"standard":    std,
		"unpadded":    base64.RawStdEncoding.EncodeToString(rec),
		"URL":         base64.URLEncoding.EncodeToString(rec),
		"line breaks": std[:4] + "\r\n" + std[4:] + "\n",
	} {
		if got, ok := fingerRecord(v); !ok || !bytes.Equal(got, rec) {
			t.Errorf("%s %q: %x %v", name, v, got, ok)
		}
	}
	for _, v := range []string{"", "  ", "not base64!", "===="} {
		if _, ok := fingerRecord(v); ok {
			t.Errorf("%q decoded", v)
		}
	}
}

func TestAgentOrigin(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:15270/capture?x=1": "http://127.0.0.1:15270",
		"https://agent.example/c":            "https://agent.example",
		"":                                   "",
		"/capture":                           "",
	} {
		if got := agentOrigin(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
