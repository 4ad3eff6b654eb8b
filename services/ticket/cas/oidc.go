package cas

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/module"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// OpenID Connect under <prefix>oidc (the issuer, as Apereo CAS's /cas/oidc):
// discovery, the JSON Web Key Set, the authorization endpoint (the CAS
// login page and session: an authorization code is a service ticket for
// the redirect URI), and the token, userinfo, introspection and revocation
// endpoints, which the ticket component answers.

// oidcRequest is a checked authorization request.
type oidcRequest struct {
	clientID, redirectURI, scope, state, nonce, challenge string
	// maxAge: the request's max_age in seconds (-1: none); hintSub: the
	// sub of its id_token_hint. Both weigh only on a live session (not
	// carried by the login form: a login there is fresh).
	maxAge  int64
	hintSub string
	// forceConsent: prompt=consent (the consent page even when a
	// remembered consent covers the scope).
	forceConsent bool
}

// encode is the request as the login form carries it (the oidc field).
func (q *oidcRequest) encode() string {
	v := url.Values{"client_id": {q.clientID}, "redirect_uri": {q.redirectURI}}
	for k, s := range map[string]string{"scope": q.scope, "state": q.state, "nonce": q.nonce, "code_challenge": q.challenge} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.challenge != "" {
		v.Set("code_challenge_method", "S256")
	}
	if q.forceConsent {
		v.Set("prompt", "consent")
	}
	return v.Encode()
}

// encodeWithMaxAge is encode with the request's max_age: the consent
// form carries it, checked again on the person's answer (review sec30c
// I2). (An id_token_hint weighs only with prompt=none, which never shows
// the consent page.)
func (q *oidcRequest) encodeWithMaxAge() string {
	e := q.encode()
	if q.maxAge >= 0 {
		e += "&max_age=" + strconv.FormatInt(q.maxAge, 10)
	}
	return e
}

