package identity

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/audit"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/store"
)

// One account per person across centres (004 §2.1.2.4, 001 一人一号;
// docs/adr/0032-uniqueness-across-centres.md). Level 1 holds every
// centre's people (the level-2 people as replicas), so it can tell whether
// a login name or an ID number is another person's anywhere. Before a
// level-2 centre creates a person, or gives one a new ID number, it asks
// level 1 (UniquenessPeer, over the leaf-linked NATS); level 1 answers
// from its store and reserves what it allowed for the asking centre for a
// while (Reservations), so that two level-2 centres creating the same name
// at once do not both pass. Level 1's own creates ask the same question of
// itself. A level-2 centre cut off from level 1 creates anyway (or refuses,
// UniquenessConfig.RefuseUnreachable), audited with
// ReasonUniquenessUnchecked; a collision then shows at level 1 as a sync
// CONFLICT (login name) or as an audit record APIReplicaIDCollision (ID
// number). Level 1 answers only the centres it knows (its own and those of
// centre.Homes.Subtrees), each at most at UniquenessConfig.PeerRate, and
// audits each answered question (AnswerPeerClaim; review sec29b).

// ReasonUniquenessUnchecked is the audit reason of a person created (or
// given an ID number) at a level-2 centre while level 1 did not answer:
// the login name and ID number were checked at this centre only.
const ReasonUniquenessUnchecked = "UNIQUENESS_UNCHECKED"

// ReasonUniquenessUnavailable: the refusal of such a create with
// identity.uniqueness.peer_unreachable refuse.
const ReasonUniquenessUnavailable = "UNIQUENESS_UNAVAILABLE"

// ReasonUniquenessRefused is level 1's refusal of another centre's
// question: the centre is not one it knows. ReasonUniquenessRateLimited:
// it asked faster than identity.uniqueness.peer_rate. The asking centre
// treats either as any unanswered question (peer_unreachable).
const (
	ReasonUniquenessRefused     = "UNIQUENESS_REFUSED"
	ReasonUniquenessRateLimited = "UNIQUENESS_RATE_LIMITED"
)

// APIUniquenessQuestion is level 1's audit record of a question another
// centre asked (AnswerPeerClaim): the centre, the person id it asked for,
// what it asked (login, id_number: "true"), check_only and the answer; not
// the login name nor the ID number's key.
const APIUniquenessQuestion = "user.uniqueness_question"

// errLoginTakenElsewhere and errIDNumberTakenElsewhere answer a login name
// or ID number that another person holds at another centre: the reasons
// of a local duplicate, a message that says where, nothing of the other
// person.
var (
	errLoginTakenElsewhere    = store.Conflict("login name already exists (a person of another centre has it)")
	errIDNumberTakenElsewhere = apierr.New(apierr.AlreadyExists, ReasonIDNumberTaken,
		"another account already has this ID number (a person of another centre; one account per person)")
	errUniquenessUnavailable = apierr.New(apierr.Unavailable, ReasonUniquenessUnavailable,
		"the level-1 centre did not answer whether the login name or ID number is taken at another centre; try again later")
)

// UniqueClaim asks whether a login name and/or ID number are free for
// PersonID across centres (level 1 answers, AnswerClaim).
type UniqueClaim struct {
	// PersonID is the person who would hold them: their own names and
	// keys are no conflict (a retry, their replica at level 1).
	PersonID string `json:"person_id"`
	// Centre is the asking centre: a reservation is the centre's, so that
	// its retry of a create that failed (a new person id) is no conflict;
	// its own unique indexes keep its people apart.
	Centre string `json:"centre"`
	// Login is the login name folded to lower case ("": not asked).
	Login string `json:"login,omitempty"`
	// IDKey is the centres key of the ID type and number (Service.centresKey;
	// "": not asked).
	IDKey string `json:"id_key,omitempty"`
	// CheckOnly asks without reserving (an import's dry run: its people's
	// ids are not the ones the import will write).
	CheckOnly bool `json:"check_only,omitempty"`
}

