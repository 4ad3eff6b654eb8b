package analytics

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/uias/uias/services/audit"
)

// SessionSource lists the people with a live SSO session: the ticket
// component's sessions (the component package asks it over gRPC).
type SessionSource interface {
	// Online returns the people with a live session, each once with their
	// latest session (Time: when it started; AppID: the application that
	// last received a ticket in it), the latest started first; at most
	// limit of them, more reporting that there were more. An error wrapping
	// ErrNoSessions means the sessions cannot be asked (no ticket
	// component, or it does not answer).
	Online(ctx context.Context, limit int) (people []LastSeen, more bool, err error)
}

// ErrNoSessions: the ticket component's sessions cannot be asked; Online
// answers from the audit log instead.
var ErrNoSessions = errors.New("the SSO sessions cannot be asked")

// Online is who is online now and where that comes from.
type Online struct {
	// Source: SourceTicket (live SSO sessions) or SourceLogins (recent
	// logins in the audit log).
	Source    string
	People    []LastSeen
	Truncated bool
}

// OnlineNow lists the people online now: those with a live SSO session of
// the ticket component when it can be asked (and fromLogins is false),
// else OnlineFromLogins over window.
func (a *Analytics) OnlineNow(ctx context.Context, scope audit.Scope, window time.Duration, limit int, fromLogins bool) (Online, error) {
	if a.sessions != nil && !fromLogins {
		on, err := a.onlineFromSessions(ctx, scope, limit)
		if err == nil && len(a.peerOrigins) > 0 {
			err = a.addPeerLogins(ctx, scope, window, limit, &on)
		}
		if !errors.Is(err, ErrNoSessions) {
			return on, err
		}
	}
	people, truncated, err := a.OnlineFromLogins(ctx, scope, window, limit)
	return Online{Source: SourceLogins, People: people, Truncated: truncated}, err
}

// onlineFromSessions is OnlineNow from the ticket component's sessions,
// restricted to scope.
func (a *Analytics) onlineFromSessions(ctx context.Context, scope audit.Scope, limit int) (Online, error) {
	f, err := scoped(scope, Filter{})
	if err != nil {
		return Online{}, err
	}
	if limit, err = limitOf(limit, DefaultOnlineLimit); err != nil {
		return Online{}, err
	}
	ask := limit
	if f.Orgs != nil {
		ask = MaxLimit * 10 // filtered here: read more
	}
	people, more, err := a.sessions.Online(ctx, ask)
	if err != nil {
		return Online{}, err
	}
	if f.Orgs != nil {
		people = slices.DeleteFunc(people, func(l LastSeen) bool { return !slices.Contains(f.Orgs, l.Org) })
	}
	if len(people) > limit {
		people, more = people[:limit], true
	}
	return Online{Source: SourceTicket, People: people, Truncated: more}, nil
}

// addPeerLogins adds to on the people online by the logins of the level-2
// centres' logs received here (their sessions are at their own centre),
// each person once.
func (a *Analytics) addPeerLogins(ctx context.Context, scope audit.Scope, window time.Duration, limit int, on *Online) error {
	have := make(map[string]bool, len(on.People))
	for _, p := range on.People {
		have[p.Subject] = true
	}
	for _, origin := range a.peerOrigins {
		people, more, err := a.onlineFromLogins(ctx, scope, window, limit, origin)
		if err != nil {
			return err
		}
		on.Truncated = on.Truncated || more
		// a peer's log speaks only of its own people (sec28b M1)
		ids := make([]string, 0, len(people))
		for _, p := range people {
			ids = append(ids, UserID(p.Subject))
		}
		homes, err := a.homeOrigins(ctx, ids)
		if errors.Is(err, ErrNoHomes) {
			return nil // not counted: the source stays "ticket"
		}
		if err != nil {
			return err
		}
		for _, p := range people {
			if homes[UserID(p.Subject)] != origin {
				continue
			}
			if !have[p.Subject] {
				have[p.Subject] = true
				on.People = append(on.People, p)
			}
		}
	}
	on.Source = SourceTicketAndLogins
	if l, err := limitOf(limit, DefaultOnlineLimit); err == nil && len(on.People) > l {
		on.People, on.Truncated = on.People[:l], true
	}
	return nil
}
