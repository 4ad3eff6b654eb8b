package ctl

import (
	"bytes"
	"context"
	"encoding/xml"
	"strings"
	"testing"
)

// `uias ctl sync wsdl` prints the soap transport's WSDL without asking a
// server; a stray argument is a usage error.
func TestSyncWSDLCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := Main(context.Background(), []string{"--addr", "127.0.0.1:1", "sync", "wsdl", "--endpoint", "https://erp.example.com/ws"},
		strings.NewReader(""), &out, &errb, nil); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var doc struct {
		XMLName xml.Name
	}
	if err := xml.Unmarshal(out.Bytes(), &doc); err != nil || doc.XMLName.Local != "definitions" ||
		!strings.Contains(out.String(), `location="https://erp.example.com/ws"`) || !strings.Contains(out.String(), `name="syncUser"`) {
		t.Fatalf("wsdl output (%v):\n%s", err, out.String())
	}
	out.Reset()
	errb.Reset()
	if code := Main(context.Background(), []string{"sync", "wsdl", "extra"}, strings.NewReader(""), &out, &errb, nil); code != 2 ||
		!strings.Contains(errb.String(), `unexpected argument "extra"`) {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
}
