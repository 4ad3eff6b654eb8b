package identity

import "context"

type withinKey struct{}

// WithinOrgs returns ctx limiting the listings made with it (ListOrgs,
// ListUsers, ListGroups, ListLinks) to the subtrees of orgs: the listing of
// a unit administrator that names no org shows what they administer, not
// everything. No orgs: no limit.
func WithinOrgs(ctx context.Context, orgs []string) context.Context {
	if len(orgs) == 0 {
		return ctx
	}
	return context.WithValue(ctx, withinKey{}, orgs)
}

// withinOf returns the orgs WithinOrgs put in ctx, or add when none (a
// filter's own Within).
func withinOf(ctx context.Context, add []string) []string {
	if w, _ := ctx.Value(withinKey{}).([]string); len(w) > 0 {
		return w
	}
	return add
}
