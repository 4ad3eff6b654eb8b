package crypto

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func TestWebhookSignAndVerify(t *testing.T) {
	secret := []byte("whsec-0123456789abcdef")
	body := []byte(`{"delivery":"s1:1","op":"upsert"}`)
	now := time.Unix(1_700_000_000, 0)
	// a fixed vector, so receivers in other languages can check theirs
	// (printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret)
	if got, want := WebhookSignature([]byte("secret"), 1700000000, []byte(`{"a":1}`)),
		"v1=49f24e537407743fa4a0242bb63b94b9a47ee99cbbe071ccd8a22550ae411686"; got != want {
		t.Fatalf("signature %s, want %s", got, want)
	}
	h := http.Header{}
	SignWebhook(h, secret, now, body)
	if err := VerifyWebhook(secret, h, body, now.Add(time.Minute), 0); err != nil {
		t.Fatalf("a valid webhook: %v", err)
	}
	for _, c := range []struct {
		name   string
		secret []byte
		h      func() http.Header
		body   []byte
		now    time.Time
		want   error
	}{
		{"tampered body", secret, h.Clone, []byte(`{"delivery":"s1:1","op":"delete"}`), now, ErrWebhookBadSignature},
		{"another secret", []byte("another secret 0123"), h.Clone, body, now, ErrWebhookBadSignature},
		{"replayed", secret, h.Clone, body, now.Add(6 * time.Minute), ErrWebhookReplayWindow},
		{"from the future", secret, h.Clone, body, now.Add(-6 * time.Minute), ErrWebhookReplayWindow},
		{"no timestamp", secret, func() http.Header { c := h.Clone(); c.Del(WebhookTimestampHeader); return c }, body, now, ErrWebhookNoTimestamp},
		{"malformed", secret, func() http.Header { c := h.Clone(); c.Set(WebhookSignatureHeader, "v1=zz"); return c }, body, now, ErrWebhookMalformed},
		{"timestamp changed", secret, func() http.Header { c := h.Clone(); c.Set(WebhookTimestampHeader, "1700000001"); return c }, body, now,
			ErrWebhookBadSignature},
	} {
		if err := VerifyWebhook(c.secret, c.h(), c.body, c.now, 0); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}
