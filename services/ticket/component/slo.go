package component

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/services/ticket"
)

// singleLogout sends the CAS back-channel logoutRequest to every service
// that got a ticket in an ended session, in the background, retried, and
// each delivery recorded in the audit log (logout.delivery).
type singleLogout struct {
	svc     *ticket.Service
	client  *http.Client
	log     *zap.Logger
	sink    ticket.AuditSink
	auditor *audit.Builder
	ctx     context.Context
	retries []time.Duration
}

func newSingleLogout(ctx context.Context, svc *ticket.Service, client *http.Client, sink ticket.AuditSink, log *zap.Logger) *singleLogout {
	return &singleLogout{svc: svc, client: client, log: log, sink: sink, auditor: audit.NewBuilder("ticket", nil), ctx: ctx,
		retries: []time.Duration{time.Second, 5 * time.Second, 30 * time.Second}}
}

// ended implements ticket.Ending.
func (s *singleLogout) ended(sess *ticket.Session, reason string) {
	seen := map[string]bool{}
	for _, u := range sess.Services {
		if seen[u.Service] {
			continue
		}
		seen[u.Service] = true
		go s.deliver(sess, u)
	}
	// Sign-in across centres (ADR 0030): the peer whose assertion opened
	// the session ends the session it came from, and the peers this one
	// vouched to end those they opened from it.
	type target struct{ peer, sid string }
	var targets []target
	if sess.Peer != "" && sess.PeerSID != "" {
		targets = append(targets, target{sess.Peer, sess.PeerSID})
	}
	for _, v := range sess.Vouched {
		targets = append(targets, target{v, sess.OIDCSid()})
	}
	for _, tg := range targets {
		go s.tellPeer(sess, tg.peer, tg.sid)
	}
}

// tellPeer posts a signed logout token to peer's /cas/peer/logout for
// the session sid of the person of sess, retried as single logout is, the
// delivery audited (peer.logout.delivery). A peer that refuses the token
// (400) is not asked again.
func (s *singleLogout) tellPeer(sess *ticket.Session, peer, sid string) {
	start := time.Now()
	tok, target, err := s.svc.PeerLogoutToken(peer, sess.UserID, sid)
	var lastErr string
	if err != nil {
		lastErr = "NO_TOKEN"
		s.log.Warn("logout across centres: no logout token for the peer", zap.String("peer", peer), zap.Error(err))
	} else {
		// a peer that refuses the token (400) is not asked again
		lastErr = s.post(target, url.Values{"logout_token": {tok}}.Encode(), func(r string) bool { return r == "HTTP_400" })
	}
	result, reason := audit.ResultSuccess, "OK"
	if lastErr != "" {
		result, reason = audit.ResultFailure, lastErr
		s.log.Info("logout across centres not delivered", zap.String("peer", peer), zap.String("reason", lastErr))
	}
	s.sink.Publish(s.auditor.Event(context.Background(), audit.Action{API: "peer.logout.delivery", Subject: "user:" + sess.UserID,
		Org: sess.OrgID, Result: result, Reason: reason, Start: start,
		Detail: map[string]string{"peer": peer, "session_id": sess.ID}}))
}

// post posts the form body to target, again after each of s.retries while
// it fails (unless final says the failure is for good), and returns the
// last failure: "" (delivered), BAD_URL, UNREACHABLE, HTTP_<status> or
// STOPPED (the component stopping).
func (s *singleLogout) post(target, body string, final func(reason string) bool) string {
	for attempt := 0; ; attempt++ {
		reason := s.postOnce(target, body)
		if reason == "" || reason == "BAD_URL" || final(reason) || attempt >= len(s.retries) {
			return reason
		}
		select {
		case <-s.ctx.Done():
			return "STOPPED"
		case <-time.After(s.retries[attempt]):
		}
	}
}

// postOnce is one attempt of post.
func (s *singleLogout) postOnce(target, body string) string {
	ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(body))
	if err != nil {
		return "BAD_URL"
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.client.Do(req)
	if err != nil {
		return "UNREACHABLE"
	}
	_ = resp.Body.Close()
	if resp.StatusCode >= 300 {
		return "HTTP_" + resp.Status[:3]
	}
	return ""
}

// logoutRequest is the CAS SAML logout request body.
func logoutRequest(login, ticketValue string, now time.Time) string {
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	var b strings.Builder
	b.WriteString(`<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="LR-`)
	b.WriteString(hex.EncodeToString(id))
	b.WriteString(`" Version="2.0" IssueInstant="` + now.UTC().Format(time.RFC3339) + `"><saml:NameID>`)
	_ = xml.EscapeText(&b, []byte(login))
	b.WriteString(`</saml:NameID><samlp:SessionIndex>`)
	_ = xml.EscapeText(&b, []byte(ticketValue))
	b.WriteString(`</samlp:SessionIndex></samlp:LogoutRequest>`)
	return b.String()
}

func (s *singleLogout) deliver(sess *ticket.Session, u ticket.ServiceUse) {
	start := time.Now()
	target := u.Service
	rs, err := s.svc.Registry().Match(s.ctx, u.Service)
	if err == nil && rs.LogoutURL != "" {
		target = rs.LogoutURL
	}
	body := url.Values{"logoutRequest": {logoutRequest(sess.Login, u.Ticket, time.Now())}}.Encode()
	if u.Issuer != "" {
		// An OpenID Connect client: the back-channel logout token, to its
		// logout_url only (its redirect URI takes no logout).
		if err != nil || rs.LogoutURL == "" {
			return
		}
		tok, err := s.svc.LogoutToken(sess, u)
		if err != nil {
			s.log.Warn("single logout: no logout token", zap.Error(err))
			return
		}
		body = url.Values{"logout_token": {tok}}.Encode()
	}
	lastErr := s.post(target, body, func(string) bool { return false })
	result, reason := audit.ResultSuccess, "OK"
	if lastErr != "" {
		result, reason = audit.ResultFailure, lastErr
		s.log.Info("single logout not delivered", zap.String("service", u.Service), zap.String("reason", lastErr))
	}
	s.sink.Publish(s.auditor.Event(context.Background(), audit.Action{API: "logout.delivery", Subject: "user:" + sess.UserID,
		Org: sess.OrgID, Result: result, Reason: reason, Start: start,
		Detail: map[string]string{"service": u.Service, "app_id": u.AppID, "session_id": sess.ID}}))
}
