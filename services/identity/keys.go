package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
)

// Personal data (ID numbers, phones) is sealed with data keys that live in
// the database, each wrapped (encrypted) by a master key of the key ring,
// which lives outside it (a Secret, UIAS_KEYRING or a 0600 file). The
// database also keeps a key-check value per master key id, so a start with
// a missing or different ring stops with a clear error instead of making new
// keys and losing the old data. Rotation makes a new data key (new writes
// use it, old ones stay readable) and re-wraps the data keys under the
// active master key; a re-encrypt job moves stored values to the new key.

// Data key purposes.
const (
	KeyPurposeSeal  = "seal"  // seals personal data; the newest is active
	KeyPurposeIndex = "index" // blind indexes (feature codes); never rotates
)

// DataKey is a data-encryption key as stored.
type DataKey struct {
	ID      string // "d1", "d2", ... ("index" for the index key; v1 ids when imported)
	Purpose string
	// Seq orders keys by creation; the seal key with the highest Seq is
	// the active one. Unique, so two concurrent rotations cannot both win.
	Seq       int64
	Wrapped   string // crypto.Ring.WrapKey output: "<master key id>:..."
	CreatedAt time.Time
	// Suite is the key's suite (its cipher), known once it is unwrapped
	// (its length says it); not stored.
	Suite crypto.Suite
}

// MasterKeyID is the id of the master key that wraps k.
func (k DataKey) MasterKeyID() string {
	id, _ := crypto.KeyIDOf(k.Wrapped)
	return id
}

// KeyCheck is the key-check value of a master key id.
type KeyCheck struct {
	MasterID  string
	Value     string
	CreatedAt time.Time
}

// SealedValues are a user's sealed personal data.
type SealedValues struct {
	UserID      string
	IDNumberEnc string
	PhoneEnc    string
}

// SealedFinger is an enrolled finger's sealed template, as the re-encrypt
// job moves it.
type SealedFinger struct {
	UserID      string
	Position    int
	TemplateEnc string
}

// KeyStore is the persistence of data keys and key checks, and what the
// re-encrypt job needs of the users table. The conformance suite in
// storetest runs against every implementation.
type KeyStore interface {
	// ListDataKeys returns every data key by Seq.
	ListDataKeys(ctx context.Context) ([]DataKey, error)
	// AddDataKeys inserts keys and writes evs, all or nothing; ErrConflict
	// when an id or Seq is taken (another instance added keys first).
	AddDataKeys(ctx context.Context, keys []DataKey, evs []events.Event) error
	// RewrapDataKeys replaces the wrapped form of the given keys (id ->
	// wrapped), all or nothing.
	RewrapDataKeys(ctx context.Context, wrapped map[string]string) error
	ListKeyChecks(ctx context.Context) ([]KeyCheck, error)
	// AddKeyCheck stores c; ErrConflict when its master id has one.
	AddKeyCheck(ctx context.Context, c KeyCheck) error
	// SealedWithout returns up to limit users, by id after after, holding a
	// sealed value whose key id is not keyID.
	SealedWithout(ctx context.Context, keyID, after string, limit int) ([]SealedValues, error)
	// CountSealedWithout counts the sealed values (not users) whose key id
	// is not keyID: users' personal data, fingerprint templates and
	// authenticator app secrets.
	CountSealedWithout(ctx context.Context, keyID string) (int, error)
	// FingersSealedWithout returns up to limit fingers, by user id and
	// position after (afterUser, afterPosition), whose template is sealed
	// with another key than keyID.
	FingersSealedWithout(ctx context.Context, keyID, afterUser string, afterPosition, limit int) ([]SealedFinger, error)
	// ResealFinger replaces a finger's template with to if it still is
	// from.TemplateEnc (compare and set); false when the finger changed or
	// is gone meanwhile.
	ResealFinger(ctx context.Context, from SealedFinger, to string) (bool, error)
	// Reseal replaces a user's sealed values with to if they still are from
	// (compare and set); false when the user changed or is gone meanwhile.
	Reseal(ctx context.Context, from, to SealedValues) (bool, error)
	// TOTPSealedWithout returns up to limit authenticator app enrolments,
	// by user id after afterUser, whose secret is sealed with another key
	// than keyID (UserTOTP with UserID and SecretEnc set).
	TOTPSealedWithout(ctx context.Context, keyID, afterUser string, limit int) ([]UserTOTP, error)
	// ResealTOTP replaces a person's sealed secret with to if it still is
	// from.SecretEnc (compare and set); false when it changed or is gone.
	ResealTOTP(ctx context.Context, from UserTOTP, to string) (bool, error)
}

