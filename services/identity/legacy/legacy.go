// Package legacy serves Authenticate to the older Java systems in the two
// forms they call it: Hessian 2.0 (as HessianProxyFactory sends it) and a
// SOAP 1.1 WebService, both authenticate(appType, appCode, appUserid,
// fingerFeature, password, authType, extendinfo) -> int. It runs at the
// edge (identity's module.Pages under /legacy/) and makes the same
// AuthService.Authenticate call as every other client, so the caller checks
// (App_ID + secret, IP allow-list, rate limit, suspension), the audit
// records and the result codes are those of Authenticate.
//
// Application credentials come from the X-Uias-App-Id / X-Uias-App-Secret
// headers or from HTTP Basic authentication (user App_ID, password
// App_Secret: HessianProxyFactory.setUser/setPassword, a SOAP client's
// basic auth). Without them the caller is the application the call's
// appType and appCode name, admitted by its address when it opted in
// (legacy_ip_only: see credentials). Malformed input answers -5 (and is audited through
// identity like a malformed Authenticate: see refuse); a failure of the
// service -6; nothing panics.
package legacy

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/grpcx"
	"github.com/uias/uias/pkg/hessian"
	"github.com/uias/uias/pkg/module"
	"github.com/uias/uias/pkg/soap"
	identityv1 "github.com/uias/uias/proto/gen/uias/identity/v1"
	"github.com/uias/uias/services/identity"
)

// Prefix is where the edge mounts the handler.
const Prefix = "/legacy/"

// Paths.
const (
	HessianPath = Prefix + "hessian/authenticate"
	SOAPPath    = Prefix + "soap/authenticate"
)

// Result codes of the legacy interface for what never reaches Authenticate.
const (
	CodeBadRequest = -5
	CodeFault      = -6
)

// Handler serves both transports.
type Handler struct {
	auth identityv1.AuthServiceClient
	log  *zap.Logger
}

// New makes the handler; conn reaches the identity component.
func New(conn grpc.ClientConnInterface, log *zap.Logger) *Handler {
	return &Handler{auth: identityv1.NewAuthServiceClient(conn), log: log}
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			h.log.Error("legacy transport panicked", zap.Any("panic", v), zap.String("path", r.URL.Path))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}
	}()
	switch r.URL.Path {
	case HessianPath:
		h.hessian(w, r)
	case SOAPPath:
		h.soap(w, r)
	default:
		http.NotFound(w, r)
	}
}

func (h *Handler) hessian(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "Hessian calls are POSTed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/x-hessian")
	body, err := io.ReadAll(io.LimitReader(r.Body, hessian.MaxCall+1))
	if err != nil {
		h.refuse(r, nil, transportHessian, identity.LegacyMalformedCall, -1)
		_, _ = w.Write(hessian.EncodeReply(CodeBadRequest))
		return
	}
	c, err := hessian.DecodeCall(body)
	if err != nil {
		off := -1
		var he *hessian.Error
		if errors.As(err, &he) {
			off = he.Offset
		}
		h.refuse(r, nil, transportHessian, identity.LegacyMalformedCall, off)
		_, _ = w.Write(hessian.EncodeReply(CodeBadRequest))
		return
	}
	args, _, err := c.Strings()
	if c.Method != "authenticate" || len(args) != 7 || err != nil {
		h.refuse(r, nil, transportHessian, identity.LegacyMalformedMethod, -1)
		_, _ = w.Write(hessian.EncodeFault("NoSuchMethodException",
			"the service offers authenticate(String x7) -> int only"))
		return
	}
	_, _ = w.Write(hessian.EncodeReply(h.call(r, transportHessian, [7]string(args))))
}

