package crypto

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
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

// WebhookReplayWindow is how far a webhook's timestamp may be from the
// receiver's clock (older requests are replays).
const WebhookReplayWindow = 5 * time.Minute

// Refusals of VerifyWebhook (the words of the documented snippet).
var (
	ErrWebhookNoTimestamp  = errors.New("no timestamp")
	ErrWebhookReplayWindow = errors.New("timestamp outside the replay window")
	ErrWebhookMalformed    = errors.New("malformed signature")
	ErrWebhookBadSignature = errors.New("bad signature")
)

func webhookMAC(secret []byte, ts int64, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// WebhookSignature is the X-Uias-Signature value of body sent at ts.
func WebhookSignature(secret []byte, ts int64, body []byte) string {
	return "v1=" + hex.EncodeToString(webhookMAC(secret, ts, body))
}

// SignWebhook sets the timestamp (now) and signature headers of a webhook
// request whose body is body.
func SignWebhook(h http.Header, secret []byte, now time.Time, body []byte) {
	ts := now.Unix()
	h.Set(WebhookTimestampHeader, strconv.FormatInt(ts, 10))
	h.Set(WebhookSignatureHeader, WebhookSignature(secret, ts, body))
}

// VerifyWebhook checks a received webhook as docs/integrators.md tells
// receivers to: the signature over timestamp + "." + body with secret
// (compared in constant time), and a timestamp within window of now (0:
// WebhookReplayWindow). Its errors are the Err* refusals above.
func VerifyWebhook(secret []byte, h http.Header, body []byte, now time.Time, window time.Duration) error {
	if window <= 0 {
		window = WebhookReplayWindow
	}
	ts, err := strconv.ParseInt(h.Get(WebhookTimestampHeader), 10, 64)
	if err != nil {
		return ErrWebhookNoTimestamp
	}
	if d := now.Sub(time.Unix(ts, 0)); d > window || d < -window {
		return ErrWebhookReplayWindow
	}
	got, err := hex.DecodeString(strings.TrimPrefix(h.Get(WebhookSignatureHeader), "v1="))
	if err != nil {
		return ErrWebhookMalformed
	}
	if !hmac.Equal(got, webhookMAC(secret, ts, body)) {
		return ErrWebhookBadSignature
	}
	return nil
}
