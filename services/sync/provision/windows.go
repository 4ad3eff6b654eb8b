package provision

import (
	"context"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// SweepGrantWindows enqueues, in tx, for each grant whose validity window
// started or ended after after and at upTo or before (authz's valid_from,
// valid_until: the role is granted from, or no more from, that time), an
// upsert of each selected person it reaches and then of the role, to the
// role application's immediate subscriptions that deliver roles: the
// people with the roles they hold now, the role with its holders now
// (review sec27b M2). The deliveries' event id is
// "window:<grant id>:<ms>", so a sweep run twice (two processes) adds
// nothing twice. It returns how many deliveries it added.
func SweepGrantWindows(tx Tx, subs []*Subscription, after, upTo time.Time) (int, error) {
	crossing, err := tx.GrantsCrossing(after, upTo)
	if err != nil || len(crossing) == 0 {
		return 0, err
	}
	q := &enqueuer{tx: tx, now: upTo}
	for _, g := range crossing {
		role, err := tx.Object(KindRole, g.Role)
		if err != nil {
			return q.n, err
		}
		var targets []*Subscription
		for _, s := range subs {
			if s.Enabled && s.Strategy == Immediate && RoleMatches(s, role, Filter{}) {
				targets = append(targets, s)
			}
		}
		if len(targets) == 0 {
			continue
		}
		users, err := grantUsers(tx, g.Kind, g.Subject)
		if err != nil {
			return q.n, err
		}
		q.eventID = "window:" + g.ID + ":" + strconv.FormatInt(g.At.UnixMilli(), 10)
		for _, s := range targets {
			for _, u := range users {
				o, err := tx.Object(KindUser, u)
				if err != nil {
					return q.n, err
				}
				in, err := UserMatches(tx, s, o, Filter{})
				if err != nil {
					return q.n, err
				}
				if in {
					if err := q.add(s, KindUser, u, OpUpsert); err != nil {
						return q.n, err
					}
				}
			}
			if err := q.add(s, KindRole, g.Role, OpUpsert); err != nil {
				return q.n, err
			}
		}
	}
	return q.n, nil
}

// sweepWindows runs SweepGrantWindows from the time the last sweep
// reached to now, in one transaction serialised with the projection's,
// when some subscription delivers roles (otherwise the cursor stays, and
// the first sweep after one does catches up), at most once a poll.
func (e *Engine) sweepWindows(ctx context.Context, subs map[string]*Subscription, now time.Time) {
	list := make([]*Subscription, 0, len(subs))
	for _, s := range subs {
		if s.DeliverRoles {
			list = append(list, s)
		}
	}
	if len(list) == 0 || (now.Sub(e.swept) < e.o.Poll && now.After(e.swept)) {
		return // at most once a poll, not at every kick
	}
	e.swept = now
	n := 0
	err := e.o.Store.InTx(ctx, func(tx Tx) error {
		n = 0
		if err := tx.Lock(); err != nil {
			return err
		}
		from, err := tx.SweptUntil()
		if err != nil || !now.After(from) {
			return err
		}
		if n, err = SweepGrantWindows(tx, list, from, now); err != nil {
			return err
		}
		return tx.SetSweptUntil(now)
	})
	if err != nil {
		if ctx.Err() == nil {
			e.o.Logger.Warn("provisioning: the grants' validity windows were not swept; tried again", zap.Error(err))
		}
		return
	}
	if n > 0 {
		e.Kick()
	}
}
