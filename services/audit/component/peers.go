package component

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/audit"
)

// Audit across centres (ADR 0029). A level-2 centre (audit.share) copies
// its log as stored, record by record with its seq and checkpoint by
// checkpoint, to its AUDIT_LOG stream (sharer). Level 1 (audit.peers)
// sources each peer's AUDIT_LOG through the peer's JetStream domain over
// the leaf-node link into a stream AUDIT_<PEER>, as sync sources the
// peer's CHANGES into SYNC_<PEER>, and stores what it reads per origin
// (receiver), exactly once by seq with its cursor in the same transaction.

// LogStreamConfig is the configuration of a centre's AUDIT_LOG stream: kept
// until level 1 has had it (no age limit by default, as CHANGES; an
// operator may set one longer than the longest cut of the link).
func LogStreamConfig() jetstream.StreamConfig {
	return jetstream.StreamConfig{Name: audit.StreamLog, Description: "UIAS audit log of this centre, as stored (shared with level 1)",
		Subjects: []string{"uias.auditlog.>"}, Storage: jetstream.FileStorage, Duplicates: events.DuplicateWindow}
}

// PeerStreamConfig is the configuration of level 1's stream sourcing
// peer's AUDIT_LOG in the peer's JetStream domain, kept a week (a cut-off
// link catches up from the peer's own AUDIT_LOG) and bounded in bytes
// (peers[].max_bytes, max_age): full, it takes nothing new (DiscardNew),
// what waits stays in the peer's AUDIT_LOG (sec28b M3).
func PeerStreamConfig(peer PeerConfig) jetstream.StreamConfig {
	return events.SourcedStream{
		Name:        audit.PeerStreamFor(peer.Centre),
		Description: "UIAS audit log of centre " + peer.Centre + " (sourced for the audit component)",
		Source:      audit.StreamLog,
		Domain:      peer.Centre,
		MaxAge:      peer.maxAge(),
		MaxBytes:    peer.maxBytes(),
		Discard:     jetstream.DiscardNew,
	}.Config()
}

// ensureLogStream creates AUDIT_LOG, or takes it as it is: the audit user
// may not update it (review sec28b L6: an update that shortens its limits
// amounts to a purge), so a change of its configuration is the setup
// user's.
func ensureLogStream(ctx context.Context, js jetstream.JetStream) (jetstream.Stream, error) {
	st, err := js.CreateStream(ctx, LogStreamConfig())
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		return js.Stream(ctx, audit.StreamLog)
	}
	return st, err
}

// sharer publishes the centre's log to AUDIT_LOG.
type sharer struct {
	js     jetstream.JetStream
	st     audit.Store
	origin string
	log    *zap.Logger
	every  time.Duration
	// published counts the records published (metrics).
	published prometheus.Counter
}

const shareChunk = 500

func (s *sharer) run(ctx context.Context) {
	var stream jetstream.Stream
	wait := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(s.every):
			return true
		}
	}
	for backoff := s.every; ; backoff = min(2*backoff, time.Minute) {
		var err error
		if stream, err = ensureLogStream(ctx, s.js); err == nil {
			break
		}
		if ctx.Err() == nil {
			s.log.Warn("audit log not shared yet: its AUDIT_LOG stream cannot be set up (the audit user's NATS permissions?); trying again",
				zap.Duration("retry_in", backoff), zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
	}
	nextRec, nextCp := int64(-1), int64(0)
	for {
		if nextRec < 0 {
			var err error
			if nextRec, nextCp, err = s.resume(ctx, stream); err != nil {
				nextRec = -1
				if ctx.Err() == nil {
					s.log.Warn("audit log sharing: cannot read how far it was shared; trying again", zap.Error(err))
				}
			}
		}
		if nextRec >= 0 {
			var err error
			nextRec, nextCp, err = s.pass(ctx, nextRec, nextCp)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("audit log sharing: not all published; trying again", zap.Int64("next_record", nextRec), zap.Error(err))
				nextRec = -1 // read the stream again: what was published stays
			}
		}
		if !wait() {
			return
		}
	}
}

// resume reads from AUDIT_LOG how far the log was shared: the next record
// and the largest checkpoint published (none: from the first record
// stored).
func (s *sharer) resume(ctx context.Context, stream jetstream.Stream) (int64, int64, error) {
	var next, cp int64
	m, err := stream.GetLastMsgForSubject(ctx, audit.SubjectLogRecord)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		if next, err = s.st.Pruned(ctx); err != nil {
			return -1, 0, err
		}
	case err != nil:
		return -1, 0, err
	default:
		lm, err := audit.ParseLogMessage(m.Data)
		if err != nil {
			return -1, 0, err
		}
		next = lm.Record.Seq + 1
	}
	m, err = stream.GetLastMsgForSubject(ctx, audit.SubjectLogCheckpt)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
	case err != nil:
		return -1, 0, err
	default:
		if lm, err := audit.ParseLogMessage(m.Data); err == nil && lm.Checkpoint != nil {
			cp = lm.Checkpoint.Size
		}
	}
	return next, cp, nil
}

