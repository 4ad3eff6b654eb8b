package events_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/events/eventstest"
)

func TestPeerStreamName(t *testing.T) {
	for in, want := range map[string]string{"l2a": "SYNC_L2A", "l2-b": "SYNC_L2_B", "east.l2": "SYNC_EAST_L2"} {
		if got := events.PeerStreamName("SYNC", in); got != want {
			t.Errorf("PeerStreamName(SYNC, %q) = %q, want %q", in, got, want)
		}
	}
}

func peerStreamInfo(t *testing.T, js jetstream.JetStream, name string) *jetstream.StreamInfo {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestSourceWatchPutsBackARepointedSource: a peer stream whose source is
// re-pointed at another domain, another stream or other subjects is
// reported (Repointed, Check false) and put back; the configured source,
// filtered (sync's shape) or not (audit's), is not reported.
func TestSourceWatchPutsBackARepointedSource(t *testing.T) {
	ctx := context.Background()
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	for _, tc := range []struct {
		name    string
		stream  string
		filters []string
		bad     events.SourcedStream
	}{
		{name: "other domain", stream: "l2b-1", bad: events.SourcedStream{Source: "LOG", Domain: "l2a"}},
		{name: "other stream", stream: "l2b-2", bad: events.SourcedStream{Source: "OTHER", Domain: "l2b"}},
		{name: "filter dropped", stream: "l2b-3", filters: []string{"uias.changes.identity.>"}, bad: events.SourcedStream{Source: "LOG", Domain: "l2b"}},
		{name: "other filter", stream: "l2b-4", filters: []string{"uias.changes.identity.>"},
			bad: events.SourcedStream{Source: "LOG", Domain: "l2b", Filters: []string{"uias.changes.>"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := events.PeerStreamName("PEER", tc.stream)
			cfg := events.SourcedStream{Name: name, Source: "LOG", Domain: "l2b", Filters: tc.filters, MaxAge: time.Hour}.Config()
			if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			var repointed [][]string
			w := events.SourceWatch{JS: js, Config: cfg, Retry: time.Hour, Log: zap.NewNop(),
				Repointed: func(got []string) { repointed = append(repointed, got) }}
			if !w.Check(ctx) || len(repointed) != 0 {
				t.Fatalf("the configured source reported: %v", repointed)
			}
			bad := tc.bad
			bad.Name, bad.MaxAge = name, time.Hour
			if _, err := js.UpdateStream(ctx, bad.Config()); err != nil {
				t.Fatal(err)
			}
			if w.Check(ctx) || len(repointed) != 1 {
				t.Fatalf("a re-pointed source not reported: %v", repointed)
			}
			src := peerStreamInfo(t, js, name).Config.Sources
			if len(src) != 1 || src[0].Name != "LOG" || src[0].External == nil || src[0].External.APIPrefix != "$JS.l2b.API" ||
				len(src[0].SubjectTransforms) != len(tc.filters) {
				t.Fatalf("source after: %+v", src)
			}
			if !w.Check(ctx) || len(repointed) != 1 {
				t.Fatalf("the put-back source reported: %v", repointed)
			}
		})
	}
}

// TestSourceWatchRestartsASilentSource: a peer stream whose source is
// never heard from (its domain is not reachable) is restarted by Run,
// each restart counted, and keeps its one configured source; a stream
// that cannot be read is left alone.
func TestSourceWatchRestartsASilentSource(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, js := eventstest.Connect(t, eventstest.NATS(t))
	cfg := events.SourcedStream{Name: "PEER_NOWHERE", Source: "LOG", Domain: "nowhere", MaxAge: time.Hour}.Config()
	if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	var restarts atomic.Int64
	w := events.SourceWatch{JS: js, Config: cfg, Retry: 200 * time.Millisecond, Restarted: func() { restarts.Add(1) }}
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for restarts.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the silent source was not restarted twice")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
	if src := peerStreamInfo(t, js, cfg.Name).Config.Sources; len(src) != 1 || src[0].Name != "LOG" {
		t.Fatalf("sources after the restarts: %+v", src)
	}

	gone := events.SourceWatch{JS: js, Config: events.SourcedStream{Name: "PEER_GONE", Source: "LOG", Domain: "x"}.Config(),
		Retry: time.Second, Restarted: func() { t.Error("a missing stream restarted") }}
	if !gone.Heard(context.Background()) || !gone.Check(context.Background()) {
		t.Fatal("a stream that cannot be read: nothing to do")
	}
	if err := gone.Restart(context.Background()); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("restart of a missing stream: %v", err)
	}
}
