package commands

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/authz"
)

// Watching separation of duty (review sec13 M2, sec14 M1). Every grant,
// membership and move made here is judged before it is written, and so
// are those of other centres; but a membership and a grant of another
// centre that arrive together are judged each without the other, and can
// give a person both roles of a pair. WatchSeparation looks for such
// people now and then and reports each once: a warning in the log and an
// audit record (authz.sod_breach), so that an administrator revokes one of
// the roles.

// SeparationBreach is a pair someone holds both roles of.
type SeparationBreach struct {
	Exclusion authz.Exclusion
	Person    string
}

// maxBreachesPerPair bounds the people reported for one exclusion in one
// scan (the rest are counted in the log).
const maxBreachesPerPair = 100

// SeparationBreaches returns, for each exclusion, the people holding both
// of its roles (by id; at most maxBreachesPerPair of them, review sec15:
// one person named per pair hid every later breach of it).
func (s *Service) SeparationBreaches() []SeparationBreach {
	var out []SeparationBreach
	excls := s.idx.Exclusions()
	pairs := make([][2]string, len(excls))
	for i, e := range excls {
		pairs[i] = [2]string{e.RoleA, e.RoleB}
	}
	holders := s.idx.HoldersOfPairs(pairs, s.now())
	for i, e := range excls {
		who := holders[i]
		if len(who) > maxBreachesPerPair {
			s.log.Warn("many people hold both roles of a separation-of-duty pair: the first are reported",
				zap.String("exclusion", e.ID), zap.Int("people", len(who)), zap.Int("reported", maxBreachesPerPair))
			who = who[:maxBreachesPerPair]
		}
		for _, p := range who {
			out = append(out, SeparationBreach{Exclusion: e, Person: p})
		}
	}
	return out
}

// DefaultSeparationWatch is how often WatchSeparation looks.
const DefaultSeparationWatch = 5 * time.Minute

// WatchSeparation runs ScanSeparation every every until ctx ends, once
// ready is closed.
func (s *Service) WatchSeparation(ctx context.Context, ready <-chan struct{}, every time.Duration) {
	select {
	case <-ctx.Done():
		return
	case <-ready:
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.ScanSeparation(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ScanSeparation reports each breach (a pair and a person) not reported
// since it began, and returns how many it reported. What was reported is
// kept in the store (RecordBreaches), so that the instances of authz
// report a breach once between them, and not again after a restart; an
// instance whose index is behind the others' may see a breach end early
// and another report it again.
func (s *Service) ScanSeparation(ctx context.Context) int {
	s.breachMu.Lock()
	defer s.breachMu.Unlock()
	found := s.SeparationBreaches()
	now := make([]authz.Breach, len(found))
	byKey := make(map[authz.Breach]SeparationBreach, len(found))
	for i, b := range found {
		now[i] = authz.Breach{Exclusion: b.Exclusion.ID, Person: b.Person}
		byKey[now[i]] = b
	}
	added, err := s.st.RecordBreaches(ctx, now, s.now(), func(k authz.Breach) []events.Event {
		return []events.Event{s.breachRecord(ctx, byKey[k])}
	})
	if err != nil {
		s.log.Warn("separation-of-duty breaches not recorded; reported at the next scan", zap.Error(err))
		return 0
	}
	for _, k := range added {
		s.log.Warn("a person holds both roles of a separation-of-duty pair (a membership and a grant of another centre "+
			"that arrived together, or an older breach): revoke one of the roles", zap.String("user_id", k.Person),
			zap.String("exclusion", k.Exclusion))
	}
	if len(added) > 0 {
		s.kick()
	}
	return len(added)
}

// breachRecord is the audit record of breach b.
func (s *Service) breachRecord(ctx context.Context, b SeparationBreach) events.Event {
	msg := "a separation-of-duty pair"
	if ae, ok := apierr.As(sodConflict(s.idx, b.Exclusion)); ok {
		msg = ae.Message
	}
	return s.auditor.Event(ctx, audit.Action{API: "authz.sod_breach", Subject: "user:" + b.Person, Result: audit.ResultFailure,
		Reason: "SOD_CONFLICT", Start: s.now(), Detail: map[string]string{"exclusion": b.Exclusion.ID, "why": msg}})
}
