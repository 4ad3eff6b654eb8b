package audit

import (
	"context"
	"strings"

	pkgaudit "github.com/uias/uias/pkg/audit"
)

// Names gives the names of people for display (the maritime design's audit
// log shows the "administrator name", 004 2.1.7): by user id, "login
// (Display Name)". The component answers from identity; an id identity no
// longer knows is left out.
type Names interface {
	PersonNames(ctx context.Context, userIDs []string) (map[string]string, error)
}

// ActorNames returns the names of the people among recs' actors
// ("user:<id>") by actor, as identity knows them now, best effort: nil
// when names is nil or cannot answer. ActorName gives each record's.
func ActorNames(ctx context.Context, names Names, recs []Record) map[string]string {
	actors := make([]string, len(recs))
	for i := range recs {
		actors[i] = recs[i].Actor
	}
	return SubjectNames(ctx, names, actors)
}

// PeopleNames is ActorNames of recs' actors and subjects both (one
// question to identity).
func PeopleNames(ctx context.Context, names Names, recs []Record) map[string]string {
	people := make([]string, 0, 2*len(recs))
	for i := range recs {
		people = append(people, recs[i].Actor, recs[i].Subject)
	}
	return SubjectNames(ctx, names, people)
}

// SubjectNames returns the names of the people among subjects
// ("user:<id>"; others are skipped) by subject, as identity knows them
// now, best effort: nil when names is nil or cannot answer.
func SubjectNames(ctx context.Context, names Names, subjects []string) map[string]string {
	if names == nil {
		return nil
	}
	var ids []string
	seen := map[string]bool{}
	for _, s := range subjects {
		if id, ok := strings.CutPrefix(s, "user:"); ok && id != "" && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	byID, err := names.PersonNames(ctx, ids)
	if err != nil {
		return nil
	}
	out := make(map[string]string, len(byID))
	for id, n := range byID {
		// shown in reports and files: escaped as every caller text in a
		// record (a bidi override in a display name reorders nothing)
		out["user:"+id] = pkgaudit.Text(n)
	}
	return out
}

// ActorName is the name shown for rec's actor: as identity knows them now
// (live, from ActorNames), after the login name the record kept when it
// was written (detail actor_login) if they were renamed since; that login
// alone for a person identity no longer knows (deleted) or when identity
// did not answer. "" when there is neither (a record is shown without the
// name rather than not at all).
func ActorName(live map[string]string, rec *Record) string {
	n, k := live[rec.Actor], rec.Detail[DetailActorLogin]
	if !strings.HasPrefix(rec.Actor, "user:") {
		k = "" // only a person's record keeps their login
	}
	switch {
	case n == "":
		return k
	case k == "" || n == k || strings.HasPrefix(n, k+" ("):
		return n
	}
	return k + " (now " + n + ")"
}

// DetailActorLogin is the detail key under which a record keeps its
// actor's login name as it was (pkg/audit.DetailActorLogin).
const DetailActorLogin = "actor_login"
