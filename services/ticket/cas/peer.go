package cas

// Sign-in across centres (ADR 0030; ticket/peer.go holds the assertions):
//
//  1. The login page of a browser without a session offers each configured
//     peer that answers its probe: "signed in at <peer>? continue", a
//     button posting the page's CSRF token to
//     /cas/peer/start?peer=...&service=... (the hop starts only from the
//     person's own click on this centre's page: never forced cross-site).
//  2. peer/start binds the browser to a random nonce (cookie uias_peer,
//     HttpOnly, Secure under TLS, SameSite=Lax so that the top-level return
//     from the peer carries it) and sends the browser to the peer's
//     /cas/peer/assert with the nonce's hash (ticket.PeerNonceHash), this
//     centre's name (audience) and the login request (state).
//  3. peer/assert at the peer: with a live session there, the ticket
//     component signs an assertion for the audience, bound to the hash,
//     and the browser goes to the audience's configured URL
//     /cas/peer/accept (nowhere else: no open redirect); without one, back
//     there with error=login_required. The peer cannot know who handed it
//     the hash; an assertion for a hash the visitor chose is of use only in
//     a browser holding the matching cookie, which only this centre's page
//     sets and no one can read.
//  4. peer/accept here: without the cookie, refused (never compared with a
//     stand-in value); the cookie is cleared (single use); the ticket
//     component verifies the assertion (the peer's configured key,
//     audience, expiry, nonce) and uses it up;
//     identity checks the person (held here, active, not locked, level);
//     a session of this centre is opened at the peer's level and method,
//     and the login request goes on (a service ticket, an OIDC code).

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/module"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// PeerPage is a peer centre as the pages know it (ticket.peers).
type PeerPage struct {
	// Name is the peer's centre name, URL its external base URL (without
	// /cas), Display how the page names it (empty: Name).
	Name, URL, Display string
}

func (p PeerPage) display() string {
	if p.Display != "" {
		return p.Display
	}
	return p.Name
}

type peerLink struct{ Name, Text, Href string }

// peerCookie binds a browser to the nonce of its hop to a peer.
const peerCookie = "uias_peer"

// maxPeerState bounds the login request a hop carries through the peer.
const maxPeerState = 4096

// peerProbes knows which peers answered their latest probe. The probes run
// in the background (run), all peers at once, every PeerProbe; the login
// page only reads the latest answers (an atomic snapshot): no page waits on
// a peer, and no page load probes (sec28b L4, rr29 C1). A peer not yet
// probed, down, or behind a cut link is not offered: the page then offers
// only the local form.
type peerProbes struct {
	client *http.Client
	every  time.Duration
	peers  []PeerPage
	// answered: the names of the peers that answered the latest probe.
	answered atomic.Pointer[map[string]bool]
}

func newPeerProbes(o Options) *peerProbes {
	every := o.PeerProbe
	if every <= 0 {
		every = 30 * time.Second
	}
	return &peerProbes{client: o.Client, every: every, peers: o.Peers}
}

// up reports whether peer name answered its latest probe.
func (pp *peerProbes) up(name string) bool {
	m := pp.answered.Load()
	return m != nil && (*m)[name]
}

// run probes the peers now and then every interval until ctx ends.
func (pp *peerProbes) run(ctx context.Context) {
	t := time.NewTicker(pp.every)
	defer t.Stop()
	for {
		pp.probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe asks every peer's /cas/peer/ping at once (1s each at most) and
// publishes the answers.
func (pp *peerProbes) probe(ctx context.Context) {
	ups := make([]bool, len(pp.peers))
	var wg sync.WaitGroup
	for i, p := range pp.peers {
		wg.Go(func() { ups[i] = pp.ping(ctx, p) })
	}
	wg.Wait()
	m := make(map[string]bool, len(pp.peers))
	for i, p := range pp.peers {
		m[p.Name] = ups[i]
	}
	pp.answered.Store(&m)
}

func (pp *peerProbes) ping(ctx context.Context, p PeerPage) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(p.URL, "/")+"/cas/peer/ping", nil)
	if err != nil {
		return false
	}
	res, err := pp.client.Do(req)
	if err != nil {
		return false
	}
	_ = res.Body.Close()
	return res.StatusCode == http.StatusNoContent
}