// ErrKeyRingMismatch reports a key ring that does not belong to the
// database (wrong ring, or one missing a master key the data needs).
var ErrKeyRingMismatch = errors.New("the key ring does not match this database")

// Keys holds the data keys of the identity service and the Sealer built
// from them. It is safe for concurrent use.
type Keys struct {
	store  KeyStore
	ring   *crypto.Ring
	sealer *crypto.Sealer
	log    *zap.Logger
	now    func() time.Time

	mu    sync.Mutex // serialises Reload and Rotate
	known map[string]DataKey
	// lastUnknown is when ReloadForUnknown last read the data keys.
	lastUnknown time.Time
	// foreign: Sealers over other centres' data keys, by their wrapped
	// form (resealArrived).
	foreign map[string]*crypto.Sealer
}

// UnknownKeyReloadEvery is how often at most a key id named by what a
// caller sent (a sealed token, which anybody can make up) makes an
// instance read the data keys again (ReloadForUnknown).
const UnknownKeyReloadEvery = time.Second

// ReloadForUnknown is Reload for a key id named by what a caller sent: it
// reads the data keys at most once every UnknownKeyReloadEvery (false when
// it did not, or the read failed), so that made-up tokens cannot turn each
// call into a read of the data keys. A token sealed with a key rotated in
// by another instance opens at the next try at the latest.
func (k *Keys) ReloadForUnknown(ctx context.Context) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	if !k.lastUnknown.IsZero() && now.Sub(k.lastUnknown) < UnknownKeyReloadEvery && now.After(k.lastUnknown) {
		return false
	}
	k.lastUnknown = now
	return k.reloadLocked(ctx) == nil
}

// HasKeyedData reports whether the database holds data protected by a key
// ring: data keys, or any org (a database in use always has its root org;
// users' feature codes and sealed values depend on the ring).
func HasKeyedData(ctx context.Context, st Store, ks KeyStore) (bool, error) {
	dks, err := ks.ListDataKeys(ctx)
	if err != nil {
		return false, err
	}
	if len(dks) > 0 {
		return true, nil
	}
	n, err := st.CountOrgs(ctx)
	return n > 0, err
}

// OpenKeys checks ring against the database and loads the data keys:
//   - every stored key-check value of a master key id the ring holds must
//     match (else ErrKeyRingMismatch: a different ring);
//   - every data key must unwrap with the ring (else ErrKeyRingMismatch
//     naming the missing master key);
//   - a database without data keys gets new ones when it holds no data
//     (hasData false); with data it must have been written with a
//     version-1 ring, whose keys are then imported as its data keys;
//   - the active master key's check value is stored when new.
func OpenKeys(ctx context.Context, st KeyStore, ring *crypto.Ring, hasData bool, log *zap.Logger) (*Keys, error) {
	if log == nil {
		log = zap.NewNop()
	}
	k := &Keys{store: st, ring: ring, log: log, now: time.Now, known: map[string]DataKey{}}
	if err := k.checkRing(ctx); err != nil {
		return nil, err
	}
	dks, err := st.ListDataKeys(ctx)
	if err != nil {
		return nil, fmt.Errorf("read data keys: %w", err)
	}
	if len(dks) == 0 {
		if err := k.createFirst(ctx, hasData); err != nil {
			return nil, err
		}
	}
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	// Only a ring that opened every data key leaves its mark.
	if err := k.ensureCheck(ctx, ring.Master.Active); err != nil {
		return nil, err
	}
	return k, nil
}

