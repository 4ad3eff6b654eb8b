package cas

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/grpcx"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
	"github.com/uias/uias/services/ticket"
)

// casCode is the CAS name of a wire code.
func casCode(c ticketv1.CasCode) string {
	if c == ticketv1.CasCode_CAS_CODE_UNSPECIFIED {
		return "INTERNAL_ERROR"
	}
	return strings.TrimPrefix(c.String(), "CAS_CODE_")
}

// validate1 is CAS 1.0 /validate: "yes\n<user>\n" or "no\n\n".
func (h *Handler) validate1(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.Tickets.ValidateServiceTicket(ctx, &ticketv1.ValidateServiceTicketRequest{Ticket: q.Get("ticket"),
		Service: q.Get("service"), Renew: truthy(q.Get("renew"))})
	if err != nil || !res.GetValid() {
		if err != nil {
			h.o.Log.Warn("CAS validate: the ticket component failed", zap.Error(err))
		}
		_, _ = w.Write([]byte("no\n\n"))
		return
	}
	_, _ = w.Write([]byte("yes\n" + res.GetLogin() + "\n"))
}

// validation is what serviceValidate answers, in XML or JSON.
type validation struct {
	ok          bool
	code, desc  string
	user        string
	pgtIOU      string
	proxies     []string
	attributes  [][2]string // name, value (repeated names for multiple values)
	proxyTicket string      // for /proxy
	proxy       bool        // a /proxy answer
}

// validator serves serviceValidate, proxyValidate and their p3 forms.
func (h *Handler) validator(allowProxy, attributes bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q, qerr := url.ParseQuery(r.URL.RawQuery)
		jsonOut, ok := formatOf(q)
		if !ok {
			h.answer(w, false, badFormat(false))
			return
		}
		if qerr != nil {
			h.answer(w, jsonOut, badQuery(false))
			return
		}
		service, pgtURL := q.Get("service"), q.Get("pgtUrl")
		req := &ticketv1.ValidateServiceTicketRequest{Ticket: q.Get("ticket"), Service: service, Renew: truthy(q.Get("renew")),
			AllowProxy: allowProxy, IssuePgt: pgtURL != "", PgtUrl: pgtURL, Attributes: attributes}
		ctx, cancel := h.ctx(r)
		defer cancel()
		res, err := h.o.Tickets.ValidateServiceTicket(ctx, req)
		if err != nil {
			h.o.Log.Warn("CAS validation: the ticket component failed", zap.Error(err))
			code, desc := "INTERNAL_ERROR", "the ticket service is unavailable, retry later"
			if reasonOf(err) == "BAD_REQUEST" {
				code, desc = "INVALID_REQUEST", "the request's parameters are not valid"
			}
			h.answer(w, jsonOut, validation{code: code, desc: desc})
			return
		}
		if !res.GetValid() {
			h.answer(w, jsonOut, validation{code: casCode(res.GetCode()), desc: res.GetMessage()})
			return
		}
		v := validation{ok: true, user: res.GetLogin(), proxies: res.GetProxies()}
		if res.GetPgt() != "" {
			if h.deliverPGT(ctx, pgtURL, res.GetPgt(), res.GetPgtIou()) {
				v.pgtIOU = res.GetPgtIou()
			} else {
				h.revokePGT(ctx, res.GetPgt())
			}
		}
		if attributes {
			v.attributes = h.attributes(ctx, res)
		}
		h.answer(w, jsonOut, v)
	}
}

