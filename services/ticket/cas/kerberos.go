package cas

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/errorcode"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// Windows domain sign-in (Kerberos over SPNEGO, RFC 4559; ADR 0022): a
// person already logged on to the AD domain reaches the login page, which
// answers 401 with WWW-Authenticate: Negotiate and the login form as the
// body (as Keycloak does): a browser configured for the site sends the
// Kerberos ticket of HTTP/<host> (Authorization: Negotiate ...), one
// without shows the form. The ticket is verified here with the keytab
// (in the edge's process, which serves the pages), its client realm
// checked and the principal mapped to a login name; identity then applies
// the account's rules (SSOService.KerberosLogin) and the session opens at
// level 1 (method kerberos). A ticket that is not accepted falls back to
// the form with a message, never another challenge.

// Reasons of a Kerberos sign-in the page refused before identity (logged,
// never the ticket or the principal; ticket/reasons.go documents them).
const (
	ReasonKerberosTokenInvalid = ticket.ReasonKerberosTokenInvalid
	ReasonKerberosReplay       = ticket.ReasonKerberosReplay
	ReasonKerberosRealm        = ticket.ReasonKerberosRealm
	ReasonKerberosUnmapped     = ticket.ReasonKerberosUnmapped
)

// methodKerberosTOTP is identity's method of a Kerberos ticket completed
// with the authenticator app's code (LoginOtp): a level-2 session.
const methodKerberosTOTP = "kerberos+totp"

// KerberosRules are the checked settings of ticket.kerberos.
type KerberosRules struct {
	// Service is the service principal's name without realm
	// ("HTTP/sso.example.gov"); Realm its realm.
	Service, Realm string
	// Realms are the client realms accepted.
	Realms map[string]bool
	// Strip and Suffix map a realm to the text taken off the end of a
	// principal's name, and to the text appended to the login name. With
	// Strip set for a realm, a principal of that realm whose name does
	// not end with it maps to no one (review sec27a H1: else alice.sz and
	// alice would both become alice).
	Strip, Suffix map[string]string
	// CaseSensitive are the realms whose principal names are case
	// sensitive (MIT): a name of such a realm maps only when it is
	// already in lower case (Alice and alice are two principals; only
	// alice maps). Other realms (Active Directory) are folded.
	CaseSensitive map[string]bool
	// Networks are the client networks offered Negotiate (none: all).
	Networks []netip.Prefix
}

// Kerberos verifies the login page's Negotiate tokens.
type Kerberos struct {
	kt    *keytab.Keytab
	rules KerberosRules
	spn   types.PrincipalName
	// maxSkew is the clock skew accepted between the browser and this
	// server (Kerberos' customary 5 minutes).
	maxSkew time.Duration
}

// NewKerberos reads the keytab (its file's bytes) of rules.Service; it must
// hold a key of that principal in rules.Realm.
func NewKerberos(keytabData []byte, rules KerberosRules) (*Kerberos, error) {
	kt := keytab.New()
	if err := kt.Unmarshal(keytabData); err != nil {
		return nil, errors.New("not a keytab (MIT keytab format, as ktpass and kadmin ktadd write it)")
	}
	want := strings.Split(rules.Service, "/")
	found := false
	for _, e := range kt.Entries {
		if e.Principal.Realm == rules.Realm && slices.Equal(e.Principal.Components, want) {
			found = true
			break
		}
	}
	if !found {
		var have []string
		for _, e := range kt.Entries {
			have = append(have, strings.Join(e.Principal.Components, "/")+"@"+e.Principal.Realm)
		}
		slices.Sort(have)
		return nil, fmt.Errorf("holds no key of %s@%s (it has: %s): export the keys of ticket.kerberos.service_principal",
			rules.Service, rules.Realm, strings.Join(slices.Compact(have), ", "))
	}
	return &Kerberos{kt: kt, rules: rules, spn: types.NewPrincipalName(2, rules.Service), maxSkew: 5 * time.Minute}, nil
}