// Sealer is the Sealer over the data keys (kept current by Reload).
func (k *Keys) Sealer() *crypto.Sealer { return k.sealer }

func (k *Keys) mismatch(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrKeyRingMismatch}, a...)...)
}

// checkRing compares the stored key-check values with the ring.
func (k *Keys) checkRing(ctx context.Context) error {
	checks, err := k.store.ListKeyChecks(ctx)
	if err != nil {
		return fmt.Errorf("read key checks: %w", err)
	}
	for _, c := range checks {
		if !k.ring.Master.Has(c.MasterID) {
			continue // an old master key no longer needed (checked with the data keys)
		}
		v, err := k.ring.CheckValue(c.MasterID)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(v), []byte(c.Value)) != 1 {
			return k.mismatch("master key %q of the key ring (%s) is not the key %q this database was set up with; "+
				"start with the key ring this database belongs to (restore it from its backup or Secret); "+
				"nothing was changed", c.MasterID, k.ring.Source, c.MasterID)
		}
	}
	return nil
}

// ensureCheck stores the key-check value of master key id unless present
// (and compares it when another instance stored it first).
func (k *Keys) ensureCheck(ctx context.Context, id string) error {
	v, err := k.ring.CheckValue(id)
	if err != nil {
		return err
	}
	err = k.store.AddKeyCheck(ctx, KeyCheck{MasterID: id, Value: v, CreatedAt: k.now()})
	if errors.Is(err, ErrConflict) {
		return k.checkRing(ctx)
	}
	if err != nil {
		return fmt.Errorf("store key check: %w", err)
	}
	return nil
}

// createFirst makes the data keys of a new database, or imports the keys of
// a version-1 ring for a database written with them.
func (k *Keys) createFirst(ctx context.Context, hasData bool) error {
	var keys []DataKey
	now := k.now()
	wrap := func(id, purpose string, seq int64, raw []byte) error {
		w, err := k.ring.WrapKey(raw, id)
		if err != nil {
			return err
		}
		keys = append(keys, DataKey{ID: id, Purpose: purpose, Seq: seq, Wrapped: w, CreatedAt: now})
		return nil
	}
	switch {
	case !hasData:
		if err := wrap("index", KeyPurposeIndex, 0, crypto.NewDataKey()); err != nil {
			return err
		}
		// The first sealing key is of the suite of the ring's active
		// master key (the index key stays 32 bytes: blind indexes are
		// HMAC-SHA-256 and never change).
		if err := wrap("d1", KeyPurposeSeal, 1, crypto.NewDataKeyFor(k.ring.Suite())); err != nil {
			return err
		}
	case k.ring.Legacy != nil:
		// The version-1 keys sealed the data directly: they become data
		// keys with their ids, the active one last (highest Seq).
		lg := k.ring.Legacy
		if err := wrap("index", KeyPurposeIndex, 0, lg.Index); err != nil {
			return err
		}
		ids := make([]string, 0, len(lg.Keys))
		for id := range lg.Keys {
			if id != lg.Active {
				ids = append(ids, id)
			}
		}
		slices.Sort(ids)
		for i, id := range append(ids, lg.Active) {
			if err := wrap(id, KeyPurposeSeal, int64(i+1), lg.Keys[id]); err != nil {
				return err
			}
		}
		k.log.Warn("imported the keys of a version-1 key ring as data keys; switch to a version 2 ring "+
			"and run \"uias ctl keys rotate\" (docs/operators.md)", zap.String("key_ring", k.ring.Source))
	default:
		return k.mismatch("this database holds data but no data keys: it was written with a version-1 key ring " +
			"(keyring.json with \"active\" and \"keys\"); start once with that ring so its keys are imported")
	}
	err := k.store.AddDataKeys(ctx, keys, nil)
	if errors.Is(err, ErrConflict) {
		return nil // another instance created them first; Reload reads theirs
	}
	if err != nil {
		return fmt.Errorf("store data keys: %w", err)
	}
	return nil
}

