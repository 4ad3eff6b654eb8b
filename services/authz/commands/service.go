// Package commands holds the authorization component's commands (the
// OpenFGA pattern: a thin RPC handler calls one command, which uses only the
// narrow pieces it needs): the writes, which validate a change against the
// replica's index at the store's current revision and commit it with its
// CHANGES and AUDIT events, and the queries, answered from the index once it
// has reached the revision the caller demands.
package commands

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/centre"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	"github.com/uias/uias/services/authz"
	"github.com/uias/uias/services/authz/index"
)

// ChangesSubjectPrefix starts the subject of every authz CHANGES event:
// uias.changes.authz.<obj>.<op>.
const ChangesSubjectPrefix = "uias.changes.authz."

// Defaults.
const (
	// DefaultMaxWait is how long a query waits for the revision it demands.
	DefaultMaxWait = 2 * time.Second
	// writeAttempts bounds the retries of a write that lost the race for
	// the next revision.
	writeAttempts = 8
	catchUpBatch  = 5000
)

// Deps are the service's collaborators.
type Deps struct {
	Store  authz.Store
	Index  *index.Index
	Logger *zap.Logger
	// Kick is called after a commit (the outbox relay's wake-up); nil: none.
	Kick func()
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// MaxWait bounds the wait for a demanded revision (0: DefaultMaxWait).
	MaxWait time.Duration
	// Homes are the centre settings (pkg/centre): nil for a single
	// centre. Writes of objects homed at another centre are refused, and
	// other centres' changes are applied as replicas (replica.go).
	Homes *centre.Homes
	// Appoint readies a person for an administrator role before a grant
	// gives them one (identity's PrepareAppointment): it returns the
	// temporary password that replaced one someone else set ("" when theirs
	// is their own). nil: nothing is asked.
	Appoint func(ctx context.Context, userID, role string) (string, error)
	// Exists asks identity whether the subject of a new grant exists (a
	// person, group or org id; nil: not asked). A grant to nobody (a login
	// name typed for an id) is refused instead of doing nothing.
	Exists func(ctx context.Context, sub authz.Subject) (bool, error)
}

// Service runs the commands of one replica.
type Service struct {
	st      authz.Store
	idx     *index.Index
	log     *zap.Logger
	kick    func()
	now     func() time.Time
	maxWait time.Duration
	auditor *audit.Builder
	homes   *centre.Homes
	appoint func(ctx context.Context, userID, role string) (string, error)
	exists  func(ctx context.Context, sub authz.Subject) (bool, error)

	// breachMu serialises this instance's separation scans
	// (ScanSeparation; the store keeps what was reported).
	breachMu sync.Mutex

	// catchMu serialises reading changes from the store into the index.
	catchMu sync.Mutex
	// advanced is closed and replaced whenever the index's revision moves.
	advMu    sync.Mutex
	advanced chan struct{}
}

