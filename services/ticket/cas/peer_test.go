package cas

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// peerTickets is a ticket component for the peer pages: redeem and issue
// answer what the test sets; sessions are created.
type peerTickets struct {
	ticketv1.TicketServiceClient
	redeemErr, issueErr, logoutErr error
	created                        *ticketv1.CreateSessionRequest
}

func (p *peerTickets) MatchService(_ context.Context, r *ticketv1.MatchServiceRequest, _ ...grpc.CallOption) (*ticketv1.RegisteredService, error) {
	if !strings.HasPrefix(r.GetService(), "https://app.example/") {
		return nil, apierr.ToStatus(apierr.New(apierr.NotFound, "SERVICE_NOT_REGISTERED", "not registered"))
	}
	return &ticketv1.RegisteredService{Name: "App"}, nil
}

func (p *peerTickets) RedeemPeerAssertion(context.Context, *ticketv1.RedeemPeerAssertionRequest, ...grpc.CallOption) (*ticketv1.RedeemPeerAssertionResponse, error) {
	if p.redeemErr != nil {
		return nil, p.redeemErr
	}
	return &ticketv1.RedeemPeerAssertionResponse{Peer: "l1", UserId: "u1", AuthLevel: 1, AuthMethod: ticketv1.AuthMethod_AUTH_METHOD_PASSWORD,
		PeerSid: "sid-1"}, nil
}

func (p *peerTickets) IssuePeerAssertion(context.Context, *ticketv1.IssuePeerAssertionRequest, ...grpc.CallOption) (*ticketv1.IssuePeerAssertionResponse, error) {
	if p.issueErr != nil {
		return nil, p.issueErr
	}
	return &ticketv1.IssuePeerAssertionResponse{Assertion: "a.b.c", AcceptUrl: "https://l1.example/cas/peer/accept"}, nil
}

func (p *peerTickets) CreateSession(_ context.Context, r *ticketv1.CreateSessionRequest, _ ...grpc.CallOption) (*ticketv1.CreateSessionResponse, error) {
	p.created = r
	return &ticketv1.CreateSessionResponse{Tgt: "TGT-1-l2a"}, nil
}

func (p *peerTickets) IssueServiceTicket(context.Context, *ticketv1.IssueServiceTicketRequest, ...grpc.CallOption) (*ticketv1.IssueServiceTicketResponse, error) {
	return &ticketv1.IssueServiceTicketResponse{Ticket: "ST-1-l2a"}, nil
}

func (p *peerTickets) PeerLogout(context.Context, *ticketv1.PeerLogoutRequest, ...grpc.CallOption) (*ticketv1.PeerLogoutResponse, error) {
	if p.logoutErr != nil {
		return nil, p.logoutErr
	}
	return &ticketv1.PeerLogoutResponse{Ended: 1}, nil
}

// peerSSO answers PeerLogin with reason.
type peerSSO struct {
	identityv1.SSOServiceClient
	reason identityv1.Reason
}

func (s peerSSO) PeerLogin(context.Context, *identityv1.PeerLoginRequest, ...grpc.CallOption) (*identityv1.SSOLoginResponse, error) {
	return &identityv1.SSOLoginResponse{Reason: s.reason, UserId: "u1", Login: "pia", RequiredAuthLevel: 2}, nil
}

