package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// Headers of a signed UIAS webhook (provisioning deliveries, audit alerts):
// the receiver recomputes the signature over the timestamp and the body
// with the shared secret, compares it in constant time and refuses a
// timestamp outside its replay window (docs/integrators.md).
const (
	WebhookTimestampHeader = "X-Uias-Timestamp" // Unix seconds
	WebhookSignatureHeader = "X-Uias-Signature" // "v1=" + hex HMAC-SHA256(secret, timestamp + "." + body)
	WebhookDeliveryHeader  = "X-Uias-Delivery"  // the same on every retry of one delivery
)

// WebhookSignature is the X-Uias-Signature value of body sent at ts.
func WebhookSignature(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return "v1=" + hex.EncodeToString(m.Sum(nil))
}
