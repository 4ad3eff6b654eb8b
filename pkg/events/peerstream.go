package events

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Peer streams: a stream at one centre that sources a stream of a peer
// centre in the peer's JetStream domain over the leaf-node link: sync's
// SYNC_<PEER> (the peer's CHANGES) and audit's AUDIT_<PEER> (the peer's
// AUDIT_LOG). Both share the name, the configuration's shape and the
// watch of the source (SourceWatch).

// PeerStreamName is the name of the stream, prefix_<CENTRE>, that sources
// centre's stream: the centre in upper case, '-' and '.' as '_'.
func PeerStreamName(prefix, centre string) string {
	return prefix + "_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(centre))
}

// SourcedStream describes a stream sourcing Source in JetStream domain
// Domain.
type SourcedStream struct {
	Name, Description string
	// Source is the stream sourced, in domain Domain.
	Source, Domain string
	// Filters are the subjects sourced (none: all), kept as they are.
	Filters []string
	// MaxAge, MaxBytes and Discard bound the stream (0: no bound).
	MaxAge   time.Duration
	MaxBytes int64
	Discard  jetstream.DiscardPolicy
}

// Config is the stream's configuration: file storage, one source.
func (s SourcedStream) Config() jetstream.StreamConfig {
	src := &jetstream.StreamSource{Name: s.Source, Domain: s.Domain}
	for _, f := range s.Filters {
		// A filter only: the subjects are kept as they are.
		src.SubjectTransforms = append(src.SubjectTransforms, jetstream.SubjectTransformConfig{Source: f})
	}
	return jetstream.StreamConfig{
		Name:        s.Name,
		Description: s.Description,
		Storage:     jetstream.FileStorage,
		Sources:     []*jetstream.StreamSource{src},
		MaxAge:      s.MaxAge,
		MaxBytes:    s.MaxBytes,
		Discard:     s.Discard,
	}
}

// Restarting a stalled source.
//
// While a link is cut, nats-server retries the source of a peer stream
// (the consumer it creates on the peer's stream across the leaf node) with
// a growing back-off: each attempt waits up to 30 s for an answer, then
// 10 s more per failure, up to 2 min (server/stream.go,
// calculateRetryBackoff). A healed link therefore sat idle for most of a
// minute before the first queued message moved (docs/benchmarks-sync.md).
// SourceWatch watches the source instead: when the stream has not heard
// from the peer for Retry (a healthy source hears a heartbeat every
// second, idle or not), it removes the source and adds it back, which
// starts a fresh attempt at once. The server keeps how far it sourced (per
// source, in the stream's store) and resumes after the last message it
// holds, so nothing is copied twice.
//
// Re-pointed source. Someone with JetStream rights here (or, over a leaf
// link given them, at another centre) may change the stream's source to
// another stream or domain: what it copies would be taken as the peer's
// (review sec28b M4). SourceWatch puts the configured source back and
// reports it.

// SourceWatch keeps a peer stream's source: the one configured, and
// heard from.
type SourceWatch struct {
	JS jetstream.JetStream
	// Config is the stream as it should be (SourcedStream.Config).
	Config jetstream.StreamConfig
	// Retry: a source silent this long is restarted, at most once per
	// Retry; the watch looks every Retry/2. Required (> 0).
	Retry time.Duration
	Log   *zap.Logger
	// Restarted is called after each restart of a silent source (nil:
	// not counted).
	Restarted func()
	// Repointed is called when the stream sourced something else, with
	// what it sourced ("NAME via $JS.<domain>.API"), before the source is
	// put back (nil: logged only).
	Repointed func(got []string)
}

// Run checks the source, and restarts it when silent, every Retry/2 until
// ctx ends.
func (w SourceWatch) Run(ctx context.Context) {
	if w.Retry <= 0 {
		return
	}
	t := time.NewTicker(w.Retry / 2)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.Check(ctx)
		if time.Since(last) < w.Retry || w.Heard(ctx) {
			continue
		}
		last = time.Now()
		if err := w.Restart(ctx); err != nil && ctx.Err() == nil {
			w.logger().Debug("peer stream: source not restarted", zap.String("stream", w.Config.Name), zap.Error(err))
		}
	}
}

func (w SourceWatch) logger() *zap.Logger {
	if w.Log == nil {
		return zap.NewNop()
	}
	return w.Log
}

// sourceKey is what identifies a source as the server keeps it: the
// stream, the domain's API prefix, the filter and the transforms.
func sourceKey(s *jetstream.StreamSource) string {
	prefix := ""
	switch {
	case s.External != nil:
		prefix = s.External.APIPrefix
	case s.Domain != "":
		prefix = "$JS." + s.Domain + ".API"
	}
	var b strings.Builder
	b.WriteString(s.Name + " via " + prefix)
	if s.FilterSubject != "" {
		b.WriteString(" filter " + s.FilterSubject)
	}
	for _, t := range s.SubjectTransforms {
		b.WriteString(" transform " + t.Source + ">" + t.Destination)
	}
	return b.String()
}

// Check puts back the stream's source when it is not the configured one,
// and reports it (false). True: as configured, or the stream cannot be
// read now (the next look).
func (w SourceWatch) Check(ctx context.Context) bool {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := w.JS.Stream(ictx, w.Config.Name)
	if err != nil {
		return true
	}
	info, err := st.Info(ictx)
	if err != nil {
		return true
	}
	var want, got []string
	for _, s := range w.Config.Sources {
		want = append(want, sourceKey(s))
	}
	for _, s := range info.Config.Sources {
		got = append(got, sourceKey(s))
	}
	slices.Sort(want)
	slices.Sort(got)
	if slices.Equal(want, got) {
		return true
	}
	log := w.logger()
	log.Error("peer stream: it sources something else than the peer's stream: put back (check who may use this centre's "+
		"JetStream API, and the leaf link's permissions)", zap.String("stream", w.Config.Name), zap.Strings("sources", got),
		zap.Strings("want", want))
	if w.Repointed != nil {
		w.Repointed(got)
	}
	if _, err := w.JS.UpdateStream(ictx, w.Config); err != nil && ctx.Err() == nil {
		log.Error("peer stream: its source could not be put back", zap.String("stream", w.Config.Name), zap.Error(err))
	}
	return false
}

// Heard reports whether the stream heard from its source within Retry
// (true too when the stream cannot be read: nothing to do).
func (w SourceWatch) Heard(ctx context.Context) bool {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := w.JS.Stream(ictx, w.Config.Name)
	if err != nil {
		return true
	}
	info, err := st.Info(ictx)
	if err != nil || len(info.Sources) == 0 {
		return err != nil
	}
	for _, si := range info.Sources {
		if si.Active < 0 || si.Active >= w.Retry {
			return false
		}
	}
	return true
}

// Restart removes the stream's source and adds it back.
func (w SourceWatch) Restart(ctx context.Context) error {
	// A source re-pointed since the last look is put back and reported by
	// Check, not silently overwritten by the restart below (which would
	// leave it uncounted: TestRepointedSourcePutBack's flake).
	if !w.Check(ctx) {
		return nil
	}
	uctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	bare := w.Config
	bare.Sources = nil
	if _, err := w.JS.UpdateStream(uctx, bare); err != nil {
		return err
	}
	if w.Restarted != nil {
		w.Restarted()
	}
	_, err := w.JS.UpdateStream(uctx, w.Config)
	return err
}