// Reload reads the data keys (e.g. after another instance rotated) and
// updates the Sealer. It fails, changing nothing, when a key does not
// unwrap with the ring.
func (k *Keys) Reload(ctx context.Context) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.reloadLocked(ctx)
}

func (k *Keys) reloadLocked(ctx context.Context) error {
	dks, err := k.store.ListDataKeys(ctx)
	if err != nil {
		return fmt.Errorf("read data keys: %w", err)
	}
	seal := map[string]crypto.SuiteKey{}
	var index []byte
	var active DataKey
	known := map[string]DataKey{}
	for _, dk := range dks {
		mid := dk.MasterKeyID()
		if !k.ring.Master.Has(mid) {
			return k.mismatch("data key %q is wrapped by master key %q, which the key ring (%s) does not hold; "+
				"add that key back to the ring (keep old master keys until \"uias ctl keys rotate\" has re-wrapped every data key)",
				dk.ID, mid, k.ring.Source)
		}
		raw, err := k.ring.UnwrapKey(dk.Wrapped, dk.ID)
		if err != nil {
			return k.mismatch("data key %q does not decrypt with master key %q of the key ring (%s)", dk.ID, mid, k.ring.Source)
		}
		if dk.Suite, err = crypto.SuiteOfKey(raw); err != nil {
			return k.mismatch("data key %q: %v", dk.ID, err)
		}
		known[dk.ID] = dk
		switch dk.Purpose {
		case KeyPurposeIndex:
			if len(raw) != crypto.KeySize {
				return fmt.Errorf("the index data key is %d bytes, want %d", len(raw), crypto.KeySize)
			}
			index = raw
		case KeyPurposeSeal:
			seal[dk.ID] = crypto.SuiteKey{Suite: dk.Suite, Key: raw}
			if dk.Seq >= active.Seq {
				active = dk
			}
		}
	}
	if index == nil || len(seal) == 0 {
		return errors.New("the database lacks its index or sealing data key")
	}
	if k.sealer == nil {
		s, err := crypto.NewSuiteSealer(seal, active.ID, index)
		if err != nil {
			return err
		}
		k.sealer = s
	} else if err := k.sealer.SetSuiteKeys(seal, active.ID); err != nil {
		return err
	}
	k.known = known
	return nil
}

// KeyStatus is the state of the data keys.
type KeyStatus struct {
	ActiveKeyID       string
	ActiveMasterKeyID string
	// MasterSuites is the suite of each master key of the ring that wraps
	// a data key, and of the active one.
	MasterSuites map[string]crypto.Suite
	Keys         []DataKey // sealing keys by Seq
	// OnOlderKeys counts the stored values still sealed with another key
	// than the active one (the re-encrypt job moves them).
	OnOlderKeys int
}

func (k *Keys) status(ctx context.Context) (*KeyStatus, error) {
	if err := k.Reload(ctx); err != nil {
		return nil, err
	}
	st := &KeyStatus{ActiveKeyID: k.sealer.ActiveKeyID(), ActiveMasterKeyID: k.ring.Master.Active,
		MasterSuites: map[string]crypto.Suite{k.ring.Master.Active: k.ring.Suite()}}
	k.mu.Lock()
	for _, dk := range k.known {
		if dk.Purpose == KeyPurposeSeal {
			st.Keys = append(st.Keys, dk)
			st.MasterSuites[dk.MasterKeyID()] = k.ring.Master.SuiteOf(dk.MasterKeyID())
		}
	}
	k.mu.Unlock()
	slices.SortFunc(st.Keys, func(a, b DataKey) int { return int(a.Seq - b.Seq) })
	n, err := k.store.CountSealedWithout(ctx, st.ActiveKeyID)
	if err != nil {
		return nil, err
	}
	st.OnOlderKeys = n
	return st, nil
}

