package applier

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Restarting a stalled source.
//
// While a link is cut, nats-server retries the source of a peer link's
// stream (the consumer it creates on the peer's CHANGES across the leaf
// node) with a growing back-off: each attempt waits up to 30 s for an
// answer, then 10 s more per failure, up to 2 min (server/stream.go,
// calculateRetryBackoff). A healed link therefore sat idle for most of a
// minute before the first queued change moved (docs/benchmarks-sync.md).
// The applier watches the source instead: when the stream has not heard
// from the peer for SourceRetry (a healthy source hears a heartbeat every
// second, idle or not), it removes the source and adds it back, which
// starts a fresh attempt at once. The server keeps how far it sourced (per
// source, in the stream's store) and resumes after the last message it
// holds, so nothing is copied twice.

// watchSource restarts the source of peer link l whenever it has been
// silent for the applier's SourceRetry, at most once per SourceRetry, until
// ctx ends.
func (a *Applier) watchSource(ctx context.Context, l Link) {
	if !l.Peer || a.o.SourceRetry <= 0 {
		return
	}
	log := a.o.Logger.With(zap.String("link", l.Name), zap.String("stream", l.Stream))
	t := time.NewTicker(a.o.SourceRetry / 2)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if time.Since(last) < a.o.SourceRetry || a.sourceHeard(ctx, l) {
			continue
		}
		last = time.Now()
		if err := a.restartSource(ctx, l); err != nil && ctx.Err() == nil {
			log.Debug("sync: source not restarted", zap.Error(err))
		}
	}
}

// sourceHeard reports whether l's stream heard from its source within
// SourceRetry (true too when the stream cannot be read: nothing to do).
func (a *Applier) sourceHeard(ctx context.Context, l Link) bool {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := a.js.Stream(ictx, l.Stream)
	if err != nil {
		return true
	}
	info, err := st.Info(ictx)
	if err != nil || len(info.Sources) == 0 {
		return err != nil
	}
	for _, si := range info.Sources {
		if si.Active < 0 || si.Active >= a.o.SourceRetry {
			return false
		}
	}
	return true
}

// restartSource removes the source of l's stream and adds it back.
func (a *Applier) restartSource(ctx context.Context, l Link) error {
	uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg := StreamConfig(l)
	bare := cfg
	bare.Sources = nil
	if _, err := a.js.UpdateStream(uctx, bare); err != nil {
		return err
	}
	a.sourceRestarts.WithLabelValues(l.Name).Inc()
	_, err := a.js.UpdateStream(uctx, cfg)
	return err
}