// UniqueVerdict is level 1's answer to a UniqueClaim.
type UniqueVerdict struct {
	LoginTaken bool `json:"login_taken,omitempty"`
	IDTaken    bool `json:"id_taken,omitempty"`
}

// UniquenessPeer asks level 1 (the component's NATS client; tests give
// fakes). An error is an unanswered question (unreachable, slow, refused).
type UniquenessPeer interface {
	Claim(ctx context.Context, c UniqueClaim) (UniqueVerdict, error)
}

// Reservations hold a name or key for a centre for a while (level 1).
type Reservations interface {
	// Reserve holds key for holder (a centre) unless another holds it;
	// it returns the holder (holder when held now or already by it).
	Reserve(ctx context.Context, key, holder string) (string, error)
}

// UniquenessConfig is identity.uniqueness.
type UniquenessConfig struct {
	// CentresKey (32 bytes) keys the ID numbers' centres keys; the same at
	// every centre (identity.uniqueness.key_file). Empty: ID numbers are
	// not compared across centres.
	CentresKey []byte
	// RefuseUnreachable refuses a level-2 create while level 1 does not
	// answer (peer_unreachable: refuse); false creates it, audited
	// UNIQUENESS_UNCHECKED.
	RefuseUnreachable bool
	// Wait bounds the question to level 1 (default 2s).
	Wait time.Duration
	// Peer asks level 1 (at a level-2 centre).
	Peer UniquenessPeer
	// Reservations (at level 1; nil: in this process's memory, Hold long).
	Reservations Reservations
	// Hold is how long a reservation lasts in memory (default 10m).
	Hold time.Duration
	// PeerRate and PeerBurst limit the questions level 1 answers per
	// asking centre (per level-1 instance; default 20/s, burst 200): they
	// also bound the reservations a centre holds, at most PeerBurst +
	// PeerRate × Hold per instance.
	PeerRate  float64
	PeerBurst int
	// Observe, when set, counts level 1's answers to other centres
	// (AnswerPeerClaim) by centre ("unknown" for a centre it does not
	// know) and outcome: free, taken, refused_unknown, rate_limited,
	// error (the component's metric).
	Observe func(centre, outcome string)
}

// centresKeyPrefix starts what centresKey hashes (apart from idKey's).
const centresKeyPrefix = "uias.centres_id_key\x00"

// centresKey is the ID type and number keyed with the key shared by the
// centres: comparable across centres, as the index key (each centre's own)
// is not. "" without the key, an ID number, or with shared ID numbers.
func (s *Service) centresKey(t IDType, idNumber string) string {
	if len(s.cfg.Uniqueness.CentresKey) == 0 || idNumber == "" || s.cfg.Policy.SharedIDNumbers {
		return ""
	}
	m := hmac.New(sha256.New, s.cfg.Uniqueness.CentresKey)
	// The number as the local check has it (normalIDNumber: only resident
	// IDs are upper-cased; two passport numbers differing in case are two
	// people here, and so across centres; review sec29b I1).
	t, idNumber = keyedID(t, normalIDNumber(t, idNumber))
	fmt.Fprintf(m, "%s%d\x00%s", centresKeyPrefix, t, idNumber)
	return hex.EncodeToString(m.Sum(nil))[:32]
}

// acrossCentres reports whether this centre checks with level 1: in a
// multi-centre deployment, at level 1 itself (its reservations) and at a
// level-2 centre that has a peer.
func (s *Service) acrossCentres() bool {
	if s.homes == nil {
		return false
	}
	return s.homes.Level == 1 || s.cfg.Uniqueness.Peer != nil
}

// claimAcross asks level 1 whether u's login name (login) and centres key
// (id) are free for u. It answers the audit reason of the write ("OK", or
// ReasonUniquenessUnchecked when level 1 did not answer and the write goes
// ahead) or the error that refuses it.
func (s *Service) claimAcross(ctx context.Context, u *User, login, id bool) (string, error) {
	return s.claimAcrossAs(ctx, u, login, id, false)
}

