package cas

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// USB key sign-in: a certificate login by a signed challenge (ADR 0033),
// for browsers behind a proxy that terminates TLS, and for the USB keys
// whose vendor control signs with the key (SM2 ones included). With
// ticket.usb_key the login page offers "Sign in with your USB key"; its
// script
//
//	GET /cas/cert/challenge  ->  200 {"challenge": "...", "expire_time": "..."}
//
// then calls the page's hook, which the vendor's control (its script,
// ticket.usb_key_script) defines:
//
//	window.uiasSignChallenge(challenge) -> {certificate, signature}
//	                                       (or a Promise of it)
//
// certificate: the person's certificate, base64 DER or PEM text;
// signature: base64 of the key's signature over the challenge string's
// UTF-8 bytes (docs/integrators.md). The script posts them to POST
// /cas/login (usbkey=1, with the form's CSRF token, service and the other
// login parameters); identity checks the answer (SSOService.
// CertificateLogin with the challenge) and the page signs the person in as
// the TLS certificate login does (level 2, AUTH_METHOD_CERTIFICATE).

// maxUSBKeyField bounds each field of the USB key's form (identity takes
// certificates of up to 32 KiB).
const maxUSBKeyField = 4 * 32768 / 3

// certChallenge is GET /cas/cert/challenge: a challenge for the USB key
// (JSON, never cached). 404 unless ticket.usb_key.
func (h *Handler) certChallenge(w http.ResponseWriter, r *http.Request) {
	if !h.o.USBKey {
		http.NotFound(w, r)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	res, err := h.o.SSO.IssueCertificateChallenge(ctx, &identityv1.CertificateChallengeRequest{})
	if ae, ok := apierr.FromStatus(err); err != nil && ok && ae.Reason == "LOGIN_THROTTLED" {
		// Too many challenges from the browser's address: identity's
		// login gate at that address, as for the login form (429, with
		// when to try again).
		h.o.Log.Info("USB key challenge throttled", zap.String("reason", ae.Reason))
		body := map[string]string{"error": h.texts(r).Throttled}
		if ra := ae.Meta["retry_after_seconds"]; ra != "" {
			w.Header().Set("Retry-After", ra)
			body["retry_after_seconds"] = ra
		}
		w.WriteHeader(http.StatusTooManyRequests)
		_ = json.NewEncoder(w).Encode(body)
		return
	}
	if err != nil {
		h.o.Log.Warn("USB key challenge not issued", zap.Error(err))
		w.WriteHeader(http.StatusServiceUnavailable)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": h.texts(r).TryLater})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"challenge": res.GetChallenge(),
		"expire_time": res.GetExpireTime().AsTime().UTC().Format("2006-01-02T15:04:05.000Z")})
}

// usbKeyField decodes a base64 field of the USB key's form (standard or
// URL alphabet, padding and white space optional); PEM text (the
// certificate) is taken as it is.
func usbKeyField(v string) ([]byte, bool) {
	if len(v) > maxUSBKeyField || v == "" {
		return nil, false
	}
	if strings.Contains(v, "-----BEGIN") {
		return []byte(v), true
	}
	v = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\n' || r == '\r' || r == '\t' {
			return -1
		}
		return r
	}, v)
	v = strings.TrimRight(v, "=")
	if b, err := base64.RawStdEncoding.DecodeString(v); err == nil {
		return b, true
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	return b, err == nil
}

// usbKeyLoginPost is POST /cas/login with usbkey=1: the USB key's answer
// to a challenge. Refusals say what is wrong (only the holder of the
// key gets past the signature; no answer names the account).
func (h *Handler) usbKeyLoginPost(w http.ResponseWriter, r *http.Request, p loginParams, rs *ticketv1.RegisteredService) {
	t := h.texts(r)
	if !h.o.USBKey {
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, t.USBKeyMissing, "")
		return
	}
	challenge := r.PostFormValue("cert_challenge")
	cert, okc := usbKeyField(r.PostFormValue("cert_certificate"))
	sig, oks := usbKeyField(r.PostFormValue("cert_signature"))
	if challenge == "" || len(challenge) > 1024 || !okc || !oks {
		h.o.Log.Info("USB key sign-in refused", zap.String("reason", "USB_KEY_FORM_INVALID"))
		h.loginPage(w, r, http.StatusBadRequest, p, rs, t.USBKeyMissing, "")
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.SSO.CertificateLogin(ctx, &identityv1.CertificateLoginRequest{Certificate: cert, Challenge: challenge, Signature: sig})
	if err != nil {
		if reasonOf(err) == "BAD_REQUEST" || reasonOf(err) == "CERTIFICATE_INVALID" {
			h.loginPage(w, r, http.StatusBadRequest, p, rs, t.USBKeyMissing, "")
			return
		}
		h.fault(w, r, err)
		return
	}
	if v := res.GetResult(); v != identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_OK {
		msg := map[identityv1.CertificateLoginResult]string{
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_NOT_REGISTERED:     t.CertNotRegistered,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_EXPIRED:            t.CertExpired,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_ACCOUNT_LOCKED:     t.CertLocked,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_ACCOUNT_DISABLED:   t.CertDisabled,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_PASSWORD_ONLY:      t.CertPasswordOnly,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_CHALLENGE_INVALID:  t.USBKeyRetry,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_CHALLENGE_EXPIRED:  t.USBKeyRetry,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_CHALLENGE_REPLAYED: t.USBKeyRetry,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_SIGNATURE_INVALID:  t.USBKeySignature,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_UNTRUSTED:          t.USBKeyUntrusted,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_REVOKED:            t.USBKeyRevoked,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_NOT_VERIFIED:       t.USBKeyMissing,
			identityv1.CertificateLoginResult_CERTIFICATE_LOGIN_RESULT_UNSPECIFIED:        t.USBKeyFailed,
		}[v]
		if msg == "" {
			msg = t.USBKeyFailed
		}
		h.o.Log.Info("USB key sign-in refused", zap.String("reason", strings.TrimPrefix(v.String(), "CERTIFICATE_LOGIN_RESULT_")))
		h.loginPage(w, r, http.StatusUnauthorized, p, rs, msg, "")
		return
	}
	h.raiseSession(ctx, w, r, p, rs, &ticketv1.CreateSessionRequest{UserId: res.GetUserId(), Login: res.GetLogin(),
		AuthLevel: certLevel, OrgId: res.GetOrgId(), AuthMethod: ticketv1.AuthMethod_AUTH_METHOD_CERTIFICATE,
		PasswordChangedAt: res.GetPasswordChangedAt(), StateChangedAt: res.GetStateChangedAt()}, t.CertOtherPerson)
}