// offered reports whether the browser at r is offered Negotiate: Kerberos
// is on and its address (as the edge decided it) is in the networks.
func (k *Kerberos) offered(r *http.Request) bool {
	if k == nil {
		return false
	}
	if len(k.rules.Networks) == 0 {
		return true
	}
	ip := grpcx.OriginFrom(r.Context()).ClientIP
	if !ip.IsValid() {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
			ip = ap.Addr()
		}
	}
	ip = ip.Unmap()
	for _, p := range k.rules.Networks {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// negotiateToken is the token of an Authorization: Negotiate header ("" and
// false when the request has none).
func negotiateToken(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(r.Header.Get("Authorization")), " ")
	if !ok || !strings.EqualFold(scheme, "Negotiate") {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// kerberosPrincipal is a verified client principal and the login it maps to.
type kerberosPrincipal struct {
	principal, realm, login string
	// authenticator is the SHA-256 (hex) of the client, the server and
	// the authenticator's time: the same token presented again has the
	// same one (identity remembers it for every edge replica).
	authenticator string
}

// verify checks the Negotiate token tok of the browser at ip: an SPNEGO
// (or raw Kerberos) AP-REQ for the service principal that the keytab opens,
// within the clock skew, not replayed, of an accepted realm, mapped to a
// login name. The refusal is one of the ReasonKerberos reasons.
func (k *Kerberos) verify(tok string, ip netip.Addr) (*kerberosPrincipal, string) {
	if len(tok) > 64<<10 {
		return nil, ReasonKerberosTokenInvalid
	}
	b, err := base64.StdEncoding.DecodeString(tok)
	if err != nil || len(b) == 0 {
		return nil, ReasonKerberosTokenInvalid
	}
	mech := b
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(b); err == nil {
		if !st.Init || len(st.NegTokenInit.MechTokenBytes) == 0 {
			return nil, ReasonKerberosTokenInvalid
		}
		mech = st.NegTokenInit.MechTokenBytes
	}
	var kt spnego.KRB5Token
	if err := kt.Unmarshal(mech); err != nil || !kt.IsAPReq() {
		return nil, ReasonKerberosTokenInvalid
	}
	opts := []func(*service.Settings){service.KeytabPrincipal(k.rules.Service), service.MaxClockSkew(k.maxSkew), service.DecodePAC(false)}
	if ip.IsValid() {
		opts = append(opts, service.ClientAddress(types.HostAddressFromNetIP(net.IP(ip.Unmap().AsSlice()))))
	}
	req := &kt.APReq
	if req.Ticket.Realm != k.rules.Realm || !req.Ticket.SName.Equal(k.spn) {
		// A ticket for another service principal (another host's name).
		return nil, ReasonKerberosTokenInvalid
	}
	ok, _, err := service.VerifyAPREQ(req, service.NewSettings(k.kt, opts...))
	var replay bool
	if err != nil || !ok {
		var ke messages.KRBError
		if !errors.As(err, &ke) || ke.ErrorCode != errorcode.KRB_AP_ERR_REPEAT {
			return nil, ReasonKerberosTokenInvalid
		}
		// The ticket opened and its authenticator was seen before: whose
		// it is is known (the replay is audited under it).
		replay = true
	}
	cname, crealm := req.Ticket.DecryptedEncPart.CName, req.Ticket.DecryptedEncPart.CRealm
	p := &kerberosPrincipal{principal: cname.PrincipalNameString() + "@" + crealm, realm: crealm}
	if replay {
		return p, ReasonKerberosReplay
	}
	if !k.rules.Realms[crealm] {
		return p, ReasonKerberosRealm
	}
	if len(cname.NameString) != 1 {
		return p, ReasonKerberosUnmapped
	}
	login, ok := k.mapName(cname.NameString[0], crealm)
	if !ok {
		return p, ReasonKerberosUnmapped
	}
	p.login = login
	// What a Kerberos replay cache keys on (RFC 4120 3.2.3): the client,
	// the server, the authenticator's time and microseconds.
	sum := sha256.Sum256(fmt.Appendf(nil, "uias kerberos authenticator\x00%s\x00%s\x00%d\x00%d", p.principal,
		req.Ticket.SName.PrincipalNameString(), req.Authenticator.CTime.UTC().Unix(), req.Authenticator.Cusec))
	p.authenticator = hex.EncodeToString(sum[:])
	return p, ""
}

// mapName maps a principal's name of realm to a login name, one-to-one
// (review sec27a H1): a case-sensitive realm's name must be in lower case
// already (folding would send Alice and alice to one login); strip_suffix,
// when set for the realm, must be there (compared as the realm compares
// names); the rest is a name without separators ('@', '/', '\', ':',
// spaces, controls: a mapped name never carries a realm or another
// suffix of its own), then login_suffix is appended.
func (k *Kerberos) mapName(name, realm string) (string, bool) {
	sensitive := k.rules.CaseSensitive[realm]
	if sensitive && asciiLower(name) != name {
		return "", false
	}
	if s := k.rules.Strip[realm]; s != "" {
		if len(name) <= len(s) {
			return "", false
		}
		tail := name[len(name)-len(s):]
		if sensitive && tail != s || !sensitive && !strings.EqualFold(tail, s) {
			return "", false
		}
		name = name[:len(name)-len(s)]
	}
	if name == "" || strings.ContainsFunc(name, func(r rune) bool {
		return r < 0x21 || r == 0x7f || r == '@' || r == '/' || r == '\\' || r == ':'
	}) {
		return "", false
	}
	login := asciiLower(name) + k.rules.Suffix[realm]
	if len(login) > 128 {
		return "", false
	}
	return login, true
}

// asciiLower folds ASCII letters as login names are folded (migration
// 0062 of identity: lower() under the C collation).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// challenge says whether GET /cas/login answers 401 with WWW-Authenticate:
// Negotiate: Kerberos on for this browser, no gateway (gateway=true never
// shows a page, let alone a challenge), and an application that a level-1
// login reaches.
func (h *Handler) challenge(r *http.Request, p loginParams, rs *ticketv1.RegisteredService) bool {
	return h.o.Kerberos.offered(r) && !p.gateway && rs.GetMinAuthLevel() < certLevel && !rs.GetCertificateRequired()
}

// kerberosLogin signs in with the Negotiate token of a GET /cas/login, when
// it carries one and Kerberos is offered to the browser (reports false
// otherwise: the page goes on as without it). Refusals show the login form
// with a message, without a new challenge (no 401 loop).
func (h *Handler) kerberosLogin(w http.ResponseWriter, r *http.Request, p loginParams, rs *ticketv1.RegisteredService) bool {
	tok, ok := negotiateToken(r)
	if !ok || !h.o.Kerberos.offered(r) || p.gateway {
		return false
	}
	t := h.texts(r)
	if rs.GetMinAuthLevel() >= certLevel || rs.GetCertificateRequired() {
		// A level-1 login does not reach the application: its page (the
		// certificate, or the password and code).
		h.loginPage(w, r, http.StatusOK, p, rs, "", "", t.KerberosLevel)
		return true
	}
	ip := grpcx.OriginFrom(r.Context()).ClientIP
	kp, reason := h.o.Kerberos.verify(tok, ip)
	ctx, cancel := h.ctx(r)
	defer cancel()
	if reason != "" {
		h.o.Log.Info("CAS page: Windows domain (Kerberos) sign-in refused", zap.String("reason", reason))
		if kp != nil {
			// A principal the KDC vouched for and this page refused (a
			// replay, a realm not accepted, no login name): identity
			// audits it and counts it at the browser's address.
			// (A principal identity cannot take, e.g. over 512 bytes, is
			// refused all the same.)
			_, err := h.o.SSO.KerberosLogin(ctx, &identityv1.KerberosLoginRequest{Principal: kp.principal, Refusal: reason})
			if err != nil && status.Code(err) != codes.InvalidArgument {
				h.fault(w, r, err)
				return true
			}
		}
		msg := t.KerberosFailed
		switch reason {
		case ReasonKerberosRealm:
			msg = t.KerberosRealm
		case ReasonKerberosUnmapped:
			msg = t.KerberosUnknown
		}
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, msg, "")
		return true
	}
	binding, setBinding := h.otpBinding(r)
	res, err := h.o.SSO.KerberosLogin(ctx, &identityv1.KerberosLoginRequest{Login: kp.login, Principal: kp.principal, OtpBinding: binding,
		Authenticator: kp.authenticator})
	if err != nil {
		switch reason := reasonOf(err); {
		case status.Code(err) == codes.InvalidArgument:
			h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.KerberosUnknown, "")
		case reason == "KERBEROS_AUTHENTICATOR_REPLAYED":
			// seen at another edge replica (this one's cache missed it)
			h.o.Log.Info("CAS page: Windows domain (Kerberos) sign-in refused", zap.String("reason", reason))
			h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.KerberosFailed, "")
		case reason == "KERBEROS_CHECK_UNAVAILABLE":
			// the form, not an error page: the password still signs in
			h.o.Log.Warn("CAS page: Windows domain (Kerberos) sign-in not checked against replays; the form offered", zap.String("reason", reason))
			h.loginPage(w, r, http.StatusServiceUnavailable, p, rs, t.KerberosUnavailable, "")
		default:
			h.fault(w, r, err)
		}
		return true
	}
	switch res.GetReason() {
	case identityv1.Reason_REASON_OK:
	case identityv1.Reason_REASON_OTP_REQUIRED:
		// A person with an authenticator app: the ticket was the first
		// factor, the code comes next (review sec27a H3), as after a
		// password or a finger.
		if res.GetOtpToken() == "" {
			h.fault(w, r, errHalfLogin)
			return true
		}
		setBinding(w)
		h.otpPage(w, r, http.StatusOK, p, rs, res.GetOtpToken(), "")
		return true
	case identityv1.Reason_REASON_AUTH_LEVEL_TOO_LOW:
		h.loginPage(w, r, http.StatusForbidden, p, rs, personLevelText(t, res), "")
		return true
	default:
		// The person proved who they are (the KDC checked their password),
		// so their own account's state may be told, as at the certificate
		// login; nothing names the account.
		msg := map[identityv1.Reason]string{
			identityv1.Reason_REASON_ACCOUNT_LOCKED:   t.KerberosLocked,
			identityv1.Reason_REASON_ACCOUNT_DISABLED: t.KerberosDisabled,
			identityv1.Reason_REASON_PASSWORD_ONLY:    t.KerberosPasswordOnly,
		}[res.GetReason()]
		if msg == "" {
			msg = t.KerberosUnknown
		}
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, msg, "")
		return true
	}
	// As the other sign-ins: the same person's session is replaced (renew),
	// another person's is not switched silently.
	h.raiseSession(ctx, w, r, p, rs, &ticketv1.CreateSessionRequest{UserId: res.GetUserId(), Login: res.GetLogin(),
		AuthLevel: 1, OrgId: res.GetOrgId(), AuthMethod: ticketv1.AuthMethod_AUTH_METHOD_KERBEROS,
		PasswordChangedAt: res.GetPasswordChangedAt(), StateChangedAt: res.GetStateChangedAt()}, t.KerberosOtherPerson)
	return true
}