var (
	pkceRE  = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)
	scopeRE = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+$`)
)

// oauthError is an authorization error sent back to the client's
// redirect URI (RFC 6749 §4.1.2.1).
type oauthError struct{ code, desc string }

// parseOIDC checks an authorization request's parameters other than the
// client and redirect URI (checked against the registry by the caller):
// a refusal is sent to the redirect URI.
//
// form: v is what the login form carried (encode), not the client's request.
func parseOIDC(v url.Values, form bool) (*oidcRequest, *oauthError) {
	q := &oidcRequest{clientID: v.Get("client_id"), redirectURI: v.Get("redirect_uri"), scope: strings.Join(strings.Fields(v.Get("scope")), " "),
		state: v.Get("state"), nonce: v.Get("nonce"), challenge: v.Get("code_challenge"), maxAge: -1, hintSub: hintSubject(v.Get("id_token_hint")),
		forceConsent: slices.Contains(strings.Fields(v.Get("prompt")), "consent")}
	for _, k := range slices.Sorted(maps.Keys(v)) {
		// (RFC 8707's resource may repeat; it is not used here)
		if len(v[k]) > 1 && k != "resource" {
			// RFC 6749 §3.1 (trial11 D9)
			return q, &oauthError{"invalid_request", "the parameter " + k + " is given more than once"}
		}
	}
	if ma := v.Get("max_age"); ma != "" {
		n, err := strconv.ParseInt(ma, 10, 64)
		if err != nil || n < 0 {
			return q, &oauthError{"invalid_request", "max_age must be a number of seconds"}
		}
		q.maxAge = min(n, 100*365*24*3600) // no overflow in a Duration
	}
	if v.Get("request") != "" || v.Get("request_uri") != "" {
		return q, &oauthError{"request_not_supported", "request objects are not supported"}
	}
	if rt := v["response_type"]; len(rt) == 0 || rt[0] == "" {
		if !form {
			return q, &oauthError{"invalid_request", "response_type is required (code)"}
		}
	} else if len(rt) != 1 || rt[0] != "code" {
		return q, &oauthError{"unsupported_response_type", "only response_type=code is supported"}
	}
	if m := v.Get("response_mode"); m != "" && m != "query" {
		return q, &oauthError{"invalid_request", "only response_mode=query is supported"}
	}
	for _, f := range strings.Fields(q.scope) {
		if !scopeRE.MatchString(f) {
			return q, &oauthError{"invalid_scope", "the scope has characters a scope may not have"}
		}
		if f == casConsentScope {
			// The consent to the client's CAS services (review sec31c L1):
			// the OpenID Connect consent page would not list what they get.
			return q, &oauthError{"invalid_scope", "the scope " + f + " is reserved for the consent to the application's CAS services"}
		}
	}
	switch {
	case len(q.scope) > 1024 || len(q.state) > 512 || len(q.nonce) > 512:
		return q, &oauthError{"invalid_request", "scope, state or nonce is too long"}
	case q.challenge != "" && v.Get("code_challenge_method") != "S256":
		return q, &oauthError{"invalid_request", "code_challenge_method must be S256"}
	case q.challenge == "" && v.Get("code_challenge_method") != "":
		return q, &oauthError{"invalid_request", "code_challenge_method without code_challenge"}
	case q.challenge != "" && !pkceRE.MatchString(q.challenge):
		return q, &oauthError{"invalid_request", "code_challenge must be 43-128 characters of A-Z, a-z, 0-9, '-', '.', '_', '~'"}
	}
	for _, s := range []string{q.state, q.nonce} {
		if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return q, &oauthError{"invalid_request", "state and nonce may not have control characters"}
		}
	}
	return q, nil
}

// hintAudience is the client (aud, one) of an id_token_hint, read and not
// verified: it only chooses which client's registered URIs a logout may
// return to. "" if none.
func hintAudience(hint string) string {
	var c struct {
		Aud any `json:"aud"`
	}
	if !hintClaims(hint, &c) {
		return ""
	}
	switch a := c.Aud.(type) {
	case string:
		return a
	case []any:
		if len(a) == 1 {
			s, _ := a[0].(string)
			return s
		}
	}
	return ""
}

// hintClaims decodes the claims of a JWT (unverified) into v.
func hintClaims(hint string, v any) bool {
	parts := strings.Split(hint, ".")
	if len(parts) != 3 || len(parts[1]) > 8192 {
		return false
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[1])
	return err == nil && json.Unmarshal(body, v) == nil
}

// hintSubject is the sub of an id_token_hint (a JWT this server signed;
// read, not verified: it can only make a prompt=none refuse), "" if none.
func hintSubject(hint string) string {
	var c struct {
		Sub string `json:"sub"`
	}
	if !hintClaims(hint, &c) {
		return ""
	}
	return c.Sub
}

// issuer is the OpenID Connect issuer: the configured one, else this
// request's scheme and host with the prefix.
func (h *Handler) issuer(r *http.Request) string {
	if h.o.OIDCIssuer != "" {
		return h.o.OIDCIssuer
	}
	scheme := "http"
	if module.RequestHTTPS(r) {
		scheme = "https"
	}
	return scheme + "://" + r.Host + strings.TrimSuffix(h.o.Prefix, "/") + "/oidc"
}

// oidcBack sends the browser back to the client with an error (or, with
// code empty, nothing: CAS gateway's return without a ticket).
func (h *Handler) oidcBack(w http.ResponseWriter, r *http.Request, q *oidcRequest, e oauthError) {
	v := url.Values{"error": {e.code}}
	if e.desc != "" {
		v.Set("error_description", e.desc)
	}
	if q.state != "" {
		v.Set("state", q.state)
	}
	v.Set("iss", h.issuer(r))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, withParams(q.redirectURI, v.Encode()), http.StatusFound)
}

// oidcAuthorize is GET and POST <prefix>oidc/authorize.
func (h *Handler) oidcAuthorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		h.badForm(w, r, err, h.o.Prefix+"login", h.texts(r).SignIn)
		return
	}
	v := r.Form
	t := h.texts(r)
	if v.Get("client_id") == "" || v.Get("redirect_uri") == "" || len(v["client_id"]) > 1 || len(v["redirect_uri"]) > 1 {
		// Nowhere to send an error (none, or which of two?): a page
		// (never a redirect).
		h.message(w, r, http.StatusBadRequest, true, t.BadServiceHead, t.OIDCMissing, "", "")
		return
	}
	rs, ok := h.match(w, r, v.Get("redirect_uri"))
	if !ok {
		return
	}
	if rs.GetAppId() != v.Get("client_id") || rs.GetLegacyScheme() != 0 || !ticket.ExactRedirect(rs.GetUrl(), rs.GetPattern(), v.Get("redirect_uri")) {
		h.o.Log.Info("OpenID Connect authorization refused: the redirect_uri is not the client's", zap.String("reason", "OAUTH_REDIRECT_NOT_OF_CLIENT"))
		h.message(w, r, http.StatusBadRequest, true, t.BadServiceHead, t.BadService, "", "")
		return
	}
	q, perr := parseOIDC(v, false)
	if perr != nil {
		h.oidcBack(w, r, q, *perr)
		return
	}
	prompt := strings.Fields(v.Get("prompt"))
	p := loginParams{service: q.redirectURI, oidc: q}
	for _, pr := range prompt {
		switch pr {
		case "none":
			p.gateway = true
		case "login":
			p.renew = true
		}
	}
	if p.gateway && len(prompt) > 1 {
		h.oidcBack(w, r, q, oauthError{"invalid_request", "prompt=none goes with no other prompt"})
		return
	}
	// prompt=none never shows a page, prompt=login always signs in again
	// (so with both, nothing can answer); max_age weighs on a live
	// session (oidcSessionOK).
	if p.gateway && p.renew {
		h.oidcBack(w, r, q, oauthError{"invalid_request", "prompt=none goes with no other prompt"})
		return
	}
	h.login(w, r, p, rs)
}

// sendCode issues an authorization code and sends the browser back to the
// client with it: the error (err) is answered by the caller.
func (h *Handler) sendCode(w http.ResponseWriter, r *http.Request, tgt string, q *oidcRequest, fresh bool) error {
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.Tickets.IssueAuthorizationCode(ctx, &ticketv1.IssueAuthorizationCodeRequest{Tgt: tgt, RedirectUri: q.redirectURI,
		ClientId: q.clientID, Scope: q.scope, Nonce: q.nonce, CodeChallenge: q.challenge, FromNewLogin: fresh, Issuer: h.issuer(r)})
	if err != nil {
		return err
	}
	v := url.Values{"code": {res.GetCode()}, "iss": {h.issuer(r)}}
	if q.state != "" {
		v.Set("state", q.state)
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, withParams(q.redirectURI, v.Encode()), http.StatusFound)
	return nil
}

// oidcSessionOK answers (and reports false) when the live session sess may
// not answer the OpenID Connect request of p as it is: older than its
// max_age (a fresh login, or login_required with prompt=none), or another
// person's than its id_token_hint names with prompt=none (login_required).
func (h *Handler) oidcSessionOK(w http.ResponseWriter, r *http.Request, p loginParams, rs *ticketv1.RegisteredService, sess *ticketv1.Session) bool {
	q := p.oidc
	if q.hintSub != "" && q.hintSub != sess.GetUserId() && p.gateway {
		h.oidcBack(w, r, q, oauthError{code: "login_required", desc: "another person is signed in"})
		return false
	}
	authAt := sess.GetCreatedAt().AsTime()
	if sess.GetAuthTime() != nil { // the sign-in at a peer, for a session opened on its word
		authAt = sess.GetAuthTime().AsTime()
	}
	if q.maxAge >= 0 && h.o.Now().Sub(authAt) > time.Duration(q.maxAge)*time.Second {
		if p.gateway {
			h.oidcBack(w, r, q, oauthError{code: "login_required", desc: "the sign-in is older than max_age"})
			return false
		}
		p.renew = true
		h.loginPage(w, r, http.StatusOK, p, rs, "", "")
		return false
	}
	return true
}

// oidcJSON answers a JSON body that no cache keeps.
func oidcJSON(w http.ResponseWriter, code int, body []byte) {
	hd := w.Header()
	hd.Set("Content-Type", "application/json")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Pragma", "no-cache")
	w.WriteHeader(code)
	_, _ = w.Write(body)
}

// oidcFail answers an OAuth error (RFC 6749 §5.2).
func oidcFail(w http.ResponseWriter, code int, errCode, desc string) {
	b, _ := json.Marshal(map[string]string{"error": errCode, "error_description": oauthText(desc)})
	if code == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="uias", charset="UTF-8"`)
	}
	oidcJSON(w, code, b)
}

