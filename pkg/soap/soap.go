// Package soap reads and writes the SOAP 1.1 document/literal form of the
// legacy call authenticate(appType, appCode, appUserid, fingerFeature,
// password, authType, extendinfo) -> int, and its WSDL.
//
// The request reader is strict and bounded: at most MaxEnvelope bytes, no
// DTD, the SOAP 1.1 envelope namespace, a Body holding exactly one
// authenticate element in Namespace whose children are the seven string
// parameters (each at most once, text only, each at most MaxField bytes).
// Header entries marked mustUnderstand="1" are refused (none is
// understood).
package soap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/text/encoding/charmap"
	"golang.org/x/text/encoding/simplifiedchinese"
	"golang.org/x/text/transform"
)

// Namespaces.
const (
	EnvelopeNS = "http://schemas.xmlsoap.org/soap/envelope/"
	Namespace  = "http://uias.dev/legacy/authenticate"
)

// Limits.
const (
	MaxEnvelope = 256 << 10
	MaxField    = 128 << 10
)

// Params are the seven parameters, in order.
var Params = [7]string{"appType", "appCode", "appUserid", "fingerFeature", "password", "authType", "extendinfo"}

// Error is a request refused as malformed (a SOAP Client fault).
type Error struct{ Reason string }

func (e *Error) Error() string { return "soap: " + e.Reason }

func bad(format string, a ...any) error { return &Error{Reason: fmt.Sprintf(format, a...)} }

// DecodeRequest reads an authenticate request and returns its parameters
// (absent ones empty) in the order of Params.
func DecodeRequest(r io.Reader) ([7]string, error) {
	var out [7]string
	body, err := io.ReadAll(io.LimitReader(r, MaxEnvelope+1))
	if err != nil {
		return out, bad("reading the request: %v", err)
	}
	if len(body) > MaxEnvelope {
		return out, bad("the envelope exceeds %d bytes", MaxEnvelope)
	}
	// A UTF-8 byte order mark may start an XML document (XML 1.0 §4.3.3);
	// clients on Windows often send one.
	body = bytes.TrimPrefix(body, []byte{0xEF, 0xBB, 0xBF})
	d := xml.NewDecoder(bytes.NewReader(body))
	d.CharsetReader = charsetReader
	d.Strict = true
	d.Entity = nil // only the five predefined entities
	depth := 0
	var inBody, inHeader, inCall, seenCall bool
	field := -1
	var seen [7]bool
	var text strings.Builder
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, bad("not well-formed XML: %v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return out, bad("DTDs and other directives are not accepted")
		case xml.ProcInst:
			if t.Target != "xml" || depth > 0 {
				return out, bad("processing instructions are not accepted")
			}
		case xml.StartElement:
			depth++
			switch {
			case depth == 1:
				if t.Name.Space != EnvelopeNS || t.Name.Local != "Envelope" {
					return out, bad("the root element must be the SOAP 1.1 Envelope (%s), not {%s}%s", EnvelopeNS, t.Name.Space, t.Name.Local)
				}
			case depth == 2:
				if t.Name.Space != EnvelopeNS || (t.Name.Local != "Header" && t.Name.Local != "Body") {
					return out, bad("unexpected element {%s}%s in the Envelope", t.Name.Space, t.Name.Local)
				}
				inHeader, inBody = t.Name.Local == "Header", t.Name.Local == "Body"
			case depth == 3 && inHeader:
				for _, a := range t.Attr {
					if a.Name.Space == EnvelopeNS && a.Name.Local == "mustUnderstand" && strings.TrimSpace(a.Value) == "1" {
						return out, bad("header {%s}%s must be understood but is not supported", t.Name.Space, t.Name.Local)
					}
				}
			case depth == 3 && inBody:
				if seenCall {
					return out, bad("the Body holds more than one element")
				}
				if t.Name.Space != Namespace || t.Name.Local != "authenticate" {
					return out, bad("unknown operation {%s}%s (expected {%s}authenticate)", t.Name.Space, t.Name.Local, Namespace)
				}
				inCall, seenCall = true, true
			case depth == 4 && inCall:
				field = -1
				for i, p := range Params {
					if t.Name.Local == p && (t.Name.Space == "" || t.Name.Space == Namespace) {
						field = i
					}
				}
				if field < 0 {
					return out, bad("unknown parameter %q", t.Name.Local)
				}
				if seen[field] {
					return out, bad("parameter %q given twice", t.Name.Local)
				}
				seen[field] = true
				for _, a := range t.Attr {
					if a.Name.Local == "nil" && a.Name.Space == "http://www.w3.org/2001/XMLSchema-instance" && a.Value == "true" {
						field = -2 // xsi:nil: stays empty
					}
				}
				text.Reset()
			case depth >= 5 && inCall:
				return out, bad("parameters must hold text only")
			}
		case xml.EndElement:
			switch {
			case depth == 4 && inCall:
				if field >= 0 {
					out[field] = text.String()
				}
				field = -1
			case depth == 3:
				inCall = false
			case depth == 2:
				inHeader, inBody = false, false
			}
			depth--
		case xml.CharData:
			switch {
			case depth == 4 && inCall && field >= 0:
				if text.Len()+len(t) > MaxField {
					return out, bad("parameter %q is longer than %d bytes", Params[field], MaxField)
				}
				text.Write(t)
			case inHeader && depth >= 3:
				// Content of header entries that need not be understood.
			case len(bytes.TrimSpace(t)) > 0:
				return out, bad("unexpected text in the envelope")
			}
		}
	}
	if !seenCall {
		return out, bad("the Body holds no authenticate element")
	}
	return out, nil
}