// claimAcrossAs is claimAcross; checkOnly reserves nothing (UniqueClaim).
func (s *Service) claimAcrossAs(ctx context.Context, u *User, login, id, checkOnly bool) (string, error) {
	if !s.acrossCentres() {
		return "OK", nil
	}
	c := UniqueClaim{PersonID: u.ID, Centre: s.homes.Self, CheckOnly: checkOnly}
	if login {
		c.Login = strings.ToLower(u.LoginName)
	}
	if id {
		c.IDKey = u.CentresKey
	}
	if c.Login == "" && c.IDKey == "" {
		return "OK", nil
	}
	var (
		v   UniqueVerdict
		err error
	)
	if s.homes.Level == 1 {
		v, err = s.AnswerClaim(ctx, c)
		if err != nil { // level 1's own store or reservations: as any storage fault
			return "", err
		}
	} else {
		wctx, cancel := context.WithTimeout(ctx, s.cfg.Uniqueness.Wait)
		v, err = s.cfg.Uniqueness.Peer.Claim(wctx, c)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return "", ctx.Err()
			}
			s.log.Warn("the level-1 centre did not answer whether a login name or ID number is taken at another centre",
				zap.String("user_id", u.ID), zap.Bool("refused", s.cfg.Uniqueness.RefuseUnreachable), zap.Error(err))
			if s.cfg.Uniqueness.RefuseUnreachable {
				return "", errUniquenessUnavailable
			}
			return ReasonUniquenessUnchecked, nil
		}
	}
	switch {
	case v.LoginTaken && s.homes.Level == 1: // a person here (replica or not) or a reservation
		return "", store.Conflict("login name already exists")
	case v.IDTaken && s.homes.Level == 1:
		return "", ErrIDNumberTaken
	case v.LoginTaken:
		return "", errLoginTakenElsewhere
	case v.IDTaken:
		return "", errIDNumberTakenElsewhere
	}
	return "OK", nil
}

// AnswerClaim is level 1's answer to c: the login name or ID key is taken
// when a person other than c.PersonID holds it here (a person of level 1
// or a replica of another centre's), or another centre's claim reserved
// it; otherwise it is reserved for c.Centre. Asked at a centre that is
// not level 1, it is refused.
func (s *Service) AnswerClaim(ctx context.Context, c UniqueClaim) (UniqueVerdict, error) {
	var v UniqueVerdict
	if s.homes == nil || s.homes.Level != 1 {
		return v, apierr.New(apierr.FailedPrecondition, "REPLICA_NOT_A_CENTRE",
			"uniqueness across centres is answered by the level-1 centre only")
	}
	if c.PersonID == "" {
		return v, badField("person_id", "person_id is required")
	}
	if c.Centre == "" {
		return v, badField("centre", "centre is required")
	}
	if !s.knownCentre(c.Centre) {
		return v, errUnknownCentre
	}
	if c.Login != "" {
		u, err := s.store.GetUserByLogin(ctx, c.Login)
		switch {
		case err == nil:
			v.LoginTaken = u.ID != c.PersonID
		case !errors.Is(err, ErrNotFound):
			return v, err
		}
	}
	if c.IDKey != "" {
		held, err := s.store.CentresKeyHeld(ctx, c.IDKey, c.PersonID)
		if err != nil {
			return v, err
		}
		v.IDTaken = held
	}
	if v.LoginTaken || v.IDTaken || c.CheckOnly {
		return v, nil
	}
	// Reserved until the person's replica arrives (it then holds the name
	// here itself) or the hold ends.
	if c.Login != "" {
		h, err := s.reservations.Reserve(ctx, reservationKey("login", c.Login), c.Centre)
		if err != nil {
			return v, err
		}
		v.LoginTaken = h != c.Centre
	}
	if c.IDKey != "" && !v.LoginTaken {
		h, err := s.reservations.Reserve(ctx, reservationKey("id", c.IDKey), c.Centre)
		if err != nil {
			return v, err
		}
		v.IDTaken = h != c.Centre
	}
	return v, nil
}

