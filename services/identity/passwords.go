package identity

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/identity/legacyhash"
)

// Password hashes of any scheme. New hashes are argon2id (pkg/crypto);
// imported users may keep the hash of the system they come from (bcrypt,
// PBKDF2-SHA256, salted or unsalted SHA-1/SHA-256/MD5/SM3: see package
// legacyhash for the tagged formats). A successful login with anything but
// argon2id at the current parameters replaces the hash at once.
//
// Unsalted fast hashes ({SHA}, {MD5}, $digest$ without salt) fall to
// precomputed tables: a background job (WrapUnsalted, throttled) wraps
// them in argon2id without the password, and after
// Config.UnsaltedCutover a login with one of them (wrapped or not) is
// answered PASSWORD_EXPIRED, so the person must choose a new password.

// hashVerdict is what verifyHash found.
type hashVerdict struct {
	ok bool
	// rehash: replace the hash (it matched): legacy is true for a scheme
	// other than argon2id (replace at once), false for argon2id at other
	// parameters (replace when a worker is idle).
	rehash, legacy bool
	// unsalted: the hash was an unsalted fast hash, or one wrapped.
	unsalted bool
}

// hashNeedsWorker reports whether verifying against the stored hash encoded
// takes a hash worker (argon2id, a wrapped legacy hash, a slow legacy
// scheme such as bcrypt), as verifyHash does; a fast legacy hash that
// matches needs none.
func hashNeedsWorker(encoded string) bool {
	if encoded == "" {
		return false
	}
	if legacyhash.IsArgon2id(encoded) {
		return true
	}
	h, err := legacyhash.Parse(encoded)
	return err == nil && (h.Scheme == legacyhash.Wrapped || h.Slow)
}

// verifyHash checks password against encoded, whatever its scheme, in
// constant time. Costly schemes run in the hasher's workers (with its
// admission: crypto.ErrOverloaded); a cheap one that does not match also
// costs one argon2id hash, so a wrong password costs about the same
// whatever the stored scheme. A malformed hash is an error.
func (s *Service) verifyHash(ctx context.Context, encoded, password string) (hashVerdict, error) {
	if legacyhash.IsArgon2id(encoded) {
		ok, rehash, err := s.hasher.Verify(ctx, encoded, password)
		return hashVerdict{ok: ok, rehash: ok && rehash}, err
	}
	h, err := legacyhash.Parse(encoded)
	if err != nil {
		return hashVerdict{}, err
	}
	v := hashVerdict{unsalted: h.Unsalted}
	switch {
	case h.Scheme == legacyhash.Wrapped:
		v.unsalted = true
		v.ok, _, err = s.hasher.Verify(ctx, h.Inner, h.WrappedInput(password))
	case h.Slow:
		err = s.hasher.Run(ctx, func() {
			var verr error
			v.ok, verr = h.Verify(password)
			if verr != nil {
				v.ok = false
			}
		})
	default:
		v.ok, err = h.Verify(password)
		if err == nil && !v.ok {
			err = s.verifyDummy(ctx, password)
		}
	}
	if err != nil {
		return hashVerdict{}, err
	}
	v.rehash, v.legacy = v.ok, v.ok
	return v, nil
}

// unsaltedExpired reports whether a login whose hash verdict is v must
// choose a new password: an unsalted hash after the cut-over.
func (s *Service) unsaltedExpired(v hashVerdict, now time.Time) bool {
	c := s.cfg.UnsaltedCutover
	return v.unsalted && !c.IsZero() && !now.Before(c)
}

// WrapUnsalted wraps in argon2id the unsalted fast hashes of the users of
// one page of batch users (in id order; token "" is the first page), each
// only when a hash worker is idle (it never delays a login). It returns
// how many it wrapped and the token of the page to do next: the same page
// when a worker was busy (its wrapped hashes are then skipped), "" after
// the last page. A hash changed meanwhile (a login, a new password) is left
// alone.
func (s *Service) WrapUnsalted(ctx context.Context, token string, batch int) (wrapped int, next string, err error) {
	users, next, err := s.store.ListUsers(ctx, UserFilter{}, Page{Size: batch, Token: token})
	if err != nil {
		return 0, token, err
	}
	for _, u := range users {
		h, err := legacyhash.Parse(u.PasswordHash)
		if err != nil {
			continue // argon2id, or unreadable (logged at login)
		}
		in, ok := h.WrapInput()
		if !ok {
			continue
		}
		phc, err := s.hasher.HashIfIdle(ctx, in)
		if errors.Is(err, crypto.ErrOverloaded) {
			return wrapped, token, nil // busy: this page again later
		}
		if err != nil {
			return wrapped, token, err
		}
		ev := s.audit(ctx, "password.wrap", "user:"+u.ID, u.OrgID, "success", "OK", s.now(),
			map[string]string{"scheme": string(h.Scheme) + "-" + h.Alg})
		err = s.store.ReplacePasswordHash(ctx, u.ID, u.PasswordHash, legacyhash.Wrap(h.Alg, phc), []events.Event{ev})
		switch {
		case errors.Is(err, ErrConflict), errors.Is(err, ErrNotFound):
			continue
		case err != nil:
			return wrapped, token, err
		}
		wrapped++
	}
	return wrapped, next, nil
}

// wrapPageTime is the least time RunWrapUnsalted spends on a page of 100
// people: it reads at most 10 000 people a second.
const wrapPageTime = 10 * time.Millisecond

// RunWrapUnsalted runs WrapUnsalted until every unsalted hash is wrapped or
// ctx ends, at most rate hashes a second, in batches of 100; it starts
// over every interval, so imported hashes get wrapped too.
func (s *Service) RunWrapUnsalted(ctx context.Context, rate float64, interval time.Duration) {
	if rate <= 0 {
		return
	}
	const batch = 100
	token := ""
	for {
		start := time.Now()
		n, next, err := s.WrapUnsalted(ctx, token, batch)
		if err != nil && ctx.Err() == nil {
			s.log.Warn("wrapping unsalted password hashes", zap.Error(err))
		}
		if n > 0 {
			s.kick()
			s.log.Info("wrapped unsalted password hashes in argon2id", zap.Int("count", n))
		}
		// Throttle: a batch of n hashes takes at least n/rate seconds, and
		// a page at least wrapPageTime (a pass over millions of people
		// whose hashes need nothing, e.g. salted ones, would otherwise read
		// the whole table at full speed, every interval, beside the
		// logins); a busy hasher (the same page again) waits a second; at
		// the end of the table wait interval.
		wait := max(time.Duration(float64(n)/rate*float64(time.Second)), wrapPageTime) - time.Since(start)
		switch {
		case err != nil || next == "":
			wait, next = interval, ""
		case next == token:
			wait = max(wait, time.Second)
		}
		token = next
		t := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
