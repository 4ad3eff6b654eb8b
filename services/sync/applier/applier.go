// Package applier feeds a centre's replica from NATS JetStream: its own
// CHANGES stream, and for each peer centre a stream that sources the
// peer's CHANGES across the leaf-node link (JetStream domains). Each link
// is read in stream order by an ordered consumer starting after the
// link's cursor, and applied in batches (sync.Store.Apply), so a change is
// applied once even when the consumer is recreated or the process restarts
// between two batches.
package applier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	gosync "sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/uias/uias/pkg/events"
	usync "github.com/uias/uias/services/sync"
)

// Subjects of the changes that travel between centres. Each ends in one
// operation token ('*'): the local event a centre writes of a change it
// applied as a replica (uias.changes.<component>.<entity>.replica.<op>, one
// token more) stays in that centre, so no change travels back to where it
// came from.
var (
	// Up are the changes a level-2 centre sends to level 1: the orgs,
	// people, groups and account links of its own subtrees, the
	// applications (its local business systems) it registered, and the
	// grants of its people.
	Up = []string{"uias.changes.identity.org.*", "uias.changes.identity.user.*", "uias.changes.identity.group.*",
		"uias.changes.identity.link.*", "uias.changes.identity.app.*", "uias.changes.authz.grant.*"}
	// Down are the changes level 1 sends to level 2: global data
	// (applications; resources, roles and exclusions of authz), the
	// grants written at level 1, and the lockouts of level-2 people that
	// failed their password at level 1 (identity/replica_lock.go).
	Down = []string{"uias.changes.identity.app.*", "uias.changes.authz.resource.*", "uias.changes.authz.role.*",
		"uias.changes.authz.exclusion.*", "uias.changes.authz.grant.*", "uias.changes.identity.lock.*"}
)

// Replicated reports whether a CHANGES subject is one the replica holds.
func Replicated(subject string) bool {
	return slices.ContainsFunc(Up, func(f string) bool { return SubjectMatches(f, subject) }) ||
		slices.ContainsFunc(Down, func(f string) bool { return SubjectMatches(f, subject) })
}

// SubjectMatches reports whether a NATS subject matches filter ('*' one
// token, a final '>' one or more).
func SubjectMatches(filter, subject string) bool {
	f, s := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, t := range f {
		switch {
		case t == ">":
			return len(s) > i
		case i >= len(s):
			return false
		case t != "*" && t != s[i]:
			return false
		}
	}
	return len(s) == len(f)
}

// HeaderStreamSource is the header JetStream adds to a sourced message:
// "<stream> <sequence in the origin stream> ...".
const HeaderStreamSource = "Nats-Stream-Source"

// Link is one stream the replica applies.
type Link struct {
	// Name names the link's cursor: the origin centre.
	Name string
	// Origin is the centre whose CHANGES the link carries.
	Origin string
	// Stream is the local stream read: CHANGES for the centre's own link,
	// else the stream sourcing the peer (StreamFor).
	Stream string
	// Filters are the subjects the peer's stream sources (peer links).
	Filters []string
	// Peer: the stream sources the origin's CHANGES in JetStream domain
	// Origin, and each message's version is its sequence there.
	Peer bool
}

// StreamFor is the name of the stream that sources peer's CHANGES.
func StreamFor(peer string) string {
	return events.PeerStreamName("SYNC", peer)
}

// PeerLink is the link of a peer centre whose changes of filters this
// centre applies.
func PeerLink(peer string, filters []string) Link {
	return Link{Name: peer, Origin: peer, Stream: StreamFor(peer), Filters: filters, Peer: true}
}

// LocalLink is the link of the centre's own CHANGES.
func LocalLink(self string) Link {
	return Link{Name: self, Origin: self, Stream: events.StreamChanges}
}