// pass publishes the records from next on and then the checkpoints
// larger than cp that they cover.
func (s *sharer) pass(ctx context.Context, next, cp int64) (int64, int64, error) {
	size, err := s.st.Size(ctx)
	if err != nil {
		return next, cp, err
	}
	errChunk := errors.New("chunk")
	for next < size {
		var msgs []audit.LogMessage
		err := s.st.ScanRecords(ctx, next, func(r *audit.Record) error {
			msgs = append(msgs, audit.RecordMessage(s.origin, r))
			if len(msgs) == shareChunk {
				return errChunk
			}
			return nil
		})
		if err != nil && !errors.Is(err, errChunk) {
			return next, cp, err
		}
		if len(msgs) == 0 {
			break
		}
		if err := s.publish(ctx, audit.SubjectLogRecord, msgs); err != nil {
			return next, cp, err
		}
		next = msgs[len(msgs)-1].Record.Seq + 1
		if s.published != nil {
			s.published.Add(float64(len(msgs)))
		}
	}
	latest, err := s.st.LatestCheckpoint(ctx)
	if err != nil || latest == nil || latest.Size <= cp {
		return next, cp, err
	}
	var msgs []audit.LogMessage
	err = s.st.Checkpoints(ctx, func(c *audit.Checkpoint) error {
		if c.Size > cp && c.Size <= next {
			msgs = append(msgs, audit.LogMessage{Origin: s.origin, Checkpoint: &audit.LogCheckpt{Size: c.Size, Note: string(c.Note)}})
		}
		return nil
	})
	if err != nil {
		return next, cp, err
	}
	if err := s.publish(ctx, audit.SubjectLogCheckpt, msgs); err != nil {
		return next, cp, err
	}
	if len(msgs) > 0 {
		cp = msgs[len(msgs)-1].Checkpoint.Size
	}
	return next, cp, nil
}

// publish publishes msgs in order (asynchronously, then waits for every
// acknowledgement), each with its id (MsgID) for JetStream's dedupe.
func (s *sharer) publish(ctx context.Context, subject string, msgs []audit.LogMessage) error {
	var futures []jetstream.PubAckFuture
	for _, m := range msgs {
		b, err := json.Marshal(m)
		if err != nil {
			return err
		}
		f, err := s.js.PublishMsgAsync(&nats.Msg{Subject: subject, Data: b, Header: nats.Header{jetstream.MsgIDHeader: []string{m.MsgID()}}})
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// receiver stores one peer's shared log.
type receiver struct {
	js    jetstream.JetStream
	st    audit.PeerStore
	peer  PeerConfig
	batch int
	log   *zap.Logger
	// sourceRetry: the stream's source silent this long is restarted (as
	// sync's applier does: nats-server's own retry backs off to minutes
	// after a cut).
	sourceRetry time.Duration
	received    *prometheus.CounterVec
	// restarts counts the restarts of the silent source, by origin.
	restarts *prometheus.CounterVec
	// problems counts the gaps skipped and conflicts (origin, kind); audit
	// records them in this centre's own log (nil: logged only).
	problems *prometheus.CounterVec
	audit    func(ctx context.Context, rec audit.Record) error
	now      func() time.Time
}

func (r *receiver) run(ctx context.Context) {
	log := r.log.With(zap.String("centre", r.peer.Centre), zap.String("origin", r.peer.Origin))
	retry := time.Second
	sleep := func(d time.Duration) bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(d):
			return true
		}
	}
	var cons jetstream.Consumer
	for backoff := retry; ; backoff = min(2*backoff, time.Minute) {
		var err error
		cons, err = r.setup(ctx)
		if err == nil {
			break
		}
		if ctx.Err() == nil {
			log.Warn("audit: the peer's log cannot be received yet (stream or consumer not set up); trying again",
				zap.Duration("retry_in", backoff), zap.Error(err))
		}
		if !sleep(backoff) {
			return
		}
	}
	if r.sourceRetry > 0 {
		go r.sourceWatch(log).Run(ctx)
	}
	var gaps gapWatch
	for ctx.Err() == nil {
		batch, err := cons.Fetch(r.batch, jetstream.FetchMaxWait(time.Second))
		var msgs []jetstream.Msg
		if err == nil {
			for m := range batch.Messages() {
				msgs = append(msgs, m)
			}
			if err = batch.Error(); errors.Is(err, nats.ErrTimeout) || len(msgs) > 0 {
				err = nil // an idle wait, or what came before the error: stored, then the next fetch tells
			}
		}
		if err != nil {
			// NATS away, or the consumer gone (deleted by an operator after
			// a restore: ADR 0029 amendment 3): set it up again.
			if ctx.Err() == nil {
				log.Warn("audit: the peer's log cannot be read; setting its consumer up again", zap.Error(err))
			}
			if !sleep(retry) {
				return
			}
			if c, err := r.setup(ctx); err == nil {
				cons = c
			}
			continue
		}
		if len(msgs) == 0 {
			continue
		}
		err = r.store(ctx, msgs, log, gaps.skip(r.clock(), r.peer.skipGapAfter()))
		gaps.seen(err, r.clock())
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			lvl := log.Warn
			if errors.Is(err, audit.ErrPeerGap) {
				lvl = log.Error
				err = fmt.Errorf("%w (skipped after %s: peers[].skip_gap_after)", err, r.peer.skipGapAfter())
			}
			lvl("audit: records of the peer's log not stored; trying again (they are redelivered)", zap.Error(err))
			for _, m := range msgs {
				_ = m.NakWithDelay(retry)
			}
			sleep(retry)
			continue
		}
		for _, m := range msgs {
			_ = m.Ack()
		}
	}
}