// oauthText keeps an error_description within the characters RFC 6749
// §5.2 allows (%x20-21 / %x23-5B / %x5D-7E): a message passed on from a
// component may quote a name ("oidc"), which becomes 'oidc'.
func oauthText(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '"':
			return '\''
		case r == '\\':
			return '/'
		case r < 0x20 || r > 0x7e:
			return '?'
		}
		return r
	}, s)
}

// oidcFault answers an error of a ticket component call at the token,
// introspection and revocation endpoints.
func (h *Handler) oidcFault(w http.ResponseWriter, err error) {
	msg := ""
	if st, ok := status.FromError(err); ok {
		msg = st.Message()
	}
	switch reasonOf(err) {
	case "OAUTH_INVALID_CLIENT":
		oidcFail(w, http.StatusUnauthorized, "invalid_client", msg)
		return
	case "OAUTH_INVALID_GRANT":
		oidcFail(w, http.StatusBadRequest, "invalid_grant", msg)
		return
	case "OAUTH_INVALID_SCOPE":
		oidcFail(w, http.StatusBadRequest, "invalid_scope", msg)
		return
	}
	if status.Code(err) == codes.InvalidArgument {
		oidcFail(w, http.StatusBadRequest, "invalid_request", msg)
		return
	}
	h.o.Log.Warn("OpenID Connect: a component call failed", zap.Error(err))
	oidcFail(w, http.StatusServiceUnavailable, "temporarily_unavailable", "the service is unavailable, retry later")
}

