package identity

import (
	"context"
	"regexp"
	"strconv"
	"strings"
)

// MetadataLegacyMalformed marks an Authenticate call the legacy transports
// (Hessian, SOAP; package legacy) make for a request that could not become
// an Authenticate call: a call or envelope that does not decode, another
// method, a finger feature that is not base64, an auth type that is not a
// number from 1 to 3. The call carries the caller's credentials and no
// request fields, so that it passes the caller checks (App_ID + secret,
// IP allow-list, rate limit, suspension) and is refused and audited like
// any malformed Authenticate, with what was wrong as the record's detail.
//
// Its value is LegacyMalformed's: the transport, a kind from a closed
// list and, for Hessian, the byte offset; never any text of the request,
// so the audit record holds nothing the caller sent.
const MetadataLegacyMalformed = "x-uias-legacy-malformed"

// Kinds of malformed legacy requests.
const (
	LegacyMalformedCall          = "call"           // the Hessian call does not decode
	LegacyMalformedEnvelope      = "envelope"       // the SOAP envelope does not decode
	LegacyMalformedMethod        = "method"         // not authenticate(String x7)
	LegacyMalformedFingerFeature = "finger_feature" // fingerFeature is not base64
	LegacyMalformedAuthType      = "auth_type"      // authType is not 1, 2 or 3
)

var legacyMalformedRE = regexp.MustCompile(`^(hessian|soap);(call|envelope|method|finger_feature|auth_type)(;[0-9]{1,9})?$`)

// LegacyMalformed is the MetadataLegacyMalformed value for transport
// ("hessian" or "soap"), kind and the byte offset where the request went
// wrong (negative: none).
func LegacyMalformed(transport, kind string, offset int) string {
	v := transport + ";" + kind
	if offset >= 0 {
		v += ";" + strconv.Itoa(offset)
	}
	return v
}

// legacyMalformedDetail is the audit detail of a MetadataLegacyMalformed
// value (nil unless it is one LegacyMalformed makes).
func legacyMalformedDetail(v string) map[string]string {
	if !legacyMalformedRE.MatchString(v) {
		return nil
	}
	parts := strings.Split(v, ";")
	d := map[string]string{"transport": parts[0], "malformed": parts[1]}
	if len(parts) == 3 {
		d["at_byte"] = parts[2]
	}
	return d
}

// AuditMalformedLegacy records a legacy request marked with
// MetadataLegacyMalformed value v: a failed login, reason BAD_REQUEST, as
// for any malformed Authenticate, with the transport and what was wrong.
// It reports whether v was such a mark (else nothing is recorded).
func (s *Service) AuditMalformedLegacy(ctx context.Context, v string) bool {
	d := legacyMalformedDetail(v)
	if d == nil {
		return false
	}
	s.appendAudit(ctx, s.audit(ctx, "authenticate", "", "", "failure", "BAD_REQUEST", s.now(), d))
	return true
}