// StreamConfig is the configuration of the stream sourcing a peer link:
// the peer's CHANGES in its JetStream domain, filtered to the link's
// subjects, kept a week (a cut-off link catches up from the peer's own
// CHANGES, which keep everything by default).
func StreamConfig(l Link) jetstream.StreamConfig {
	return events.SourcedStream{
		Name:        l.Stream,
		Description: "UIAS changes of centre " + l.Origin + " (sourced for the sync component)",
		Source:      events.StreamChanges,
		Domain:      l.Origin,
		Filters:     l.Filters,
		MaxAge:      7 * 24 * time.Hour,
	}.Config()
}

// Options tune an Applier.
type Options struct {
	// Batch is the most changes applied in one transaction (default 256).
	Batch int
	// Retry is the first wait after a failure (default 200ms, doubling up
	// to 5s).
	Retry  time.Duration
	Logger *zap.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Metrics registers the applier's metrics (optional).
	Metrics prometheus.Registerer
	// Observe is told the lag of each change applied (event time to
	// application), e.g. by a benchmark (optional).
	Observe func(link string, lag time.Duration)
	// Targets apply the changes of peer links to the components that own
	// them (identity), each batch before the link's cursor moves.
	Targets []Target
	// SourceRetry: a peer link's stream source silent this long is
	// restarted (source.go; default 5s, negative: never).
	SourceRetry time.Duration
}

// Target applies the changes of a peer centre to the component that owns
// them (e.g. identity's ReplicaService). It must apply each change at most
// once, by version per object: the applier hands it every batch of a peer
// link before it moves the link's cursor, so a batch redelivered after a
// crash or an error reaches it again.
type Target interface {
	// Name names the component (metrics, logs).
	Name() string
	// Prefix is the subject prefix of the changes it takes.
	Prefix() string
	// Apply applies cs (in order) as changes of centre origin and returns
	// one outcome per change (APPLIED, STALE, NOT_HOMED, IGNORED,
	// CONFLICT), and what it said of each change's objects.
	Apply(ctx context.Context, origin string, cs []*usync.Change) (Applied, error)
}

// Applied is what a target answered for a batch.
type Applied struct {
	// Outcomes: one per change.
	Outcomes []string
	// Objects[i]: the outcome of each object of change i the target named
	// (nil or shorter: none named).
	Objects [][]usync.ObjectOutcome
}

// Applier applies the links of a centre.
type Applier struct {
	js    jetstream.JetStream
	st    usync.Store
	links []Link
	o     Options

	mu    gosync.Mutex
	state map[string]*linkState

	applied, skipped, replicated, sourceRestarts, sourceRepointed *prometheus.CounterVec
	lag                                                           *prometheus.HistogramVec
}

type linkState struct {
	err        string
	lastSeq    uint64
	lastChange time.Time
}

// New returns an applier of links.
func New(js jetstream.JetStream, st usync.Store, links []Link, o Options) *Applier {
	if o.Batch <= 0 {
		o.Batch = 256
	}
	if o.Retry <= 0 {
		o.Retry = 200 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = zap.NewNop()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SourceRetry == 0 {
		o.SourceRetry = 5 * time.Second
	}
	a := &Applier{js: js, st: st, links: links, o: o, state: map[string]*linkState{},
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_sync_applied_total",
			Help: "Changes applied to the replica, by link (origin centre)."}, []string{"link"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_sync_skipped_total",
			Help: "Changes received and not applied (duplicate, stale, invalid), by link and reason."}, []string{"link", "reason"}),
		replicated: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_sync_replicated_total",
			Help: "Changes of peer links handed to the components that own them, by link, component and outcome."},
			[]string{"link", "component", "outcome"}),
		sourceRestarts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_sync_source_restarts_total",
			Help: "Restarts of a peer link's stream source that had not heard from the peer (source.go), by link."}, []string{"link"}),
		sourceRepointed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "uias_sync_source_repointed_total",
			Help: "Peer link streams found sourcing something else than the peer's CHANGES, and put back (source.go), by link."},
			[]string{"link"}),
		lag: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "uias_sync_apply_lag_seconds",
			Help:    "Time from a change's event time to its application here, by link.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}, []string{"link"}),
	}
	for _, l := range links {
		a.state[l.Name] = &linkState{}
	}
	if o.Metrics != nil {
		for _, c := range []prometheus.Collector{a.applied, a.skipped, a.replicated, a.sourceRestarts, a.sourceRepointed, a.lag} {
			if err := o.Metrics.Register(c); err != nil {
				o.Logger.Warn("sync metrics not registered", zap.Error(err))
			}
		}
	}
	return a
}

