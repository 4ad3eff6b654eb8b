package cas

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// CAS SAML 1.1 ticket validation (CAS protocol 3.0 §4.2, Apereo's
// /samlValidate, the Java client's Saml11TicketValidator):
//
//	POST <prefix>samlValidate?TARGET=<service URL>
//
// with a SOAP 1.1 (or 1.2) envelope whose body is a samlp:Request carrying one
// samlp:AssertionArtifact (the service ticket). The ticket is validated by
// the ticket component's ValidateServiceTicket, as at p3/serviceValidate
// (used up whatever the verdict, TARGET matched like service, the audit
// record), and the answer is a SOAP envelope with a samlp:Response: Success
// with an assertion (the person's login, their attributes, the service as
// the audience), or a failure status with a message, in the request's
// SOAP version (1.1 when the request's could not be read). Failures are answered
// with HTTP 200 (as CAS does), except a body over samlMaxBody (413).

// Namespaces and fixed values of the answer.
const (
	soap11NS       = "http://schemas.xmlsoap.org/soap/envelope/"
	soap12NS       = "http://www.w3.org/2003/05/soap-envelope"
	samlpNS        = "urn:oasis:names:tc:SAML:1.0:protocol"
	samlNS         = "urn:oasis:names:tc:SAML:1.0:assertion"
	xsdNS          = "http://www.w3.org/2001/XMLSchema"
	xsiNS          = "http://www.w3.org/2001/XMLSchema-instance"
	casAttributeNS = "http://www.ja-sig.org/products/cas/"
	// samlAMPassword, samlAMX509TLS and samlAMUnspecified are SAML 1.1
	// authentication methods: a level-1 session signed in with a password;
	// a level-2 one with a client certificate over TLS (the certificate
	// login, the only level-2 login; "TLS client authentication", as
	// Apereo says of X.509 logins); any other is not said to be either.
	samlAMPassword = "urn:oasis:names:tc:SAML:1.0:am:password"
	samlAMX509TLS  = "urn:ietf:rfc:2246"
	// samlAMKerberos: SAML 1.1 core §7.1 Kerberos (RFC 1510).
	samlAMKerberos    = "urn:ietf:rfc:1510"
	samlAMUnspecified = "urn:oasis:names:tc:SAML:1.0:am:unspecified"
	samlCMArtifact    = "urn:oasis:names:tc:SAML:1.0:cm:artifact"
)

// The answer's time window and the request's bound.
const (
	// samlValidity is how long the assertion is valid after it is issued
	// (NotOnOrAfter), as Apereo's default issue length.
	samlValidity = 30 * time.Second
	// samlSkew moves NotBefore back, for clients whose clock is a little
	// behind ours (the Java client allows only 1 s itself).
	samlSkew = 5 * time.Second
	// samlMaxBody bounds the request body: a CAS request is about 500
	// bytes; room is left for SOAP headers.
	samlMaxBody = 32 << 10
)

// SAML 1.1 status codes (QNames in the samlp namespace).
const (
	samlSuccess       = "samlp:Success"
	samlRequester     = "samlp:Requester"
	samlResponder     = "samlp:Responder"
	samlRequestDenied = "samlp:RequestDenied"
)

// samlRequest is what a samlValidate request carries.
type samlRequest struct {
	artifact  string // the service ticket
	requestID string // the samlp:Request's RequestID ("" if absent or unusable)
	soapNS    string // the envelope's SOAP namespace (1.1 or 1.2; "" if not read)
}

// samlBadRequest is a malformed request; its text is safe to answer (it
// is written here, never taken from the parser).
type samlBadRequest string

func (e samlBadRequest) Error() string { return string(e) }

