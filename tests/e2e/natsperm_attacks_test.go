package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// natsAttack is an operation a component's NATS user must be refused:
// what it is, the subject the server reports as refused, and the call.
type natsAttack struct {
	what, subject string
	run           func(ctx context.Context) error
}

// wantRefused runs each attack (2 s each) with the credentials of who and
// checks that it fails and that the server reported the refused subject.
func wantRefused(t *testing.T, ctx context.Context, who string, viol *violations, attacks []natsAttack) {
	t.Helper()
	for _, a := range attacks {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		err := a.run(actx)
		cancel()
		if err == nil {
			t.Errorf("%s with the %s credentials succeeded", a.what, who)
			continue
		}
		eventually(t, "the server to report the refused "+a.what, func() bool { return viol.has(a.subject) })
	}
}

// streamAttacks are what no component may do to stream (whose
// configuration is cfg): purge it, delete one of its messages, shorten
// its retention.
func streamAttacks(js jetstream.JetStream, cfg jetstream.StreamConfig) []natsAttack {
	stream := cfg.Name
	// raw API requests: a user that may not even read the stream's
	// information is refused the operation itself
	request := func(ctx context.Context, subject, body string) error {
		_, err := js.Conn().RequestWithContext(ctx, subject, []byte(body))
		return err
	}
	return []natsAttack{
		{"purge " + stream, "$JS.API.STREAM.PURGE." + stream, func(ctx context.Context) error {
			return request(ctx, "$JS.API.STREAM.PURGE."+stream, "{}")
		}},
		{"delete a message of " + stream, "$JS.API.STREAM.MSG.DELETE." + stream, func(ctx context.Context) error {
			return request(ctx, "$JS.API.STREAM.MSG.DELETE."+stream, `{"seq":1}`)
		}},
		{"shorten " + stream + "'s retention", "$JS.API.STREAM.UPDATE." + stream, func(ctx context.Context) error {
			cfg.MaxAge = time.Second
			_, err := js.UpdateStream(ctx, cfg)
			return err
		}},
	}
}
