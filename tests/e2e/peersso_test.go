package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/uias/uias/pkg/config"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	synccomponent "github.com/uias/uias/services/sync/component"
	"github.com/uias/uias/services/sync/synctest"
	"github.com/uias/uias/services/ticket"
	ticketcomponent "github.com/uias/uias/services/ticket/component"
)

// peerCentres is a level-1 centre and a level-2 centre (l2a), each a whole
// UIAS process with its own NATS, linked by sync and trusting each other
// for sign-in across centres (ticket.peers). Level 1's edge is reached at
// 127.0.0.1, l2a's at localhost: browsers keep cookies per host (not per
// port), as two centres' host names are.
type peerCentres struct {
	l1, l2a       *syncCentre
	l1URL, l2aURL string // base URLs of the edges (no /cas)
	l2aKey        ed25519.PrivateKey
	person        fixture // homed at l2a, replicated to l1
	appL1         *casApp // a service of level 1 (min level 1)
	strongL1      *casApp // a service of level 1 needing level 2
	appL2a        *casApp // a service of l2a
}

// writePeerKeys writes key's private PEM (0600) and public PEM into dir.
func writePeerKeys(t *testing.T, dir, name string, key ed25519.PrivateKey) (priv, pub string) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pder, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		t.Fatal(err)
	}
	priv, pub = filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func newPeerKey(t *testing.T) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func startPeerCentres(t *testing.T) *peerCentres {
	t.Helper()
	dir := t.TempDir()
	pc := &peerCentres{l2aKey: newPeerKey(t)}
	l1Key := newPeerKey(t)
	l1Priv, l1Pub := writePeerKeys(t, dir, "l1", l1Key)
	l2aPriv, l2aPub := writePeerKeys(t, dir, "l2a", pc.l2aKey)
	p1, p2 := freePort(t), freePort(t)
	pc.l1URL, pc.l2aURL = fmt.Sprintf("http://127.0.0.1:%d", p1), fmt.Sprintf("http://localhost:%d", p2)
	pc.l1 = &syncCentre{name: "l1", nats: synctest.StartLevel1File(t, filepath.Join(deployCentres, "nats-l1.conf")),
		dir: filepath.Join(dir, "l1")}
	pc.l2a = &syncCentre{name: "l2a", dir: filepath.Join(dir, "l2a")}
	pc.l2a.nats = synctest.StartLevel2File(t, filepath.Join(deployCentres, "nats-l2a.conf"), "l2a", pc.l1.nats)
	withPeers := func(cfg config.Config, port int, centre, key, peer, peerURL, peerPub string) config.Config {
		cfg.HTTPAddr = fmt.Sprintf("127.0.0.1:%d", port)
		tc := ticketcomponent.Settings(&cfg)
		tc.Centre, tc.PeerKeyFile, tc.PeerProbe = centre, key, 100*time.Millisecond
		tc.Peers = []ticketcomponent.PeerConfig{{Name: peer, URL: peerURL, PublicKeyFile: peerPub}}
		return cfg
	}
	l2aCfg := func(set func(*synccomponent.Config)) config.Config {
		return withPeers(pc.l2a.config(t, set), p2, "l2a", l2aPriv, "l1", pc.l1URL, l1Pub)
	}

	// The bureau of l2a and its person, before it joins (as the two-level
	// sync test sets them up).
	pc.l2a.e = start(t, l2aCfg(nil))
	pc.l2a.e.login()
	o, err := pc.l2a.e.admin.CreateOrg(pc.l2a.e.adm(), &identityv1.CreateOrgRequest{Code: "bureau-l2a", Name: "Bureau l2a",
		ParentId: pc.l2a.e.root})
	if err != nil {
		t.Fatal(err)
	}
	pc.l2a.bureau = o.GetId()
	pc.l2a.e.root = pc.l2a.bureau
	pc.person = pc.l2a.e.seed("l2a-harbour", "pia", nil, nil)
	pc.l2a.stop(t)

	f1 := centreFile(t, "uias-l1.yaml")
	f1.Peers = f1.Peers[:1]
	f1.Peers[0].Subtrees = []string{pc.l2a.bureau}
	pc.l1.e = start(t, withPeers(pc.l1.config(t, func(s *synccomponent.Config) { *s = f1 }), p1, "l1", l1Priv, "l2a", pc.l2aURL, l2aPub))
	pc.l1.e.login()
	f2 := centreFile(t, "uias-l2a.yaml")
	f2.Centre, f2.HomeSubtrees = "l2a", []string{pc.l2a.bureau}
	pc.l2a.e = start(t, l2aCfg(func(s *synccomponent.Config) { *s = f2 }))
	pc.l2a.e.login()

	// The person reaches level 1's replica.
	eventuallyWithin(t, 2*time.Minute, "the person replicated to level 1", func() bool {
		_, err := pc.l1.e.admin.GetUser(pc.l1.e.adm(), &identityv1.GetUserRequest{Id: pc.person.userID})
		return err == nil
	})

	// Level 1's business systems, one of them needing level 2; l2a's own.
	app, err := pc.l1.e.admin.CreateApp(pc.l1.e.adm(), &identityv1.CreateAppRequest{AppType: "OA", AppCode: "portal", Name: "Portal"})
	if err != nil {
		t.Fatal(err)
	}
	pc.appL1, pc.strongL1 = newCASApp(t, pc.l1URL+"/cas/"), newCASApp(t, pc.l1URL+"/cas/")
	reg1 := ticketv1.NewServiceRegistryServiceClient(pc.l1.e.conn)
	for _, s := range []*ticketv1.ServiceDefinition{
		{AppId: app.GetApp().GetId(), Name: "Provincial portal", Url: pc.appL1.srv.URL + "/"},
		{AppId: app.GetApp().GetId(), Name: "Strong portal", Url: pc.strongL1.srv.URL + "/", MinAuthLevel: 2},
	} {
		if _, err := reg1.CreateService(pc.l1.e.adm(), &ticketv1.CreateServiceRequest{Service: s}); err != nil {
			t.Fatal(err)
		}
	}
	pc.appL2a = newCASApp(t, pc.l2aURL+"/cas/")
	if _, err := ticketv1.NewServiceRegistryServiceClient(pc.l2a.e.conn).CreateService(pc.l2a.e.adm(), &ticketv1.CreateServiceRequest{
		Service: &ticketv1.ServiceDefinition{AppId: pc.person.appID, Name: "Harbour", Url: pc.appL2a.srv.URL + "/"}}); err != nil {
		t.Fatal(err)
	}
	return pc
}

