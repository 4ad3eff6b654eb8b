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
		last, err := a.st.LatestPerSubject(ctx, pf, time.Time{}, len(page))
		if err != nil {
			return err
		}
		seen := make(map[string]LastSeen, len(last))
		for _, l := range last {
			seen[l.Subject] = l
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