// rotate adds a new active sealing key, of the suite of the ring's active
// master key, and re-wraps every data key not yet under the active master
// key (a data key keeps its own suite: values sealed with it open until
// the re-encrypt job has moved them to the new key).
func (k *Keys) rotate(ctx context.Context, evs func(DataKey) []events.Event) (DataKey, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.reloadLocked(ctx); err != nil {
		return DataKey{}, err
	}
	var last int64
	rewrap := map[string]string{}
	for _, dk := range k.known {
		last = max(last, dk.Seq)
		if dk.MasterKeyID() != k.ring.Master.Active {
			raw, err := k.ring.UnwrapKey(dk.Wrapped, dk.ID)
			if err != nil {
				return DataKey{}, err
			}
			if rewrap[dk.ID], err = k.ring.WrapKey(raw, dk.ID); err != nil {
				return DataKey{}, err
			}
		}
	}
	id := "d" + strconv.FormatInt(last+1, 10)
	for k.known[id].ID != "" { // an imported key may hold the name
		id += "x"
	}
	suite := k.ring.Suite()
	w, err := k.ring.WrapKey(crypto.NewDataKeyFor(suite), id)
	if err != nil {
		return DataKey{}, err
	}
	dk := DataKey{ID: id, Purpose: KeyPurposeSeal, Seq: last + 1, Wrapped: w, CreatedAt: k.now(), Suite: suite}
	if err := k.ensureCheck(ctx, k.ring.Master.Active); err != nil {
		return DataKey{}, err
	}
	if len(rewrap) > 0 {
		if err := k.store.RewrapDataKeys(ctx, rewrap); err != nil {
			return DataKey{}, err
		}
	}
	if err := k.store.AddDataKeys(ctx, []DataKey{dk}, evs(dk)); err != nil {
		return DataKey{}, err
	}
	return dk, k.reloadLocked(ctx)
}

// ---- service operations (KeyService) ----

var errNoKeys = apierr.New(apierr.FailedPrecondition, "KEYS_UNAVAILABLE", "key management is not available in this instance")

// errKeys turns a key-management failure into a domain error: a ring that
// does not fit the data is a precondition for the operator, not a fault.
// Store errors pass as they are (pkg/store classified them).
func errKeys(err error) error {
	if errors.Is(err, ErrKeyRingMismatch) {
		return apierr.Wrap(err, apierr.FailedPrecondition, "KEY_RING_MISMATCH",
			"the key ring of this instance does not fit the stored data keys; see its log")
	}
	return err
}

// KeyStatus returns the data keys and how many values still use older ones.
func (s *Service) KeyStatus(ctx context.Context) (*KeyStatus, error) {
	if s.keys == nil {
		return nil, errNoKeys
	}
	st, err := s.keys.status(ctx)
	if err != nil {
		return nil, errKeys(err)
	}
	return st, nil
}

// RotateKeys makes a new data key the active one (new writes use it, older
// ones still decrypt) and re-wraps the data keys under the active master
// key. Run ReencryptData afterwards to move stored values to the new key.
func (s *Service) RotateKeys(ctx context.Context) (*KeyStatus, error) {
	start := s.now()
	if s.keys == nil {
		return nil, errNoKeys
	}
	dk, err := s.keys.rotate(ctx, func(dk DataKey) []events.Event {
		return []events.Event{s.audit(ctx, "keys.rotate", "key:"+dk.ID, "", "success", "OK", start,
			map[string]string{"master_key_id": dk.MasterKeyID(), "algorithm": dk.Suite.Algorithm()})}
	})
	if errors.Is(err, ErrConflict) {
		return nil, apierr.New(apierr.FailedPrecondition, "ROTATION_CONFLICT", "another key rotation happened at the same time; check the key status and retry if needed")
	}
	if err != nil {
		return nil, errKeys(err)
	}
	s.kick()
	s.log.Info("data key rotated", zap.String("key_id", dk.ID), zap.String("master_key_id", dk.MasterKeyID()),
		zap.String("algorithm", dk.Suite.Algorithm()))
	return s.KeyStatus(ctx)
}

