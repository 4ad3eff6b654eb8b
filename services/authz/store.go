package authz

import (
	"cmp"
	"context"
	"strings"
	"time"

	"github.com/uias/uias/pkg/events"
)

// Store keeps the authz objects (resources, roles, grants, exclusions) and
// the change log, with the revision counter. Writes are serialised by the
// revision: Write succeeds only when the stored revision is still the one
// the caller validated against, so every change is checked against the
// state it applies to (optimistic concurrency), and revisions have no gaps.
type Store interface {
	// Write commits ch in one transaction: moves the revision from expect
	// to expect+1 (ErrStale when it is no longer expect), puts (ch.Data) or
	// deletes (store.ErrNotFound when missing) the object ch.Obj/ch.ID,
	// appends ch to the change log with Rev expect+1, and adds evs to the
	// events outbox. It returns ch with its Rev.
	Write(ctx context.Context, expect int64, ch Change, evs []events.Event) (Change, error)
	// DeleteGrantsOf deletes, in one transaction and in the order of ids,
	// each grant of ids whose subject is sub (a person or group deleted in
	// identity): each delete moves the revision on by one from expect
	// (ErrStale, nothing committed, when the revision is no longer
	// expect), is appended to the change log and has evs(change) added to
	// the events outbox. An id not held, not a grant, or a grant to
	// another subject is left alone and takes no revision, so deleting
	// again deletes nothing. It returns the committed deletes (with their
	// revisions) in order. The caller names the grants (from its index at
	// expect) so the store needs no search of its grants by subject.
	DeleteGrantsOf(ctx context.Context, expect int64, sub Subject, ids []string,
		evs func(Change) []events.Event) ([]Change, error)
	// WriteBatch commits chs in one transaction as Write would commit them
	// one after the other: the revision moves from expect to
	// expect+len(chs) (ErrStale when it is no longer expect), chs[i] is
	// written with Rev expect+1+i, and evs go to the outbox; a delete of
	// an object not held fails the whole batch (store.ErrNotFound). It
	// returns chs with their Revs; an empty chs writes nothing.
	WriteBatch(ctx context.Context, expect int64, chs []Change, evs []events.Event) ([]Change, error)
	// Revision is the revision of the last committed change (0: none).
	Revision(ctx context.Context) (int64, error)
	// ChangesSince returns up to limit changes with Rev > rev, in order.
	ChangesSince(ctx context.Context, rev int64, limit int) ([]Change, error)
	// Snapshot calls fn with every stored object as a put change (Rev 0):
	// resources, roles, exclusions, then grants; and returns the revision
	// the objects are at, read consistently with them. A change's Data is
	// valid only until fn returns (fn copies what it keeps).
	Snapshot(ctx context.Context, fn func(Change) error) (int64, error)
	// RecordBreaches records the separation-of-duty breaches that stand
	// now (the whole set a scan found), so that each is reported once
	// while it stands, whichever instance scans and across restarts: in
	// one transaction it forgets the breaches recorded before that are not
	// in now, records those of now not recorded yet, adds evs(b) of each
	// of those to the events outbox, and returns them. Of two instances
	// recording the same breach at once, one records it.
	RecordBreaches(ctx context.Context, now []Breach, at time.Time, evs func(Breach) []events.Event) ([]Breach, error)
	// Ping checks the store answers.
	Ping(ctx context.Context) error
}

// Breach is a person holding both roles of a separation-of-duty pair
// (the exclusion's id).
type Breach struct {
	Exclusion, Person string
}

// CompareBreaches orders breaches by exclusion, then person.
func CompareBreaches(a, b Breach) int {
	return cmp.Or(strings.Compare(a.Exclusion, b.Exclusion), strings.Compare(a.Person, b.Person))
}
