package sqlstore

import (
	"context"
	"errors"
	"strings"

	"github.com/uias/uias/pkg/store"
)

// withinCond is the condition "col lies in the subtree of one of orgs"
// for an org path column col (the orgs themselves included), for the
// listings of a unit administrator (the filters' Within). An org that no
// longer exists limits to nothing.
func (s *Store) withinCond(ctx context.Context, orgs []string, col string) (string, []any, error) {
	var conds []string
	var args []any
	for _, id := range orgs {
		o, err := s.getOrg(ctx, s.db, id, "")
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", nil, err
		}
		lo, hi := subtreeRange(o.Path)
		conds = append(conds, "("+col+" >= ? AND "+col+" < ?)")
		args = append(args, lo, hi)
	}
	if len(conds) == 0 {
		return "1 = 0", nil, nil
	}
	return "(" + strings.Join(conds, " OR ") + ")", args, nil
}

// withinSubtree is the path range [lo, hi) of the org of a Within that
// names one org (a unit administrator's usual listing): such a listing
// walks that subtree in path order, as a Subtree filter does, instead of
// filtering the table and sorting the matches. one is false when orgs is
// not one org; an org that no longer exists gives an empty range.
func (s *Store) withinSubtree(ctx context.Context, orgs []string) (lo, hi string, one bool, err error) {
	if len(orgs) != 1 {
		return "", "", false, nil
	}
	o, err := s.getOrg(ctx, s.db, orgs[0], "")
	if errors.Is(err, store.ErrNotFound) {
		return "", "", true, nil
	}
	if err != nil {
		return "", "", true, err
	}
	lo, hi = subtreeRange(o.Path)
	return lo, hi, true, nil
}

// within limits l to orgs' subtrees: col is l's org path column.
func (s *Store) within(ctx context.Context, l *listing, orgs []string, col string) error {
	if len(orgs) == 0 {
		return nil
	}
	cond, args, err := s.withinCond(ctx, orgs, col)
	if err != nil {
		return classify(err, l.op, "org")
	}
	l.w.Add(cond, args...)
	return nil
}