// hopBrowser is a browser that remembers the URLs it was redirected to.
type hopBrowser struct {
	*browser
	jar  *nonceJar
	mu   sync.Mutex
	hops []*url.URL
}

func newHopBrowser(t *testing.T) *hopBrowser {
	inner, _ := cookiejar.New(nil)
	jar := &nonceJar{CookieJar: inner}
	b := &hopBrowser{browser: &browser{t: t}, jar: jar}
	b.c = &http.Client{Jar: jar, CheckRedirect: func(r *http.Request, via []*http.Request) error {
		b.mu.Lock()
		b.hops = append(b.hops, r.URL)
		b.mu.Unlock()
		if len(via) >= 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return b
}

// hop returns the last URL visited whose path is path.
func (b *hopBrowser) hop(path string) *url.URL {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := len(b.hops) - 1; i >= 0; i-- {
		if b.hops[i].Path == path {
			return b.hops[i]
		}
	}
	return nil
}

var peerLinkRE = regexp.MustCompile(`<form method="post" action="([^"]+)" class="peer-form"><input type="hidden" name="csrf" value="([^"]+)"><button type="submit" class="peer-link" id="peer-([a-z0-9]+)"`)

// peerLink is the action of the login page's button to peer ("" if none).
func peerLink(body, peer string) string {
	a, _ := peerButton(body, peer)
	return a
}

// peerButton is the action and CSRF token of the login page's button to
// peer.
func peerButton(body, peer string) (string, string) {
	for _, m := range peerLinkRE.FindAllStringSubmatch(body, -1) {
		if m[3] == peer {
			return htmlUnescape(m[1]), htmlUnescape(m[2])
		}
	}
	return "", ""
}

// peerHop clicks the button to peer of the login page in body (a POST of
// the page's CSRF token to base+its action).
func (b *browser) peerHop(base, body, peer string) (int, string, *url.URL) {
	b.t.Helper()
	action, csrf := peerButton(body, peer)
	if action == "" {
		b.t.Fatalf("no button to %s on the page:\n%s", peer, body)
	}
	return b.post(base+action, url.Values{"csrf": {csrf}})
}

// nonceJar is a cookie jar that remembers the last nonce (uias_peer) the
// browser was bound to.
type nonceJar struct {
	http.CookieJar
	mu    sync.Mutex
	nonce string
}

func (j *nonceJar) SetCookies(u *url.URL, cs []*http.Cookie) {
	j.mu.Lock()
	for _, c := range cs {
		if c.Name == "uias_peer" && c.Value != "" {
			j.nonce = c.Value
		}
	}
	j.mu.Unlock()
	j.CookieJar.SetCookies(u, cs)
}

// auditedAt reports whether centre c recorded api with result and reason.
func auditedAt(t *testing.T, c *syncCentre, api, result, reason string) bool {
	for _, ev := range appEvents(t, c.e.app, "AUDIT", "uias.audit.ticket."+api) {
		if ev["result"] == result && ev["reason"] == reason {
			return true
		}
	}
	return false
}

// TestSignInAcrossCentres: a person homed at a level-2 centre signs in
// there and opens a level-1 application: level 1's login page offers
// "signed in at l2a? continue", and the hop lands them in the application
// without a password, in a level-1 session that keeps l2a's level and
// method (a level-2 application still asks for more). The assertion is
// good once; expired, foreign, untrusted and unknown-peer assertions and
// open-redirect attempts are refused with a message and audited; the other
// way (level 1 to l2a) works alike; a logout at either centre ends the
// session at the other it is tied to (back channel, signed logout token)
// and the page links to the peer's logout; with l2a down level 1's page
// offers only its own form.
func TestSignInAcrossCentres(t *testing.T) {
	if testing.Short() {
		t.Skip("two UIAS processes")
	}
	pc := startPeerCentres(t)
	l1Cas, l2aCas := pc.l1URL+"/cas/", pc.l2aURL+"/cas/"

	// Signed in at l2a with the password.
	br := newHopBrowser(t)
	_, body, _ := br.get(l2aCas + "login")
	if code, body, at := br.loginForm(l2aCas, body, "pia", pc.person.password); code != http.StatusOK || !strings.HasSuffix(at.Path, "/cas/portal") {
		t.Fatalf("login at l2a: %d at %s\n%s", code, at, body)
	}
	// Level 1's application: its login page offers l2a beside the form,
	// once level 1's background probe has seen l2a answer (it probes every
	// 100ms here; l2a may have started after its first probe).
	var (
		code int
		at   *url.URL
		link string
	)
	eventually(t, "level 1's login page offers l2a", func() bool {
		code, body, at = br.get(pc.appL1.srv.URL + "/page")
		link = peerLink(body, "l2a")
		return link != ""
	})
	if code != http.StatusOK || link == "" || !strings.Contains(body, `name="password"`) ||
		!strings.Contains(body, "Signed in at l2a? Continue without a password") {
		t.Fatalf("level 1's login page: %d at %s, link %q\n%s", code, at, link, body)
	}
	code, body, at = br.peerHop(pc.l1URL, body, "l2a")
	if code != http.StatusOK || !strings.HasPrefix(body, "user=pia;") || !strings.HasPrefix(at.String(), pc.appL1.srv.URL+"/page") {
		t.Fatalf("after the hop: %d at %s\n%s", code, at, body)
	}
	accept, assert := br.hop("/cas/peer/accept"), br.hop("/cas/peer/assert")
	if accept == nil || assert == nil || accept.Host != strings.TrimPrefix(pc.l1URL, "http://") ||
		assert.Host != strings.TrimPrefix(pc.l2aURL, "http://") || accept.Query().Get("assertion") == "" {
		t.Fatalf("hops: %v", br.hops)
	}
	// Level 1's own session: l2a's level and method, and whose word it was.
	ss, err := ticketv1.NewTicketAdminServiceClient(pc.l1.e.conn).ListUserSessions(pc.l1.e.adm(),
		&ticketv1.ListUserSessionsRequest{UserId: pc.person.userID})
	if err != nil || len(ss.GetSessions()) != 1 {
		t.Fatalf("sessions at level 1: %v %v", ss, err)
	}
	if s := ss.GetSessions()[0]; s.GetPeer() != "l2a" || s.GetAuthLevel() != 1 || s.GetAuthMethod() != ticketv1.AuthMethod_AUTH_METHOD_PASSWORD {
		t.Fatalf("session at level 1: %+v", s)
	}
	// ... and the time of the sign-in at l2a (its hard limit runs from it).
	sa, err := ticketv1.NewTicketAdminServiceClient(pc.l2a.e.conn).ListUserSessions(pc.l2a.e.adm(),
		&ticketv1.ListUserSessionsRequest{UserId: pc.person.userID})
	if err != nil || len(sa.GetSessions()) != 1 ||
		ss.GetSessions()[0].GetAuthTime().AsTime().Unix() != sa.GetSessions()[0].GetCreatedAt().AsTime().Unix() {
		t.Fatalf("auth time at level 1 %v, sessions at l2a %v %v", ss.GetSessions()[0].GetAuthTime(), sa, err)
	}
	eventually(t, "the hop audited at both centres", func() bool {
		return auditedAt(t, pc.l1, "peer.assertion.redeem", "success", "OK") && auditedAt(t, pc.l2a, "peer.assertion.issue", "success", "OK")
	})
	// The level is kept: a level-2 application is not entered on a
	// password session at l2a.
	code, body, _ = br.get(pc.strongL1.srv.URL + "/page")
	if code != http.StatusForbidden || strings.HasPrefix(body, "user=") {
		t.Fatalf("level-2 application on a level-1 hop: %d\n%s", code, body)
	}

	// The peer was handed the nonce's hash, never the nonce.
	nonceOf := br.jar.nonce
	if nonceOf == "" || assert.Query().Get("nonce") != ticket.PeerNonceHash(nonceOf) || strings.Contains(assert.String(), nonceOf) {
		t.Fatalf("nonce %q, assert %s", nonceOf, assert)
	}
	// Replayed (even with the browser's nonce set again): refused.
	u1, _ := url.Parse(l1Cas)
	br.c.Jar.SetCookies(u1, []*http.Cookie{{Name: "uias_peer", Value: nonceOf, Path: "/cas/"}})
	code, body, _ = br.get(accept.String())
	if code != http.StatusUnauthorized || !strings.Contains(body, "was used already") {
		t.Fatalf("replayed assertion: %d\n%s", code, body)
	}
	eventually(t, "the replay audited", func() bool {
		return auditedAt(t, pc.l1, "peer.assertion.redeem", "denied", ticket.ReasonPeerReplayed)
	})

	// Forged ones, each in a browser bound to their nonce.
	state := url.Values{"service": {pc.appL1.srv.URL + "/page"}}.Encode()
	forged := func(key ed25519.PrivateKey, mod func(*ticket.PeerClaims)) (int, string) {
		t.Helper()
		b := newBrowser(t)
		b.c.Jar.SetCookies(u1, []*http.Cookie{{Name: "uias_peer", Value: "00112233445566778899aabbccddeeff", Path: "/cas/"}})
		now := time.Now()
		c := ticket.PeerClaims{Iss: "l2a", Aud: "l1", Sub: pc.person.userID, Jti: fmt.Sprint(now.UnixNano()), Iat: now.Unix(),
			Exp: now.Add(time.Minute).Unix(), AuthTime: now.Unix(), Acr: 2, Amr: 2, Nonce: ticket.PeerNonceHash("00112233445566778899aabbccddeeff")}
		mod(&c)
		a, err := ticket.SignPeerAssertion(key, c)
		if err != nil {
			t.Fatal(err)
		}
		code, body, _ := b.get(l1Cas + "peer/accept?" + url.Values{"assertion": {a}, "peer": {"l2a"}, "state": {state}}.Encode())
		if strings.HasPrefix(body, "user=") {
			t.Fatalf("a forged assertion signed in: %s", body)
		}
		return code, body
	}
	for _, tc := range []struct {
		name   string
		key    ed25519.PrivateKey
		mod    func(*ticket.PeerClaims)
		msg    string
		reason string
	}{
		{"expired", pc.l2aKey, func(c *ticket.PeerClaims) {
			c.Iat, c.Exp = time.Now().Add(-10*time.Minute).Unix(), time.Now().Add(-9*time.Minute).Unix()
		}, "has expired", ticket.ReasonPeerExpired},
		{"another audience", pc.l2aKey, func(c *ticket.PeerClaims) { c.Aud = "l2b" }, "meant for another centre", ticket.ReasonPeerWrongAudience},
		{"untrusted key", newPeerKey(t), func(*ticket.PeerClaims) {}, "could not be verified", ticket.ReasonPeerInvalid},
		{"unknown peer", pc.l2aKey, func(c *ticket.PeerClaims) { c.Iss = "l9" }, "not one this centre trusts", ticket.ReasonPeerUnknown},
		{"another browser", pc.l2aKey, func(c *ticket.PeerClaims) { c.Nonce = ticket.PeerNonceHash("ffeeddccbbaa99887766554433221100") }, "could not be verified",
			ticket.ReasonPeerInvalid},
	} {
		code, body := forged(tc.key, tc.mod)
		if code != http.StatusUnauthorized || !strings.Contains(body, tc.msg) || !strings.Contains(body, `name="password"`) {
			t.Fatalf("%s: %d\n%s", tc.name, code, body)
		}
		if tc.name == "untrusted key" || tc.name == "unknown peer" {
			// Refused before the signature holds: audited at most once a
			// second per address (sec28b L1, amendment 2), so the refusal is
			// sent again until one is recorded.
			eventually(t, tc.name+" audited", func() bool {
				if auditedAt(t, pc.l1, "peer.assertion.redeem", "denied", tc.reason) {
					return true
				}
				forged(tc.key, tc.mod)
				return false
			})
			continue
		}
		eventually(t, tc.name+" audited", func() bool { return auditedAt(t, pc.l1, "peer.assertion.redeem", "denied", tc.reason) })
	}

	// Login CSRF (sec28b H1): a genuine assertion of the attacker's in a
	// browser that never started a hop (no nonce cookie) is refused, and a
	// hop cannot be started by a link or another site's form.
	noCookie := newBrowser(t)
	now := time.Now()
	mine, err := ticket.SignPeerAssertion(pc.l2aKey, ticket.PeerClaims{Iss: "l2a", Aud: "l1", Sub: pc.person.userID, Jti: "csrf-" + fmt.Sprint(now.UnixNano()),
		Iat: now.Unix(), Exp: now.Add(time.Minute).Unix(), AuthTime: now.Unix(), Acr: 1, Amr: 1, Nonce: ticket.PeerNonceHash("00112233445566778899aabbccddeeff")})
	if err != nil {
		t.Fatal(err)
	}
	code, body, _ = noCookie.get(l1Cas + "peer/accept?" + url.Values{"assertion": {mine}, "peer": {"l2a"}, "state": {state}}.Encode())
	if code != http.StatusUnauthorized || strings.HasPrefix(body, "user=") || !strings.Contains(body, "could not be verified") {
		t.Fatalf("an assertion in a browser without a nonce: %d\n%s", code, body)
	}
	// ... and used up by the ticket component (rr29 A1: the refusal reaches
	// it through its validation): the browser it was bound to cannot take
	// it either.
	bound := newBrowser(t)
	bound.c.Jar.SetCookies(u1, []*http.Cookie{{Name: "uias_peer", Value: "00112233445566778899aabbccddeeff", Path: "/cas/"}})
	code, body, _ = bound.get(l1Cas + "peer/accept?" + url.Values{"assertion": {mine}, "peer": {"l2a"}, "state": {state}}.Encode())
	if code != http.StatusUnauthorized || strings.HasPrefix(body, "user=") || !strings.Contains(body, "was used already") {
		t.Fatalf("an assertion refused for want of a nonce, then in its own browser: %d\n%s", code, body)
	}
	if code, _, at := noCookie.get(l1Cas + "peer/start?" + url.Values{"peer": {"l2a"}, "service": {pc.appL1.srv.URL + "/page"}}.Encode()); code != http.StatusMethodNotAllowed || at.Host != u1.Host {
		t.Fatalf("peer/start by a link: %d at %s", code, at)
	}
	if code, _, at := noCookie.post(l1Cas+"peer/start?"+url.Values{"peer": {"l2a"}, "service": {pc.appL1.srv.URL + "/page"}}.Encode(), url.Values{"csrf": {"forged-0123456789abcdef0123456789"}}); code != http.StatusForbidden || at.Host != u1.Host {
		t.Fatalf("peer/start by another site's form: %d at %s", code, at)
	}

	// No open redirect: l2a sends an assertion to no centre but its peers,
	// and level 1 continues only to registered services.
	nr := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := nr.Get(l2aCas + "peer/assert?" + url.Values{"audience": {"evil"}, "nonce": {"00112233445566778899aabbccddeeff"},
		"state": {"service=https://evil.example/"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusBadRequest || res.Header.Get("Location") != "" {
		t.Fatalf("assert for a centre that is not a peer: %d to %q", res.StatusCode, res.Header.Get("Location"))
	}
	code, body, at = newBrowser(t).get(l1Cas + "peer/accept?" + url.Values{"error": {"login_required"}, "peer": {"l2a"},
		"state": {"service=https://evil.example/"}}.Encode())
	if code != http.StatusForbidden || at.Host != u1.Host {
		t.Fatalf("accept to an unregistered service: %d at %s\n%s", code, at, body)
	}
	// Not signed in at the peer: back to the local form with a word.
	b2 := newBrowser(t)
	_, body, _ = b2.get(pc.appL1.srv.URL + "/page")
	code, body, at = b2.peerHop(pc.l1URL, body, "l2a")
	if code != http.StatusOK || at.Host != u1.Host || !strings.Contains(body, "You are not signed in at l2a") ||
		!strings.Contains(body, `name="password"`) {
		t.Fatalf("hop without a session at the peer: %d at %s\n%s", code, at, body)
	}

	// The other way: signed in at level 1 (the replica's password), into
	// l2a's application without a password.
	b3 := newHopBrowser(t)
	_, body, _ = b3.get(l1Cas + "login")
	if code, _, at := b3.loginForm(l1Cas, body, "pia", pc.person.password); code != http.StatusOK || !strings.HasSuffix(at.Path, "/cas/portal") {
		t.Fatalf("login at level 1: %d at %s", code, at)
	}
	_, body, _ = b3.get(pc.appL2a.srv.URL + "/page")
	link = peerLink(body, "l1")
	if link == "" {
		t.Fatalf("l2a's login page offers no level 1:\n%s", body)
	}
	if code, body, at = b3.peerHop(pc.l2aURL, body, "l1"); code != http.StatusOK || !strings.HasPrefix(body, "user=pia;") {
		t.Fatalf("l1 -> l2a: %d at %s\n%s", code, at, body)
	}

	// Logout at level 1 ends its session and offers l2a's logout.
	code, body, _ = br.get(l1Cas + "logout")
	if code != http.StatusOK || !strings.Contains(body, `href="`+l2aCas+`logout"`) || !strings.Contains(body, "sign out there too") {
		t.Fatalf("logout of a session from l2a: %d\n%s", code, body)
	}
	l1Sessions := func() int {
		ss, err := ticketv1.NewTicketAdminServiceClient(pc.l1.e.conn).ListUserSessions(pc.l1.e.adm(),
			&ticketv1.ListUserSessionsRequest{UserId: pc.person.userID})
		if err != nil {
			t.Fatal(err)
		}
		return len(ss.GetSessions())
	}
	if n := l1Sessions(); n != 1 { // b3's own level-1 session stays
		t.Fatalf("sessions at level 1 after the logout: %d", n)
	}
	// ... and level 1 told l2a, which ended the session the hop came from.
	eventually(t, "l2a's session ended by level 1's logout", func() bool {
		code, body, at := br.get(l2aCas + "login")
		return code == http.StatusOK && strings.HasSuffix(at.Path, "/cas/login") && strings.Contains(body, `id="username"`)
	})
	eventually(t, "the logout across centres audited", func() bool {
		return auditedAt(t, pc.l1, "peer.logout.delivery", "success", "OK") && auditedAt(t, pc.l2a, "peer.logout", "success", "OK") &&
			auditedAt(t, pc.l2a, "session.end", "success", ticket.ReasonPeerLogout)
	})
	// Signed out at l2a (where b3 hopped to): level 1's session it came
	// from ends too.
	if code, body, _ := b3.get(l2aCas + "logout"); code != http.StatusOK || !strings.Contains(body, `href="`+l1Cas+`logout"`) {
		t.Fatalf("logout at l2a: %d\n%s", code, body)
	}
	eventually(t, "level 1's session ended by l2a's logout", func() bool { return l1Sessions() == 0 })

	// l2a down: level 1's page offers its own form only.
	pc.l2a.stop(t)
	eventually(t, "level 1's page without l2a", func() bool {
		code, body, _ := newBrowser(t).get(pc.appL1.srv.URL + "/page")
		return code == http.StatusOK && peerLink(body, "l2a") == "" && strings.Contains(body, `name="password"`)
	})
}

// TestBrowserSignInAcrossCentres drives headless Chromium through the hop:
// signed in at l2a, it opens a level-1 application, follows "signed in at
// l2a? continue" and lands in it signed in, no password typed at level 1.
func TestBrowserSignInAcrossCentres(t *testing.T) {
	if testing.Short() {
		t.Skip("two UIAS processes")
	}
	chromium := chromiumPath(t)
	pc := startPeerCentres(t)
	b := newChromium(t, chromium, 760, 640)
	const appPage = `document.body != null && document.body.innerText.startsWith("user=")`
	b.run("sign in at l2a", chromedp.Navigate(pc.l2aURL+"/cas/login"), chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), "pia"), chromedp.SendKeys(chromedp.CSS("#password"), pc.person.password+"\r"))
	b.waitFor("l2a's portal", `location.pathname.endsWith("/cas/portal")`)
	// level 1's background probe has seen l2a answer (l2a may have started
	// after its first probe)
	eventually(t, "level 1's login page offers l2a", func() bool {
		_, body, _ := newBrowser(t).get(pc.appL1.srv.URL + "/page")
		return peerLink(body, "l2a") != ""
	})
	b.run("open level 1's application", chromedp.Navigate(pc.appL1.srv.URL+"/page"), chromedp.WaitVisible(chromedp.CSS("#peer-l2a")))
	if text := b.textOf("#peer-l2a"); text != "Signed in at l2a? Continue without a password" {
		t.Fatalf("the peer link: %q", text)
	}
	b.run("continue with l2a", chromedp.Click(chromedp.CSS("#peer-l2a")))
	b.waitFor("in level 1's application", appPage)
	if text, at := b.textOf("body"), b.location(); !strings.HasPrefix(text, "user=pia;") || !strings.HasPrefix(at, pc.appL1.srv.URL+"/page") {
		t.Fatalf("after the hop: %q at %s", text, at)
	}
}