func peerCall(h *Handler, method, path string, body url.Values, cookies ...*http.Cookie) *http.Response {
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, path, strings.NewReader(body.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	for _, c := range cookies {
		r.AddCookie(c)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Result()
}

func bodyOf(res *http.Response) string {
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func TestPeerPages(t *testing.T) {
	ping := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cas/peer/ping" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.NotFound(w, r)
	}))
	defer ping.Close()
	tk := &peerTickets{}
	sso := peerSSO{reason: identityv1.Reason_REASON_OK}
	peers := []PeerPage{{Name: "l1", URL: ping.URL, Display: "Level 1"}, {Name: "l2b", URL: "http://127.0.0.1:1"}}
	h := New(Options{Tickets: tk, SSO: sso, Centre: "l2a", Peers: peers})
	svc := "https://app.example/x"
	h.peerUp.probe(context.Background())

	// The login page offers the peer that answers, not the one that does
	// not; never for renew.
	body := bodyOf(peerCall(h, http.MethodGet, "/cas/login?service="+url.QueryEscape(svc), nil))
	if !strings.Contains(body, `id="peer-l1"`) || !strings.Contains(body, "Signed in at Level 1?") || strings.Contains(body, `id="peer-l2b"`) {
		t.Fatalf("login page:\n%s", body)
	}
	if body := bodyOf(peerCall(h, http.MethodGet, "/cas/login?renew=true&service="+url.QueryEscape(svc), nil)); strings.Contains(body, "peer-link") {
		t.Fatal("a peer offered for renew")
	}

	// start: the page's button (a POST with its CSRF token); the browser
	// bound to a nonce, off to the peer's assert with the nonce's hash.
	csrf := &http.Cookie{Name: csrfCookie, Value: "0123456789abcdef0123456789abcdef-csrf"}
	form := url.Values{"csrf": {csrf.Value}}
	if !strings.Contains(body, `<form method="post" action="/cas/peer/start?`) || !strings.Contains(body, `name="csrf"`) {
		t.Fatalf("the peer link is not a form with the CSRF token:\n%s", body)
	}
	res := peerCall(h, http.MethodPost, "/cas/peer/start?peer=l1&service="+url.QueryEscape(svc), form, csrf)
	loc, _ := url.Parse(res.Header.Get("Location"))
	var nonce string
	for _, c := range res.Cookies() {
		if c.Name == peerCookie {
			nonce = c.Value
		}
	}
	if res.StatusCode != http.StatusSeeOther || loc == nil || loc.Path != "/cas/peer/assert" || loc.Query().Get("audience") != "l2a" ||
		loc.Query().Get("nonce") != ticket.PeerNonceHash(nonce) || len(nonce) != 32 || !strings.Contains(loc.Query().Get("state"), url.QueryEscape(svc)) {
		t.Fatalf("start: %d to %v, nonce %q", res.StatusCode, loc, nonce)
	}
	// (sec28b H1) never started by a link or another site's form: a GET,
	// a POST without the page's token or with another one.
	for name, res := range map[string]*http.Response{
		"GET":        peerCall(h, http.MethodGet, "/cas/peer/start?peer=l1&service="+url.QueryEscape(svc), nil),
		"no token":   peerCall(h, http.MethodPost, "/cas/peer/start?peer=l1&service="+url.QueryEscape(svc), url.Values{}),
		"no cookie":  peerCall(h, http.MethodPost, "/cas/peer/start?peer=l1&service="+url.QueryEscape(svc), form),
		"wrong form": peerCall(h, http.MethodPost, "/cas/peer/start?peer=l1&service="+url.QueryEscape(svc), url.Values{"csrf": {"x" + csrf.Value}}, csrf),
	} {
		set := false
		for _, c := range res.Cookies() {
			set = set || c.Name == peerCookie
		}
		if res.StatusCode < 400 || res.Header.Get("Location") != "" || set {
			t.Errorf("start (%s): %d to %q, nonce cookie set %v", name, res.StatusCode, res.Header.Get("Location"), set)
		}
	}
	if res := peerCall(h, http.MethodPost, "/cas/peer/start?peer=evil&service="+url.QueryEscape(svc), form, csrf); res.StatusCode != http.StatusBadRequest ||
		res.Header.Get("Location") != "" {
		t.Fatalf("start for a stranger: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}

	// assert: to the audience's configured page only.
	res = peerCall(h, http.MethodGet, "/cas/peer/assert?audience=l1&nonce="+ticket.PeerNonceHash(nonce)+"&state=x", nil)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, ping.URL+"/cas/peer/accept?") ||
		!strings.Contains(loc, "error=login_required") {
		t.Fatalf("assert without a session: %d to %q", res.StatusCode, loc)
	}
	tgc := &http.Cookie{Name: TGCCookie, Value: "TGT-9-l2a"}
	res = peerCall(h, http.MethodGet, "/cas/peer/assert?audience=l1&nonce="+ticket.PeerNonceHash(nonce)+"&state=x", nil, tgc)
	if loc := res.Header.Get("Location"); !strings.HasPrefix(loc, "https://l1.example/cas/peer/accept?") || !strings.Contains(loc, "assertion=a.b.c") {
		t.Fatalf("assert: %d to %q", res.StatusCode, loc)
	}
	tk.issueErr = unavailable()
	res = peerCall(h, http.MethodGet, "/cas/peer/assert?audience=l1&nonce="+ticket.PeerNonceHash(nonce)+"&state=x", nil, tgc)
	if loc := res.Header.Get("Location"); !strings.Contains(loc, "error=temporarily_unavailable") {
		t.Fatalf("assert with the store down: %d to %q", res.StatusCode, loc)
	}
	tk.issueErr = nil

	// accept: the session at the peer's level, with the peer recorded; on
	// to the service with a ticket.
	state := url.Values{"service": {svc}}.Encode()
	accept := "/cas/peer/accept?" + url.Values{"assertion": {"a.b.c"}, "peer": {"l1"}, "state": {state}}.Encode()
	nc := &http.Cookie{Name: peerCookie, Value: nonce}
	res = peerCall(h, http.MethodGet, accept, nil, nc)
	if loc := res.Header.Get("Location"); res.StatusCode != http.StatusFound || loc != svc+"?ticket=ST-1-l2a" || tk.created == nil ||
		tk.created.GetPeer() != "l1" || tk.created.GetPeerSid() != "sid-1" || tk.created.GetAuthLevel() != 1 {
		t.Fatalf("accept: %d to %q, session %+v", res.StatusCode, loc, tk.created)
	}
	for reason, want := range map[string]string{ticket.ReasonPeerReplayed: "used already", ticket.ReasonPeerExpired: "has expired",
		ticket.ReasonPeerWrongAudience: "another centre", ticket.ReasonPeerInvalid: "could not be verified"} {
		tk.redeemErr = apierr.ToStatus(apierr.New(apierr.Unauthenticated, reason, "x"))
		res = peerCall(h, http.MethodGet, accept, nil, nc)
		if body := bodyOf(res); res.StatusCode != http.StatusUnauthorized || !strings.Contains(body, want) || !strings.Contains(body, `id="password"`) {
			t.Errorf("%s: %d\n%s", reason, res.StatusCode, body)
		}
	}
	tk.redeemErr = unavailable()
	if res := peerCall(h, http.MethodGet, accept, nil, nc); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("accept with the store down: %d", res.StatusCode)
	}
	tk.redeemErr = nil
	for reason, want := range map[identityv1.Reason]string{identityv1.Reason_REASON_ACCOUNT_LOCKED: "disabled or locked",
		identityv1.Reason_REASON_NO_SUCH_USER: "not known here", identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW: "does not reach the level",
		identityv1.Reason_REASON_PASSWORD_ONLY: "with its own password, not on Level 1&#39;s word"} {
		h := New(Options{Tickets: tk, SSO: peerSSO{reason: reason}, Centre: "l2a", Peers: peers})
		res := peerCall(h, http.MethodGet, accept, nil, nc)
		if body := bodyOf(res); res.StatusCode != http.StatusForbidden || !strings.Contains(body, want) {
			t.Errorf("%v: %d\n%s", reason, res.StatusCode, body)
		}
	}
	// to an unregistered service: the error page, no redirect
	bad := "/cas/peer/accept?" + url.Values{"assertion": {"a.b.c"}, "peer": {"l1"}, "state": {"service=https://evil.example/"}}.Encode()
	if res := peerCall(h, http.MethodGet, bad, nil, nc); res.StatusCode != http.StatusForbidden || res.Header.Get("Location") != "" {
		t.Errorf("accept to a stranger: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}

	// logout tokens
	if res := peerCall(h, http.MethodPost, "/cas/peer/logout", url.Values{"logout_token": {"a.b.c"}}); res.StatusCode != http.StatusOK ||
		bodyOf(res) != `{"ended":1}` {
		t.Errorf("peer logout: %d", res.StatusCode)
	}
	tk.logoutErr = apierr.ToStatus(apierr.New(apierr.Unauthenticated, ticket.ReasonPeerInvalid, "x"))
	if res := peerCall(h, http.MethodPost, "/cas/peer/logout", url.Values{"logout_token": {"x"}}); res.StatusCode != http.StatusBadRequest ||
		!strings.Contains(bodyOf(res), ticket.ReasonPeerInvalid) {
		t.Errorf("forged peer logout: %d", res.StatusCode)
	}
	tk.logoutErr = unavailable()
	if res := peerCall(h, http.MethodPost, "/cas/peer/logout", url.Values{"logout_token": {"x"}}); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("peer logout with the store down: %d", res.StatusCode)
	}
}

// sessionTickets is peerTickets with a live session of u1 at level.
type sessionTickets struct {
	*peerTickets
	level int32
}

func (s sessionTickets) GetSession(context.Context, *ticketv1.GetSessionRequest, ...grpc.CallOption) (*ticketv1.Session, error) {
	return &ticketv1.Session{UserId: "u1", Login: "pia", AuthLevel: s.level}, nil
}

// TestPeerAcceptKeepsStrongerSession: a hop of a person already signed in
// here at a higher level keeps that session (a weaker sign-in elsewhere
// never lowers it); at a lower level the hop raises it (replace_tgt).
func TestPeerAcceptKeepsStrongerSession(t *testing.T) {
	svc := "https://app.example/x"
	accept := "/cas/peer/accept?" + url.Values{"assertion": {"a.b.c"}, "peer": {"l1"},
		"state": {url.Values{"service": {svc}}.Encode()}}.Encode()
	cookies := []*http.Cookie{{Name: peerCookie, Value: "00112233445566778899aabbccddeeff"}, {Name: TGCCookie, Value: "TGT-7-l2a"}}
	strong := &peerTickets{}
	h := New(Options{Tickets: sessionTickets{strong, 2}, SSO: peerSSO{reason: identityv1.Reason_REASON_OK}, Centre: "l2a",
		Peers: []PeerPage{{Name: "l1", URL: "https://l1.example"}}})
	if res := peerCall(h, http.MethodGet, accept, nil, cookies...); res.StatusCode != http.StatusFound || strong.created != nil {
		t.Fatalf("a level-2 session met a level-1 hop: %d, created %+v", res.StatusCode, strong.created)
	}
	weak := &peerTickets{}
	h = New(Options{Tickets: sessionTickets{weak, 0}, SSO: peerSSO{reason: identityv1.Reason_REASON_OK}, Centre: "l2a",
		Peers: []PeerPage{{Name: "l1", URL: "https://l1.example"}}})
	if res := peerCall(h, http.MethodGet, accept, nil, cookies...); res.StatusCode != http.StatusFound || weak.created.GetReplaceTgt() != "TGT-7-l2a" {
		t.Fatalf("a lower session met a hop: %d, created %+v", res.StatusCode, weak.created)
	}
}

// redeemTickets records the nonce the ticket component was asked with and
// answers success whatever it is (as a faulty or older component might)
// once the request passes the proto rules the server chain checks before
// any handler (grpcx.ValidateRequest): a request the chain refuses never
// reaches the component's domain.
type redeemTickets struct {
	*peerTickets
	asked  bool
	nonces []string
}

func (z *redeemTickets) RedeemPeerAssertion(ctx context.Context, r *ticketv1.RedeemPeerAssertionRequest, o ...grpc.CallOption) (*ticketv1.RedeemPeerAssertionResponse, error) {
	if err := grpcx.ValidateRequest(r); err != nil {
		return nil, apierr.ToStatus(err)
	}
	z.asked = true
	z.nonces = append(z.nonces, r.GetNonce())
	return z.peerTickets.RedeemPeerAssertion(ctx, r, o...)
}

// TestPeerAcceptWithoutCookie (sec28b H1): a browser without the nonce
// cookie (login CSRF: the attacker's own assertion sent to a victim) is
// refused by the page itself, never redeemed with a stand-in nonce, and
// no session opens; the ticket component is asked with no nonce, in a
// request its validation lets through (rr29 A1), so that it audits the
// refusal and uses the assertion up (that part through the real component:
// component.TestPeerAcceptWithoutCookieReachesTheDomain).
func TestPeerAcceptWithoutCookie(t *testing.T) {
	tk := &redeemTickets{peerTickets: &peerTickets{}}
	h := New(Options{Tickets: tk, SSO: peerSSO{reason: identityv1.Reason_REASON_OK}, Centre: "l2a",
		Peers: []PeerPage{{Name: "l1", URL: "http://127.0.0.1:1"}}})
	state := url.Values{"service": {"https://app.example/x"}}.Encode()
	res := peerCall(h, http.MethodGet, "/cas/peer/accept?"+url.Values{"peer": {"l1"}, "assertion": {"attacker.assertion.sig"},
		"state": {state}}.Encode(), nil)
	if body := bodyOf(res); res.StatusCode != http.StatusUnauthorized || res.Header.Get("Location") != "" || tk.created != nil ||
		!strings.Contains(body, "could not be verified") {
		t.Fatalf("accept without the nonce cookie: %d to %q, session %+v\n%s", res.StatusCode, res.Header.Get("Location"), tk.created, body)
	}
	if !tk.asked || len(tk.nonces) != 1 || tk.nonces[0] != "" {
		t.Fatalf("ticket component asked (past its validation) with nonces %q", tk.nonces)
	}
	if res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("Referrer-Policy %q", res.Header.Get("Referrer-Policy"))
	}
}