var (
	errUnknownCentre = apierr.New(apierr.PermissionDenied, ReasonUniquenessRefused,
		"the level-1 centre answers the centres it knows only")
	errQuestionsRateLimited = apierr.New(apierr.ResourceExhausted, ReasonUniquenessRateLimited,
		"the level-1 centre answers this centre's questions at identity.uniqueness.peer_rate at most; try again later")
)

// knownCentre reports whether c is this centre or a centre of one of its
// subtrees (centre.Homes): the only centres that may hold a reservation.
func (s *Service) knownCentre(c string) bool {
	if c == s.homes.Self {
		return true
	}
	for _, h := range s.homes.Subtrees {
		if h == c {
			return true
		}
	}
	return false
}

// AnswerPeerClaim is level 1's answer to a question of another centre,
// centre being the one the transport vouches for (uniqpeer: the subject,
// which the leaf link allows each centre for its own name only); the
// claim's own Centre is overwritten. A centre level 1 does not know, or
// one asking faster than PeerRate, is refused ReasonUniquenessRefused or
// ReasonUniquenessRateLimited (counted and logged, at most every 10s per centre, not audited one by
// one); every other question is audited APIUniquenessQuestion and counted.
func (s *Service) AnswerPeerClaim(ctx context.Context, centre string, c UniqueClaim) (UniqueVerdict, error) {
	if s.homes == nil || s.homes.Level != 1 {
		return UniqueVerdict{}, apierr.New(apierr.FailedPrecondition, "REPLICA_NOT_A_CENTRE",
			"uniqueness across centres is answered by the level-1 centre only")
	}
	c.Centre = centre
	if centre == "" || centre == s.homes.Self || !s.knownCentre(centre) {
		s.observeQuestion("unknown", "refused_unknown")
		s.questionLog("unknown").Do(func() {
			s.log.Warn("refused a question about uniqueness from a centre this level-1 centre does not know",
				zap.String("centre", centre))
		})
		return UniqueVerdict{}, errUnknownCentre
	}
	if !s.questionLimit(centre).Allow() {
		s.observeQuestion(centre, "rate_limited")
		s.questionLog(centre).Do(func() {
			s.log.Warn("refused questions about uniqueness of a centre asking faster than identity.uniqueness.peer_rate: "+
				"its creates go ahead unchecked (or are refused) while it does", zap.String("centre", centre))
		})
		return UniqueVerdict{}, errQuestionsRateLimited
	}
	start := s.now()
	v, err := s.AnswerClaim(ctx, c)
	outcome, result, reason := "free", audit.ResultSuccess, "OK"
	switch {
	case err != nil:
		outcome, result, reason = "error", audit.ResultFailure, "ERROR"
		if e, ok := apierr.As(err); ok {
			reason = e.Reason
		}
	case v.LoginTaken:
		outcome, result, reason = "taken", audit.ResultFailure, "ALREADY_EXISTS"
	case v.IDTaken:
		outcome, result, reason = "taken", audit.ResultFailure, ReasonIDNumberTaken
	}
	s.observeQuestion(centre, outcome)
	ev := s.auditor.Event(ctx, audit.Action{API: APIUniquenessQuestion, Subject: "user:" + c.PersonID,
		Result: result, Reason: reason, Start: start, Detail: map[string]string{"centre": centre,
			"login": fmtBool(c.Login != ""), "id_number": fmtBool(c.IDKey != ""), "check_only": fmtBool(c.CheckOnly)}})
	if aerr := s.store.AppendEvents(context.WithoutCancel(ctx), []events.Event{ev}); aerr != nil {
		s.log.Warn("the audit record of a question about uniqueness was not written", zap.String("centre", centre), zap.Error(aerr))
		if err == nil {
			// Unaudited answers are no answers: the asker treats it as
			// unanswered (peer_unreachable).
			return UniqueVerdict{}, aerr
		}
	}
	return v, err
}