// clientOf reads a client's credentials: HTTP Basic (client_secret_basic,
// its parts form-encoded) or the form (client_secret_post), not both.
func clientOf(r *http.Request) (id, secret string, ok bool) {
	fid, fsecret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, basic := r.BasicAuth(); basic {
		if fsecret != "" {
			return "", "", false
		}
		uid, err1 := url.QueryUnescape(u)
		usecret, err2 := url.QueryUnescape(p)
		if err1 != nil || err2 != nil || (fid != "" && fid != uid) {
			return "", "", false
		}
		return uid, usecret, true
	}
	return fid, fsecret, true
}

// oidcForm parses a back-channel POST's form; false: answered.
func oidcForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		oidcFail(w, http.StatusBadRequest, "invalid_request", "the body must be a form (application/x-www-form-urlencoded) of at most 64 KiB")
		return false
	}
	// RFC 6749 §3.2 (and RFC 7009, 7662 through it): a parameter given
	// twice is refused, as at the authorization endpoint, rather than
	// its first value silently used (RFC 8707's resource may repeat; it
	// is not used here)
	for _, k := range slices.Sorted(maps.Keys(r.PostForm)) {
		if len(r.PostForm[k]) > 1 && k != "resource" {
			oidcFail(w, http.StatusBadRequest, "invalid_request", "the parameter "+k+" is given more than once")
			return false
		}
	}
	return true
}