const envStart = `<?xml version="1.0" encoding="UTF-8"?>` +
	`<soap:Envelope xmlns:soap="` + EnvelopeNS + `"><soap:Body>`
const envEnd = `</soap:Body></soap:Envelope>`

// EncodeResponse is the response envelope of authenticate returning code.
func EncodeResponse(code int32) []byte {
	return fmt.Appendf(nil, `%s<tns:authenticateResponse xmlns:tns="%s"><return>%d</return></tns:authenticateResponse>%s`,
		envStart, Namespace, code, envEnd)
}

// EncodeFault is a SOAP 1.1 fault: faultcode "soap:Client" (the request
// was malformed) or "soap:Server" (the server failed), and a message.
func EncodeFault(faultcode, message string) []byte {
	var b bytes.Buffer
	b.WriteString(envStart + `<soap:Fault><faultcode>`)
	_ = xml.EscapeText(&b, []byte(faultcode))
	b.WriteString(`</faultcode><faultstring>`)
	_ = xml.EscapeText(&b, []byte(message))
	b.WriteString(`</faultstring></soap:Fault>` + envEnd)
	return b.Bytes()
}

// WSDL is the service description, with endpoint as the address.
func WSDL(endpoint string) []byte {
	var addr bytes.Buffer
	_ = xml.EscapeText(&addr, []byte(endpoint))
	var params strings.Builder
	for _, p := range Params {
		fmt.Fprintf(&params, `<xsd:element name="%s" type="xsd:string" minOccurs="0" nillable="true"/>`, p)
	}
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="AuthenticateService" targetNamespace="%[1]s"
  xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
  xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="%[1]s">
  <wsdl:types>
    <xsd:schema targetNamespace="%[1]s" elementFormDefault="unqualified">
      <xsd:element name="authenticate"><xsd:complexType><xsd:sequence>%[2]s</xsd:sequence></xsd:complexType></xsd:element>
      <xsd:element name="authenticateResponse"><xsd:complexType><xsd:sequence><xsd:element name="return" type="xsd:int"/></xsd:sequence></xsd:complexType></xsd:element>
    </xsd:schema>
  </wsdl:types>
  <wsdl:message name="authenticateRequest"><wsdl:part name="parameters" element="tns:authenticate"/></wsdl:message>
  <wsdl:message name="authenticateResponse"><wsdl:part name="parameters" element="tns:authenticateResponse"/></wsdl:message>
  <wsdl:portType name="AuthenticatePortType">
    <wsdl:operation name="authenticate"><wsdl:input message="tns:authenticateRequest"/><wsdl:output message="tns:authenticateResponse"/></wsdl:operation>
  </wsdl:portType>
  <wsdl:binding name="AuthenticateBinding" type="tns:AuthenticatePortType">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="authenticate">
      <soap:operation soapAction="%[1]s/authenticate" style="document"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input>
      <wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation>
  </wsdl:binding>
  <wsdl:service name="AuthenticateService">
    <wsdl:port name="AuthenticatePort" binding="tns:AuthenticateBinding"><soap:address location="%[3]s"/></wsdl:port>
  </wsdl:service>
</wsdl:definitions>
`, Namespace, params.String(), addr.String())
}

// charsetReader decodes the encodings legacy clients declare besides
// UTF-8: GBK and GB2312 (read as GB18030, their superset), GB18030 and
// ISO-8859-1.
func charsetReader(label string, in io.Reader) (io.Reader, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "utf-8", "utf8":
		return in, nil
	case "gbk", "gb2312", "gb18030", "cp936", "x-gbk":
		return transform.NewReader(in, simplifiedchinese.GB18030.NewDecoder()), nil
	case "iso-8859-1", "latin1", "iso8859-1":
		return transform.NewReader(in, charmap.ISO8859_1.NewDecoder()), nil
	}
	return nil, fmt.Errorf("encoding %q is not supported (UTF-8, GBK, GB18030 or ISO-8859-1)", truncateLabel(label))
}

func truncateLabel(s string) string {
	if len(s) > 32 {
		return s[:32]
	}
	return s
}
