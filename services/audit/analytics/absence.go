package analytics

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/uias/uias/services/audit"
)

// Person is an active person of the identity component.
type Person struct {
	ID, Login, Org string
	// Home is the origin of the peer log whose logins count for this
	// person (the log of the level-2 centre they are homed at; "": only
	// this centre's own log's, sec28b M1).
	Home string
	// Created: when the account was made (zero: unknown).
	Created time.Time
}

// PeopleSource lists the active people of the identity component (the
// component package asks it over gRPC, with the caller's token).
type PeopleSource interface {
	// People calls fn with each page of the active people (of the orgs
	// orgs, each alone: a scope lists every org of the caller's subtrees;
	// nil: everyone). An error wrapping ErrNoPeople means identity cannot
	// be asked.
	People(ctx context.Context, orgs []string, fn func([]Person) error) error
}

// PersonScope is what a PeopleSource may also answer: whether person
// userID belongs to one of orgs (a unit administrator's scope). MayRead
// returns audit.ErrPersonOutOfScope for a person of another org, nil
// otherwise (a person identity no longer knows, or identity not
// answering, is left to the scoped filter, which shows no record out of
// scope).
type PersonScope interface {
	MayRead(ctx context.Context, userID string, orgs []string) error
}

// ErrNoPeople: the identity component's people cannot be asked; absence
// then knows only the people with a stored login.
var ErrNoPeople = errors.New("the people of the identity component cannot be asked")

// Absence sources.
const (
	// SourceIdentity: every active person of the identity component, with
	// their last login from the audit log (people who never logged in
	// included).
	SourceIdentity = "identity"
)

// Absences is an absence report.
type Absences struct {
	// Source: SourceIdentity, or SourceLogins (only the people with a
	// stored login, when identity cannot be asked).
	Source    string
	People    []Absence
	Truncated bool
}

// AbsenceReport lists the active people who have not logged in
// successfully for more than days days: those who never did (and whose
// account is older than that) first, oldest account first, then the
// longest absent first. The people come from the identity component when
// it can be asked, else only people with a stored login are known
// (Absences).
func (a *Analytics) AbsenceReport(ctx context.Context, scope audit.Scope, days, limit int) (Absences, error) {
	if a.people != nil {
		r, err := a.absencesOfPeople(ctx, scope, days, limit)
		if !errors.Is(err, ErrNoPeople) {
			return r, err
		}
	}
	abs, truncated, err := a.Absences(ctx, scope, days, limit)
	return Absences{Source: SourceLogins, People: abs, Truncated: truncated}, err
}

// absencesOfPeople is AbsenceReport over the identity component's people:
// for each page of people, one question to the store for their latest
// successful logins.
func (a *Analytics) absencesOfPeople(ctx context.Context, scope audit.Scope, days, limit int) (Absences, error) {
	if days < 1 || days > MaxAbsenceDays {
		return Absences{}, badRequest(fmt.Sprintf("days must be between 1 and %d", MaxAbsenceDays))
	}
	f, err := scoped(scope, Filter{APIs: LoginAPIs, Results: []string{ResultSuccess}})
	if err != nil {
		return Absences{}, err
	}
	if limit, err = limitOf(limit, DefaultLimit); err != nil {
		return Absences{}, err
	}
	now := a.now()
	cutoff := now.Add(-time.Duration(days) * 24 * time.Hour)
	var out []Absence
	truncated := false
	// keep the limit longest absent (never logged in first)
	keep := func() {
		slices.SortFunc(out, longestAbsentFirst)
		if len(out) > limit {
			out, truncated = out[:limit], true
		}
	}
	err = a.people.People(ctx, f.Orgs, func(page []Person) error {
		if len(page) == 0 {
			return nil
		}
		pf := f
		pf.Orgs = nil // the people are in scope already; their logins may name another org
		pf.Subjects = make([]string, len(page))
		for i, p := range page {
			pf.Subjects[i] = UserSubject(p.ID)
		}
		seen, err := a.latestLogins(ctx, pf, page)
		if err != nil {
			return err
		}
		for _, p := range page {
			l, ok := seen[UserSubject(p.ID)]
			switch {
			case ok && l.Time.Before(cutoff):
				l.Org = p.Org
				out = append(out, Absence{LastSeen: l, Days: int(now.Sub(l.Time) / (24 * time.Hour)), Login: p.Login})
			case !ok && (p.Created.IsZero() || p.Created.Before(cutoff)):
				ab := Absence{LastSeen: LastSeen{Subject: UserSubject(p.ID), Org: p.Org}, Never: true, Created: p.Created, Login: p.Login}
				if !p.Created.IsZero() {
					ab.Days = int(now.Sub(p.Created) / (24 * time.Hour))
				}
				out = append(out, ab)
			}
		}
		if len(out) > 4*limit {
			keep()
		}
		return nil
	})
	if err != nil {
		return Absences{}, err
	}
	keep()
	return Absences{Source: SourceIdentity, People: out, Truncated: truncated}, nil
}

