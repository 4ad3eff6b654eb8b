package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/services/identity/finger"
)

// Fingerprints (issue 13): up to MaxFingers templates per person, one per
// finger position, each an ISO/IEC 19794-2 or ANSI INCITS 378 record sealed
// with the data keys. Nothing returns a template, and neither logs nor
// events carry one: audit records name the person and the finger position.

// MaxFingers is how many fingers a person may enrol.
const MaxFingers = 10

// MinEnrolMinutiae is the fewest minutiae an enrolled view must have: a
// sparser template would match too little of a later impression.
const MinEnrolMinutiae = 12

// DefaultFingerCache is how many prepared templates the service keeps in
// memory by default (about 5 KB each), and FingerCacheTTL how long one is
// kept.
const (
	DefaultFingerCache = 10000
	FingerCacheTTL     = 10 * time.Minute
)

// DefaultFingerFMR is the default target false-match rate of a
// fingerprint decision: 1 in 10,000.
const DefaultFingerFMR = 1e-4

// Finger describes an enrolled finger (never its template).
type Finger struct {
	UserID    string
	Position  int
	Quality   int
	Format    string // finger.Format.String()
	Minutiae  int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// StoredFinger is a finger with its sealed template, as the store keeps it.
type StoredFinger struct {
	Finger
	TemplateEnc string
}

// FingerBypass is an application's emergency fingerprint bypass switch.
type FingerBypass struct {
	AppID     string
	Enabled   bool
	Reason    string
	SetBy     string
	UpdatedAt time.Time
}

// FingerStore is the persistence of fingers and bypass switches (part of
// Store; the conformance suite in storetest covers it).
type FingerStore interface {
	// PutFinger stores f, replacing the finger of the same user and
	// position, with evs. ErrNotFound when the user does not exist;
	// ErrConflict when it would give the user more than max fingers.
	PutFinger(ctx context.Context, f *StoredFinger, max int, evs []events.Event) error
	// ListFingers returns a user's fingers by position (none: empty).
	ListFingers(ctx context.Context, userID string) ([]*StoredFinger, error)
	// DeleteFinger deletes one finger with evs; ErrNotFound when none.
	DeleteFinger(ctx context.Context, userID string, position int, evs []events.Event) error
	// GetFingerBypass returns an application's switch (never set: off,
	// with AppID set and the rest zero).
	GetFingerBypass(ctx context.Context, appID string) (*FingerBypass, error)
	// SetFingerBypass writes the switch with evs; ErrNotFound when the
	// application does not exist.
	SetFingerBypass(ctx context.Context, b *FingerBypass, evs []events.Event) error
}

func init() {
	apierr.Register(
		apierr.Reason{Name: "FINGER_RECORD_INVALID", Code: apierr.InvalidArgument, Legacy: -5,
			Doc: "A fingerprint record (Authenticate's fingerprint_feature, or EnrollFinger's record) is not a well-formed ISO/IEC 19794-2:2005 or ANSI INCITS 378-2004 finger minutiae record, or does not fit its use (one finger view; enough minutiae to enrol; the finger position asked for). The message says what and at which byte."},
		apierr.Reason{Name: "TOO_MANY_FINGERS", Code: apierr.FailedPrecondition,
			Doc: "EnrollFinger: the person has 10 fingers enrolled already; delete one first."},
	)
}

func fingerRecordInvalid(msg string) error {
	return apierr.New(apierr.InvalidArgument, "FINGER_RECORD_INVALID", msg)
}

// parseFingerRecord reads a record that must hold exactly one finger view
// with at least minMinutiae minutiae, and returns it with its template.
func parseFingerRecord(b []byte, what string, minMinutiae int) (*finger.Record, *finger.Template, error) {
	r, err := finger.Parse(b)
	if err != nil {
		var fe *finger.FormatError
		if errors.As(err, &fe) {
			return nil, nil, fingerRecordInvalid(fmt.Sprintf("%s: at byte %d: %s", what, fe.Offset, fe.Reason))
		}
		return nil, nil, fingerRecordInvalid(what + ": not a finger minutiae record")
	}
	if len(r.Views) != 1 {
		return nil, nil, fingerRecordInvalid(fmt.Sprintf("%s: holds %d finger views; exactly one is expected", what, len(r.Views)))
	}
	if n := len(r.Views[0].Minutiae); n < minMinutiae {
		return nil, nil, fingerRecordInvalid(fmt.Sprintf("%s: %d minutiae; at least %d are needed", what, n, minMinutiae))
	}
	t, err := finger.Prepare(r, 0)
	if err != nil {
		return nil, nil, fingerRecordInvalid(what + ": " + err.Error())
	}
	return r, t, nil
}

func fingerAAD(userID string, position int) []byte {
	return []byte("user.finger\x00" + userID + "\x00" + strconv.Itoa(position))
}

// EnrollFinger stores (or replaces) the template of finger position of
// user id: an administrator's call.
func (s *Service) EnrollFinger(ctx context.Context, userID string, position int, record []byte) (*Finger, error) {
	start := s.now()
	if position < 1 || position > 10 {
		return nil, badRequest("position must be a finger position from 1 (right thumb) to 10 (left little finger)")
	}
	r, _, err := parseFingerRecord(record, "record", MinEnrolMinutiae)
	if err != nil {
		return nil, err
	}
	v := r.Views[0]
	if v.Position != 0 && int(v.Position) != position {
		return nil, fingerRecordInvalid(fmt.Sprintf("record: its finger view is of finger position %d, not %d", v.Position, position))
	}
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	// at the person's home centre only: a finger enrolled elsewhere
	// signed them in there without their home knowing (trial8 D4)
	if err := s.ownUser(ctx, u); err != nil {
		return nil, err
	}
	enc, err := s.sealer.Seal(record, fingerAAD(u.ID, position))
	if err != nil {
		return nil, err
	}
	now := s.now()
	f := &StoredFinger{Finger: Finger{UserID: u.ID, Position: position, Quality: int(v.Quality), Format: r.Format.String(),
		Minutiae: len(v.Minutiae), CreatedAt: now, UpdatedAt: now}, TemplateEnc: enc}
	data := map[string]any{"position": position, "quality": f.Quality, "format": f.Format}
	err = s.write(ctx, func(evs []events.Event) error { return s.store.PutFinger(ctx, f, MaxFingers, evs) },
		s.changeWith(ctx, "user", "finger_enrolled", u.ID, data, s.fingerReplicaOf(f)),
		s.adminAudit(ctx, "finger.enroll", "user:"+u.ID, u.OrgID, start))
	if errors.Is(err, ErrConflict) {
		return nil, apierr.New(apierr.FailedPrecondition, "TOO_MANY_FINGERS",
			fmt.Sprintf("at most %d fingers per person; delete one first", MaxFingers))
	}
	if err != nil {
		return nil, err
	}
	return &f.Finger, nil
}

// ListFingers lists user id's enrolled fingers.
func (s *Service) ListFingers(ctx context.Context, userID string) ([]Finger, error) {
	if _, err := s.store.GetUser(ctx, userID); err != nil {
		return nil, err
	}
	fs, err := s.store.ListFingers(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]Finger, len(fs))
	for i, f := range fs {
		out[i] = f.Finger
	}
	return out, nil
}