func (s *Service) observeQuestion(centre, outcome string) {
	if f := s.cfg.Uniqueness.Observe; f != nil {
		f(centre, outcome)
	}
}

// questionLimit is the rate limiter of centre's questions.
func (s *Service) questionLimit(centre string) *rate.Limiter {
	s.questionsMu.Lock()
	defer s.questionsMu.Unlock()
	if s.questionLimits == nil {
		s.questionLimits = map[string]*rate.Limiter{}
	}
	l := s.questionLimits[centre]
	if l == nil {
		l = rate.NewLimiter(rate.Limit(s.cfg.Uniqueness.PeerRate), s.cfg.Uniqueness.PeerBurst)
		s.questionLimits[centre] = l
	}
	return l
}

// questionLog thins the log lines of refused questions, per centre.
func (s *Service) questionLog(centre string) *rate.Sometimes {
	s.questionsMu.Lock()
	defer s.questionsMu.Unlock()
	if s.questionLogs == nil {
		s.questionLogs = map[string]*rate.Sometimes{}
	}
	l := s.questionLogs[centre]
	if l == nil {
		l = &rate.Sometimes{Interval: 10 * time.Second}
		s.questionLogs[centre] = l
	}
	return l
}

// reservationKey names what is reserved without the name itself (a
// JetStream KV key: letters and digits).
func reservationKey(kind, v string) string {
	h := sha256.Sum256([]byte(kind + "\x00" + v))
	return kind + "." + hex.EncodeToString(h[:16])
}

// memReservations are reservations in this process's memory (a single
// level-1 instance, tests).
type memReservations struct {
	hold time.Duration
	now  func() time.Time
	mu   sync.Mutex
	held map[string]memHold
}

type memHold struct {
	holder string
	until  time.Time
}

func newMemReservations(hold time.Duration, now func() time.Time) *memReservations {
	return &memReservations{hold: hold, now: now, held: map[string]memHold{}}
}

func (m *memReservations) Reserve(_ context.Context, key, holder string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if h, ok := m.held[key]; ok && now.Before(h.until) && h.holder != holder {
		return h.holder, nil
	}
	if len(m.held) > 10000 { // drop the ended holds now and then
		for k, h := range m.held {
			if !now.Before(h.until) {
				delete(m.held, k)
			}
		}
	}
	m.held[key] = memHold{holder: holder, until: now.Add(m.hold)}
	return holder, nil
}

// APIReplicaIDCollision is the audit record of a replica whose ID number
// another person here has (replicaIDCollision).
const APIReplicaIDCollision = "user.replica_id_collision"

// replicaIDCollision reports, at level 1, a person of another centre whose
// ID number (centres key) another person here already has: a collision
// the level-2 centre could not ask about (cut off from level 1, or created
// before this check). The replica is applied all the same (the person
// stays held here, unlike a login name's CONFLICT); the collision is
// logged and audited APIReplicaIDCollision, reason ID_NUMBER_TAKEN, with
// the person's home centre, each time their ID number arrives, until one
// of the two accounts is deleted or corrected at its home.
func (s *Service) replicaIDCollision(ctx context.Context, origin string, w *ReplicaWrite) error {
	if s.homes == nil || s.homes.Level != 1 || !w.WithSealed || w.User.CentresKey == "" {
		return nil
	}
	held, err := s.store.CentresKeyHeld(ctx, w.User.CentresKey, w.User.ID)
	if err != nil || !held {
		return err
	}
	s.log.Warn("a person of another centre has the ID number of another person here (one account per person): applied, and audited "+
		APIReplicaIDCollision, zap.String("origin", origin), zap.String("user_id", w.User.ID))
	w.Events = append(w.Events, s.auditor.Event(ctx, audit.Action{API: APIReplicaIDCollision, Subject: "user:" + w.User.ID,
		Org: w.User.OrgID, Result: audit.ResultSuccess, Reason: ReasonIDNumberTaken, Start: s.now(),
		Detail: map[string]string{"home_centre": origin}}))
	return nil
}
