package identity

import (
	"context"
	"errors"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/crypto"
)

// idKeyBatch is the people BackfillIDKeys reads and writes at a time.
const idKeyBatch = 500

// IDKeyBackfill is what BackfillIDKeys did.
type IDKeyBackfill struct {
	Set        int // people given their ID key
	Duplicates int // people whose ID number another account of this centre has: left without
	Unreadable int // sealed ID numbers the data keys do not open
	Replicas   int // other centres' people: marked (ReplicaIDKeyPrefix), no ID key here
}

// BackfillIDKeys gives the people stored before ID keys existed (or while
// identity.policy.unique_id_number was off) theirs, idKeyBatch at a time.
// People whose ID number another account already has keep none: they are
// counted, and reported in one warning (never the numbers: personal data
// stays out of logs); their accounts keep working, and an administrator
// merges or removes them (docs/operators.md, one account per person). It
// does nothing while several accounts may share an ID number.
func (s *Service) BackfillIDKeys(ctx context.Context) (IDKeyBackfill, error) {
	var r IDKeyBackfill
	if s.cfg.Policy.SharedIDNumbers {
		return r, nil
	}
	reloaded := false
	for after := ""; ; {
		batch, err := s.store.UsersWithoutIDKey(ctx, after, idKeyBatch)
		if err != nil {
			return r, err
		}
		if len(batch) == 0 {
			break
		}
		after = batch[len(batch)-1].UserID
		sets := make([]IDKeySet, 0, len(batch))
		replicas := 0
		for _, p := range batch {
			if !s.homes.Owns(p.OrgPath) {
				// Marked, so that the next start does not read them
				// again (the pending index holds NULL keys only).
				sets = append(sets, IDKeySet{UserID: p.UserID, Key: ReplicaIDKeyPrefix + p.UserID})
				replicas++
				continue
			}
			b, err := s.sealer.Open(p.IDNumberEnc, []byte("user.id_number"))
			if errors.Is(err, crypto.ErrUnknownKeyID) && s.keys != nil && !reloaded {
				reloaded = true
				if rerr := s.keys.Reload(ctx); rerr != nil {
					return r, errKeys(rerr)
				}
				b, err = s.sealer.Open(p.IDNumberEnc, []byte("user.id_number"))
			}
			if err != nil {
				r.Unreadable++
				continue
			}
			if k := s.idKey(p.IDType, string(b)); k != "" {
				sets = append(sets, IDKeySet{UserID: p.UserID, Key: k})
			}
		}
		if len(sets) == 0 {
			continue
		}
		taken, err := s.store.SetIDKeys(ctx, sets)
		if err != nil {
			return r, err
		}
		r.Set += len(sets) - len(taken) - replicas
		r.Duplicates += len(taken)
		r.Replicas += replicas
	}
	return r, nil
}

// RunBackfillIDKeys runs BackfillIDKeys at start and logs its outcome:
// a failure or duplicates as a warning (the start goes on; the next start
// tries again).
func (s *Service) RunBackfillIDKeys(ctx context.Context) {
	r, err := s.BackfillIDKeys(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("ID keys of existing people not filled; the next start tries again", zap.Error(err))
		}
		return
	}
	if r.Set > 0 {
		s.log.Info("ID keys of existing people filled (one account per person)", zap.Int("people", r.Set))
	}
	if r.Duplicates > 0 {
		s.log.Warn("people share an ID number with another account of this centre and were left without an ID key: "+
			"one account per person is not enforced for them until an administrator resolves it (docs/operators.md, "+
			"\"One account per person\")", zap.Int("accounts", r.Duplicates))
	}
	if r.Unreadable > 0 {
		s.log.Warn("ID numbers the data keys do not open were left without an ID key", zap.Int("accounts", r.Unreadable))
	}
	s.runBackfillCentresKeys(ctx)
}

// CentresKeyBackfill is what BackfillCentresKeys did.
type CentresKeyBackfill struct {
	Set        int // people of this centre given their centres key
	Unreadable int // sealed ID numbers the data keys do not open
	Replicas   int // other centres' people: marked (ReplicaIDKeyPrefix); their home sends theirs
}

// BackfillCentresKeys gives the people of this centre stored before the
// centres key was set (identity.uniqueness.key_file; uniq.go) theirs,
// idKeyBatch at a time; other centres' people are marked, so that the
// next start does not read them again. Nothing without the key or in a
// single centre. Level 1 learns the keys of a level-2 centre's existing
// people when that centre resends its subtree.
func (s *Service) BackfillCentresKeys(ctx context.Context) (CentresKeyBackfill, error) {
	var r CentresKeyBackfill
	if s.homes == nil || len(s.cfg.Uniqueness.CentresKey) == 0 || s.cfg.Policy.SharedIDNumbers {
		return r, nil
	}
	for after := ""; ; {
		batch, err := s.store.UsersWithoutCentresKey(ctx, after, idKeyBatch)
		if err != nil {
			return r, err
		}
		if len(batch) == 0 {
			return r, nil
		}
		after = batch[len(batch)-1].UserID
		sets := make([]IDKeySet, 0, len(batch))
		for _, p := range batch {
			if !s.homes.Owns(p.OrgPath) {
				sets = append(sets, IDKeySet{UserID: p.UserID, Key: ReplicaIDKeyPrefix + p.UserID})
				r.Replicas++
				continue
			}
			b, err := s.sealer.Open(p.IDNumberEnc, []byte("user.id_number"))
			if err != nil {
				r.Unreadable++
				continue
			}
			if k := s.centresKey(p.IDType, string(b)); k != "" {
				sets = append(sets, IDKeySet{UserID: p.UserID, Key: k})
				r.Set++
			}
		}
		if len(sets) > 0 {
			if err := s.store.SetCentresKeys(ctx, sets); err != nil {
				return r, err
			}
		}
	}
}

func (s *Service) runBackfillCentresKeys(ctx context.Context) {
	r, err := s.BackfillCentresKeys(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		s.log.Warn("centres keys of existing people not filled; the next start tries again", zap.Error(err))
	case r.Set > 0:
		s.log.Info("centres keys of existing people filled (ID numbers compared across centres): resend this centre's "+
			"subtrees so that level 1 holds them (uias ctl org resend)", zap.Int("people", r.Set))
	}
	if r.Unreadable > 0 {
		s.log.Warn("ID numbers the data keys do not open were left without a centres key", zap.Int("accounts", r.Unreadable))
	}
}
