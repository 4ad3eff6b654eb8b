package casxml

import (
	"strings"
	"testing"
)

const head = `<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">`

func TestCheck(t *testing.T) {
	attrs := `<cas:attributes><cas:authenticationDate>2026-12-01T19:06:43Z</cas:authenticationDate>` +
		`<cas:longTermAuthenticationRequestTokenUsed>false</cas:longTermAuthenticationRequestTokenUsed>` +
		`<cas:isFromNewLogin>true</cas:isFromNewLogin><cas:memberOf>a</cas:memberOf><cas:memberOf>b</cas:memberOf></cas:attributes>`
	good := []string{
		head + `<cas:authenticationSuccess><cas:user>u</cas:user></cas:authenticationSuccess></cas:serviceResponse>`,
		head + `<cas:authenticationSuccess><cas:user>u</cas:user>` + attrs + `<cas:proxyGrantingTicket>PGTIOU-1</cas:proxyGrantingTicket>` +
			`<cas:proxies><cas:proxy>https://a/</cas:proxy><cas:proxy>https://b/</cas:proxy></cas:proxies></cas:authenticationSuccess></cas:serviceResponse>`,
		head + `<cas:authenticationFailure code="INVALID_TICKET">ticket 'ST-1' not recognized</cas:authenticationFailure></cas:serviceResponse>`,
		head + `<cas:proxySuccess><cas:proxyTicket>PT-1</cas:proxyTicket></cas:proxySuccess></cas:serviceResponse>`,
		head + `<cas:proxyFailure code="INVALID_REQUEST">x</cas:proxyFailure></cas:serviceResponse>`,
	}
	for _, g := range good {
		if err := Check([]byte(g)); err != nil {
			t.Errorf("valid answer refused: %v\n%s", err, g)
		}
	}
	bad := map[string]string{
		"other namespace": `<cas:serviceResponse xmlns:cas="urn:other"><cas:authenticationSuccess><cas:user>u</cas:user></cas:authenticationSuccess></cas:serviceResponse>`,
		"two answers": head + `<cas:proxySuccess><cas:proxyTicket>PT-1</cas:proxyTicket></cas:proxySuccess>` +
			`<cas:proxyFailure code="X">x</cas:proxyFailure></cas:serviceResponse>`,
		"no user": head + `<cas:authenticationSuccess>` + attrs + `</cas:authenticationSuccess></cas:serviceResponse>`,
		"order":   head + `<cas:authenticationSuccess><cas:user>u</cas:user><cas:proxies><cas:proxy>p</cas:proxy></cas:proxies>` + attrs + `</cas:authenticationSuccess></cas:serviceResponse>`,
		"no code": head + `<cas:authenticationFailure>x</cas:authenticationFailure></cas:serviceResponse>`,
		"attribute order": head + `<cas:authenticationSuccess><cas:user>u</cas:user><cas:attributes><cas:isFromNewLogin>true</cas:isFromNewLogin>` +
			`<cas:longTermAuthenticationRequestTokenUsed>false</cas:longTermAuthenticationRequestTokenUsed>` +
			`<cas:authenticationDate>2026-12-01T19:06:43Z</cas:authenticationDate></cas:attributes></cas:authenticationSuccess></cas:serviceResponse>`,
		"bad date":      head + `<cas:authenticationSuccess><cas:user>u</cas:user>` + strings.Replace(attrs, "2026-12-01T19:06:43Z", "yesterday", 1) + `</cas:authenticationSuccess></cas:serviceResponse>`,
		"bad boolean":   head + `<cas:authenticationSuccess><cas:user>u</cas:user>` + strings.Replace(attrs, ">true<", ">yes<", 1) + `</cas:authenticationSuccess></cas:serviceResponse>`,
		"empty proxies": head + `<cas:authenticationSuccess><cas:user>u</cas:user><cas:proxies></cas:proxies></cas:authenticationSuccess></cas:serviceResponse>`,
		"nested user":   head + `<cas:authenticationSuccess><cas:user><b>u</b></cas:user></cas:authenticationSuccess></cas:serviceResponse>`,
		"not XML":       head + `<cas:authenticationSuccess>`,
		"unknown":       head + `<cas:somethingElse/></cas:serviceResponse>`,
	}
	for name, b := range bad {
		if err := Check([]byte(b)); err == nil {
			t.Errorf("%s: accepted\n%s", name, b)
		}
	}
}