// gapWatch says when a gap has lasted long enough to be skipped: since
// the first ErrPeerGap of a run of them (a batch stored ends it).
type gapWatch struct{ since time.Time }

func (g *gapWatch) seen(err error, now time.Time) {
	switch {
	case errors.Is(err, audit.ErrPeerGap):
		if g.since.IsZero() {
			g.since = now
		}
	case err == nil:
		g.since = time.Time{}
	}
}

func (g *gapWatch) skip(now time.Time, after time.Duration) bool {
	return !g.since.IsZero() && now.Sub(g.since) >= after
}

func (r *receiver) clock() time.Time {
	if r.now != nil {
		return r.now()
	}
	return time.Now()
}

// setup creates the stream sourcing the peer's AUDIT_LOG and the durable
// consumer the receiver reads it with.
func (r *receiver) setup(ctx context.Context) (jetstream.Consumer, error) {
	cfg := PeerStreamConfig(r.peer)
	s, err := r.js.CreateOrUpdateStream(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", cfg.Name, err)
	}
	return s.CreateOrUpdateConsumer(ctx, PeerConsumerConfig(r.batch))
}

// PeerConsumer is the durable consumer level 1's audit component reads an
// AUDIT_<PEER> stream with.
const PeerConsumer = "audit"

// PeerConsumerConfig is its configuration (batch: the most messages
// stored per transaction). One batch is out at a time (MaxAckPending:
// batch): a batch Nak'ed after a store failure comes again before anything
// after it. With more out, the next records of a peer's first batch were
// stored first and the Nak'ed ones then taken for records the peer had
// archived before it shared (below First) and dropped (review rr29 B13,
// TestReceiverRunRetriesAndRecovers).
func PeerConsumerConfig(batch int) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{Durable: PeerConsumer, AckPolicy: jetstream.AckExplicitPolicy, AckWait: time.Minute,
		MaxAckPending: batch}
}

// store stores msgs (in stream order) in one transaction; skipGap passes
// over records missing before them (reported as a gap).
func (r *receiver) store(ctx context.Context, msgs []jetstream.Msg, log *zap.Logger, skipGap bool) error {
	b := audit.PeerBatch{Origin: r.peer.Origin, At: r.clock().UTC(), SkipGap: skipGap}
	masked := map[int64]bool{}
	for _, m := range msgs {
		lm, err := audit.ParseLogMessage(m.Data())
		switch {
		case err != nil:
			log.Error("audit: a message of the peer's log is not one; skipped", zap.Error(err))
			continue
		case lm.Origin != r.peer.Origin:
			log.Error("audit: a message of the peer's log names another origin than audit.peers[].origin; skipped",
				zap.String("message_origin", lm.Origin))
			continue
		case lm.Record != nil:
			rec := lm.Rec()
			if audit.MaskPeerRecord(&rec) {
				masked[rec.Seq] = true
			}
			b.Records = append(b.Records, rec)
		default:
			c, err := audit.CheckpointOf(lm.Origin, []byte(lm.Checkpoint.Note))
			if err != nil {
				log.Error("audit: a checkpoint of the peer's log cannot be read; skipped", zap.Error(err))
				continue
			}
			b.Checkpoints = append(b.Checkpoints, c)
		}
	}
	res, err := r.st.AppendPeer(ctx, b)
	if err != nil {
		return err
	}
	if r.received != nil {
		r.received.WithLabelValues(r.peer.Origin).Add(float64(res.Added))
	}
	for _, g := range res.Skipped {
		log.Error("audit: records of the peer's log were lost on the way (gone from its stream at level 1) and are skipped: "+
			"verify reports them missing; they are stored if they come again", zap.Int64("from", g.From), zap.Int64("to", g.To-1))
		r.report(ctx, "gap", audit.ReasonPeerLogGap, map[string]string{"from": strconv.FormatInt(g.From, 10),
			"to": strconv.FormatInt(g.To-1, 10)}, log)
	}
	var unmasked []string
	for _, s := range res.Stored {
		if masked[s] {
			unmasked = append(unmasked, strconv.FormatInt(s, 10))
		}
	}
	if len(unmasked) > 0 {
		log.Error("audit: records of the peer's log came with personal numbers in clear and are stored masked: they no longer "+
			"match its signed checkpoints (upgrade that centre)", zap.Strings("seqs", unmasked))
		r.report(ctx, "unmasked", audit.ReasonPeerLogUnmasked, map[string]string{"seqs": strings.Join(unmasked, ",")}, log)
	}
	if len(res.Conflicts) > 0 {
		seqs := make([]string, len(res.Conflicts))
		for i, s := range res.Conflicts {
			seqs[i] = strconv.FormatInt(s, 10)
		}
		log.Error("audit: records of the peer's log came again under numbers held with other content (its log rewritten, or "+
			"tampering): the records held are kept", zap.Strings("seqs", seqs))
		r.report(ctx, "conflict", audit.ReasonPeerLogConflict, map[string]string{"seqs": strings.Join(seqs, ",")}, log)
	}
	return nil
}