// ReencryptResult is the outcome of one re-encrypt batch.
type ReencryptResult struct {
	ActiveKeyID string
	Reencrypted int // users whose values, and fingerprint templates, moved to the active key
	Failed      int // users' values and templates that could not be decrypted (left as they are)
	// Kept: values of people homed at another centre that do not decrypt
	// here (that centre's keys): left as they came, not failures.
	Kept      int
	Remaining int // values still on older keys after this batch
}

// Batch sizes of ReencryptData.
const (
	DefaultReencryptBatch = 200
	MaxReencryptBatch     = 2000
)

// ReencryptData moves up to batch users' sealed values, then fingerprint
// templates, then authenticator app secrets, to the active data key (one batch per call, so the call stays short and can be repeated
// until Remaining is 0; a value that changed meanwhile is left to the next
// call). Values that cannot be decrypted are counted and logged, never
// erased.
func (s *Service) ReencryptData(ctx context.Context, batch int) (ReencryptResult, error) {
	start := s.now()
	if s.keys == nil {
		return ReencryptResult{}, errNoKeys
	}
	switch {
	case batch == 0:
		batch = DefaultReencryptBatch
	case batch < 0 || batch > MaxReencryptBatch:
		return ReencryptResult{}, badRequest("batch_size must be between 0 (default %d) and %d", DefaultReencryptBatch, MaxReencryptBatch)
	}
	if err := s.keys.Reload(ctx); err != nil {
		return ReencryptResult{}, errKeys(err)
	}
	sealer := s.keys.Sealer()
	res := ReencryptResult{ActiveKeyID: sealer.ActiveKeyID()}
	after := ""
	for res.Reencrypted+res.Failed+res.Kept < batch {
		list, err := s.keys.store.SealedWithout(ctx, res.ActiveKeyID, after, batch-res.Reencrypted-res.Failed-res.Kept)
		if err != nil {
			return res, err
		}
		if len(list) == 0 {
			break
		}
		for _, v := range list {
			after = v.UserID
			to, err := reseal(sealer, v)
			if err != nil {
				s.unreadable(ctx, &res, v.UserID, "re-encrypt: a stored value of this user cannot be decrypted; left unchanged", err)
				continue
			}
			ok, err := s.keys.store.Reseal(ctx, v, to)
			if err != nil {
				return res, err
			}
			if ok {
				res.Reencrypted++
			}
		}
	}
	// Then fingerprint templates, within the same batch.
	afterUser, afterPos := "", 0
	for res.Reencrypted+res.Failed+res.Kept < batch {
		list, err := s.keys.store.FingersSealedWithout(ctx, res.ActiveKeyID, afterUser, afterPos, batch-res.Reencrypted-res.Failed-res.Kept)
		if err != nil {
			return res, err
		}
		if len(list) == 0 {
			break
		}
		for _, f := range list {
			afterUser, afterPos = f.UserID, f.Position
			aad := fingerAAD(f.UserID, f.Position)
			pt, err := sealer.Open(f.TemplateEnc, aad)
			var to string
			if err == nil {
				to, err = sealer.Seal(pt, aad)
			}
			clear(pt)
			if err != nil {
				s.unreadable(ctx, &res, f.UserID, "re-encrypt: a fingerprint template of this user cannot be decrypted; left unchanged", err)
				continue
			}
			ok, err := s.keys.store.ResealFinger(ctx, f, to)
			if err != nil {
				return res, err
			}
			if ok {
				res.Reencrypted++
			}
		}
	}
	// Then authenticator app secrets.
	afterUser = ""
	for res.Reencrypted+res.Failed+res.Kept < batch {
		list, err := s.keys.store.TOTPSealedWithout(ctx, res.ActiveKeyID, afterUser, batch-res.Reencrypted-res.Failed-res.Kept)
		if err != nil {
			return res, err
		}
		if len(list) == 0 {
			break
		}
		for _, t := range list {
			afterUser = t.UserID
			aad := []byte(aadTOTPSecret + t.UserID)
			pt, err := sealer.Open(t.SecretEnc, aad)
			var to string
			if err == nil {
				to, err = sealer.Seal(pt, aad)
			}
			clear(pt)
			if err != nil {
				s.unreadable(ctx, &res, t.UserID, "re-encrypt: an authenticator app secret of this user cannot be decrypted; left unchanged", err)
				continue
			}
			ok, err := s.keys.store.ResealTOTP(ctx, t, to)
			if err != nil {
				return res, err
			}
			if ok {
				res.Reencrypted++
			}
		}
	}
	n, err := s.keys.store.CountSealedWithout(ctx, res.ActiveKeyID)
	if err != nil {
		return res, err
	}
	res.Remaining = n
	if res.Reencrypted > 0 || res.Failed > 0 {
		ev := s.audit(ctx, "keys.reencrypt", "key:"+res.ActiveKeyID, "", "success", "OK", start,
			map[string]string{"reencrypted": strconv.Itoa(res.Reencrypted), "failed": strconv.Itoa(res.Failed), "kept": strconv.Itoa(res.Kept),
				"remaining": strconv.Itoa(res.Remaining)})
		if err := s.store.AppendEvents(ctx, []events.Event{ev}); err != nil {
			s.log.Warn("re-encrypt: audit event not written", zap.Error(err))
		}
		s.kick()
	}
	return res, nil
}

