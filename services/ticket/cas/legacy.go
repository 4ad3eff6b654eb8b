package cas

import (
	"mime"
	"net/http"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	ticketv1 "github.com/uias/uias/proto/gen/uias/ticket/v1"
)

// The legacy ssoAuthService interface (platform side), served at
// <prefix>ssoAuthService (GET or POST, form or query parameters):
//
//	verb=validateServiceTicket&st=<ST>
//
// answers XML:
//
//	<?xml version="1.0" encoding="UTF-8"?>
//	<ssoAuthService verb="validateServiceTicket">
//	  <result>RPC_OK</result>
//	  <message></message>
//	  <username>zhangsan</username>
//	  <password></password>
//	  <loggedIn>true</loggedIn>
//	</ssoAuthService>
//
// The calling application is checked by its address (its IP allow-list) and
// by its App_ID and secret where it presents them (headers X-Uias-App-Id
// and X-Uias-App-Secret, HTTP Basic, or POST fields appId and appSecret;
// never the query string) or its service requires them.

// maxTicketLen is the longest ticket value (ticket.MaxTicketLen).
const maxTicketLen = 256

// legacyAnswer is one answer of the legacy interface.
type legacyAnswer struct {
	verb, result, message, username, password string
	loggedIn                                  bool
}

// legacyStatus is the HTTP status of a result: 200 for RPC_OK and
// refused tickets (the answer is in the XML), 400 for a malformed call,
// 403 for a caller that is not allowed, 503 when UIAS cannot answer.
func legacyStatus(result string) int {
	switch result {
	case "RPC_INVALID_REQUEST", "RPC_UNKNOWN_VERB":
		return http.StatusBadRequest
	case "RPC_CALLER_NOT_ALLOWED":
		return http.StatusForbidden
	case "RPC_INTERNAL_ERROR":
		return http.StatusServiceUnavailable
	}
	return http.StatusOK
}

func writeLegacy(w http.ResponseWriter, a legacyAnswer) {
	w.Header().Set("Content-Type", "application/xml;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(legacyStatus(a.result))
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<ssoAuthService verb="` + esc(a.verb) + `">` + "\n")
	b.WriteString("  <result>" + esc(a.result) + "</result>\n")
	b.WriteString("  <message>" + esc(a.message) + "</message>\n")
	b.WriteString("  <username>" + esc(a.username) + "</username>\n")
	b.WriteString("  <password>" + esc(a.password) + "</password>\n")
	b.WriteString("  <loggedIn>" + map[bool]string{true: "true", false: "false"}[a.loggedIn] + "</loggedIn>\n")
	b.WriteString("</ssoAuthService>\n")
	_, _ = w.Write([]byte(b.String()))
}

// ssoAuthService serves the legacy interface.
func (h *Handler) ssoAuthService(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeLegacy(w, legacyAnswer{result: "RPC_INVALID_REQUEST", message: "the request could not be read"})
		return
	}
	verb := strings.TrimSpace(r.Form.Get("verb"))
	a := legacyAnswer{verb: verb}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); r.Method == http.MethodPost && strings.HasPrefix(mt, "multipart/") {
		a.result, a.message = "RPC_INVALID_REQUEST", "a multipart body is not read: send the parameters in the query string or as application/x-www-form-urlencoded"
		writeLegacy(w, a)
		return
	}
	if q := r.URL.Query(); q.Has("appSecret") || q.Has("appId") {
		// A secret in the URL ends up in logs: refused before the ticket
		// is looked at (it stays unused).
		a.result, a.message = "RPC_INVALID_REQUEST", "appId and appSecret are not read from the query string: send them in the "+
			"X-Uias-App-Id and X-Uias-App-Secret headers or in a POST body"
		writeLegacy(w, a)
		return
	}
	switch verb {
	case "validateServiceTicket":
	case "":
		a.result, a.message = "RPC_INVALID_REQUEST", "the verb parameter is required"
		writeLegacy(w, a)
		return
	default:
		a.result, a.message = "RPC_UNKNOWN_VERB", "UIAS answers verb=validateServiceTicket only"
		writeLegacy(w, a)
		return
	}
	st := strings.TrimSpace(r.Form.Get("st"))
	if st == "" {
		a.result, a.message = "RPC_INVALID_REQUEST", "the st parameter is required"
		writeLegacy(w, a)
		return
	}
	appID, secret := r.Header.Get("X-Uias-App-Id"), r.Header.Get("X-Uias-App-Secret")
	if appID == "" {
		// HTTP Basic (user = App_ID, password = App_Secret), as the
		// Hessian and SOAP transports of the same edge take it: an
		// application sending it was answered about the IP allow-list.
		if u, pw, ok := r.BasicAuth(); ok {
			appID, secret = u, pw
		}
	}
	if r.Method == http.MethodPost {
		if appID == "" {
			appID = r.PostForm.Get("appId")
		}
		if secret == "" {
			secret = r.PostForm.Get("appSecret")
		}
	}
	// A ticket has at most 256 characters (maxTicketLen): a longer st is
	// a malformed call, as docs/integrators.md says, not a ticket to look
	// up.
	if len(st) > maxTicketLen || len(appID) > 128 || len(secret) > 256 {
		a.result, a.message = "RPC_INVALID_REQUEST", "a parameter is too long"
		writeLegacy(w, a)
		return
	}
	ctx, cancel := h.ctx(r)
	defer cancel()
	res, err := h.o.Tickets.ValidateLegacyTicket(ctx, &ticketv1.ValidateLegacyTicketRequest{Ticket: st, AppId: appID, AppSecret: secret})
	if err != nil {
		if status.Code(err) == codes.InvalidArgument {
			a.result, a.message = "RPC_INVALID_REQUEST", "a parameter is not valid"
		} else {
			h.o.Log.Warn("ssoAuthService: the ticket component failed", zap.Error(err))
			a.result, a.message = "RPC_INTERNAL_ERROR", "the single sign-on service is unavailable, retry later"
		}
		writeLegacy(w, a)
		return
	}
	a.result, a.message = res.GetResult(), res.GetMessage()
	a.username, a.password, a.loggedIn = res.GetAccount(), res.GetPassword(), res.GetLoggedIn()
	writeLegacy(w, a)
}

// legacyLogin is where the browser goes for a legacy service: the
// application's ssoAuthService?verb=ssoLogin&st=<ST>.
func legacyLogin(service, st string) string {
	return withParams(dropParams(service, "verb", "st"), "verb=ssoLogin&st="+st)
}