// report counts a problem of the peer's log and records it in this
// centre's own log.
func (r *receiver) report(ctx context.Context, kind, reason string, detail map[string]string, log *zap.Logger) {
	if r.problems != nil {
		r.problems.WithLabelValues(r.peer.Origin, kind).Inc()
	}
	if r.audit == nil {
		return
	}
	if err := r.audit(ctx, audit.PeerLogRecord(r.peer.Origin, reason, detail, r.clock())); err != nil {
		log.Error("audit: the peer log's problem could not be recorded in this centre's log (it is logged here)", zap.Error(err))
	}
}

// sourceWatch keeps the stream's source (events.SourceWatch): restarted
// when silent for sourceRetry (as sync's applier does: nats-server's own
// retry backs off to minutes after a cut; counted in
// uias_audit_peer_source_restarts_total), and put back when it is not the
// peer's AUDIT_LOG in the peer's domain (changed by someone with JetStream
// rights at level 1 or, over a leaf link given them, at another centre:
// sec28b M4; counted as a problem of kind "source"): records sourced from
// elsewhere would be stored as this peer's.
func (r *receiver) sourceWatch(log *zap.Logger) events.SourceWatch {
	return events.SourceWatch{
		JS: r.js, Config: PeerStreamConfig(r.peer), Retry: r.sourceRetry, Log: log,
		Restarted: func() {
			if r.restarts != nil {
				r.restarts.WithLabelValues(r.peer.Origin).Inc()
			}
		},
		Repointed: func([]string) {
			if r.problems != nil {
				r.problems.WithLabelValues(r.peer.Origin, "source").Inc()
			}
		},
	}
}

// peerMetrics: records shared and received.
func peerMetrics(reg prometheus.Registerer) (prometheus.Counter, *prometheus.CounterVec) {
	shared := prometheus.NewCounter(prometheus.CounterOpts{Name: "uias_audit_shared_records_total",
		Help: "Records of this centre's audit log published to its AUDIT_LOG stream for level 1 (audit.share)."})
	received := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_audit_peer_records_total",
		Help: "Records of a level-2 centre's audit log stored at level 1 (audit.peers), by origin."}, []string{"origin"})
	if reg != nil {
		_ = reg.Register(shared)
		_ = reg.Register(received)
	}
	return shared, received
}

// peerSourceMetrics: restarts of a silent AUDIT_<PEER> source.
func peerSourceMetrics(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_audit_peer_source_restarts_total",
		Help: "Restarts of an AUDIT_<PEER> stream's source that had not heard from the peer (events.SourceWatch), by origin."},
		[]string{"origin"})
	if reg != nil {
		_ = reg.Register(c)
	}
	return c
}

// peerProblemMetrics: gaps skipped and conflicting records of peer logs.
func peerProblemMetrics(reg prometheus.Registerer) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_audit_peer_log_problems_total",
		Help: "Problems of a level-2 centre's audit log received at level 1, by origin and kind (gap: records lost and skipped; " +
			"conflict: a record re-sent with other content; unmasked: personal numbers masked on arrival; source: AUDIT_<PEER> " +
			"found sourcing something else, put back)."}, []string{"origin", "kind"})
	if reg != nil {
		_ = reg.Register(c)
	}
	return c
}