// oidcToken is POST <prefix>oidc/token.
func (h *Handler) oidcToken(w http.ResponseWriter, r *http.Request) {
	if !oidcForm(w, r) {
		return
	}
	id, secret, ok := clientOf(r)
	if !ok {
		oidcFail(w, http.StatusBadRequest, "invalid_request", "present the client's credentials once: HTTP Basic or the form")
		return
	}
	f := r.PostForm
	switch f.Get("grant_type") {
	case "":
		oidcFail(w, http.StatusBadRequest, "invalid_request", "grant_type is required (a form body: application/x-www-form-urlencoded)")
		return
	case "authorization_code":
		if f.Get("code") == "" || f.Get("redirect_uri") == "" {
			oidcFail(w, http.StatusBadRequest, "invalid_request", "code and redirect_uri are required")
			return
		}
	case "refresh_token":
		if f.Get("refresh_token") == "" {
			oidcFail(w, http.StatusBadRequest, "invalid_request", "refresh_token is required")
			return
		}
	default:
		oidcFail(w, http.StatusBadRequest, "unsupported_grant_type", "grant_type must be authorization_code or refresh_token")
		return
	}
	if id == "" || secret == "" {
		oidcFail(w, http.StatusUnauthorized, "invalid_client", "present the client's App_ID and secret (HTTP Basic, or client_id and client_secret)")
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	var (
		res *ticketv1.TokenResponse
		err error
	)
	if f.Get("grant_type") == "refresh_token" {
		res, err = h.o.Tickets.RefreshAccessToken(ctx, &ticketv1.RefreshAccessTokenRequest{RefreshToken: f.Get("refresh_token"),
			ClientId: id, ClientSecret: secret, Scope: f.Get("scope"), Issuer: h.issuer(r)})
	} else {
		res, err = h.o.Tickets.ExchangeAuthorizationCode(ctx, &ticketv1.ExchangeAuthorizationCodeRequest{Code: f.Get("code"),
			RedirectUri: f.Get("redirect_uri"), ClientId: id, ClientSecret: secret, CodeVerifier: f.Get("code_verifier"), Issuer: h.issuer(r)})
	}
	if err != nil {
		h.oidcFault(w, err)
		return
	}
	out := map[string]any{"access_token": res.GetAccessToken(), "token_type": res.GetTokenType(), "expires_in": res.GetExpiresIn()}
	if res.GetIdToken() != "" {
		out["id_token"] = res.GetIdToken()
	}
	if res.GetScope() != "" {
		out["scope"] = res.GetScope()
	}
	if res.GetRefreshToken() != "" {
		out["refresh_token"] = res.GetRefreshToken()
	}
	b, _ := json.Marshal(out)
	oidcJSON(w, http.StatusOK, b)
}

// oidcUserInfo is GET and POST <prefix>oidc/userinfo (RFC 6750: the token
// in the Authorization header, or a POST's access_token).
func (h *Handler) oidcUserInfo(w http.ResponseWriter, r *http.Request) {
	token, inForm := "", false
	if r.Method == http.MethodPost && oidcFormQuiet(w, r) {
		inForm = len(r.PostForm["access_token"]) > 0
		token = r.PostForm.Get("access_token")
		if len(r.PostForm["access_token"]) > 1 {
			userInfoBadRequest(w, "access_token is given more than once")
			return
		}
	}
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		if inForm {
			// RFC 6750 §2, §3.1: one method per request (acceptc)
			userInfoBadRequest(w, "send the access token once: the Authorization header or the form, not both")
			return
		}
		token = strings.TrimSpace(a[7:])
	}
	if token == "" {
		// no credentials: no error code (RFC 6750 §3.1; trial11 D10)
		w.Header().Set("WWW-Authenticate", `Bearer realm="uias"`)
		oidcJSON(w, http.StatusUnauthorized, []byte(`{"error_description":"an access token is required (Authorization: Bearer)"}`))
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.Tickets.UserInfo(ctx, &ticketv1.UserInfoRequest{AccessToken: token})
	if err != nil {
		if reasonOf(err) == "OAUTH_INVALID_TOKEN" || status.Code(err) == codes.InvalidArgument {
			w.Header().Set("WWW-Authenticate", `Bearer realm="uias", error="invalid_token"`)
			oidcJSON(w, http.StatusUnauthorized, []byte(`{"error":"invalid_token","error_description":"the access token is invalid, expired or revoked, or its session has ended"}`))
			return
		}
		h.oidcFault(w, err)
		return
	}
	oidcJSON(w, http.StatusOK, []byte(res.GetClaims()))
}

// userInfoBadRequest answers a malformed userinfo request (RFC 6750
// §3.1 invalid_request, HTTP 400).
func userInfoBadRequest(w http.ResponseWriter, desc string) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="uias", error="invalid_request"`)
	b, _ := json.Marshal(map[string]string{"error": "invalid_request", "error_description": desc})
	oidcJSON(w, http.StatusBadRequest, b)
}

// oidcFormQuiet parses a form for userinfo (a bad one reads as no token).
func oidcFormQuiet(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	return r.ParseForm() == nil
}

// oidcIntrospect is POST <prefix>oidc/introspect (RFC 7662).
func (h *Handler) oidcIntrospect(w http.ResponseWriter, r *http.Request) {
	id, secret, token, ok := h.backChannel(w, r)
	if !ok {
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.Tickets.IntrospectToken(ctx, &ticketv1.IntrospectTokenRequest{Token: token, ClientId: id, ClientSecret: secret})
	if err != nil {
		h.oidcFault(w, err)
		return
	}
	oidcJSON(w, http.StatusOK, []byte(res.GetJson()))
}

// oidcRevoke is POST <prefix>oidc/revoke (RFC 7009).
func (h *Handler) oidcRevoke(w http.ResponseWriter, r *http.Request) {
	id, secret, token, ok := h.backChannel(w, r)
	if !ok {
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	if _, err := h.o.Tickets.RevokeToken(ctx, &ticketv1.RevokeTokenRequest{Token: token, ClientId: id, ClientSecret: secret}); err != nil {
		h.oidcFault(w, err)
		return
	}
	oidcJSON(w, http.StatusOK, []byte(`{}`))
}

// backChannel reads the client and token of an introspection or
// revocation; false: answered.
func (h *Handler) backChannel(w http.ResponseWriter, r *http.Request) (id, secret, token string, ok bool) {
	if !oidcForm(w, r) {
		return "", "", "", false
	}
	id, secret, ok = clientOf(r)
	if !ok {
		oidcFail(w, http.StatusBadRequest, "invalid_request", "present the client's credentials once: HTTP Basic or the form")
		return "", "", "", false
	}
	if id == "" || secret == "" {
		oidcFail(w, http.StatusUnauthorized, "invalid_client", "present the client's App_ID and secret (HTTP Basic, or client_id and client_secret)")
		return "", "", "", false
	}
	if token = r.PostForm.Get("token"); token == "" {
		oidcFail(w, http.StatusBadRequest, "invalid_request", "token is required")
		return "", "", "", false
	}
	return id, secret, token, true
}

// oidcJWKS is GET <prefix>oidc/jwks.
func (h *Handler) oidcJWKS(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.Tickets.SigningKeys(ctx, &ticketv1.SigningKeysRequest{})
	if err != nil {
		h.oidcFault(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	_, _ = w.Write([]byte(res.GetJwks()))
}

// oidcDiscovery is GET <prefix>oidc/.well-known/openid-configuration.
func (h *Handler) oidcDiscovery(w http.ResponseWriter, r *http.Request) {
	iss := h.issuer(r)
	doc := map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/authorize",
		"token_endpoint":                        iss + "/token",
		"userinfo_endpoint":                     iss + "/userinfo",
		"jwks_uri":                              iss + "/jwks",
		"introspection_endpoint":                iss + "/introspect",
		"revocation_endpoint":                   iss + "/revoke",
		"end_session_endpoint":                  strings.TrimSuffix(iss, "/oidc") + "/logout",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "profile", "groups"},
		"claims_supported": []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "sid", "azp",
			"preferred_username", "name", "org_id", "org_name", "app_account", "user_type", "groups",
			// released by a service's release_roles / release_permissions
			// (integrators.md "OpenID Connect"; acceptc)
			"roles", "permissions"},
		"token_endpoint_auth_methods_supported":          []string{"client_secret_basic", "client_secret_post"},
		"introspection_endpoint_auth_methods_supported":  []string{"client_secret_basic", "client_secret_post"},
		"revocation_endpoint_auth_methods_supported":     []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":               []string{"S256"},
		"prompt_values_supported":                        []string{"none", "login", "consent"},
		"authorization_response_iss_parameter_supported": true,
		"backchannel_logout_supported":                   true,
		"backchannel_logout_session_supported":           true,
		"request_parameter_supported":                    false,
		"request_uri_parameter_supported":                false,
	}
	b, _ := json.Marshal(doc)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=300")
	if h.o.OIDCIssuer == "" {
		// The document names the host the request reached: a cache must
		// not answer it for another.
		w.Header().Set("Vary", "Host")
	}
	_, _ = w.Write(b)
}