// DeleteFinger deletes the template of one finger.
func (s *Service) DeleteFinger(ctx context.Context, userID string, position int) error {
	start := s.now()
	u, err := s.store.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	// at the person's home centre only: deleted elsewhere, the finger
	// still signed them in at home (trial8 D4)
	if err := s.ownUser(ctx, u); err != nil {
		return err
	}
	return s.write(ctx, func(evs []events.Event) error { return s.store.DeleteFinger(ctx, u.ID, position, evs) },
		s.change(ctx, "user", "finger_deleted", u.ID, map[string]any{"position": position}),
		s.adminAudit(ctx, "finger.delete", "user:"+u.ID, u.OrgID, start))
}

// GetFingerprintBypass reads an application's bypass switch.
func (s *Service) GetFingerprintBypass(ctx context.Context, appID string) (*FingerBypass, error) {
	if _, err := s.store.GetApp(ctx, appID); err != nil {
		return nil, err
	}
	return s.store.GetFingerBypass(ctx, appID)
}

// SetFingerprintBypass turns an application's fingerprint bypass on or off,
// audited with the reason.
func (s *Service) SetFingerprintBypass(ctx context.Context, appID string, enabled bool, reason string) (*FingerBypass, error) {
	start := s.now()
	if reason == "" {
		return nil, badRequest("reason is required")
	}
	a, err := s.store.GetApp(ctx, appID)
	if err != nil {
		return nil, err
	}
	b := &FingerBypass{AppID: a.ID, Enabled: enabled, Reason: reason, SetBy: caller.From(ctx).Principal, UpdatedAt: s.now()}
	ev := s.audit(ctx, "finger.bypass", "app:"+a.ID, "", "success", "OK", start,
		map[string]string{"enabled": strconv.FormatBool(enabled), "reason": reason})
	if err := s.write(ctx, func(evs []events.Event) error { return s.store.SetFingerBypass(ctx, b, evs) },
		s.change(ctx, "app", "finger_bypass_changed", a.ID, map[string]any{"enabled": enabled}), ev); err != nil {
		return nil, err
	}
	return b, nil
}