// unreadable counts a value of person userID that does not decrypt: kept
// when the person is homed at another centre (sealed with its keys: not a
// failure here; trial10 M2), else failed (logged).
func (s *Service) unreadable(ctx context.Context, res *ReencryptResult, userID, msg string, err error) {
	if s.elsewhere(ctx, &User{ID: userID}) {
		res.Kept++
		return
	}
	res.Failed++
	s.log.Error(msg, zap.String("user_id", userID), zap.Error(err))
}

// reseal opens v's values with any known key and seals them with the active
// one (values already on the active key stay as they are).
func reseal(sealer *crypto.Sealer, v SealedValues) (SealedValues, error) {
	out := v
	for _, f := range []struct {
		val *string
		aad string
	}{{&out.IDNumberEnc, aadIDNumber}, {&out.PhoneEnc, aadPhone}} {
		if *f.val == "" || strings.HasPrefix(*f.val, sealer.ActiveKeyID()+":") {
			continue
		}
		pt, err := sealer.Open(*f.val, []byte(f.aad))
		if err != nil {
			return v, err
		}
		if *f.val, err = sealer.Seal(pt, []byte(f.aad)); err != nil {
			return v, err
		}
	}
	return out, nil
}

// Associated data binding sealed values to their column.
const (
	aadIDNumber = "user.id_number"
	aadPhone    = "user.phone"
)

// ---- sealed values between centres ----

// A change that carries a sealed value (a person's ID and phone numbers, a
// fingerprint template, an authenticator app's secret) carries beside it
// the data keys that sealed it, wrapped by the home centre's master key
// (wrappedFor). The ids of data keys are per database ("d1" here is not the
// home's "d1"), so a centre whose key ring holds that master key opens the
// value on arrival and seals it again with its own active data key
// (resealArrived); from then on it is this centre's like any other value
// (rotation, re-encryption). A centre whose ring does not hold the master
// key keeps the value as it came: it opens at the home only.

