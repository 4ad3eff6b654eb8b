package soap

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

func env(body string) string {
	return `<?xml version="1.0"?><s:Envelope xmlns:s="` + EnvelopeNS + `"><s:Body>` + body + `</s:Body></s:Envelope>`
}

func TestDecodeRequest(t *testing.T) {
	got, err := DecodeRequest(strings.NewReader(env(`<a:authenticate xmlns:a="` + Namespace + `">` +
		`<appType>OA</appType><appCode>oa</appCode><appUserid>m001</appUserid><fingerFeature xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/>` +
		`<password>p&lt;w&amp;d 密码</password><authType>1</authType></a:authenticate>`)))
	if err != nil {
		t.Fatal(err)
	}
	want := [7]string{"OA", "oa", "m001", "", "p<w&d 密码", "1", ""}
	if got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

// Legacy clients declare GBK (or GB18030, ISO-8859-1) and Windows ones
// start with a UTF-8 byte order mark: all are read, the text in UTF-8.
func TestDecodeRequestEncodings(t *testing.T) {
	call := `<a:authenticate xmlns:a="` + Namespace + `"><appType>OA</appType><appUserid>张三</appUserid><password>密码-1</password></a:authenticate>`
	doc := func(decl string) string {
		return `<?xml version="1.0" encoding="` + decl + `"?><s:Envelope xmlns:s="` + EnvelopeNS + `"><s:Body>` + call + `</s:Body></s:Envelope>`
	}
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(doc("GBK"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"GBK":          gbk,
		"GB2312 label": strings.Replace(gbk, `encoding="GBK"`, `encoding="gb2312"`, 1),
		"UTF-8 BOM":    "\xEF\xBB\xBF" + doc("UTF-8"),
	} {
		got, err := DecodeRequest(strings.NewReader(body))
		if err != nil || got[2] != "张三" || got[4] != "密码-1" {
			t.Errorf("%s: %q %v", name, got, err)
		}
	}
	latin := `<?xml version="1.0" encoding="ISO-8859-1"?><s:Envelope xmlns:s="` + EnvelopeNS + `"><s:Body><a:authenticate xmlns:a="` +
		Namespace + `"><password>` + "caf\xe9" + `</password></a:authenticate></s:Body></s:Envelope>`
	if got, err := DecodeRequest(strings.NewReader(latin)); err != nil || got[4] != "café" {
		t.Errorf("ISO-8859-1: %q %v", got, err)
	}
	_, err = DecodeRequest(strings.NewReader(doc("EBCDIC-US")))
	var se *Error
	if !errors.As(err, &se) || !strings.Contains(se.Reason, `encoding "EBCDIC-US" is not supported`) || strings.Contains(se.Reason, "CharsetReader") {
		t.Errorf("an unsupported encoding: %v", err)
	}
}

func TestDecodeRequestRefuses(t *testing.T) {
	call := func(inner string) string {
		return env(`<a:authenticate xmlns:a="` + Namespace + `">` + inner + `</a:authenticate>`)
	}
	cases := []struct{ name, doc, reason string }{
		{"not xml", `<s:Envelope xmlns:s="` + EnvelopeNS + `"><s:Body></s:Envelope>`, "not well-formed"},
		{"text", "hello", "unexpected text"},
		{"soap 1.2", `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>`, "SOAP 1.1 Envelope"},
		{"dtd", `<!DOCTYPE x [<!ENTITY a "b">]>` + env(""), "DTDs"},
		{"entity", call(`<appType>&xxe;</appType>`), "not well-formed"},
		{"no call", env(""), "no authenticate element"},
		{"other operation", env(`<a:delete xmlns:a="` + Namespace + `"/>`), "unknown operation"},
		{"two calls", env(`<a:authenticate xmlns:a="` + Namespace + `"/><a:authenticate xmlns:a="` + Namespace + `"/>`), "more than one"},
		{"unknown param", call(`<role>admin</role>`), `unknown parameter "role"`},
		{"twice", call(`<appType>a</appType><appType>b</appType>`), "given twice"},
		{"nested", call(`<appType><b>x</b></appType>`), "text only"},
		{"must understand", `<s:Envelope xmlns:s="` + EnvelopeNS + `"><s:Header><h:Sec xmlns:h="urn:x" s:mustUnderstand="1"/></s:Header><s:Body/></s:Envelope>`, "must be understood"},
		{"too long", call(`<password>` + strings.Repeat("x", MaxField+1) + `</password>`), "longer than"},
		{"too big", call(strings.Repeat(" ", MaxEnvelope)), "exceeds"},
		{"stray text", env(`text`), "unexpected text"},
	}
	for _, c := range cases {
		_, err := DecodeRequest(strings.NewReader(c.doc))
		var se *Error
		if !errors.As(err, &se) || !strings.Contains(se.Reason, c.reason) {
			t.Errorf("%s: %v, want %q", c.name, err, c.reason)
		}
	}
}

func TestEncode(t *testing.T) {
	var v struct {
		Body struct {
			Resp struct {
				Return int `xml:"return"`
			} `xml:"authenticateResponse"`
			Fault struct {
				Code   string `xml:"faultcode"`
				String string `xml:"faultstring"`
			} `xml:"Fault"`
		} `xml:"Body"`
	}
	if err := xml.Unmarshal(EncodeResponse(-4), &v); err != nil || v.Body.Resp.Return != -4 {
		t.Fatalf("response: %+v %v", v, err)
	}
	if err := xml.Unmarshal(EncodeFault("soap:Client", "bad <envelope>"), &v); err != nil ||
		v.Body.Fault.Code != "soap:Client" || v.Body.Fault.String != "bad <envelope>" {
		t.Fatalf("fault: %+v %v", v, err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(env(`<a:authenticate xmlns:a="` + Namespace + `"><appType>OA</appType></a:authenticate>`))
	f.Add(`<s:Envelope xmlns:s="` + EnvelopeNS + `"><s:Header><x/></s:Header><s:Body/></s:Envelope>`)
	f.Fuzz(func(t *testing.T, doc string) {
		got, err := DecodeRequest(strings.NewReader(doc))
		if err != nil {
			var se *Error
			if !errors.As(err, &se) {
				t.Fatalf("error %#v", err)
			}
			return
		}
		total := 0
		for _, s := range got {
			total += len(s)
		}
		if total > len(doc) {
			t.Fatalf("%d bytes of parameters from %d", total, len(doc))
		}
	})
}

// TestNodeSOAPClient: the npm soap 1.13.0 client reads WSDL(url) and calls
// authenticate; the request decodes and the int comes back; a fault
// reaches the client as a fault.
func TestNodeSOAPClient(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Skip("node is not installed: the soap interoperability test needs it")
	}
	_, file, _, _ := runtime.Caller(0)
	out, err := exec.Command(filepath.Join(filepath.Dir(file), "..", "..", "scripts", "legacy-clients.sh")).Output()
	if err != nil {
		t.Skipf("npm clients not installed (registry unreachable?): %v", err)
	}
	t.Setenv("NODE_PATH", filepath.Join(strings.TrimSpace(string(out)), "node_modules"))
	var got [7]string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		if r.Method == http.MethodGet && r.URL.RawQuery == "wsdl" {
			_, _ = w.Write(WSDL("http://" + r.Host + "/legacy/authenticate"))
			return
		}
		var err error
		if got, err = DecodeRequest(r.Body); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(EncodeFault("soap:Client", err.Error()))
			return
		}
		if got[2] == "fault" {
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write(EncodeFault("soap:Server", "system error"))
			return
		}
		_, _ = w.Write(EncodeResponse(-3))
	}))
	defer srv.Close()
	run := func(args map[string]string) map[string]any {
		t.Helper()
		raw, _ := json.Marshal(args)
		out, err := exec.Command("node", filepath.Join("testdata", "client.js"), srv.URL+"/legacy/authenticate", string(raw)).Output()
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				t.Fatalf("node: %v: %s", err, ee.Stderr)
			}
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("node output %s: %v", out, err)
		}
		return m
	}
	m := run(map[string]string{"appType": "OA", "appCode": "oa", "appUserid": "m001", "fingerFeature": "",
		"password": "p<w&d 密码", "authType": "1", "extendinfo": "ip=1.2.3.4"})
	res, _ := m["result"].(map[string]any)
	if res == nil || res["return"] != float64(-3) {
		t.Fatalf("soap client result: %v", m)
	}
	want := [7]string{"OA", "oa", "m001", "", "p<w&d 密码", "1", "ip=1.2.3.4"}
	if got != want {
		t.Fatalf("server read %q, want %q", got, want)
	}
	m = run(map[string]string{"appUserid": "fault"})
	if f, _ := m["fault"].(map[string]any); f == nil || f["faultstring"] != "system error" {
		t.Fatalf("soap client fault: %v", m)
	}
}