// fingerVerdict's answers besides the public reasons: fingers are held
// but none opens here (answered as ReasonNoFingerprint); the probe is the
// very record of an enrolled finger (a wrong finger, counted).
const (
	reasonFingersUnusable Reason = -100
	reasonFingerCopied    Reason = -101
	reasonFingerReplayed  Reason = -102
)

// DefaultFingerProbeMemory is how long a presented fingerprint record is
// remembered by default (identity.finger_probe_memory).
const DefaultFingerProbeMemory = 30 * 24 * time.Hour

// ReasonFingerCheckUnavailable: the record could not be checked against
// the ones presented before (the store, NATS JetStream, is unreachable).
const ReasonFingerCheckUnavailable = "FINGER_CHECK_UNAVAILABLE"

// ErrFingerCheckUnavailable refuses a finger that cannot be checked
// against replays.
var ErrFingerCheckUnavailable = apierr.New(apierr.Unavailable, ReasonFingerCheckUnavailable,
	"the fingerprint cannot be checked now; sign in with the password, or try the finger again later")

func init() {
	apierr.Register(apierr.Reason{Name: ReasonFingerCheckUnavailable, Code: apierr.Unavailable, Legacy: -6,
		Doc: "A fingerprint could not be checked against the records presented before (replay protection; the store, NATS JetStream, is unreachable): it is refused rather than taken unchecked. Sign in with the password, or retry later."})
}

// probeKey is the key under which a presented record is remembered: the
// person and the record's digest (half of it: a collision would take
// 2^64 captures).
func probeKey(userID string, sum [sha256.Size]byte) string {
	return "f." + userID + "." + hex.EncodeToString(sum[:16])
}

// fingerVerdict matches the probe of req against u's enrolled fingers:
// ReasonOK (matched), ReasonBadCredentials (no match),
// ReasonNoFingerprint (nothing enrolled) or reasonFingersUnusable.

