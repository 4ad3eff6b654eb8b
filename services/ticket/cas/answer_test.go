package cas

import (
	"encoding/xml"
	"net/http/httptest"
	"strings"
	"testing"
)

// oldXML is the XML answer as it was written before appendXML (strings
// joined in a strings.Builder): the reference the new writer must match
// byte for byte.
func oldXML(v validation) string {
	esc := func(s string) string {
		var b strings.Builder
		_ = xml.EscapeText(&b, []byte(s))
		return b.String()
	}
	var b strings.Builder
	b.WriteString(`<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">` + "\n")
	switch {
	case v.proxy && v.ok:
		b.WriteString("  <cas:proxySuccess>\n    <cas:proxyTicket>" + esc(v.proxyTicket) + "</cas:proxyTicket>\n  </cas:proxySuccess>\n")
	case v.proxy:
		b.WriteString(`  <cas:proxyFailure code="` + esc(v.code) + `">` + esc(v.desc) + "</cas:proxyFailure>\n")
	case v.ok:
		b.WriteString("  <cas:authenticationSuccess>\n    <cas:user>" + esc(v.user) + "</cas:user>\n")
		if len(v.attributes) > 0 {
			b.WriteString("    <cas:attributes>\n")
			for _, a := range v.attributes {
				b.WriteString("      <cas:" + a[0] + ">" + esc(a[1]) + "</cas:" + a[0] + ">\n")
			}
			b.WriteString("    </cas:attributes>\n")
		}
		if v.pgtIOU != "" {
			b.WriteString("    <cas:proxyGrantingTicket>" + esc(v.pgtIOU) + "</cas:proxyGrantingTicket>\n")
		}
		if len(v.proxies) > 0 {
			b.WriteString("    <cas:proxies>\n")
			for _, p := range v.proxies {
				b.WriteString("      <cas:proxy>" + esc(p) + "</cas:proxy>\n")
			}
			b.WriteString("    </cas:proxies>\n")
		}
		b.WriteString("  </cas:authenticationSuccess>\n")
	default:
		b.WriteString(`  <cas:authenticationFailure code="` + esc(v.code) + `">` + esc(v.desc) + "</cas:authenticationFailure>\n")
	}
	b.WriteString("</cas:serviceResponse>\n")
	return b.String()
}

// TestAnswerXMLAsBefore: the XML answers written into a pooled buffer are
// byte for byte what the earlier writer made, for every kind of answer
// and hostile text, answered one after another (a buffer reused after a
// long answer keeps nothing of it).
func TestAnswerXMLAsBefore(t *testing.T) {
	hostile := "<a href=\"x\">&'\x00\t\n\r\u2028é中\xff"
	long := strings.Repeat("x<", 40000)
	vs := []validation{
		{ok: true, user: "alice"},
		{ok: true, user: hostile, attributes: [][2]string{{"login", "alice"}, {"displayName", hostile}, {"groups", "g1"}, {"groups", "g2"}},
			pgtIOU: "PGTIOU-1-c1", proxies: []string{"https://p1.example/cb", hostile}},
		{ok: true, user: "bob", attributes: [][2]string{{"orgName", long}}},
		{ok: true, user: "carol", proxies: []string{"https://p.example/"}},
		{code: "INVALID_TICKET", desc: "ticket ST-1 not recognized"},
		{code: hostile, desc: hostile},
		{proxy: true, ok: true, proxyTicket: "PT-1-c1"},
		{proxy: true, code: "INVALID_REQUEST", desc: hostile},
		{},
	}
	h := &Handler{}
	for round := range 2 {
		for i, v := range vs {
			w := httptest.NewRecorder()
			h.answer(w, false, v)
			if got, want := w.Body.String(), oldXML(v); got != want {
				t.Fatalf("round %d answer %d:\n got %q\nwant %q", round, i, got, want)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/xml;charset=UTF-8" {
				t.Fatalf("content type %q", ct)
			}
		}
	}
}