func (h *Handler) peer(name string) (PeerPage, bool) {
	for _, p := range h.o.Peers {
		if p.Name == name {
			return p, true
		}
	}
	return PeerPage{}, false
}

// peerLinks are the login page's links to the peers that answer; none for
// a login that must be fresh (renew, prompt=login: a peer's session is no
// fresh login here; prompt=login is renew).
func (h *Handler) peerLinks(r *http.Request, p loginParams) []peerLink {
	if len(h.o.Peers) == 0 || p.renew || (p.oidc != nil && p.oidc.maxAge == 0) {
		// max_age=0 is a fresh login too: no sign-in elsewhere is that new
		return nil
	}
	t := h.texts(r)
	var out []peerLink
	for _, pr := range h.o.Peers {
		if !h.peerUp.up(pr.Name) {
			continue
		}
		q := p.query()
		if p.next != "" {
			q.Set("next", p.next)
		}
		withPeerMaxAge(q, p)
		q.Set("peer", pr.Name)
		out = append(out, peerLink{Name: pr.Name, Text: fmt.Sprintf(t.PeerLink, pr.display()), Href: h.o.Prefix + "peer/start?" + q.Encode()})
	}
	return out
}

// peerPing is GET /cas/peer/ping: the peers' probe (204).
func (h *Handler) peerPing(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// peerStart is POST /cas/peer/start (the login page's button, with its
// CSRF token): off to the peer, the browser bound to a new nonce.
func (h *Handler) peerStart(w http.ResponseWriter, r *http.Request) {
	t := h.texts(r)
	q := r.URL.Query()
	if !h.csrfOK(r) {
		// Not this centre's page in this browser (a link or form of
		// another site): no hop, the login page instead.
		h.o.Log.Info("CAS peer sign-in not started from this centre's page", zap.String("reason", ticket.ReasonPeerInvalid))
		p := paramsOf(q)
		rs, ok := h.match(w, r, p.service)
		if !ok {
			return
		}
		h.loginPage(w, r, http.StatusForbidden, p, rs, t.CSRF, "")
		return
	}
	pr, ok := h.peer(q.Get("peer"))
	if !ok || h.o.Centre == "" {
		h.o.Log.Info("CAS peer sign-in: not a configured peer", zap.String("reason", ticket.ReasonPeerUnknown))
		h.message(w, r, http.StatusBadRequest, true, t.ErrorHead, t.PeerUnknown, h.o.Prefix+"login", t.SignIn)
		return
	}
	p := paramsOf(q)
	peerMaxAgeOf(q, &p)
	rs, ok := h.match(w, r, p.service)
	if !ok {
		return
	}
	if p.renew {
		// A fresh login was asked for (renew, prompt=login): never a hop.
		h.loginPage(w, r, http.StatusForbidden, p, rs, fmt.Sprintf(t.PeerNotFresh, pr.display()), "")
		return
	}
	state := p.query()
	if p.next != "" {
		state.Set("next", p.next)
	}
	withPeerMaxAge(state, p)
	if p.service == "" && p.oidc == nil {
		state.Del("service")
	}
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	nonce := hex.EncodeToString(b)
	http.SetCookie(w, &http.Cookie{Name: peerCookie, Value: nonce, Path: h.o.Prefix, MaxAge: 600, HttpOnly: true,
		Secure: module.RequestHTTPS(r), SameSite: http.SameSiteLaxMode})
	to := strings.TrimSuffix(pr.URL, "/") + "/cas/peer/assert?" +
		url.Values{"audience": {h.o.Centre}, "nonce": {ticket.PeerNonceHash(nonce)}, "state": {state.Encode()}}.Encode()
	w.Header().Set("Referrer-Policy", "no-referrer")
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// peerAssert is GET /cas/peer/assert at the centre the person is signed in
// at: back to the audience's configured page with an assertion, or with
// error=login_required. Never anywhere else.
func (h *Handler) peerAssert(w http.ResponseWriter, r *http.Request) {
	t := h.texts(r)
	q := r.URL.Query()
	aud, ok := h.peer(q.Get("audience"))
	state := q.Get("state")
	if !ok || h.o.Centre == "" || len(state) > maxPeerState {
		// Not a peer: no redirect (an open redirect otherwise).
		h.o.Log.Info("CAS peer assertion asked for a centre that is not a peer", zap.String("reason", ticket.ReasonPeerUnknown))
		h.message(w, r, http.StatusBadRequest, true, t.ErrorHead, t.PeerUnknown, "", "")
		return
	}
	w.Header().Set("Referrer-Policy", "no-referrer")
	back := func(v url.Values) {
		v.Set("peer", h.o.Centre)
		v.Set("state", state)
		http.Redirect(w, r, strings.TrimSuffix(aud.URL, "/")+"/cas/peer/accept?"+v.Encode(), http.StatusSeeOther)
	}
	tgt := tgcOf(r)
	if tgt == "" {
		back(url.Values{"error": {"login_required"}})
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.Tickets.IssuePeerAssertion(ctx, &ticketv1.IssuePeerAssertionRequest{Tgt: tgt, Audience: aud.Name,
		Nonce: q.Get("nonce")})
	switch {
	case err == nil:
		v := url.Values{"assertion": {res.GetAssertion()}, "peer": {h.o.Centre}, "state": {state}}
		// The ticket component's URL of the audience (its configuration
		// is the pages'): the assertion goes nowhere else.
		http.Redirect(w, r, res.GetAcceptUrl()+"?"+v.Encode(), http.StatusSeeOther)
	case reasonOf(err) == "SESSION_NOT_FOUND":
		h.clearTGC(w, r)
		back(url.Values{"error": {"login_required"}})
	case status.Code(err) == codes.InvalidArgument:
		h.message(w, r, http.StatusBadRequest, true, t.ErrorHead, t.PeerInvalid, "", "")
	default:
		h.o.Log.Warn("CAS peer assertion not issued", zap.String("reason", reasonOf(err)), zap.Error(err))
		back(url.Values{"error": {"temporarily_unavailable"}})
	}
}

// peerAccept is GET /cas/peer/accept: the peer's assertion (or its
// refusal) for the login request of state.
func (h *Handler) peerAccept(w http.ResponseWriter, r *http.Request) {
	t := h.texts(r)
	w.Header().Set("Referrer-Policy", "no-referrer")
	q := r.URL.Query()
	sv, err := url.ParseQuery(q.Get("state"))
	if err != nil || len(q.Get("state")) > maxPeerState {
		sv = url.Values{}
	}
	p := paramsOf(sv)
	peerMaxAgeOf(sv, &p)
	rs, ok := h.match(w, r, p.service)
	if !ok {
		return
	}
	nonce := ""
	if c, err := r.Cookie(peerCookie); err == nil {
		nonce = c.Value
	}
	http.SetCookie(w, &http.Cookie{Name: peerCookie, Value: "", Path: h.o.Prefix, MaxAge: -1, HttpOnly: true,
		Secure: module.RequestHTTPS(r), SameSite: http.SameSiteLaxMode})
	pr, known := h.peer(q.Get("peer"))
	name := q.Get("peer")
	if known {
		name = pr.display()
	}
	switch e := q.Get("error"); {
	case e == "login_required" && known:
		h.loginPage(w, r, http.StatusOK, p, rs, "", "", fmt.Sprintf(t.PeerNotSignedIn, name))
		return
	case e != "":
		h.loginPage(w, r, http.StatusOK, p, rs, "", "", t.PeerUnavailable)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if p.renew {
		// A state asking for a fresh login (made by hand: the page never
		// offers a hop for one): no session on a peer's word.
		h.loginPage(w, r, http.StatusForbidden, p, rs, fmt.Sprintf(t.PeerNotFresh, name), "")
		return
	}
	if nonce == "" {
		// Not started in this browser (or its cookie gone): whatever the
		// assertion, it is not this browser's. Refused here, never
		// compared with a stand-in value; the ticket component is still
		// asked with no nonce so that it audits the refusal (with the
		// claimed peer and person) and uses the assertion up.
		h.o.Log.Info("CAS peer sign-in without this browser's nonce refused", zap.String("reason", ticket.ReasonPeerInvalid))
		if _, err := h.o.Tickets.RedeemPeerAssertion(ctx, &ticketv1.RedeemPeerAssertionRequest{Assertion: q.Get("assertion")}); err == nil {
			h.o.Log.Error("CAS peer sign-in: the ticket component accepted an assertion without a nonce; refused")
		}
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.PeerInvalid, "")
		return
	}
	as, err := h.o.Tickets.RedeemPeerAssertion(ctx, &ticketv1.RedeemPeerAssertionRequest{Assertion: q.Get("assertion"), Nonce: nonce})
	if err != nil {
		msg := map[string]string{ticket.ReasonPeerExpired: t.PeerExpired, ticket.ReasonPeerReplayed: t.PeerReplayed,
			ticket.ReasonPeerWrongAudience: t.PeerAudience, ticket.ReasonPeerUnknown: t.PeerUnknown,
			ticket.ReasonPeerInvalid: t.PeerInvalid}[reasonOf(err)]
		if msg == "" && status.Code(err) == codes.InvalidArgument {
			msg = t.PeerInvalid
		}
		if msg == "" {
			h.fault(w, r, err)
			return
		}
		h.o.Log.Info("CAS peer sign-in refused", zap.String("reason", reasonOf(err)))
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, msg, "")
		return
	}
	if pp, ok := h.peer(as.GetPeer()); ok {
		name = pp.display()
	}
	if q := p.oidc; q != nil && q.maxAge >= 0 && h.o.Now().Sub(as.GetAuthTime().AsTime()) > time.Duration(q.maxAge)*time.Second {
		// OIDC max_age: the sign-in at the peer is older than the client
		// allows; no session here on it, a fresh login here instead (the
		// assertion is used up).
		h.o.Log.Info("CAS peer sign-in older than the client's max_age: a login here instead")
		p.renew = true
		h.loginPage(w, r, http.StatusOK, p, rs, fmt.Sprintf(t.PeerNotFresh, name), "")
		return
	}
	idLevel := as.GetAuthLevel()
	if as.GetAuthMethod() == ticketv1.AuthMethod_AUTH_METHOD_CERTIFICATE {
		idLevel = personCertificateOnly // identity's scale: a certificate is its level 3
	}
	res, err := h.o.SSO.PeerLogin(ctx, &identityv1.PeerLoginRequest{UserId: as.GetUserId(), AuthLevel: idLevel, Peer: as.GetPeer()})
	if err != nil {
		h.fault(w, r, err)
		return
	}
	switch res.GetReason() {
	case identityv1.Reason_REASON_OK:
	case identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW:
		h.loginPage(w, r, http.StatusForbidden, p, rs, fmt.Sprintf(t.PeerLevel, name), "")
		return
	case identityv1.Reason_REASON_PASSWORD_ONLY:
		// Not the peer's person, or an administrator (identity audited
		// PEER_NOT_HOME or PEER_ADMINISTRATOR): a password here.
		h.loginPage(w, r, http.StatusForbidden, p, rs, fmt.Sprintf(t.PeerOwnPassword, name), "")
		return
	default:
		h.loginPage(w, r, http.StatusForbidden, p, rs, t.PeerAccount, "")
		return
	}
	old := tgcOf(r)
	if old != "" && h.signedInAsOther(ctx, w, r, old, res.GetUserId(), t.OtherPerson) {
		return
	}
	if old != "" {
		// The same person's live session here at the peer's level or
		// above stays (never lowered by a weaker sign-in elsewhere).
		if cur, err := h.o.Tickets.GetSession(ctx, &ticketv1.GetSessionRequest{Tgt: old}); err == nil && cur.GetAuthLevel() >= as.GetAuthLevel() {
			if rs == nil && p.oidc == nil {
				h.afterLogin(w, r, p)
				return
			}
			if p.oidc != nil && !h.oidcSessionOK(w, r, p, rs, cur) {
				// the kept session too must meet max_age
				return
			}
			h.sendToService(w, r, old, p, rs, false)
			return
		}
	}
	cs, err := h.o.Tickets.CreateSession(ctx, &ticketv1.CreateSessionRequest{UserId: res.GetUserId(), Login: res.GetLogin(),
		AuthLevel: as.GetAuthLevel(), OrgId: res.GetOrgId(), AuthMethod: as.GetAuthMethod(), ReplaceTgt: old,
		PasswordChangedAt: res.GetPasswordChangedAt(), StateChangedAt: res.GetStateChangedAt(), Peer: as.GetPeer(), PeerSid: as.GetPeerSid(),
		AuthTime: as.GetAuthTime()})
	if err != nil {
		h.fault(w, r, err)
		return
	}
	h.setTGC(w, r, cs.GetTgt())
	if rs == nil && p.oidc == nil {
		h.afterLogin(w, r, p)
		return
	}
	// Not a fresh login here (CAS renew, prompt=login are not offered it).
	h.sendToService(w, r, cs.GetTgt(), p, rs, false)
}

// peerLogoutLinks are the logged-out page's links to sign out at the peer
// whose assertion opened the session that ended.
func (h *Handler) peerLogoutLinks(r *http.Request, peer string) []peerLink {
	pr, ok := h.peer(peer)
	if !ok {
		return nil
	}
	return []peerLink{{Name: pr.Name, Text: fmt.Sprintf(h.texts(r).PeerLogout, pr.display()),
		Href: strings.TrimSuffix(pr.URL, "/") + "/cas/logout"}}
}

// peerLogout is POST /cas/peer/logout: a peer centre's ticket component
// posts a signed logout token (logout_token) when a session tied to this
// centre ended there; the ticket component ends the sessions it names.
// 200 {"ended":n}; 400 for a token that is not one; 503 when the component
// cannot be asked (the peer retries).
func (h *Handler) peerLogout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	if err := r.ParseForm(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"invalid_request"}`))
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.Tickets.PeerLogout(ctx, &ticketv1.PeerLogoutRequest{LogoutToken: r.PostFormValue("logout_token")})
	switch code := peerLogoutStatus(err); code {
	case http.StatusOK:
		_, _ = fmt.Fprintf(w, `{"ended":%d}`, res.GetEnded())
	case http.StatusBadRequest:
		h.o.Log.Info("CAS peer logout refused", zap.String("reason", reasonOf(err)))
		w.WriteHeader(code)
		_, _ = fmt.Fprintf(w, `{"error":"invalid_token","reason":%q}`, reasonOf(err))
	default:
		h.o.Log.Warn("CAS peer logout: the ticket component did not answer", zap.Error(err))
		w.WriteHeader(code)
		_, _ = w.Write([]byte(`{"error":"temporarily_unavailable"}`))
	}
}

// peerLogoutStatus is /cas/peer/logout's HTTP status for the ticket
// component's answer err, derived from its status and ErrorInfo as every
// REST answer is (apierr.HTTPStatus), then folded into the back channel's
// two answers: a refusal the component gave with a reason (a 4xx: the
// token is not one, is expired, replayed, of an unknown peer, sign-in
// across centres is off) is 400 invalid_token, which the peer does not
// retry; anything else (a 5xx, a status without a UIAS reason such as a
// transport failure or a deadline, a throttle's 429) is 503, which it
// retries.
func peerLogoutStatus(err error) int {
	if err == nil {
		return http.StatusOK
	}
	st, ok := status.FromError(err)
	if !ok || apierr.Info(st) == nil {
		return http.StatusServiceUnavailable
	}
	code := apierr.HTTPStatus(st)
	if code >= 400 && code < 500 && code != http.StatusTooManyRequests && code != 499 {
		return http.StatusBadRequest
	}
	return http.StatusServiceUnavailable
}

// withPeerMaxAge carries an OpenID Connect request's max_age through the
// hop (link, state): the login form's oidc field drops it, since a login
// there is fresh; a sign-in at a peer is not, and its age is checked at
// peer/accept.
func withPeerMaxAge(v url.Values, p loginParams) {
	if p.oidc != nil && p.oidc.maxAge >= 0 {
		v.Set("max_age", strconv.FormatInt(p.oidc.maxAge, 10))
	}
}

// peerMaxAgeOf restores into p the max_age withPeerMaxAge carried in v.
func peerMaxAgeOf(v url.Values, p *loginParams) {
	if p.oidc == nil {
		return
	}
	if n, err := strconv.ParseInt(v.Get("max_age"), 10, 64); err == nil && n >= 0 {
		p.oidc.maxAge = min(n, 100*365*24*3600)
	}
}