func (h *Handler) soap(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	if r.Method == http.MethodGet && strings.EqualFold(r.URL.RawQuery, "wsdl") {
		// https also behind a trusted proxy that terminates TLS (as HSTS).
		scheme := "http"
		if module.RequestHTTPS(r) {
			scheme = "https"
		}
		_, _ = w.Write(soap.WSDL(scheme + "://" + r.Host + SOAPPath))
		return
	}
	if r.Method == http.MethodGet {
		http.Error(w, "the WSDL is at ?wsdl; calls are POSTs of a SOAP 1.1 envelope", http.StatusBadRequest)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "POST a SOAP 1.1 envelope, or GET ?wsdl", http.StatusMethodNotAllowed)
		return
	}
	args, err := soap.DecodeRequest(r.Body)
	if err != nil {
		h.refuse(r, nil, transportSOAP, identity.LegacyMalformedEnvelope, -1)
		w.WriteHeader(http.StatusInternalServerError) // SOAP 1.1: faults travel with 500
		_, _ = w.Write(soap.EncodeFault("soap:Client", err.Error()))
		return
	}
	_, _ = w.Write(soap.EncodeResponse(h.call(r, transportSOAP, args)))
}

const (
	transportHessian = "hessian"
	transportSOAP    = "soap"
)

// refuse reports a request that cannot become an Authenticate call to
// identity (see identity.MetadataLegacyMalformed): an Authenticate call
// with the caller's credentials, no fields and the mark, which passes the
// caller checks and leaves the audit record of a malformed Authenticate
// with the transport and what was wrong (never the request's content).
// Its answer does not matter: the caller gets -5 or a fault whatever it is.
// a is the call's arguments when they were read (nil: not).
func (h *Handler) refuse(r *http.Request, a *[7]string, transport, kind string, offset int) {
	ctx := metadata.AppendToOutgoingContext(credentials(r, a), identity.MetadataLegacyMalformed,
		identity.LegacyMalformed(transport, kind, offset))
	if _, err := h.auth.Authenticate(ctx, &identityv1.AuthenticateRequest{}); err != nil && codeOf(err) == CodeFault {
		h.log.Warn("malformed legacy request not audited", zap.String("transport", transport), zap.String("kind", kind), zap.Error(err))
	}
}

// call makes the Authenticate call and returns its result code.
func (h *Handler) call(r *http.Request, transport string, a [7]string) int32 {
	req := &identityv1.AuthenticateRequest{AppType: a[0], AppCode: a[1], AppUserId: a[2], Password: a[4],
		ExtendInfoLegacy: a[6]}
	if a[3] != "" {
		fp, err := base64.StdEncoding.DecodeString(strings.TrimSpace(a[3]))
		if err != nil {
			h.refuse(r, &a, transport, identity.LegacyMalformedFingerFeature, -1)
			return CodeBadRequest
		}
		req.FingerprintFeature = fp
	}
	at, err := strconv.Atoi(strings.TrimSpace(a[5]))
	if err != nil || at < 1 || at > 3 {
		h.refuse(r, &a, transport, identity.LegacyMalformedAuthType, -1)
		return CodeBadRequest
	}
	req.AuthType = identityv1.AuthType(at)
	ctx := credentials(r, &a)
	res, err := h.auth.Authenticate(ctx, req)
	if err != nil {
		return codeOf(err)
	}
	return res.GetResultCode()
}

// credentials puts the caller's application credentials into the outgoing
// metadata of the request's context (which carries its origin). A caller
// that presents none is named by the call's app_type and app_code (a, when
// read: identity.MetadataLegacyApp), as the design's interface names it:
// identity admits it by its address if the application opted in
// (legacy_ip_only; docs/adr/0035-legacy-ip-only.md).
func credentials(r *http.Request, a *[7]string) context.Context {
	id, secret := r.Header.Get("X-Uias-App-Id"), r.Header.Get("X-Uias-App-Secret")
	if id == "" {
		if u, p, ok := r.BasicAuth(); ok {
			id, secret = u, p
		}
	}
	if id == "" && secret == "" && a != nil {
		return metadata.AppendToOutgoingContext(r.Context(), identity.MetadataLegacyApp, identity.LegacyApp(a[0], a[1]))
	}
	return metadata.AppendToOutgoingContext(r.Context(), grpcx.MetadataAppID, id, grpcx.MetadataAppSecret, secret)
}

// codeOf maps an error of Authenticate to the legacy code: the one its
// ErrorInfo names, else -5 for a refused caller or request and -6 for
// anything else.
func codeOf(err error) int32 {
	if n := apierr.LegacyCode(err); n != 0 {
		return int32(n)
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		if n := apierr.LegacyCode(ae); n != 0 {
			return int32(n)
		}
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.Unauthenticated, codes.PermissionDenied:
		return CodeBadRequest
	}
	return CodeFault
}
