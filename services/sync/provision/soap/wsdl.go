package soap

import (
	"encoding/xml"
	"strings"
)

// WSDL is the WSDL 1.1 description of the operations (document/literal,
// SOAP 1.1 over HTTP) with endpoint as the service's address ("": a
// placeholder the business system's developers replace). It is generated
// from Kinds, which the requests are written from too.
func WSDL(endpoint string) string {
	if endpoint == "" {
		endpoint = "https://business-system.example/uias/provisioning"
	}
	var b strings.Builder
	w := func(ss ...string) {
		for _, s := range ss {
			b.WriteString(s)
		}
		b.WriteByte('\n')
	}
	esc := func(s string) string {
		var e strings.Builder
		_ = xml.EscapeText(&e, []byte(s))
		return e.String()
	}
	w(`<?xml version="1.0" encoding="UTF-8"?>`)
	w(`<!-- UIAS provisioning: the operations a business system implements to receive people, orgs, groups and roles.`)
	w(`     Every request carries its delivery id (also in the X-Uias-Delivery HTTP header), the same on every retry:`)
	w(`     drop one already processed. Answer with the operation's response element (HTTP 200; any other answer is`)
	w(`     not a delivery); a soap:Client fault with HTTP 500 (or a 4xx but 401, 403, 408, 429) refuses the request for`)
	w(`     good, a soap:Server fault (or any other failure: 401, 403, 408, 429, 5xx, redirects, which are not followed)`)
	w(`     has it retried later. -->`)
	w(`<wsdl:definitions name="UiasProvisioning" targetNamespace="`, NS, `"`)
	w(`    xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/" xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"`)
	w(`    xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:tns="`, NS, `">`)
	w(`  <wsdl:types>`)
	w(`    <xsd:schema targetNamespace="`, NS, `" elementFormDefault="unqualified">`)
	w(`      <xsd:complexType name="RoleRef"><xsd:sequence>`)
	w(`        <xsd:element name="id" type="xsd:string"/><xsd:element name="code" type="xsd:string"/>`)
	w(`        <xsd:element name="name" type="xsd:string" minOccurs="0"/>`)
	w(`      </xsd:sequence></xsd:complexType>`)
	for _, k := range Kinds {
		w(`      <xsd:complexType name="`, k.Type, `"><xsd:sequence>`)
		w(`        <xsd:element name="id" type="xsd:string"/>`)
		for _, f := range k.Fields {
			w(`        <xsd:element name="`, f.XML, `" type="xsd:`, f.Type, `" minOccurs="0"/>`)
		}
		if k.Active {
			w(`        <xsd:element name="active" type="xsd:boolean"/>`)
		}
		if k.Roles {
			w(`        <xsd:element name="roles" minOccurs="0"><xsd:complexType><xsd:sequence>`)
			w(`          <xsd:element name="role" type="tns:RoleRef" minOccurs="0" maxOccurs="unbounded"/>`)
			w(`        </xsd:sequence></xsd:complexType></xsd:element>`)
		}
		if k.Members {
			w(`        <xsd:element name="members"><xsd:complexType><xsd:sequence>`)
			w(`          <xsd:element name="member" type="xsd:string" minOccurs="0" maxOccurs="unbounded"/>`)
			w(`        </xsd:sequence></xsd:complexType></xsd:element>`)
		}
		w(`      </xsd:sequence></xsd:complexType>`)
	}
	common := `<xsd:element name="delivery" type="xsd:string"/><xsd:element name="subscription" type="xsd:string"/>` +
		`<xsd:element name="app" type="xsd:string"/><xsd:element name="eventId" type="xsd:string"/>` +
		`<xsd:element name="batchId" type="xsd:string" minOccurs="0"/><xsd:element name="time" type="xsd:dateTime"/>`
	for _, k := range Kinds {
		w(`      <xsd:element name="`, k.Sync, `"><xsd:complexType><xsd:sequence>`, common)
		w(`        <xsd:element name="`, k.Element, `" type="tns:`, k.Type, `"/></xsd:sequence></xsd:complexType></xsd:element>`)
		w(`      <xsd:element name="`, k.Delete, `"><xsd:complexType><xsd:sequence>`, common)
		w(`        <xsd:element name="id" type="xsd:string"/></xsd:sequence></xsd:complexType></xsd:element>`)
		for _, op := range []string{k.Sync, k.Delete} {
			w(`      <xsd:element name="`, op, `Response"><xsd:complexType><xsd:sequence/></xsd:complexType></xsd:element>`)
		}
	}
	w(`    </xsd:schema>`)
	w(`  </wsdl:types>`)
	ops := Operations()
	for _, op := range ops {
		w(`  <wsdl:message name="`, op, `Request"><wsdl:part name="parameters" element="tns:`, op, `"/></wsdl:message>`)
		w(`  <wsdl:message name="`, op, `Response"><wsdl:part name="parameters" element="tns:`, op, `Response"/></wsdl:message>`)
	}
	w(`  <wsdl:portType name="UiasProvisioningPortType">`)
	for _, op := range ops {
		w(`    <wsdl:operation name="`, op, `"><wsdl:input message="tns:`, op, `Request"/><wsdl:output message="tns:`, op,
			`Response"/></wsdl:operation>`)
	}
	w(`  </wsdl:portType>`)
	w(`  <wsdl:binding name="UiasProvisioningBinding" type="tns:UiasProvisioningPortType">`)
	w(`    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>`)
	for _, op := range ops {
		w(`    <wsdl:operation name="`, op, `"><soap:operation soapAction="`, NS, `#`, op, `"/>`)
		w(`      <wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>`)
	}
	w(`  </wsdl:binding>`)
	w(`  <wsdl:service name="UiasProvisioningService">`)
	w(`    <wsdl:port name="UiasProvisioningPort" binding="tns:UiasProvisioningBinding"><soap:address location="`, esc(endpoint), `"/></wsdl:port>`)
	w(`  </wsdl:service>`)
	w(`</wsdl:definitions>`)
	return b.String()
}

// Operations lists the operations, sync and delete of each kind.
func Operations() []string {
	var out []string
	for _, k := range Kinds {
		out = append(out, k.Sync, k.Delete)
	}
	return out
}