func (s *Service) fingerVerdict(ctx context.Context, u *User, probe *finger.Template, probeSum [sha256.Size]byte) (Reason, error) {
	stored, err := s.store.ListFingers(ctx, u.ID)
	if err != nil {
		return 0, err
	}
	if len(stored) == 0 {
		return ReasonNoFingerprint, nil
	}
	gallery := make([]*finger.Template, 0, len(stored))
	now := s.now()
	for _, f := range stored {
		e, ok := s.enrolledTemplate(u, f, now)
		if !ok {
			continue
		}
		if e.sum == probeSum {
			// the stored record itself: a leaked or copied template
			// (a scanner never captures the same bytes twice; trial8 D6)
			return reasonFingerCopied, nil
		}
		gallery = append(gallery, e.t)
	}
	if len(gallery) == 0 {
		// Fingers are held but none opens here (sealed at the person's
		// home centre with its data keys): no finger to check here, as
		// with none enrolled, never a wrong finger that counts towards
		// the lockout (trial8 D2: a right finger at level 1 locked the
		// person everywhere).
		return reasonFingersUnusable, nil
	}
	// A record presented before (by anyone, matched or not) is a replay:
	// a scanner never captures the same bytes twice (review sec23 M3).
	// Remembered per person for FingerProbeMemory; a store that cannot
	// tell refuses the finger (UNAVAILABLE) rather than take it unchecked.
	err = s.probes.Remember(ctx, probeKey(u.ID, probeSum), s.cfg.FingerProbeMemory)
	replayed := errors.Is(err, caller.ErrNonceSeen)
	if err != nil && !replayed {
		s.log.Warn("fingerprint replay check", zapErr(err))
		return 0, ErrFingerCheckUnavailable
	}
	// matched either way: a replay costs what a capture does (its answer's
	// time tells nothing of the account)
	ok, _ := s.matcher.Match([]*finger.Template{probe}, gallery)
	switch {
	case replayed:
		return reasonFingerReplayed, nil
	case ok:
		return ReasonOK, nil
	}
	return ReasonBadCredentials, nil
}

// enrolledFinger is an enrolled finger as a match needs it: its template
// prepared, and the digest of its record (a probe equal to it is a copy of
// the stored template, never a capture: fingerVerdict).
type enrolledFinger struct {
	t   *finger.Template
	sum [sha256.Size]byte
}

// enrolledTemplate is the prepared template of an enrolled finger: from
// the in-memory cache, or opened, parsed and prepared (ok false when it
// cannot be). The cache key is the digest of the sealed template, so a
// finger enrolled again or sealed again under a new key is prepared afresh,
// and one deleted is never looked up again (its entry expires).
func (s *Service) enrolledTemplate(u *User, f *StoredFinger, now time.Time) (enrolledFinger, bool) {
	sum := sha256.Sum256([]byte(f.TemplateEnc))
	key := f.UserID + "\x00" + strconv.Itoa(f.Position) + "\x00" + string(sum[:])
	if e, ok := s.fingers.Get(key, now); ok {
		return e, true
	}
	rec, err := s.sealer.Open(f.TemplateEnc, fingerAAD(f.UserID, f.Position))
	if err != nil {
		// A template that does not open (sealed at the person's home
		// centre; a lost data key) cannot match; the others still may.
		s.log.Warn("enrolled finger does not decrypt here", zap.String("user_id", u.ID), zap.Int("position", f.Position),
			zapErr(err))
		return enrolledFinger{}, false
	}
	r, err := finger.Parse(rec)
	if err != nil {
		s.log.Error("enrolled finger does not parse", zap.String("user_id", u.ID), zapErr(err))
		return enrolledFinger{}, false
	}
	t, err := finger.Prepare(r, 0)
	if err != nil {
		return enrolledFinger{}, false
	}
	e := enrolledFinger{t: t, sum: sha256.Sum256(rec)}
	s.fingers.Put(key, e, now)
	return e, true
}

// checkFinger settles a fingerprint check the way checkPassword settles a
// password: status, disabled org, lock and the login gate first (a check
// that fails counts towards the lockout like a wrong password), then the
// verdict of the match. matched is the match's outcome.
func (s *Service) checkFinger(ctx context.Context, u *User, matched bool, api string, start time.Time, a *loginAttempt, extra map[string]string) (Reason, error) {
	subject := "user:" + u.ID
	if r, err := s.refuseUnusable(ctx, u, api, start, a, extra); err != nil || r != 0 {
		return r, err
	}
	if err := a.admitSource(ctx, subject, u.OrgID, start); err != nil {
		return 0, err
	}
	if r, err := a.admitAccount(ctx, u, start); err != nil || r != 0 {
		a.refund(ctx)
		return r, err
	}
	if err := a.wait(ctx); err != nil {
		return 0, err
	}
	return s.settleVerdict(ctx, u, matched, api, start, a, extra)
}

