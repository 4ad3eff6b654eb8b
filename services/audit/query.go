package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/uias/uias/pkg/apierr"
)

// Query selects audit records, newest first. Empty fields do not filter.
type Query struct {
	From, To time.Time // time range [From, To)
	Actor    string    // exact, e.g. "user:<id>", "app:<App_ID>"
	Subject  string    // exact, e.g. "user:<id>"
	AppID    string
	API      string // the event type: the API id (authenticate, admin.login, ...)
	Result   string // success, failure, denied, ...
	ClientIP string
	// Text matches records whose subject, actor, reason or detail
	// contain it (case-insensitive), e.g. a login name.
	Text string
	// Orgs restricts the records to these orgs (set from the caller's
	// scope, never by the caller).
	Orgs []string
	// Origin restricts the records to one log (audit.origin of a centre,
	// ADR 0029); empty: every origin held (at level 1 its own and its
	// level-2 centres', elsewhere its own).
	Origin string
	// PageSize is at most MaxPageSize (0: DefaultPageSize); PageToken
	// continues a previous query.
	PageSize  int
	PageToken string
}

// Page sizes of Query.
const (
	DefaultPageSize = 50
	MaxPageSize     = 1000
)

// QueryStore is what Search needs of the store.
type QueryStore interface {
	// QueryRecords returns a page of records matching q (already checked),
	// newest first (time, then log order), and the token of the next page
	// ("" on the last one).
	QueryRecords(ctx context.Context, q Query) ([]Record, string, error)
}

// Search runs q within scope.
func Search(ctx context.Context, st QueryStore, scope Scope, q Query) ([]Record, string, error) {
	q, err := scoped(scope, q)
	if err != nil {
		return nil, "", err
	}
	switch {
	case q.PageSize < 0 || q.PageSize > MaxPageSize:
		return nil, "", apierr.New(apierr.InvalidArgument, apierr.ReasonBadRequest,
			fmt.Sprintf("page_size must be between 0 and %d", MaxPageSize))
	case q.PageSize == 0:
		q.PageSize = DefaultPageSize
	}
	return st.QueryRecords(ctx, q)
}