// Links returns the applier's links.
func (a *Applier) Links() []Link { return append([]Link(nil), a.links...) }

// Run applies every link until ctx ends.
func (a *Applier) Run(ctx context.Context) {
	var wg gosync.WaitGroup
	for _, l := range a.links {
		wg.Add(2)
		go func() {
			defer wg.Done()
			a.runLink(ctx, l)
		}()
		go func() {
			defer wg.Done()
			a.watchSource(ctx, l)
		}()
	}
	wg.Wait()
}

func (a *Applier) runLink(ctx context.Context, l Link) {
	log := a.o.Logger.With(zap.String("link", l.Name), zap.String("stream", l.Stream))
	delay := a.o.Retry
	for ctx.Err() == nil {
		progressed, err := a.consume(ctx, l)
		if ctx.Err() != nil {
			return
		}
		if progressed {
			delay = a.o.Retry
		}
		a.setErr(l.Name, err)
		if err != nil {
			log.Warn("sync link interrupted; resuming from its cursor", zap.Error(err), zap.Duration("retry_in", delay))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

func (a *Applier) setErr(link string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err == nil {
		a.state[link].err = ""
	} else {
		a.state[link].err = err.Error()
	}
}

// EnsureStream creates or updates the stream of a peer link.
func (a *Applier) EnsureStream(ctx context.Context, l Link) error {
	if !l.Peer {
		return nil
	}
	_, err := a.js.CreateOrUpdateStream(ctx, StreamConfig(l))
	if err != nil {
		return fmt.Errorf("sync: stream %s sourcing the CHANGES of centre %s: %w", l.Stream, l.Origin, err)
	}
	return nil
}

// consume reads l from its cursor and applies it until an error or the end
// of ctx. progressed reports whether it applied anything.
func (a *Applier) consume(ctx context.Context, l Link) (progressed bool, err error) {
	ectx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = a.EnsureStream(ectx, l)
	cancel()
	if err != nil {
		return false, err
	}
	cur, err := a.st.Cursor(ctx, l.Name)
	if err != nil {
		return false, err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	cons, err := a.js.OrderedConsumer(cctx, l.Stream, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: cur.Seq + 1})
	cancel()
	if err != nil {
		return false, fmt.Errorf("sync: read stream %s: %w", l.Stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * a.o.Batch))
	if err != nil {
		return false, fmt.Errorf("sync: read stream %s: %w", l.Stream, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			return progressed, err
		}
		// Fill the batch with what is already there; while the stream
		// says more are pending (catching up), wait a little longer for
		// them rather than commit small batches.
		batch := []jetstream.Msg{msg}
		pending := numPending(msg)
		for len(batch) < a.o.Batch {
			wait := 2 * time.Millisecond
			if pending > 0 {
				wait = 50 * time.Millisecond
			}
			m, err := it.Next(jetstream.NextMaxWait(wait))
			if err != nil {
				break
			}
			batch = append(batch, m)
			pending = numPending(m)
		}
		if err := a.apply(ctx, l, batch); err != nil {
			return progressed, err
		}
		progressed = true
	}
}

// numPending is how many messages of the stream follow m for its consumer.
func numPending(m jetstream.Msg) uint64 {
	md, err := m.Metadata()
	if err != nil {
		return 0
	}
	return md.NumPending
}

// apply applies one batch of l's messages.
func (a *Applier) apply(ctx context.Context, l Link, batch []jetstream.Msg) error {
	items := make([]usync.Item, 0, len(batch))
	for _, m := range batch {
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("sync: message of stream %s without metadata: %w", l.Stream, err)
		}
		it := usync.Item{Seq: md.Sequence.Stream}
		if l.Peer || Replicated(m.Subject()) {
			it.Change = a.change(l, m, md)
		}
		items = append(items, it)
	}
	if l.Peer {
		if err := a.replicate(ctx, l, items); err != nil {
			return err
		}
	}
	out, err := a.st.Apply(ctx, l.Name, items, a.o.Now())
	if err != nil {
		return err
	}
	now := a.o.Now()
	var last time.Time
	for i, oc := range out {
		switch oc {
		case "":
		case usync.Applied:
			a.applied.WithLabelValues(l.Name).Inc()
			if t := items[i].Change.Time; !t.IsZero() {
				a.lag.WithLabelValues(l.Name).Observe(now.Sub(t).Seconds())
				if a.o.Observe != nil {
					a.o.Observe(l.Name, now.Sub(t))
				}
			}
			last = now
		default:
			a.skipped.WithLabelValues(l.Name, string(oc)).Inc()
			lvl := zap.InfoLevel
			if oc == usync.Duplicate {
				// A replay (e.g. a source copying its peer again after
				// its filters changed): recorded, no failure, and possibly
				// a whole week of changes: not logged one by one.
				lvl = zap.DebugLevel
			}
			a.o.Logger.Log(lvl, "sync change skipped", zap.String("link", l.Name), zap.String("reason", string(oc)),
				zap.String("event_id", items[i].Change.EventID), zap.String("kind", items[i].Change.Kind))
		}
	}
	a.mu.Lock()
	s := a.state[l.Name]
	s.lastSeq = items[len(items)-1].Seq
	if !last.IsZero() {
		s.lastChange = last
	}
	a.mu.Unlock()
	return nil
}

// replicate hands the changes of a batch of peer link l to the targets
// that own them, before the batch's cursor moves: nothing is lost if the
// process stops between the two, and the targets' version check keeps a
// redelivered change from being applied twice. A target that fails does
// not keep the others from applying their part (the batch comes again and
// they answer it STALE): an authz outage does not hold back a person's
// disabling at identity (review sec15 L2).
func (a *Applier) replicate(ctx context.Context, l Link, items []usync.Item) error {
	var failed error
	for _, t := range a.o.Targets {
		var cs []*usync.Change
		for _, it := range items {
			if it.Change != nil && strings.HasPrefix(it.Change.Subject, t.Prefix()) {
				cs = append(cs, it.Change)
			}
		}
		if len(cs) == 0 {
			continue
		}
		res, err := t.Apply(ctx, l.Origin, cs)
		if err != nil {
			if failed == nil {
				failed = fmt.Errorf("sync: apply the changes of centre %s to %s: %w", l.Origin, t.Name(), err)
			}
			continue
		}
		for i, objs := range res.Objects {
			if i < len(cs) {
				cs[i].Objects = objs
			}
		}
		for i, oc := range res.Outcomes {
			if i < len(cs) && len(cs[i].Objects) == 0 && (oc == string(usync.Applied) || oc == string(usync.Conflict)) {
				// a target that names no objects (authz): the change's own
				if key := usync.ChangeKey(cs[i]); key != "" {
					cs[i].Objects = []usync.ObjectOutcome{{Key: key, Outcome: usync.Outcome(oc)}}
				}
			}
			a.replicated.WithLabelValues(l.Name, t.Name(), oc).Inc()
			// (a change refused before and delivered again is answered
			// STALE with its objects refused: refused still)
			if i < len(cs) && (oc == string(usync.Conflict) || allRefused(cs[i].Objects)) {
				// Names the change, never its content (it may carry hashes).
				a.o.Logger.Warn("sync: a change of a peer collides with an object of this centre; not applied",
					zap.String("link", l.Name), zap.String("component", t.Name()), zap.String("event_id", cs[i].EventID),
					zap.String("kind", cs[i].Kind), zap.String("object_id", cs[i].ObjectID))
				// recorded as a skipped change (sync status, skipped
				// changes): a person left out at this centre was a log
				// line and a metric only (trial8 D5)
				cs[i].Refused = usync.Conflict
			}
		}
	}
	return failed
}

// allRefused reports whether objs name objects and all were refused.
func allRefused(objs []usync.ObjectOutcome) bool {
	for _, o := range objs {
		if o.Outcome != usync.Conflict {
			return false
		}
	}
	return len(objs) > 0
}

// change reads the change a message carries; a message that names no
// object becomes a change without one (recorded as INVALID).
func (a *Applier) change(l Link, m jetstream.Msg, md *jetstream.MsgMetadata) *usync.Change {
	version := md.Sequence.Stream
	if l.Peer {
		version = SourceSeq(m.Headers())
	}
	ev, err := events.EventFromMsg(m)
	if err == nil && version == 0 {
		err = errors.New("no origin sequence (" + HeaderStreamSource + " header)")
	}
	var c usync.Change
	if err == nil {
		c, err = usync.ParseChange(ev.ID, ev.Subject, ev.Payload, l.Origin, version, ev.Time)
	}
	if err != nil {
		a.o.Logger.Warn("sync: change that cannot be applied", zap.String("link", l.Name), zap.Uint64("seq", md.Sequence.Stream),
			zap.Error(err))
		id := m.Headers().Get(jetstream.MsgIDHeader)
		if id == "" {
			id = l.Stream + ":" + strconv.FormatUint(md.Sequence.Stream, 10)
		}
		return &usync.Change{EventID: id, Origin: l.Origin, Version: version}
	}
	return &c
}

// SourceSeq is the sequence in the origin stream of a sourced message (its
// Nats-Stream-Source header), 0 if it has none.
func SourceSeq(h nats.Header) uint64 {
	f := strings.Fields(h.Get(HeaderStreamSource))
	if len(f) < 2 {
		return 0
	}
	n, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// LinkStatus is what Status reports of a link.
type LinkStatus struct {
	Link
	Cursor usync.Cursor
	// LastSeq is the stream's last sequence (0 when unknown); Pending the
	// messages after the cursor.
	LastSeq, Pending uint64
	// SourceActive: JetStream heard from the peer's CHANGES recently
	// (peer links only).
	SourceActive bool
	SourceLag    uint64
	Err          string
}

// Status reports every link.
func (a *Applier) Status(ctx context.Context) ([]LinkStatus, error) {
	out := make([]LinkStatus, 0, len(a.links))
	for _, l := range a.links {
		cur, err := a.st.Cursor(ctx, l.Name)
		if err != nil {
			return nil, err
		}
		s := LinkStatus{Link: l, Cursor: cur}
		a.mu.Lock()
		s.Err = a.state[l.Name].err
		a.mu.Unlock()
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := a.js.Stream(ictx, l.Stream)
		var info *jetstream.StreamInfo
		if err == nil {
			info, err = st.Info(ictx)
		}
		cancel()
		if err != nil {
			if s.Err == "" {
				s.Err = "stream " + l.Stream + ": " + err.Error()
			}
			out = append(out, s)
			continue
		}
		s.LastSeq = info.State.LastSeq
		if s.LastSeq > cur.Seq {
			s.Pending = s.LastSeq - cur.Seq
		}
		for _, si := range info.Sources {
			s.SourceActive = si.Active >= 0 && si.Active < 10*time.Second && si.Error == nil
			s.SourceLag = si.Lag
		}
		out = append(out, s)
	}
	return out, nil
}

// KindPrefixes turns subject filters (uias.changes.<component>.<entity>.*)
// into the kind prefixes of the replica's objects (<component>.<entity>),
// e.g. for a digest of what a link carries.
func KindPrefixes(filters []string) []string {
	out := make([]string, 0, len(filters))
	for _, f := range filters {
		k := strings.TrimPrefix(f, usync.SubjectPrefix)
		k = strings.TrimSuffix(strings.TrimSuffix(k, ">"), "*")
		out = append(out, strings.TrimSuffix(k, "."))
	}
	return out
}