// maxForeignSealers bounds the data keys of other centres kept unwrapped.
const maxForeignSealers = 64

// wrappedFor returns the wrapped data keys, by id, that sealed values (nil
// when there are none, or no data keys are managed here).
func (k *Keys) wrappedFor(values ...string) map[string]string {
	if k == nil {
		return nil
	}
	var out map[string]string
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, v := range values {
		id, err := crypto.KeyIDOf(v)
		if err != nil {
			continue
		}
		if dk, ok := k.known[id]; ok && dk.Purpose == KeyPurposeSeal {
			if out == nil {
				out = map[string]string{}
			}
			out[id] = dk.Wrapped
		}
	}
	return out
}

// errForeignKey: a value of another centre came without the data key that
// sealed it, or with one this centre's key ring does not open.
var errForeignKey = errors.New("the data key that sealed it does not open with this centre's key ring")

// errOwnValue: a value of another centre opens with this centre's own data
// keys: it was sealed here (for one of this centre's people, as the same
// associated data binds an ID number or phone to no person) and sent back
// as another person's, which would make this centre reveal it as theirs
// (review sec14 M2).
var errOwnValue = errors.New("it opens with this centre's own data keys")

// resealArrived opens value, sealed at another centre with one of the
// wrapped data keys (by id), and seals it with this centre's active data
// key, binding aad as the home did. An empty value stays empty; a value
// that does not open is returned as it came, with the error; one whose aad
// binds no person (unbound) and that opens with this centre's own data
// keys is dropped ("", errOwnValue).
func (k *Keys) resealArrived(value string, aad []byte, wrapped map[string]string, unbound bool) (string, error) {
	if value == "" {
		return "", nil
	}
	if k == nil {
		return value, errForeignKey
	}
	if pt, err := k.sealer.Open(value, aad); err == nil && unbound {
		// (only for values whose associated data binds no person: a
		// finger's or an app's names its person, and centres sharing a
		// data key open each other's; review sec15 M4)
		clear(pt)
		return "", errOwnValue
	}
	id, err := crypto.KeyIDOf(value)
	if err != nil {
		return value, err
	}
	w, ok := wrapped[id]
	if !ok {
		return value, errForeignKey
	}
	s, err := k.foreignSealer(id, w)
	if err != nil {
		return value, err
	}
	pt, err := s.Open(value, aad)
	if err != nil {
		return value, err
	}
	defer clear(pt)
	out, err := k.sealer.Seal(pt, aad)
	if err != nil {
		return value, err
	}
	return out, nil
}

// foreignSealer is a Sealer over another centre's data key id, wrapped as
// w, kept for the changes after this one (the key wrapped the same way).
func (k *Keys) foreignSealer(id, w string) (*crypto.Sealer, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if s, ok := k.foreign[w]; ok {
		return s, nil
	}
	if !k.ring.Master.Has(mustKeyID(w)) {
		return nil, errForeignKey
	}
	raw, err := k.ring.UnwrapKey(w, id)
	if err != nil {
		return nil, errForeignKey
	}
	defer clear(raw)
	suite, err := crypto.SuiteOfKey(raw)
	if err != nil {
		return nil, errForeignKey
	}
	s, err := crypto.NewSuiteSealer(map[string]crypto.SuiteKey{id: {Suite: suite, Key: raw}}, id, make([]byte, crypto.KeySize))
	if err != nil {
		return nil, err
	}
	if k.foreign == nil || len(k.foreign) >= maxForeignSealers {
		k.foreign = map[string]*crypto.Sealer{}
	}
	k.foreign[w] = s
	return s, nil
}

// mustKeyID is the master key id of a wrapped data key ("" when it has none).
func mustKeyID(wrapped string) string {
	id, _ := crypto.KeyIDOf(wrapped)
	return id
}