// requestIDRE is a RequestID the answer may echo as InResponseTo (an
// xs:ID, bounded).
var requestIDRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9._-]{0,127}$`)

// parseSAMLRequest reads a SOAP envelope holding a samlp:Request with
// exactly one samlp:AssertionArtifact. A DOCTYPE is refused (no entities
// are ever expanded).
func parseSAMLRequest(body []byte) (samlRequest, error) {
	d := xml.NewDecoder(bytes.NewReader(body))
	d.Strict = true
	var (
		out       samlRequest
		artifacts int
		stack     []xml.Name
		text      strings.Builder
		inArt     bool
		sawReq    bool
		sawRoot   bool
	)
	for {
		tok, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return out, samlBadRequest("the request body is not well-formed XML")
		}
		switch t := tok.(type) {
		case xml.Directive:
			return out, samlBadRequest("a DOCTYPE is not allowed in the request")
		case xml.StartElement:
			n := t.Name
			switch len(stack) {
			case 0:
				sawRoot = true
				if n.Local != "Envelope" || (n.Space != soap11NS && n.Space != soap12NS) {
					return out, samlBadRequest("the request body is not a SOAP envelope")
				}
				out.soapNS = n.Space
			case 1:
				if n.Local != "Body" && n.Local != "Header" || n.Space != stack[0].Space {
					return out, samlBadRequest("the SOAP envelope holds an element other than Header and Body")
				}
				if n.Local == "Header" {
					if err := d.Skip(); err != nil {
						return out, samlBadRequest("the request body is not well-formed XML")
					}
					continue
				}
			case 2:
				if stack[1].Local != "Body" {
					break
				}
				if sawReq || n.Space != samlpNS || n.Local != "Request" {
					return out, samlBadRequest("the SOAP body must hold one samlp:Request")
				}
				sawReq = true
				for _, a := range t.Attr {
					if a.Name.Space == "" && a.Name.Local == "RequestID" && requestIDRE.MatchString(a.Value) {
						out.requestID = a.Value
					}
				}
			case 3:
				if stack[2].Space == samlpNS && stack[2].Local == "Request" && n.Space == samlpNS && n.Local == "AssertionArtifact" {
					artifacts++
					inArt = true
					text.Reset()
				}
			default:
				if inArt {
					return out, samlBadRequest("the samlp:AssertionArtifact must hold text only")
				}
			}
			stack = append(stack, n)
		case xml.EndElement:
			if inArt && len(stack) == 4 {
				inArt = false
				out.artifact = strings.TrimSpace(text.String())
			}
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) == 0 && len(bytes.TrimSpace(t)) > 0 {
				return out, samlBadRequest("the request body is not well-formed XML")
			}
			if inArt {
				if text.Len()+len(t) > 4*maxTicketLen {
					return out, samlBadRequest("the samlp:AssertionArtifact is not a CAS ticket")
				}
				text.Write(t)
			}
		}
	}
	switch {
	case !sawRoot:
		return out, samlBadRequest("the request body is not well-formed XML")
	case !sawReq:
		return out, samlBadRequest("the SOAP body must hold one samlp:Request")
	case artifacts == 0:
		return out, samlBadRequest("the samlp:Request has no samlp:AssertionArtifact (the service ticket)")
	case artifacts > 1:
		return out, samlBadRequest("the samlp:Request must hold exactly one samlp:AssertionArtifact")
	case out.artifact == "":
		return out, samlBadRequest("the samlp:AssertionArtifact is empty")
	case len(out.artifact) > maxTicketLen:
		return out, samlBadRequest("the samlp:AssertionArtifact is not a CAS ticket")
	}
	return out, nil
}

// samlValidate is POST <prefix>samlValidate.
func (h *Handler) samlValidate(w http.ResponseWriter, r *http.Request) {
	a := samlAnswer{now: h.o.Now().UTC(), issuer: samlIssuer(r)}
	if r.ContentLength > samlMaxBody {
		a.fail(samlRequester, "", fmt.Sprintf("the request body is larger than %d bytes", samlMaxBody))
		h.writeSAML(w, http.StatusRequestEntityTooLarge, a)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, samlMaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			a.fail(samlRequester, "", fmt.Sprintf("the request body is larger than %d bytes", samlMaxBody))
			h.writeSAML(w, http.StatusRequestEntityTooLarge, a)
			return
		}
		// The client went away or sent a broken body: nobody to answer
		// but itself.
		a.fail(samlRequester, "", "the request body could not be read")
		h.writeSAML(w, http.StatusBadRequest, a)
		return
	}
	req, err := parseSAMLRequest(body)
	a.inResponseTo, a.soapNS = req.requestID, req.soapNS
	if err != nil {
		a.fail(samlRequester, "", err.Error())
		h.writeSAML(w, http.StatusOK, a)
		return
	}
	q := r.URL.Query()
	target := q.Get("TARGET")
	if len(target) > 2048 {
		a.fail(samlRequester, "", "the TARGET parameter is too long")
		h.writeSAML(w, http.StatusOK, a)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	// The same validation as p3/serviceValidate: a missing TARGET too is
	// answered (and audited) by the ticket component.
	res, err := h.o.Tickets.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: req.artifact,
		Service: target, Renew: truthy(q.Get("renew")), Attributes: true})
	switch {
	case err != nil && reasonOf(err) == "BAD_REQUEST":
		a.fail(samlRequester, "", "the request's parameters are not valid")
	case err != nil:
		h.o.Log.Warn("CAS samlValidate: the ticket component failed", zap.Error(err))
		a.fail(samlResponder, "", "the ticket service is unavailable, retry later")
	case !res.GetValid() && res.GetCode() == ticketv1.CasCode_CAS_CODE_INTERNAL_ERROR:
		// Ours, not the requester's (authz did not answer what the
		// service releases): the application may retry.
		a.fail(samlResponder, "", "INTERNAL_ERROR: "+res.GetMessage())
	case !res.GetValid() && res.GetCode() == ticketv1.CasCode_CAS_CODE_INVALID_REQUEST:
		a.fail(samlRequester, "", "INVALID_REQUEST: the TARGET parameter (the service URL) is required")
	case !res.GetValid():
		a.fail(samlRequester, samlRequestDenied, casCode(res.GetCode())+": "+res.GetMessage())
	default:
		a.succeed(target, res, h.attributes(ctx, res))
	}
	h.writeSAML(w, http.StatusOK, a)
}

// samlIssuer names this server in the assertion: the host it was asked
// at (as Apereo's issuer, the CAS server's host name).
func samlIssuer(r *http.Request) string {
	if r.Host != "" && len(r.Host) <= 255 {
		return r.Host
	}
	return "uias"
}

func (h *Handler) writeSAML(w http.ResponseWriter, code int, a samlAnswer) {
	b, err := xml.MarshalIndent(a.envelope(), "", "  ")
	if err != nil {
		// Only a programming error (the types are fixed).
		h.o.Log.Error("CAS samlValidate: the answer could not be written", zap.Error(err))
		http.Error(w, "the answer could not be written", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	if a.soapNS == soap12NS {
		hd.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	} else {
		hd.Set("Content-Type", "text/xml;charset=UTF-8")
	}
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
	_, _ = w.Write([]byte("\n"))
}

// samlAnswer is a samlValidate answer before it is written.
type samlAnswer struct {
	now          time.Time
	issuer       string
	inResponseTo string
	soapNS       string // the request's SOAP namespace ("": SOAP 1.1)
	// failures
	code, subcode, message string
	// success
	ok           bool
	recipient    string
	login        string
	authAt       time.Time
	authMethod   string
	attributeSet []samlAttribute
}

func (a *samlAnswer) fail(code, subcode, message string) {
	a.code, a.subcode, a.message = code, subcode, message
}

func (a *samlAnswer) succeed(service string, res *ticketv1.ValidateServiceTicketResponse, attrs [][2]string) {
	a.ok, a.code, a.recipient, a.login = true, samlSuccess, service, res.GetLogin()
	a.authAt = a.now
	if t := res.GetAuthenticatedAt(); t != nil {
		a.authAt = t.AsTime().UTC()
	}
	switch {
	case res.GetAuthMethod() == ticketv1.AuthMethod_AUTH_METHOD_PASSWORD:
		a.authMethod = samlAMPassword
	case res.GetAuthMethod() == ticketv1.AuthMethod_AUTH_METHOD_CERTIFICATE:
		a.authMethod = samlAMX509TLS
	case res.GetAuthMethod() == ticketv1.AuthMethod_AUTH_METHOD_KERBEROS:
		a.authMethod = samlAMKerberos
	case res.GetAuthMethod() != ticketv1.AuthMethod_AUTH_METHOD_UNSPECIFIED:
		// Password and an authenticator app's code, a finger: SAML 1.1
		// names no such method (the authLevel attribute says the level).
		a.authMethod = samlAMUnspecified
	case res.GetAuthLevel() == 1: // a ticket of a session that did not record its method
		a.authMethod = samlAMPassword
	case res.GetAuthLevel() == 2:
		a.authMethod = samlAMX509TLS
	default:
		a.authMethod = samlAMUnspecified
	}
	// Repeated names (groups, memberOf) are one attribute with several
	// values, in the order they came.
	at := map[string]int{}
	for _, kv := range attrs {
		i, ok := at[kv[0]]
		if !ok {
			i = len(a.attributeSet)
			at[kv[0]] = i
			a.attributeSet = append(a.attributeSet, samlAttribute{Name: kv[0], Namespace: casAttributeNS})
		}
		a.attributeSet[i].Values = append(a.attributeSet[i].Values, samlValue{Type: "xsd:string", Value: kv[1]})
	}
}

// samlTime is the SAML 1.1 form of a time (UTC, milliseconds).
func samlTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// samlID is a fresh identifier (xs:ID: starts with '_').
func samlID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "_" + hex.EncodeToString(b)
}

func (a samlAnswer) envelope() soapEnvelope {
	st := samlStatus{Code: samlStatusCode{Value: a.code}}
	if a.subcode != "" {
		st.Code.Sub = &samlStatusCode{Value: a.subcode}
	}
	if !a.ok {
		st.Message = a.message
	}
	resp := samlResponse{SAMLP: samlpNS, SAML: samlNS, XSD: xsdNS, XSI: xsiNS, ResponseID: samlID(), InResponseTo: a.inResponseTo,
		IssueInstant: samlTime(a.now), MajorVersion: "1", MinorVersion: "1", Status: st}
	if a.ok {
		resp.Recipient = a.recipient
		subject := samlSubject{NameIdentifier: a.login, Confirmation: samlConfirmation{Method: samlCMArtifact}}
		as := &samlAssertion{AssertionID: samlID(), IssueInstant: samlTime(a.now), Issuer: a.issuer, MajorVersion: "1", MinorVersion: "1",
			Conditions: samlConditions{NotBefore: samlTime(a.now.Add(-samlSkew)), NotOnOrAfter: samlTime(a.now.Add(samlValidity)),
				Audience: samlAudience{Audience: a.recipient}},
			Authn: samlAuthnStatement{Instant: samlTime(a.authAt), Method: a.authMethod, Subject: subject}}
		if len(a.attributeSet) > 0 {
			as.Attributes = &samlAttributeStatement{Subject: subject, Attributes: a.attributeSet}
		}
		resp.Assertion = as
	}
	ns := soap11NS
	if a.soapNS == soap12NS {
		ns = soap12NS
	}
	return soapEnvelope{NS: ns, Body: soapBody{Response: resp}}
}

// The answer's XML. Names carry their prefixes (declared on the root
// elements); encoding/xml escapes every text and attribute value.
type soapEnvelope struct {
	XMLName xml.Name `xml:"SOAP-ENV:Envelope"`
	NS      string   `xml:"xmlns:SOAP-ENV,attr"`
	Header  struct{} `xml:"SOAP-ENV:Header"`
	Body    soapBody `xml:"SOAP-ENV:Body"`
}

type soapBody struct {
	Response samlResponse `xml:"samlp:Response"`
}

type samlResponse struct {
	SAMLP        string         `xml:"xmlns:samlp,attr"`
	SAML         string         `xml:"xmlns:saml,attr"`
	XSD          string         `xml:"xmlns:xsd,attr"`
	XSI          string         `xml:"xmlns:xsi,attr"`
	ResponseID   string         `xml:"ResponseID,attr"`
	InResponseTo string         `xml:"InResponseTo,attr,omitempty"`
	IssueInstant string         `xml:"IssueInstant,attr"`
	MajorVersion string         `xml:"MajorVersion,attr"`
	MinorVersion string         `xml:"MinorVersion,attr"`
	Recipient    string         `xml:"Recipient,attr,omitempty"`
	Status       samlStatus     `xml:"samlp:Status"`
	Assertion    *samlAssertion `xml:"saml:Assertion,omitempty"`
}

type samlStatus struct {
	Code    samlStatusCode `xml:"samlp:StatusCode"`
	Message string         `xml:"samlp:StatusMessage,omitempty"`
}

type samlStatusCode struct {
	Value string          `xml:"Value,attr"`
	Sub   *samlStatusCode `xml:"samlp:StatusCode,omitempty"`
}

type samlAssertion struct {
	AssertionID  string                  `xml:"AssertionID,attr"`
	IssueInstant string                  `xml:"IssueInstant,attr"`
	Issuer       string                  `xml:"Issuer,attr"`
	MajorVersion string                  `xml:"MajorVersion,attr"`
	MinorVersion string                  `xml:"MinorVersion,attr"`
	Conditions   samlConditions          `xml:"saml:Conditions"`
	Authn        samlAuthnStatement      `xml:"saml:AuthenticationStatement"`
	Attributes   *samlAttributeStatement `xml:"saml:AttributeStatement,omitempty"`
}

type samlConditions struct {
	NotBefore    string       `xml:"NotBefore,attr"`
	NotOnOrAfter string       `xml:"NotOnOrAfter,attr"`
	Audience     samlAudience `xml:"saml:AudienceRestrictionCondition"`
}

type samlAudience struct {
	Audience string `xml:"saml:Audience"`
}

type samlAuthnStatement struct {
	Instant string      `xml:"AuthenticationInstant,attr"`
	Method  string      `xml:"AuthenticationMethod,attr"`
	Subject samlSubject `xml:"saml:Subject"`
}

type samlSubject struct {
	NameIdentifier string           `xml:"saml:NameIdentifier"`
	Confirmation   samlConfirmation `xml:"saml:SubjectConfirmation"`
}

type samlConfirmation struct {
	Method string `xml:"saml:ConfirmationMethod"`
}

type samlAttributeStatement struct {
	Subject    samlSubject     `xml:"saml:Subject"`
	Attributes []samlAttribute `xml:"saml:Attribute"`
}

type samlAttribute struct {
	Name      string      `xml:"AttributeName,attr"`
	Namespace string      `xml:"AttributeNamespace,attr"`
	Values    []samlValue `xml:"saml:AttributeValue"`
}

type samlValue struct {
	Type  string `xml:"xsi:type,attr"`
	Value string `xml:",chardata"`
}