// New returns the service. Load (or an empty store) must run before queries.
func New(d Deps) *Service {
	s := &Service{st: d.Store, idx: d.Index, log: d.Logger, kick: d.Kick, now: d.Now, maxWait: d.MaxWait,
		advanced: make(chan struct{}), homes: d.Homes, appoint: d.Appoint, exists: d.Exists}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.kick == nil {
		s.kick = func() {}
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxWait <= 0 {
		s.maxWait = DefaultMaxWait
	}
	s.auditor = audit.NewBuilder("authz", s.now)
	return s
}

// Index is the replica's index.
func (s *Service) Index() *index.Index { return s.idx }

// Load fills the index from a snapshot of the store (at start). The rows
// are copied into batches, decoded by GOMAXPROCS workers (keeping one copy
// of the strings many grants share) while the index takes the batches in
// order; a few batches circulate, so the load holds little beyond the index
// it builds. A store that can count its grants (CountObjects) has the index
// sized for them first.
func (s *Service) Load(ctx context.Context) error {
	s.catchMu.Lock()
	defer s.catchMu.Unlock()
	if c, ok := s.st.(interface {
		CountObjects(ctx context.Context, obj string) (int, error)
	}); ok {
		if n, err := c.CountObjects(ctx, authz.ObjGrant); err == nil {
			s.idx.ReserveGrants(n)
		}
	}
	const batchRows, batchBytes = 4096, 1 << 20
	type batch struct {
		chs  []authz.Change
		offs []int // chs[i].Data is data[offs[i]:offs[i+1]]
		data []byte
		ps   []index.Prepared
		done chan struct{} // a worker has decoded the batch
	}
	workers := max(1, runtime.GOMAXPROCS(0))
	inFlight := 2*workers + 2
	free := make(chan *batch, inFlight)
	for range inFlight {
		free <- &batch{chs: make([]authz.Change, 0, batchRows), offs: make([]int, 0, batchRows+1),
			data: make([]byte, 0, batchBytes+64<<10), ps: make([]index.Prepared, batchRows), done: make(chan struct{}, 1)}
	}
	jobs := make(chan *batch, inFlight)
	order := make(chan *batch, inFlight)
	for range workers {
		go func() {
			d := index.NewDecoder()
			for b := range jobs {
				for i := range b.chs {
					d.PrepareInto(&b.ps[i], b.chs[i])
				}
				b.done <- struct{}{}
			}
		}()
	}
	applied := make(chan error, 1)
	go func() {
		var err error
		for b := range order {
			<-b.done
			if err == nil {
				err = s.idx.ApplyPrepared(b.ps[:len(b.chs)]...)
			}
			b.chs, b.offs, b.data = b.chs[:0], b.offs[:0], b.data[:0]
			free <- b
		}
		applied <- err
	}()
	var cur *batch
	flush := func() {
		b := cur
		cur = nil
		b.offs = append(b.offs, len(b.data))
		for i := range b.chs {
			b.chs[i].Data = b.data[b.offs[i]:b.offs[i+1]:b.offs[i+1]]
		}
		order <- b
		jobs <- b
	}
	rev, err := s.st.Snapshot(ctx, func(c authz.Change) error {
		if cur == nil {
			cur = <-free
		}
		cur.offs = append(cur.offs, len(cur.data))
		cur.data = append(cur.data, c.Data...)
		c.Data = nil
		cur.chs = append(cur.chs, c)
		if len(cur.chs) == batchRows || len(cur.data) >= batchBytes {
			flush()
		}
		return nil
	})
	if err == nil && cur != nil {
		flush()
	}
	close(jobs)
	close(order)
	if aerr := <-applied; err == nil {
		err = aerr
	}
	if err != nil {
		return err
	}
	s.idx.SetRevision(rev)
	s.idx.Rebuild()
	s.signal()
	return nil
}

// CatchUp applies the changes the store holds beyond the index's revision.
func (s *Service) CatchUp(ctx context.Context) error {
	s.catchMu.Lock()
	defer s.catchMu.Unlock()
	return s.catchUpLocked(ctx)
}

func (s *Service) catchUpLocked(ctx context.Context) error {
	moved := false
	defer func() {
		if moved {
			s.signal()
		}
	}()
	for {
		chs, err := s.st.ChangesSince(ctx, s.idx.Revision(), catchUpBatch)
		if err != nil {
			return err
		}
		if len(chs) == 0 {
			return nil
		}
		if err := s.idx.Apply(chs...); err != nil {
			return err
		}
		moved = true
		if len(chs) < catchUpBatch {
			return nil
		}
	}
}

// Notify applies a change another replica (or this one) committed, as its
// CHANGES event carries it; a gap is filled from the store.
func (s *Service) Notify(ctx context.Context, ch authz.Change) {
	s.catchMu.Lock()
	defer s.catchMu.Unlock()
	err := s.idx.Apply(ch)
	var gap index.ErrGap
	if errors.As(err, &gap) {
		err = s.catchUpLocked(ctx)
	} else if err == nil {
		s.signal()
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("authz change not applied; the next catch-up retries", zap.Error(err))
	}
}

func (s *Service) signal() {
	s.advMu.Lock()
	close(s.advanced)
	s.advanced = make(chan struct{})
	s.advMu.Unlock()
}

func (s *Service) advancedCh() <-chan struct{} {
	s.advMu.Lock()
	defer s.advMu.Unlock()
	return s.advanced
}

// WaitFor returns once the index has reached rev. It reads the store at
// once, then waits for change events (reading the store again now and then)
// up to the service's MaxWait or ctx's deadline, whichever comes first, and
// then answers FAILED_PRECONDITION REVISION_NOT_REACHED.
func (s *Service) WaitFor(ctx context.Context, rev int64) error {
	if rev <= 0 || s.idx.Revision() >= rev {
		return nil
	}
	// The wait is measured on the real clock (the service's clock may be a
	// test's).
	wait := s.maxWait
	if d, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(d))
	}
	deadline := time.NewTimer(max(wait, 0))
	defer deadline.Stop()
	for {
		ch := s.advancedCh()
		if err := s.CatchUp(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("authz catch-up failed", zap.Error(err))
		}
		have := s.idx.Revision()
		if have >= rev {
			return nil
		}
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return apierr.New(apierr.FailedPrecondition, authz.ReasonRevisionNotReached,
				fmt.Sprintf("this replica is at revision %d and did not reach revision %d before the call's deadline", have, rev))
		case <-deadline.C:
			t.Stop()
			return apierr.New(apierr.FailedPrecondition, authz.ReasonRevisionNotReached,
				fmt.Sprintf("this replica is at revision %d and did not reach revision %d in time; retry", have, rev))
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

// write validates and commits one change: validate sees the index at the
// store's current revision and returns the change (and audit details) to
// commit; a write that lost the race for the next revision is validated
// again against the newer state.
func (s *Service) write(ctx context.Context, api, subject string, validate func() (authz.Change, error)) (authz.Change, error) {
	start := s.now()
	for attempt := 0; attempt < writeAttempts; attempt++ {
		if err := s.CatchUp(ctx); err != nil {
			return authz.Change{}, err
		}
		s.catchMu.Lock()
		expect := s.idx.Revision()
		ch, err := validate()
		if err == nil {
			err = s.ownChange(ctx, ch)
		}
		if err != nil {
			s.catchMu.Unlock()
			s.appendRefusal(ctx, api, subject, err, start, nil)
			return authz.Change{}, err
		}
		ch.Rev = expect + 1
		detail, org := s.describe(ch)
		detail["revision"] = fmt.Sprint(ch.Rev)
		evs := []events.Event{s.changeEvent(ctx, ch),
			s.auditor.Event(ctx, audit.Action{API: api, Subject: subject, Org: org, Result: audit.ResultSuccess, Reason: "OK", Start: start,
				Detail: detail})}
		got, err := s.st.Write(ctx, expect, ch, evs)
		if errors.Is(err, authz.ErrStale) {
			s.catchMu.Unlock()
			continue
		}
		if err != nil {
			s.catchMu.Unlock()
			return authz.Change{}, err
		}
		aerr := s.idx.Apply(got)
		s.catchMu.Unlock()
		if aerr != nil {
			s.log.Warn("authz index: own change not applied", zap.Error(aerr))
		}
		s.signal()
		s.kick()
		return got, nil
	}
	return authz.Change{}, authz.ErrStale
}

// describe is what the audit record of change ch says it changed (the
// operation's description: the role and who it is granted to, a role's
// permissions), read before ch is applied, and the org it concerns (the
// org of the person or group granted, the org granted, the scope), so
// that the administrators of that org find it.
func (s *Service) describe(ch authz.Change) (map[string]string, string) {
	d := map[string]string{}
	org := ""
	grant := func(g authz.Grant) {
		d["grant_id"], d["granted_to"] = g.ID, g.Subject.String()
		if g.Direct() {
			d["permission"], d["app_id"] = g.Permission.String(), g.Permission.App
		} else {
			if r, ok := s.idx.Role(g.Role); ok {
				d["role"] = r.Code
			}
			d["role_id"] = g.Role
		}
		if g.ScopeOrg != "" {
			d["scope_org"] = g.ScopeOrg
		}
		if !g.ValidUntil.IsZero() {
			d["valid_until"] = g.ValidUntil.UTC().Format(time.RFC3339)
		}
		switch g.Subject.Kind {
		case authz.SubjectUser:
			org = s.idx.UserOrg(g.Subject.ID)
		case authz.SubjectGroup:
			org = s.idx.GroupOrg(g.Subject.ID)
		case authz.SubjectOrg:
			org = g.Subject.ID
		}
		if org == "" {
			org = g.ScopeOrg
		}
	}
	switch ch.Obj {
	case authz.ObjGrant:
		var g authz.Grant
		if ch.Op == authz.OpDelete {
			g, _ = s.idx.Grant(ch.ID)
		} else if json.Unmarshal(ch.Data, &g) != nil {
			break
		}
		grant(g)
	case authz.ObjRole:
		var r authz.Role
		if ch.Op == authz.OpDelete {
			r, _ = s.idx.Role(ch.ID)
		} else if json.Unmarshal(ch.Data, &r) != nil {
			break
		}
		d["role"], d["role_id"] = r.Code, r.ID
		if r.App != "" {
			d["app_id"] = r.App
		}
		if ch.Op != authz.OpDelete {
			perms := make([]string, 0, len(r.Permissions))
			for _, p := range r.Permissions {
				perms = append(perms, p.App+":"+p.Resource+":"+p.Operation)
			}
			d["permissions"] = strings.Join(perms, ",")
			if len(d["permissions"]) > 2000 {
				d["permissions"] = d["permissions"][:2000] + fmt.Sprintf("… (%d in all)", len(perms))
			}
			if len(r.Inherits) > 0 {
				d["inherits"] = strings.Join(r.Inherits, ",")
			}
		}
	}
	return d, org
}

// AuditCallerDenied records an application caller this component refused
// itself (its rate or concurrency limit: identity records the refusals of
// the credentials it checks), as caller.denied like identity's records, so
// the real-time alert sees them too.
func (s *Service) AuditCallerDenied(ctx context.Context, appID string, err *apierr.Error, start time.Time) {
	ev := s.auditor.CallerDenied(ctx, appID, err.Reason, start)
	if w, ok := s.st.(interface {
		AppendEvents(ctx context.Context, evs []events.Event) error
	}); ok {
		if aerr := w.AppendEvents(ctx, []events.Event{ev}); aerr != nil {
			s.log.Warn("audit record of a refused caller not stored", zap.Error(aerr))
		}
	}
	s.kick()
}

// appendRefusal records a refused write or administrative action in the
// audit log (best effort); a refusal of an administrator's permission
// keeps its sentence (detail "why").
func (s *Service) appendRefusal(ctx context.Context, api, subject string, err error, start time.Time, detail map[string]string) {
	reason := "ERROR"
	if ae, ok := apierr.As(err); ok {
		reason = ae.Reason
		if ae.Code == apierr.Unavailable || ae.Code == apierr.Internal {
			return
		}
		if ae.Code == apierr.PermissionDenied {
			if detail == nil {
				detail = map[string]string{}
			}
			detail["why"] = ae.Message
		}
	}
	ev := s.auditor.Event(ctx, audit.Action{API: api, Subject: subject, Result: audit.ResultDenied, Reason: reason, Start: start, Detail: detail})
	// A refusal changes nothing; it goes to the outbox alone through a
	// write that does not move the revision.
	if w, ok := s.st.(interface {
		AppendEvents(ctx context.Context, evs []events.Event) error
	}); ok {
		if aerr := w.AppendEvents(ctx, []events.Event{ev}); aerr != nil {
			s.log.Warn("audit record of a refused change not stored", zap.Error(aerr))
		}
	}
	s.kick()
}

// ChangePayload is the JSON payload of an authz CHANGES event.
type ChangePayload struct {
	authz.Change
	Actor string    `json:"actor"`
	Time  time.Time `json:"time"`
}

func (s *Service) changeEvent(ctx context.Context, ch authz.Change) events.Event {
	t := s.now().UTC()
	payload, _ := json.Marshal(ChangePayload{Change: ch, Actor: caller.From(ctx).Actor(), Time: t})
	return events.Event{ID: ids.New(), Subject: ChangesSubjectPrefix + ch.Obj + "." + ch.Op,
		Type: "authz." + ch.Obj + "." + ch.Op, Time: t, Payload: payload}
}

// ParseChange reads the change carried by an authz CHANGES event payload.
func ParseChange(payload []byte) (authz.Change, error) {
	var p ChangePayload
	if err := json.Unmarshal(payload, &p); err != nil {
		return authz.Change{}, err
	}
	if p.Rev <= 0 || p.Obj == "" || p.Op == "" {
		return authz.Change{}, errors.New("authz change event without revision or object")
	}
	return p.Change, nil
}

func put(obj, id string, v any) (authz.Change, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return authz.Change{}, err
	}
	return authz.Change{Obj: obj, Op: authz.OpPut, ID: id, Data: b}, nil
}
