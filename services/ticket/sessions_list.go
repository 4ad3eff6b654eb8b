package ticket

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/store"
)

// SessionLister is a Store that can list every stored session (the
// kvstore does: one pass over its sessions bucket).
type SessionLister interface {
	// AllSessions calls fn for every stored session, in no order. Some
	// may have ended since (the caller checks their expiry).
	AllSessions(ctx context.Context, fn func(*Session) error) error
}

// Page sizes of ListSessions.
const (
	DefaultSessionPage = 100
	MaxSessionPage     = 1000
)

// SessionQuery selects live sessions for ListSessions.
type SessionQuery struct {
	// Orgs: only the sessions whose OrgID is one of them (nil: every
	// session; empty and not nil: none).
	Orgs map[string]bool
	// UserID: only this person's sessions ("": everyone's).
	UserID string
	// PageSize (0: DefaultSessionPage) and PageToken (from the previous
	// page).
	PageSize  int
	PageToken string
}

// SessionIndexer is a Store that keeps a SessionIndex of the live
// sessions (the kvstore does, from a watch of its sessions bucket).
type SessionIndexer interface {
	// LiveSessions returns the index, nil until it has been loaded.
	LiveSessions() *SessionIndex
}

// ListSessions returns a page of the live sessions matching q, the latest
// started first (then by id), and the next page's token ("" after the
// last page). Pages are keyset pages on (start, id): a session started or
// ended between two pages neither shifts nor repeats the others. The
// store's SessionIndex answers when it has one (a page costs what it
// returns); else every stored session is read.
func (s *Service) ListSessions(ctx context.Context, q SessionQuery) ([]*Session, string, error) {
	switch {
	case q.PageSize < 0 || q.PageSize > MaxSessionPage:
		return nil, "", apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest,
			fmt.Sprintf("page_size must be between 0 and %d", MaxSessionPage))
	case q.PageSize == 0:
		q.PageSize = DefaultSessionPage
	}
	after, err := store.PageAfter(q.PageToken)
	if err != nil {
		return nil, "", err
	}
	var from *sessionKey
	if after != "" {
		ns, id, found := strings.Cut(after, ":")
		n, err := strconv.ParseInt(ns, 10, 64)
		if !found || err != nil || id == "" {
			return nil, "", store.ErrBadPageToken
		}
		from = &sessionKey{ns: n, id: id}
	}
	var (
		list []*Session
		more bool
	)
	var idx *SessionIndex
	if ix, ok := s.store.(SessionIndexer); ok {
		idx = ix.LiveSessions()
	}
	if idx != nil {
		list, more = idx.page(q, from, s.now(), s.cfg.TGTIdle, q.PageSize)
	} else if list, more, err = s.scanSessions(ctx, q, from); err != nil {
		return nil, "", err
	}
	next := ""
	if more {
		last := list[len(list)-1]
		next = store.PageToken(fmt.Sprintf("%d:%s", last.CreatedAt.UnixNano(), last.ID))
	}
	return list, next, nil
}

// scanSessions is ListSessions' page read from every stored session.
func (s *Service) scanSessions(ctx context.Context, q SessionQuery, from *sessionKey) ([]*Session, bool, error) {
	l, ok := s.store.(SessionLister)
	if !ok {
		return nil, false, apierr.New(apierr.Unimplemented, "UNIMPLEMENTED", "this ticket store cannot list sessions")
	}
	now := s.now()
	var list []*Session
	err := l.AllSessions(ctx, func(sess *Session) error {
		switch {
		case !now.Before(sess.Expiry(s.cfg.TGTIdle)),
			q.UserID != "" && sess.UserID != q.UserID,
			q.Orgs != nil && !q.Orgs[sess.OrgID],
			from != nil && !stored(keyOfSession(sess), *from): // on an earlier page
			return nil
		}
		list = append(list, sess)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	slices.SortFunc(list, func(a, b *Session) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	if len(list) > q.PageSize {
		return list[:q.PageSize], true, nil
	}
	return list, false, nil
}

// AppIDs are the applications whose services received a ticket in the
// session, the latest first, each once.
func (s *Session) AppIDs() []string {
	var out []string
	for i := len(s.Services) - 1; i >= 0; i-- {
		if id := s.Services[i].AppID; id != "" && !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}
