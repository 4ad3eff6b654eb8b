package sync

import (
	"context"
	"time"

	"github.com/uias/uias/pkg/events"
)

// Store keeps the replica, the applied event ids, the skipped changes and
// the cursor of each link. Errors are pkg/store's classes (domain errors).
type Store interface {
	// Apply applies the items of link in order, in one transaction, with
	// Decide, records the applied event ids and the skipped changes (and
	// each CONFLICT among a change's Objects), marks the open conflicts of
	// the same origin that an applied change's APPLIED objects settle as
	// resolved, and moves the link's cursor to the last item's Seq. Items at or below the
	// cursor were applied before (a redelivery) and are left out. It
	// returns the outcome of each item (empty for those left out).
	Apply(ctx context.Context, link string, items []Item, now time.Time) ([]Outcome, error)
	// Cursor returns link's cursor (zero for a link never applied).
	Cursor(ctx context.Context, link string) (Cursor, error)
	// Cursors returns every link's cursor, by link name.
	Cursors(ctx context.Context) ([]Cursor, error)
	// Object returns the replica of one object (store.ErrNotFound if none).
	Object(ctx context.Context, kind, id string) (*Object, error)
	// ListSkipped lists the skipped changes f selects, newest first, a
	// page at a time.
	ListSkipped(ctx context.Context, f SkippedFilter, size int, token string) ([]Skipped, string, error)
	// OpenConflicts counts the conflicts not resolved, by origin.
	OpenConflicts(ctx context.Context) (map[string]int64, error)
	// ResolveConflicts marks the open conflicts of event eventID (only
	// the one of object when not empty) resolved at at by by, and returns
	// how many (store.ErrNotFound when none). The event record makes
	// (nil: none) is kept in the same transaction, also when none was
	// open (its audit record, relayed from the store's outbox).
	ResolveConflicts(ctx context.Context, eventID, object, by string, at time.Time, record ResolveRecord) (int64, error)
	// Digest returns a digest of each replica table (objects, applied)
	// over the rows f selects.
	Digest(ctx context.Context, f DigestFilter) ([]TableDigest, error)
	// Ping checks that the store answers.
	Ping(ctx context.Context) error
}

// DigestFilter selects the rows of a digest: those whose home (origin) is
// one of Homes and whose kind starts with one of KindPrefixes (each empty:
// all).
type DigestFilter struct {
	Homes        []string
	KindPrefixes []string
}

// ResolveRecord makes the event that records a resolution by hand: n
// conflicts resolved, or err (store.ErrNotFound: none open).
type ResolveRecord func(n int64, err error) events.Event