// attributes are the CAS 3.0 attributes of a validated ticket.
func (h *Handler) attributes(ctx context.Context, res *ticketv1.ValidateServiceTicketResponse) [][2]string {
	// The CAS 3.0 schema (3.0.3) wants these three first, once each, in
	// this order; any other attribute follows.
	at := time.Now().UTC()
	if t := res.GetAuthenticatedAt(); t != nil {
		at = t.AsTime().UTC()
	}
	out := [][2]string{
		{"authenticationDate", at.Format(time.RFC3339)},
		{"longTermAuthenticationRequestTokenUsed", "false"},
		{"isFromNewLogin", strconv.FormatBool(res.GetFromNewLogin())},
		{"userId", res.GetUserId()},
		{"authLevel", strconv.Itoa(int(res.GetAuthLevel()))},
	}
	// The validation answers them (from the ticket component's cache);
	// else (identity did not answer it, or an older ticket component) they
	// are asked here, as part of the validation (whose call has the
	// access record).
	// The person's roles and permissions in the application, when its
	// service releases them (the ticket component asked authz: a
	// validation it could not answer failed).
	out = appendAuthorization(out, res.GetAuthorization())
	a := res.GetAttributes()
	if a == nil {
		pa, err := h.o.SSO.PersonAttributes(grpcx.PartOf(ctx), &identityv1.PersonAttributesRequest{UserId: res.GetUserId(), AppId: res.GetAppId()})
		if err != nil {
			h.o.Log.Warn("CAS attributes: identity failed; answering without the person's attributes", zap.Error(err))
			return releasePolicy(res).Apply(out)
		}
		a = &ticketv1.PersonAttributes{Login: pa.GetLogin(), DisplayName: pa.GetDisplayName(), OrgId: pa.GetOrgId(),
			OrgName: pa.GetOrgName(), AppAccountId: pa.GetAppAccountId(), Groups: pa.GetGroups(),
			UserType: ticket.UserTypeName(int32(pa.GetUserType()))}
	}
	out = append(out, [2]string{"login", a.GetLogin()}, [2]string{"displayName", a.GetDisplayName()},
		[2]string{"orgId", a.GetOrgId()}, [2]string{"orgName", a.GetOrgName()})
	if a.GetAppAccountId() != "" {
		out = append(out, [2]string{"appAccountId", a.GetAppAccountId()})
	}
	// The account's type, person or unit (单位, ADR 0039): none when
	// identity did not answer it.
	if a.GetUserType() != "" {
		out = append(out, [2]string{"userType", a.GetUserType()})
	}
	// The person's groups (their codes), under both names clients use.
	for _, g := range a.GetGroups() {
		out = append(out, [2]string{"groups", g})
	}
	for _, g := range a.GetGroups() {
		out = append(out, [2]string{"memberOf", g})
	}
	return releasePolicy(res).Apply(out)
}

// releasePolicy is the attribute release policy a validation answered
// (nil: none, every attribute in clear).
func releasePolicy(res *ticketv1.ValidateServiceTicketResponse) *ticket.AttributePolicy {
	r := res.GetRelease()
	if r == nil {
		return nil
	}
	return &ticket.AttributePolicy{Release: r.GetAttributes(), Masked: r.GetMasked()}
}

// appendAuthorization appends the released roles and permissions as the
// multi-valued attributes "roles" and "permissions" (none for a person who
// holds none: CAS has no empty attribute).
func appendAuthorization(out [][2]string, a *ticketv1.ReleasedAuthorization) [][2]string {
	for _, r := range a.GetRoles() {
		out = append(out, [2]string{"roles", r})
	}
	for _, p := range a.GetPermissions() {
		out = append(out, [2]string{"permissions", p})
	}
	return out
}

// deliverPGT calls the pgtUrl (HTTPS, certificate verified) with the PGT
// and its IOU, as CAS 2.0 asks; false when it did not answer 200.
func (h *Handler) deliverPGT(ctx context.Context, pgtURL, pgt, iou string) bool {
	u, err := url.Parse(pgtURL)
	if err != nil || u.Scheme != "https" {
		return false
	}
	q := u.Query()
	q.Set("pgtId", pgt)
	q.Set("pgtIou", iou)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return false
	}
	resp, err := h.o.Client.Do(req)
	if err != nil {
		// The request's URL carries the PGT and its IOU: the host and the
		// cause are logged, never the URL.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		h.o.Log.Warn("pgtUrl callback failed: the validation succeeds without a proxy-granting ticket "+
			"(the host unreachable, or its certificate not trusted: ticket.outbound_ca_file on the process serving /cas/)",
			zap.String("host", u.Host), zap.Error(err))
		return false
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.o.Log.Warn("pgtUrl callback answered other than 200: the validation succeeds without a proxy-granting ticket",
			zap.String("host", u.Host), zap.Int("status", resp.StatusCode))
		return false
	}
	return true
}