// codeTickets is peerTickets whose assertions name a sign-in at authAt and
// which count the authorization codes issued.
type codeTickets struct {
	*peerTickets
	authAt time.Time
	codes  int
}

func (z *codeTickets) RedeemPeerAssertion(ctx context.Context, r *ticketv1.RedeemPeerAssertionRequest, o ...grpc.CallOption) (*ticketv1.RedeemPeerAssertionResponse, error) {
	res, err := z.peerTickets.RedeemPeerAssertion(ctx, r, o...)
	if err == nil {
		res.AuthTime = timestamppb.New(z.authAt)
	}
	return res, err
}

func (z *codeTickets) IssueAuthorizationCode(context.Context, *ticketv1.IssueAuthorizationCodeRequest, ...grpc.CallOption) (*ticketv1.IssueAuthorizationCodeResponse, error) {
	z.codes++
	return &ticketv1.IssueAuthorizationCodeResponse{Code: "OC-1"}, nil
}

// TestPeerHopKeepsMaxAge (sec28b M2): an OpenID Connect request's max_age
// travels through the hop (link, state) and is checked at accept against
// the time of the sign-in at the peer: too old, no session and no code,
// the login form for a fresh login; recent enough, a code. max_age=0 and
// renew (prompt=login) are never offered a hop, and a hop made by hand for
// one is refused at start and at accept.
func TestPeerHopKeepsMaxAge(t *testing.T) {
	ping := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	defer ping.Close()
	tk := &codeTickets{peerTickets: &peerTickets{}}
	h := New(Options{Tickets: tk, SSO: peerSSO{reason: identityv1.Reason_REASON_OK}, Centre: "l2a",
		Peers: []PeerPage{{Name: "l1", URL: ping.URL}}})
	h.peerUp.probe(context.Background())
	oidcReq := func(maxAge string) loginParams {
		v := url.Values{"client_id": {"c1"}, "redirect_uri": {"https://app.example/cb"}, "response_type": {"code"}, "scope": {"openid"}}
		if maxAge != "" {
			v.Set("max_age", maxAge)
		}
		q, bad := parseOIDC(v, false)
		if bad != nil {
			t.Fatal(bad)
		}
		return loginParams{oidc: q, service: q.redirectURI}
	}
	login := httptest.NewRequest(http.MethodGet, "/cas/login", nil)
	if links := h.peerLinks(login, oidcReq("0")); len(links) != 0 {
		t.Fatalf("a hop offered for max_age=0: %v", links)
	}
	links := h.peerLinks(login, oidcReq("300"))
	if len(links) != 1 {
		t.Fatal("no hop offered for max_age=300")
	}
	start, _ := url.Parse(links[0].Href)
	if start.Query().Get("max_age") != "300" {
		t.Fatalf("the link loses max_age: %s", links[0].Href)
	}
	csrf := &http.Cookie{Name: csrfCookie, Value: "0123456789abcdef0123456789abcdef-csrf"}
	res := peerCall(h, http.MethodPost, "/cas/peer/start?"+start.RawQuery, url.Values{"csrf": {csrf.Value}}, csrf)
	loc, _ := url.Parse(res.Header.Get("Location"))
	state := loc.Query().Get("state")
	if sv, _ := url.ParseQuery(state); sv.Get("max_age") != "300" {
		t.Fatalf("the state loses max_age: %q", state)
	}
	nc := &http.Cookie{Name: peerCookie, Value: "0123456789abcdef0123456789abcdef"}
	accept := "/cas/peer/accept?" + url.Values{"peer": {"l1"}, "assertion": {"a.b.c"}, "state": {state}}.Encode()

	// signed in at the peer an hour ago: too old for max_age=300
	tk.authAt = time.Now().Add(-time.Hour)
	res = peerCall(h, http.MethodGet, accept, nil, nc)
	if body := bodyOf(res); tk.codes != 0 || tk.created != nil || res.StatusCode != http.StatusOK || !strings.Contains(body, "fresh or recent sign-in") ||
		!strings.Contains(body, `name="renew" value="true"`) {
		t.Fatalf("an old sign-in for max_age=300: %d to %q, codes %d, session %+v\n%s", res.StatusCode, res.Header.Get("Location"), tk.codes, tk.created, body)
	}
	// a minute ago: a code
	tk.authAt = time.Now().Add(-time.Minute)
	if res = peerCall(h, http.MethodGet, accept, nil, nc); tk.codes != 1 || !strings.HasPrefix(res.Header.Get("Location"), "https://app.example/cb?code=OC-1") {
		t.Fatalf("a recent sign-in for max_age=300: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}

	// renew by hand: refused at start and at accept
	tk.created = nil
	res = peerCall(h, http.MethodPost, "/cas/peer/start?peer=l1&renew=true&service="+url.QueryEscape("https://app.example/x"),
		url.Values{"csrf": {csrf.Value}}, csrf)
	if res.StatusCode != http.StatusForbidden || res.Header.Get("Location") != "" {
		t.Fatalf("start with renew: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	res = peerCall(h, http.MethodGet, "/cas/peer/accept?"+url.Values{"peer": {"l1"}, "assertion": {"a.b.c"},
		"state": {"renew=true&service=" + url.QueryEscape("https://app.example/x")}}.Encode(), nil, nc)
	if res.StatusCode != http.StatusForbidden || tk.created != nil {
		t.Fatalf("accept with renew: %d, session %+v", res.StatusCode, tk.created)
	}
}

// TestPeerKeptSessionMeetsMaxAge (sec28b M2): a live session of the same
// person that the hop keeps must meet the client's max_age too: one signed
// in long ago gets the login form for a fresh login, no code.
func TestPeerKeptSessionMeetsMaxAge(t *testing.T) {
	// the sign-in at the peer is recent; the session kept here is old
	ct := &codeTickets{peerTickets: &peerTickets{}, authAt: time.Now()}
	tk := ct.peerTickets
	h := New(Options{Tickets: keptTickets{ct}, SSO: peerSSO{reason: identityv1.Reason_REASON_OK}, Centre: "l2a",
		Peers: []PeerPage{{Name: "l1", URL: "https://l1.example"}}})
	oidc := url.Values{"client_id": {"c1"}, "redirect_uri": {"https://app.example/cb"}, "scope": {"openid"}}.Encode()
	state := url.Values{"oidc": {oidc}, "max_age": {"300"}}.Encode()
	res := peerCall(h, http.MethodGet, "/cas/peer/accept?"+url.Values{"peer": {"l1"}, "assertion": {"a.b.c"}, "state": {state}}.Encode(), nil,
		&http.Cookie{Name: peerCookie, Value: "00112233445566778899aabbccddeeff"}, &http.Cookie{Name: TGCCookie, Value: "TGT-7-l2a"})
	if body := bodyOf(res); res.StatusCode != http.StatusOK || res.Header.Get("Location") != "" || tk.created != nil ||
		!strings.Contains(body, `name="renew" value="true"`) || ct.codes != 0 {
		t.Fatalf("a kept session older than max_age: %d to %q, created %+v\n%s", res.StatusCode, res.Header.Get("Location"), tk.created, body)
	}
}

// keptTickets is codeTickets with a live level-2 session of u1 signed in
// two hours ago.
type keptTickets struct{ *codeTickets }

func (k keptTickets) GetSession(context.Context, *ticketv1.GetSessionRequest, ...grpc.CallOption) (*ticketv1.Session, error) {
	return &ticketv1.Session{UserId: "u1", Login: "pia", AuthLevel: 2, CreatedAt: timestamppb.New(time.Now().Add(-2 * time.Hour))}, nil
}

// logoutTickets ends a session a peer's assertion opened; the logout page
// must learn the peer from that answer, never from a read of the session.
type logoutTickets struct {
	*peerTickets
	reads int
}

func (l *logoutTickets) GetSession(context.Context, *ticketv1.GetSessionRequest, ...grpc.CallOption) (*ticketv1.Session, error) {
	l.reads++
	return &ticketv1.Session{UserId: "u1", Peer: "l1"}, nil
}

func (l *logoutTickets) DestroySession(context.Context, *ticketv1.DestroySessionRequest, ...grpc.CallOption) (*ticketv1.DestroySessionResponse, error) {
	return &ticketv1.DestroySessionResponse{Ended: true, Peer: "l1"}, nil
}

// TestLogoutOffersThePeerWithoutARead (rr29 C1): /cas/logout of a session
// a peer's assertion opened offers to sign out at the peer, from
// DestroySession's answer: no GetSession before it.
func TestLogoutOffersThePeerWithoutARead(t *testing.T) {
	tk := &logoutTickets{peerTickets: &peerTickets{}}
	h := New(Options{Tickets: tk, SSO: peerSSO{reason: identityv1.Reason_REASON_OK}, Centre: "l2a",
		Peers: []PeerPage{{Name: "l1", URL: "https://l1.example", Display: "Level 1"}}})
	res := peerCall(h, http.MethodGet, "/cas/logout", nil, &http.Cookie{Name: TGCCookie, Value: "TGT-1-l2a"})
	body := bodyOf(res)
	if !strings.Contains(body, "https://l1.example/cas/logout") || !strings.Contains(body, "Level 1") {
		t.Fatalf("logout page without the peer's link:\n%s", body)
	}
	if tk.reads != 0 {
		t.Fatalf("the logout page read the session %d times before ending it", tk.reads)
	}
}

// TestPeerProbesInTheBackground (sec28b L4, rr29 C1): login pages never
// probe the peers themselves, however many load at once: they read the
// background probe's latest answers; one probe round asks each peer once,
// and the process's Go runs it until the process stops.
func TestPeerProbesInTheBackground(t *testing.T) {
	var hits atomic.Int32
	ping := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer ping.Close()
	peers := []PeerPage{{Name: "l2a", URL: ping.URL}, {Name: "l2b", URL: ping.URL}, {Name: "l2c", URL: ping.URL}}
	var bg func(ctx context.Context)
	h := New(Options{Tickets: &peerTickets{}, SSO: peerSSO{reason: identityv1.Reason_REASON_OK}, Centre: "l1", Peers: peers,
		Go: func(fn func(ctx context.Context)) { bg = fn }})
	if bg == nil {
		t.Fatal("the peers' probe was not handed to the process's Go")
	}
	path := "/cas/login?service=" + url.QueryEscape("https://app.example/x")
	pages := func() []string {
		bodies := make([]string, 20)
		var wg sync.WaitGroup
		for i := range bodies {
			wg.Go(func() { bodies[i] = bodyOf(peerCall(h, http.MethodGet, path, nil)) })
		}
		wg.Wait()
		return bodies
	}
	// Not probed yet: no peer offered, and no page probes.
	for _, b := range pages() {
		if strings.Contains(b, "peer-link") {
			t.Fatalf("a peer offered before any probe:\n%s", b)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Fatalf("20 login pages made %d probes", n)
	}
	// One background round: each peer once; the pages offer them all and
	// probe nothing more.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); bg(ctx) }()
	for hits.Load() < 3 || !h.peerUp.up("l2c") {
		runtime.Gosched()
	}
	cancel()
	<-done // the probe ends with the process
	n := hits.Load()
	for _, b := range pages() {
		for _, p := range peers {
			if !strings.Contains(b, `id="peer-`+p.Name+`"`) {
				t.Fatalf("peer %s not offered after its probe:\n%s", p.Name, b)
			}
		}
	}
	if hits.Load() != n || n != 3 {
		t.Fatalf("%d probes for 3 peers, %d after 20 more pages", n, hits.Load())
	}
}

// TestPeerLogoutStatus (rr29 B7): /cas/peer/logout's status comes from the
// ticket component's status and ErrorInfo (apierr.HTTPStatus): a refusal
// with a reason is 400 (the peer does not retry), anything else 503 (it
// retries).
func TestPeerLogoutStatus(t *testing.T) {
	st := func(code apierr.Code, reason string) error { return apierr.ToStatus(apierr.New(code, reason, "m")) }
	for name, tc := range map[string]struct {
		err  error
		want int
	}{
		"ended":               {nil, http.StatusOK},
		"invalid":             {st(apierr.Unauthenticated, ticket.ReasonPeerInvalid), http.StatusBadRequest},
		"expired":             {st(apierr.Unauthenticated, ticket.ReasonPeerExpired), http.StatusBadRequest},
		"replayed":            {st(apierr.Unauthenticated, ticket.ReasonPeerReplayed), http.StatusBadRequest},
		"unknown peer":        {st(apierr.PermissionDenied, ticket.ReasonPeerUnknown), http.StatusBadRequest},
		"sign-in off":         {apierr.ToStatus(ticket.ErrPeerSignInOff), http.StatusBadRequest},
		"bad request":         {st(apierr.InvalidArgument, "BAD_REQUEST"), http.StatusBadRequest},
		"store down":          {st(apierr.Unavailable, "TICKET_STORE_UNAVAILABLE"), http.StatusServiceUnavailable},
		"internal":            {st(apierr.Internal, "INTERNAL"), http.StatusServiceUnavailable},
		"throttled":           {st(apierr.ResourceExhausted, "RESOURCE_EXHAUSTED"), http.StatusServiceUnavailable},
		"no reason":           {status.Error(codes.Unauthenticated, "transport"), http.StatusServiceUnavailable},
		"unreachable":         {status.Error(codes.Unavailable, "connection refused"), http.StatusServiceUnavailable},
		"deadline":            {context.DeadlineExceeded, http.StatusServiceUnavailable},
		"not a status at all": {io.ErrUnexpectedEOF, http.StatusServiceUnavailable},
	} {
		if got := peerLogoutStatus(tc.err); got != tc.want {
			t.Errorf("%s: %d, want %d", name, got, tc.want)
		}
	}
}
