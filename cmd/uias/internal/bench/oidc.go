package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/uias/uias/services/ticket"
)

// The OpenID Connect row: an authorization code issued in the process (the
// authorize endpoint's part, as the CAS pairs issue their ticket) and
// redeemed at POST /cas/oidc/token through the edge: the client's App_ID
// and secret checked by identity, the code used up, an access token kept in
// the tickets bucket and an RS256 ID token signed. Measured beside echo and
// the CAS p3/serviceValidate pair in the same slices.

// oidcRound is what one round of the OpenID Connect loops measured.
type oidcRound struct {
	echo, cas, oidc, sign *Result
}

// signCall signs an ID token's claims with an RSA-2048 key as the ticket
// component's (ticket.IDTokenKeys): the floor of the row.
func signCall() (CallFunc, error) {
	keys, err := ticket.NewIDTokenKeys("b", map[string][]byte{"b": []byte("uias benchmark ID token key seed")})
	if err != nil {
		return nil, err
	}
	if _, err := keys.Sign(map[string]any{}); err != nil { // derive the key before the clock runs
		return nil, err
	}
	return func(context.Context) (Outcome, error) {
		if _, err := keys.Sign(map[string]any{"iss": "https://bench.example/cas/oidc", "sub": "u", "aud": "app",
			"iat": 1, "exp": 2, "auth_time": 1, "sid": "s", "acr": "1"}); err != nil {
			return Failed, err
		}
		return OK, nil
	}, nil
}

// oidcPair issues a code and redeems it.
func (e *env) oidcPair(tb *ticketBench) CallFunc {
	tokenURL := e.httpBase + "/cas/oidc/token"
	return func(ctx context.Context) (Outcome, error) {
		n := tb.next.Add(1)
		code, _, err := tb.svc.IssueAuthorizationCode(ctx, ticket.AuthorizationRequest{TGT: tb.tgts[n%ticketSessions],
			RedirectURI: benchService, Binding: ticket.OIDCBinding{ClientID: e.appID, Scope: "openid"}})
		if err != nil {
			return Failed, fmt.Errorf("authorization code: %w", err)
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {benchService}}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
		if err != nil {
			return Failed, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(e.appID, e.secret)
		resp, err := e.httpClient.Do(req)
		if err != nil {
			return Failed, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return Failed, fmt.Errorf("token: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			return Failed, fmt.Errorf("token: HTTP %d %s", resp.StatusCode, body)
		}
		var tok struct {
			IDToken string `json:"id_token"`
		}
		if json.Unmarshal(body, &tok) != nil || strings.Count(tok.IDToken, ".") != 2 {
			return Failed, errors.New("token: no ID token in the answer")
		}
		return OK, nil
	}
}

// measureOIDC runs the OpenID Connect loops of one round.
func (e *env) measureOIDC(ctx context.Context, o *options, log io.Writer, closed func(int, CallFunc) Measure) (*oidcRound, error) {
	tb, err := e.ticketBench(ctx)
	if err != nil {
		return nil, err
	}
	sign, err := signCall()
	if err != nil {
		return nil, err
	}
	res := Interleave(ctx, o.slices, o.warmup, o.duration, closed(o.concurrency, e.callEcho),
		closed(o.concurrency, tb.pair(e.validateREST(tb))), closed(o.concurrency, e.oidcPair(tb)), closed(o.concurrency, sign))
	r := &oidcRound{echo: res[0], cas: res[1], oidc: res[2], sign: res[3]}
	fmt.Fprintf(log, "  OpenID Connect: echo %s; issue+p3/serviceValidate REST %s; code+token REST %s; RS256 signatures %s\n",
		summary(r.echo), summary(r.cas), summary(r.oidc), summary(r.sign))
	return r, nil
}

// oidcRows are the report rows of the OpenID Connect loops.
func oidcRows(o *options, rounds []*round) []*row {
	rw := &row{name: "OpenID Connect code + token (REST edge), all in one", u: perSec, atLeast: true, target: 0.4,
		oursLabel: fmt.Sprintf("%d callers", o.concurrency), floorLabel: "RS256 signatures alone",
		explain: fmt.Sprintf("Code exchanges per second, %d closed-loop callers: each call issues an authorization code "+
			"in the process (the authorize endpoint's part: a service ticket bound to the client, as the CAS pairs issue "+
			"theirs) and redeems it with POST /cas/oidc/token through the edge (HTTP/1.1 keep-alive): the client's App_ID "+
			"and secret checked by identity, the code used up, an access token written to the tickets bucket, an RS256 "+
			"ID token signed, the audit records stored by the same process. The floor is the ID token's signature alone "+
			"(RSA-2048, the same claims, %d callers) in the same slices: the one cost every exchange must pay. Goal: at "+
			"least 0.4× its rate (the rest of the exchange costs at most 1.5 signatures). The note gives the ratio to "+
			"Health/Check on a plain grpc.Server and to the CAS p3/serviceValidate pair (row 29's call), measured in the "+
			"same slices.", o.concurrency, o.concurrency)}
	var vsEcho, vsCAS []float64
	for _, r := range rounds {
		t := r.oidc
		if t == nil {
			continue
		}
		rw.add(t.oidc.QPS(), t.sign.QPS())
		if c := t.echo.QPS(); c > 0 {
			vsEcho = append(vsEcho, t.oidc.QPS()/c)
		}
		if c := t.cas.QPS(); c > 0 {
			vsCAS = append(vsCAS, t.oidc.QPS()/c)
		}
		for _, f := range []struct {
			what string
			res  *Result
		}{{"code+token", t.oidc}, {"CAS pairs", t.cas}, {"echo", t.echo}, {"signatures", t.sign}} {
			if f.res != nil && f.res.Failed > 0 {
				rw.errs = append(rw.errs, fmt.Sprintf("%s: %d failed calls, first: %v", f.what, f.res.Failed, f.res.FirstErr))
			}
		}
	}
	if len(rw.ours) == 0 {
		return nil
	}
	rw.note = fmt.Sprintf("%.3f× echo's, %.2f× the CAS p3/serviceValidate pair's", Median(vsEcho), Median(vsCAS))
	return []*row{rw}
}