// revokePGT ends a PGT the pgtUrl did not take (CAS 3.0 §2.5.4: none is
// issued then), in a time of its own: the callback may have used up the
// request's.
func (h *Handler) revokePGT(ctx context.Context, pgt string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.o.CallTimeout)
	defer cancel()
	if _, err := h.o.Tickets.RevokeProxyGrantingTicket(grpcx.PartOf(ctx), &ticketv1.RevokeProxyGrantingTicketRequest{Pgt: pgt}); err != nil {
		// It ends with its lifetime (ticket.pgt_ttl) or its session.
		h.o.Log.Warn("CAS validation: a proxy-granting ticket the callback did not take could not be revoked", zap.Error(err))
	}
}

// proxy is /proxy: a PT for targetService from a PGT.
func (h *Handler) proxy(w http.ResponseWriter, r *http.Request) {
	q, qerr := url.ParseQuery(r.URL.RawQuery)
	jsonOut, ok := formatOf(q)
	if !ok {
		h.answer(w, false, badFormat(true))
		return
	}
	if qerr != nil {
		h.answer(w, jsonOut, badQuery(true))
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.Tickets.IssueProxyTicket(ctx, &ticketv1.IssueProxyTicketRequest{Pgt: q.Get("pgt"), TargetService: q.Get("targetService")})
	switch {
	case err != nil && reasonOf(err) == "BAD_REQUEST":
		h.answer(w, jsonOut, validation{proxy: true, code: "INVALID_REQUEST", desc: "pgt and targetService are required"})
	case err != nil:
		h.o.Log.Warn("CAS proxy: the ticket component failed", zap.Error(err))
		h.answer(w, jsonOut, validation{proxy: true, code: "INTERNAL_ERROR", desc: "the ticket service is unavailable, retry later"})
	case res.GetTicket() == "":
		h.answer(w, jsonOut, validation{proxy: true, code: casCode(res.GetCode()), desc: res.GetMessage()})
	default:
		h.answer(w, jsonOut, validation{proxy: true, ok: true, proxyTicket: res.GetTicket()})
	}
}

// formatOf is the answer's format of a validation or proxy request: JSON
// for format=JSON, XML for XML or none (any case); ok false for another
// value, which CAS 3.0 §2.5.1 answers with an error (the ticket is not
// used up).
func formatOf(q url.Values) (jsonOut, ok bool) {
	switch f := q.Get("format"); {
	case strings.EqualFold(f, "JSON"):
		return true, true
	case f == "" || strings.EqualFold(f, "XML"):
		return false, true
	}
	return false, false
}

// badFormat is the answer to an unsupported format.
func badFormat(proxy bool) validation {
	return validation{proxy: proxy, code: "INVALID_REQUEST", desc: "format must be XML or JSON"}
}

// badQuery is the answer to a query string that does not decode (a '%'
// not followed by two hexadecimal digits, e.g. a service URL put in
// unencoded): the parameters it held cannot be read, which "ticket and
// service are required" misnamed; nothing is looked up (the ticket is not
// used up).
func badQuery(proxy bool) validation {
	return validation{proxy: proxy, code: "INVALID_REQUEST",
		desc: "the query string is not valid URL encoding: percent-encode each parameter's value (the service URL above all)"}
}

// answer writes a serviceResponse in XML (the CAS 3.0 schema) or JSON.
func (h *Handler) answer(w http.ResponseWriter, jsonOut bool, v validation) {
	w.Header().Set("Cache-Control", "no-store")
	if jsonOut {
		w.Header().Set("Content-Type", "application/json;charset=UTF-8")
		_ = json.NewEncoder(w).Encode(map[string]any{"serviceResponse": jsonBody(v)})
		return
	}
	w.Header().Set("Content-Type", "application/xml;charset=UTF-8")
	bp := xmlBufs.Get().(*[]byte)
	b := appendXML((*bp)[:0], v)
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 { // a huge answer's buffer is not kept
		*bp = b
		xmlBufs.Put(bp)
	}
}

// xmlBufs are the buffers XML answers are written into (every validation
// at the edge writes one).
var xmlBufs = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// appendXML appends the serviceResponse of v (the CAS 3.0 schema) to b.
func appendXML(b []byte, v validation) []byte {
	b = append(b, `<cas:serviceResponse xmlns:cas="http://www.yale.edu/tp/cas">`+"\n"...)
	switch {
	case v.proxy && v.ok:
		b = append(b, "  <cas:proxySuccess>\n    <cas:proxyTicket>"...)
		b = appendEsc(b, v.proxyTicket)
		b = append(b, "</cas:proxyTicket>\n  </cas:proxySuccess>\n"...)
	case v.proxy:
		b = appendEsc(append(b, `  <cas:proxyFailure code="`...), v.code)
		b = appendEsc(append(b, `">`...), v.desc)
		b = append(b, "</cas:proxyFailure>\n"...)
	case v.ok:
		b = appendEsc(append(b, "  <cas:authenticationSuccess>\n    <cas:user>"...), v.user)
		b = append(b, "</cas:user>\n"...)
		if len(v.attributes) > 0 {
			b = append(b, "    <cas:attributes>\n"...)
			for _, a := range v.attributes {
				b = append(append(append(b, "      <cas:"...), a[0]...), '>')
				b = appendEsc(b, a[1])
				b = append(append(append(b, "</cas:"...), a[0]...), ">\n"...)
			}
			b = append(b, "    </cas:attributes>\n"...)
		}
		if v.pgtIOU != "" {
			b = appendEsc(append(b, "    <cas:proxyGrantingTicket>"...), v.pgtIOU)
			b = append(b, "</cas:proxyGrantingTicket>\n"...)
		}
		if len(v.proxies) > 0 {
			b = append(b, "    <cas:proxies>\n"...)
			for _, p := range v.proxies {
				b = appendEsc(append(b, "      <cas:proxy>"...), p)
				b = append(b, "</cas:proxy>\n"...)
			}
			b = append(b, "    </cas:proxies>\n"...)
		}
		b = append(b, "  </cas:authenticationSuccess>\n"...)
	default:
		b = appendEsc(append(b, `  <cas:authenticationFailure code="`...), v.code)
		b = appendEsc(append(b, `">`...), v.desc)
		b = append(b, "</cas:authenticationFailure>\n"...)
	}
	return append(b, "</cas:serviceResponse>\n"...)
}

// appendEsc appends s escaped as esc does.
func appendEsc(b []byte, s string) []byte { return append(b, esc(s)...) }

// esc escapes s for XML text or an attribute value (as xml.EscapeText);
// printable ASCII with nothing to escape, the usual case, is s itself.
func esc(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '<' || c == '>' || c == '&' || c == '\'' || c == '"' {
			var b strings.Builder
			_ = xml.EscapeText(&b, []byte(s))
			return b.String()
		}
	}
	return s
}

func jsonBody(v validation) map[string]any {
	switch {
	case v.proxy && v.ok:
		return map[string]any{"proxySuccess": map[string]any{"proxyTicket": v.proxyTicket}}
	case v.proxy:
		return map[string]any{"proxyFailure": map[string]any{"code": v.code, "description": v.desc}}
	case v.ok:
		s := map[string]any{"user": v.user}
		if len(v.attributes) > 0 {
			attrs := map[string][]string{}
			for _, a := range v.attributes {
				attrs[a[0]] = append(attrs[a[0]], a[1])
			}
			s["attributes"] = attrs
		}
		if v.pgtIOU != "" {
			s["proxyGrantingTicket"] = v.pgtIOU
		}
		if len(v.proxies) > 0 {
			s["proxies"] = v.proxies
		}
		return map[string]any{"authenticationSuccess": s}
	}
	return map[string]any{"authenticationFailure": map[string]any{"code": v.code, "description": v.desc}}
}