// settleVerdict ends a credential check that passed the login gate with
// its verdict (a finger's match, an external authenticator's answer): a
// wrong credential is a failed login (counted; the lockout falls as for a
// wrong password); a right one signs u in, or is recorded as reaching too
// low a level (a.short) or as the first of two factors (a.partial: a
// sign-in page's login of a person with an authenticator app, not done
// until the code). extra goes into the records.
func (s *Service) settleVerdict(ctx context.Context, u *User, matched bool, api string, start time.Time, a *loginAttempt,
	extra map[string]string) (Reason, error) {
	subject := "user:" + u.ID
	if !matched {
		ev := s.audit(ctx, api, subject, u.OrgID, "failure", ReasonBadCredentials.String(), start, extra)
		locked, err := a.failed(ctx, u, eventsOf(ev), start)
		if err != nil {
			return 0, err
		}
		if locked {
			return ReasonAccountLocked, nil
		}
		return ReasonBadCredentials, nil
	}
	evLocked := func() []events.Event {
		return eventsOf(s.audit(ctx, api, subject, u.OrgID, "failure", ReasonAccountLocked.String(), start, extra))
	}
	ev := s.audit(ctx, api, subject, u.OrgID, "success", ReasonOK.String(), start, extra)
	if a.short {
		ev = s.audit(ctx, api, subject, u.OrgID, "failure", ReasonAuthLevelTooLow.String(), start, extra)
	} else if a.partial {
		ev = s.audit(ctx, api, subject, u.OrgID, "pending", ReasonOTPRequired.String(), start, extra)
	}
	return a.succeeded(ctx, u, "", eventsOf(ev), evLocked)
}

// authenticateFinger answers auth types 2 and 3 for u (not password-only).
func (s *Service) authenticateFinger(ctx context.Context, c *caller.Caller, req *AuthRequest, u *User, start time.Time) (Reason, error) {
	src := appLoginSource(c.App.ID, req.Extend, u.ID)
	if req.AuthType == AuthFingerprint {
		b, err := s.store.GetFingerBypass(ctx, c.App.ID)
		if err != nil {
			return 0, err
		}
		if b.Enabled {
			// The application's emergency bypass: the password instead.
			if req.Password == "" {
				s.appendAudit(ctx, s.audit(ctx, "authenticate", "user:"+u.ID, u.OrgID, "failure", "BAD_REQUEST", start,
					map[string]string{"fingerprint_bypass": "true"}))
				return 0, badRequest("the application's fingerprint bypass is on: password is required for auth type 2")
			}
			if s.cfg.Policy.AuthenticateRequiresOTP {
				return s.authenticateOTP(ctx, c, req, u, start, "authenticate.finger_bypass")
			}
			return s.checkPassword(ctx, u, req.Password, "authenticate.finger_bypass", start,
				s.newAttempt(src, "authenticate").shortOf(req.short))
		}
	}
	r, err := s.fingerVerdict(ctx, u, req.probe, sha256.Sum256(req.Fingerprint))
	if err != nil {
		return 0, err
	}
	extra := map[string]string{"auth_type": strconv.Itoa(req.AuthType)}
	switch r {
	case reasonFingersUnusable:
		r, extra["fingers"] = ReasonNoFingerprint, "none opens at this centre"
	case reasonFingerCopied:
		r, extra["probe"] = ReasonBadCredentials, "the record of an enrolled finger (a copy, not a capture)"
	case reasonFingerReplayed:
		r, extra["probe"] = ReasonBadCredentials, "a record presented before (a replay, not a capture)"
	}
	switch {
	case r == ReasonNoFingerprint:
		s.appendAudit(ctx, s.audit(ctx, "authenticate", "user:"+u.ID, u.OrgID, "failure", ReasonNoFingerprint.String(), start, extra))
		return r, nil
	case r == ReasonOK && req.AuthType == AuthPasswordFingerprint:
		// Both: the finger matched; the password decides (and counts).
		return s.checkPassword(ctx, u, req.Password, "authenticate", start, s.newAttempt(src, "authenticate").shortOf(req.short))
	}
	return s.checkFinger(ctx, u, r == ReasonOK, "authenticate", start, s.newAttempt(src, "authenticate").shortOf(req.short), extra)
}