// longestAbsentFirst orders absences: never logged in first (oldest
// account first), then the oldest last login first, then by subject.
func longestAbsentFirst(x, y Absence) int {
	switch {
	case x.Never && !y.Never:
		return -1
	case !x.Never && y.Never:
		return 1
	case x.Never:
		if c := x.Created.Compare(y.Created); c != 0 {
			return c
		}
	default:
		if c := x.Time.Compare(y.Time); c != 0 {
			return c
		}
	}
	return cmp.Compare(x.Subject, y.Subject)
}

// HomeSource is what a PeopleSource may also answer (review sec28b M1):
// the origin of the peer log that may speak of each person's logins, the
// log of the level-2 centre the person is homed at ("" or absent: none, a
// person homed here or at a centre whose log is not received).
type HomeSource interface {
	HomeOrigins(ctx context.Context, userIDs []string) (map[string]string, error)
}

// ErrNoHomes: with peer logs received, the people's homes cannot be
// asked: a peer log's logins would be counted for anyone it names.
var ErrNoHomes = errors.New("the people's home centres cannot be asked: the logins of the level-2 centres' logs are not counted")

// homeOrigins asks the people source for the home origins of userIDs
// (ErrNoHomes when it cannot tell).
func (a *Analytics) homeOrigins(ctx context.Context, userIDs []string) (map[string]string, error) {
	hs, ok := a.people.(HomeSource)
	if !ok {
		return nil, ErrNoHomes
	}
	return hs.HomeOrigins(ctx, userIDs)
}

// mayTell reports whether a record of log origin may speak of the login
// of a person whose home origin is home: this centre's own log speaks of
// everyone, a peer's log only of the people homed at that peer (a level-2
// centre signs what it logs, so its records verify whatever they say).
func (a *Analytics) mayTell(origin, home string) bool {
	if !slices.Contains(a.peerOrigins, origin) {
		return true
	}
	return origin == home
}

// latestLogins returns the latest login of f of each person of page, by
// subject. With peer logs received, this centre's own log is asked for
// everyone and each peer's log only for the people homed at that peer
// (sec28b M1): a level-2 centre's records of anyone else's logins are not
// counted.
func (a *Analytics) latestLogins(ctx context.Context, f Filter, page []Person) (map[string]LastSeen, error) {
	byOrigin := map[string][]string{}
	if len(a.peerOrigins) == 0 {
		byOrigin[""] = f.Subjects
	} else {
		byOrigin[a.localOrigin] = f.Subjects
		for _, p := range page {
			if p.Home != "" && p.Home != a.localOrigin && slices.Contains(a.peerOrigins, p.Home) {
				byOrigin[p.Home] = append(byOrigin[p.Home], UserSubject(p.ID))
			}
		}
	}
	seen := make(map[string]LastSeen, len(page))
	for origin, subjects := range byOrigin {
		of := f
		of.Origin, of.Subjects = origin, subjects
		last, err := a.st.LatestPerSubject(ctx, of, time.Time{}, len(subjects))
		if err != nil {
			return nil, err
		}
		for _, l := range last {
			if old, ok := seen[l.Subject]; !ok || l.Time.After(old.Time) {
				seen[l.Subject] = l
			}
		}
	}
	return seen, nil
}
