package identity

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/uias/uias/pkg/apierr"
	"github.com/uias/uias/pkg/caller"
	"github.com/uias/uias/pkg/crypto"
	"github.com/uias/uias/pkg/events"
	"github.com/uias/uias/pkg/ids"
	ulog "github.com/uias/uias/pkg/log"
)

// write runs a store mutation with its change + audit events and wakes the
// relay. Store errors (pkg/store) are returned as they are: they already
// carry a reason and a message that names the object.
func (s *Service) write(ctx context.Context, fn func(evs []events.Event) error, evs ...events.Event) error {
	if err := fn(evs); err != nil {
		return err
	}
	s.kick()
	return nil
}

func (s *Service) adminAudit(ctx context.Context, api, subject, org string, start time.Time) events.Event {
	return s.audit(ctx, api, subject, org, "success", "OK", start, nil)
}

// signingKeysDetail is the audit detail naming a's request signing keys
// by their whole thumbprints (SHA-256 of each SubjectPublicKeyInfo): the
// permanent log binds the keys in force from then on, so a public key
// presented later (by the application, which keeps it) is checked against
// it, after a rollover too; and the public keys themselves (base64 of
// each DER SubjectPublicKeyInfo, the PEM's body; not secret), so the log
// keeps them after a rollover or the application's deletion, when UIAS no
// longer holds them (JR/T 0185-2020 9.4: retired credentials archived for
// later checks; gap2 G12). nil without keys.
func signingKeysDetail(a *App) map[string]string {
	var thumbs, spki []string
	for _, k := range a.ParsedSigningKeys() {
		thumbs = append(thumbs, k.Thumbprint)
		if b, _ := pem.Decode([]byte(k.PEM)); b != nil {
			spki = append(spki, base64.StdEncoding.EncodeToString(b.Bytes))
		}
	}
	if len(thumbs) == 0 {
		return nil
	}
	return map[string]string{"signing_keys": strings.Join(thumbs, ","), "signing_keys_spki": strings.Join(spki, ",")}
}

// retiredKeys is the audit detail of the keys of before that after no
// longer has: their thumbprints and the keys themselves (those registered
// before the log kept keys have their only archived copy here; review
// sec24 L3). nil when none is retired.
func retiredKeys(before, after []SigningKey) map[string]string {
	kept := map[string]bool{}
	for _, k := range after {
		kept[k.PEM] = true
	}
	var gone []SigningKey
	for _, k := range before {
		if !kept[k.PEM] {
			gone = append(gone, k)
		}
	}
	d := signingKeysDetail(&App{SigningKeys: gone})
	if d == nil {
		return nil
	}
	return map[string]string{"retired_signing_keys": d["signing_keys"], "retired_signing_keys_spki": d["signing_keys_spki"]}
}

// deletedAppDetail is the audit detail of a's deletion: what identified
// it and its credentials (the bound certificate's fingerprint, the
// signing keys with their PEM, when its secret was issued), archived in
// the log as the application's row goes.
func deletedAppDetail(a *App) map[string]string {
	d := map[string]string{"app_type": a.Type, "app_code": a.Code, "name": a.Name, "secret_issued": expiryText(a.SecretIssuedAt),
		"secret_expires": expiryText(a.SecretExpires)}
	if a.ClientCertSHA256 != "" {
		d["client_cert_sha256"] = a.ClientCertSHA256
	}
	maps.Copy(d, signingKeysDetail(a))
	return d
}

func pageOf(size int32, token string) (Page, error) {
	if size < 0 || size > 500 {
		return Page{}, badField("page_size", "page_size must be between 0 and 500")
	}
	return Page{Size: int(size), Token: token}, nil
}

// ---- orgs ----

// CreateOrg adds an org; an empty parent makes a root (only when none exists).
func (s *Service) CreateOrg(ctx context.Context, code, name, parentID string) (*Org, error) {
	start := s.now()
	o := &Org{ID: ids.New(), Code: code, Name: name, ParentID: parentID, Status: StatusActive, CreatedAt: start, UpdatedAt: start}
	if err := s.ownOrgOrRoot(ctx, parentID); err != nil {
		return nil, err
	}
	if parentID == "" {
		n, err := s.store.CountOrgs(ctx)
		if err != nil {
			return nil, err
		}
		if n > 0 {
			return nil, badField("parent_id", "parent_id is required (the root org already exists)")
		}
		o.Path = "/" + o.ID + "/"
	} else {
		// Also reports a missing parent; the store derives the path.
		if err := s.activeOrg(ctx, parentID, "PARENT_DISABLED", "parent org"); err != nil {
			return nil, err
		}
	}
	err := s.write(ctx, func(evs []events.Event) error { return s.store.CreateOrg(ctx, o, evs) },
		s.replicaChange(ctx, "org", "created", o.ID, map[string]any{"code": code, "name": name, "parent_id": parentID}, orgReplica(o)),
		s.adminAudit(ctx, "org.create", "org:"+o.ID, o.ID, start))
	if err != nil {
		return nil, err
	}
	return o, nil
}

// GetOrg returns one org.
func (s *Service) GetOrg(ctx context.Context, id string) (*Org, error) {
	o, err := s.store.GetOrg(ctx, id)
	return o, err
}

// ListOrgs lists orgs with filters and a page.
func (s *Service) ListOrgs(ctx context.Context, f OrgFilter, size int32, token string) ([]*Org, string, error) {
	if err := s.filterExists(ctx, token, orgNamed(f.ParentID)); err != nil {
		return nil, "", err
	}
	f.Within = withinOf(ctx, f.Within)
	return listRead(ctx, s, size, token, func(ctx context.Context, p Page) ([]*Org, string, error) {
		return s.store.ListOrgs(ctx, f, p)
	})
}

// errRootOrg refuses a change the root org cannot take (verb: "moved"...).
func errRootOrg(verb string) error {
	return apierr.New(apierr.FailedPrecondition, "ROOT_ORG", "the root org cannot be "+verb)
}

// filterRef is an object a listing's filter names (id "" when none).
type filterRef struct{ kind, id string }

func orgNamed(id string) filterRef { return filterRef{"org", id} }

// filterExists refuses, on a listing's first page, a filter naming an
// object that does not exist (NOT_FOUND naming it): an empty list would
// read as "nothing there" for a mistyped id.
func (s *Service) filterExists(ctx context.Context, token string, refs ...filterRef) error {
	if token != "" {
		return nil
	}
	for _, r := range refs {
		if r.id == "" {
			continue
		}
		var err error
		switch r.kind {
		case "org":
			_, err = s.store.GetOrg(ctx, r.id)
		case "user":
			_, err = s.store.GetUser(ctx, r.id)
		case "application":
			_, err = s.store.GetApp(ctx, r.id)
		}
		if errors.Is(err, ErrNotFound) {
			return ErrNotFound.WithMessage("the filter's " + r.kind + " " + truncate(r.id, 64) + " does not exist")
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// DeleteOrg removes an empty org (no org, person or group under it; the
// root org stays). CHANGES org.deleted tells the business systems
// provisioned with it.
func (s *Service) DeleteOrg(ctx context.Context, id string) error {
	start := s.now()
	o, err := s.GetOrg(ctx, id)
	if err != nil {
		return err
	}
	if err := s.homes.CheckOrg(o.Path, "org "+o.ID); err != nil {
		return err
	}
	if o.ParentID == "" {
		return errRootOrg("deleted")
	}
	return s.write(ctx, func(evs []events.Event) error { return s.store.DeleteOrg(ctx, id, evs) },
		s.change(ctx, "org", "deleted", id, map[string]any{}),
		s.adminAudit(ctx, "org.delete", "org:"+id, o.ParentID, start))
}

// UpdateOrg renames an org.
func (s *Service) UpdateOrg(ctx context.Context, id, name string) (*Org, error) {
	start := s.now()
	o, err := s.GetOrg(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.homes.CheckOrg(o.Path, "org "+o.ID); err != nil {
		return nil, err
	}
	o.Name, o.UpdatedAt = name, start
	err = s.write(ctx, func(evs []events.Event) error { return s.store.UpdateOrg(ctx, o, evs) },
		s.replicaChange(ctx, "org", "updated", o.ID, map[string]any{"name": name}, orgReplica(o)),
		s.adminAudit(ctx, "org.update", "org:"+o.ID, o.ID, start))
	return o, err
}

// SetOrgStatus disables or re-enables an org.
func (s *Service) SetOrgStatus(ctx context.Context, id string, st Status) (*Org, error) {
	start := s.now()
	if st != StatusActive && st != StatusDisabled {
		return nil, badField("status", "status must be ACTIVE or DISABLED")
	}
	o, err := s.GetOrg(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.homes.CheckOrg(o.Path, "org "+o.ID); err != nil {
		return nil, err
	}
	if o.ParentID == "" && st == StatusDisabled {
		return nil, errRootOrg("disabled")
	}
	o.Status, o.UpdatedAt = st, start
	err = s.write(ctx, func(evs []events.Event) error { return s.store.UpdateOrg(ctx, o, evs) },
		s.replicaChange(ctx, "org", "status_changed", o.ID, map[string]any{"status": st}, orgReplica(o)),
		s.adminAudit(ctx, "org.set_status", "org:"+o.ID, o.ID, start))
	return o, err
}

// MoveOrg re-parents an org (never under its own subtree).
// activeOrg checks that org id exists and that neither it nor an org above
// it is disabled: a disabled org disables its whole subtree. what names the
// org in the error ("org", "parent org").
func (s *Service) activeOrg(ctx context.Context, id, reason, what string) error {
	d, err := s.store.DisabledInOrgChain(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return apierr.New(apierr.NotFound, "NOT_FOUND", what+" not found")
	}
	if err != nil {
		return err
	}
	switch {
	case d == id:
		return apierr.New(apierr.FailedPrecondition, reason, what+" is disabled")
	case d != "":
		return apierr.New(apierr.FailedPrecondition, reason, what+" is below a disabled org")
	}
	return nil
}

func (s *Service) MoveOrg(ctx context.Context, id, newParentID string) (*Org, error) {
	start := s.now()
	if id == newParentID {
		return nil, apierr.New(apierr.FailedPrecondition, "ORG_CYCLE", "cannot move an org under itself")
	}
	cur, err := s.GetOrg(ctx, id)
	if err != nil {
		return nil, err
	}
	if cur.ParentID == "" {
		return nil, errRootOrg("moved")
	}
	if err := s.homes.CheckOrg(cur.Path, "org "+cur.ID); err != nil {
		return nil, err
	}
	if err := s.ownOrg(ctx, newParentID, "org "+newParentID); err != nil {
		return nil, err
	}
	if err := s.activeOrg(ctx, newParentID, "PARENT_DISABLED", "new parent org"); err != nil {
		return nil, err
	}
	var out *Org
	err = s.write(ctx, func(evs []events.Event) error {
		o, err := s.store.MoveOrg(ctx, id, newParentID, start, evs)
		out = o
		if errors.Is(err, ErrConflict) {
			return apierr.New(apierr.FailedPrecondition, "ORG_CYCLE", "cannot move an org under its own subtree")
		}
		return err
	}, s.replicaChange(ctx, "org", "moved", id, map[string]any{"parent_id": newParentID}, movedReplica(cur, newParentID, start)),
		s.adminAudit(ctx, "org.move", "org:"+id, id, start))
	if err == nil {
		// Moved under a directory's subtree: its people's local hashes go
		// (review sec27a M2); what a failure leaves, the start's sweep
		// clears.
		if src, serr := s.sourceOfOrg(ctx, out); serr == nil && src != nil {
			if _, serr = s.ClearDirectoryHashes(ctx, id); serr != nil {
				s.log.Warn("local password hashes of the people of an org moved under a directory not all removed; the next start removes the rest",
					zap.String("org_id", id), zap.Error(serr))
			}
		}
	}
	return out, err
}

// ClearDirectoryHashes removes the local password hash of every person of
// orgID's subtree (every directory subtree when empty) whose password a
// directory checks (identity.ldap_auth): people who came under a
// directory by an org move, by a wider ldap_auth, or before a version
// that removed hashes on a person's move (review sec27a M2). Each removal
// is a password change (history, sessions ended, replicated, audited
// user.clear_password DIRECTORY). It returns how many it removed.
func (s *Service) ClearDirectoryHashes(ctx context.Context, orgID string) (int, error) {
	var roots []string
	switch {
	case orgID != "":
		roots = []string{orgID}
	case s.creds != nil:
		for _, d := range s.creds.list {
			for _, code := range d.Orgs {
				id, err := s.orgIDOf(ctx, code)
				if err != nil {
					return 0, err
				}
				if id != "" {
					roots = append(roots, id)
				}
			}
		}
	}
	n := 0
	for _, root := range roots {
		token := ""
		for {
			users, next, err := s.store.ListUsers(ctx, UserFilter{OrgID: root, Subtree: true, HasPassword: true}, Page{Size: 200, Token: token})
			if err != nil {
				return n, err
			}
			for _, u := range users {
				if s.elsewhere(ctx, u) {
					continue // another centre's person: their home removes it
				}
				had := u.PasswordHash != ""
				if err := s.dropDirectoryHash(ctx, u, s.now()); err != nil {
					return n, err
				}
				if had && u.PasswordHash == "" {
					n++
				}
			}
			if next == "" {
				break
			}
			token = next
		}
	}
	return n, nil
}

// ---- users ----

// NewUser is the input of CreateUser.
type NewUser struct {
	LoginName, DisplayName string
	// UserType: a person's account (0, UserTypePerson) or a unit's.
	UserType               UserType
	IDType                 IDType
	IDNumber, Phone, Email string
	OrgID, Password        string
	MustChange             bool
	NeverExpires           bool
	CannotChange           bool
	PasswordOnly           bool
	IsAdmin                bool
	// MinAuthLevel: see User.
	MinAuthLevel int
	// OwnPassword: Password is the person's own (the first
	// administrators', each given by whoever starts the system for them);
	// otherwise a password given is one another set for them
	// (User.PasswordByOther).
	OwnPassword bool
}

func validIDType(t IDType) bool {
	switch t {
	case IDTypeNone, IDTypeResidentID, IDTypePassport, IDTypeMilitary, IDTypeOther, IDTypeUSCC, IDTypeOrgCode:
		return true
	}
	return false
}

// CreateUser adds a user; the ID number and phone are encrypted at rest.
func (s *Service) CreateUser(ctx context.Context, n NewUser) (*User, error) {
	u, evs, err := s.newUser(ctx, n, true)
	if err != nil {
		return nil, err
	}
	err = s.write(ctx, func(evs []events.Event) error { return s.store.CreateUser(ctx, u, evs) }, evs...)
	if err != nil {
		return nil, err
	}
	if u.IsAdmin && s.appointed != nil {
		s.appointed()
	}
	return u, nil
}

// normalIDNumber is an ID number as it is checked, keyed and stored:
// without the spaces around it, and a resident ID number's check
// character in upper case (x and X are one character; the masks show X).
func normalIDNumber(t IDType, n string) string {
	n = strings.TrimSpace(n)
	if t == IDTypeResidentID {
		n = strings.ToUpper(n)
	}
	if unitIDType(t) {
		n = normalUnitCode(t, n)
	}
	return n
}

// checkIDNumber checks a person's ID type and (normalIDNumber) number.
func checkIDNumber(t IDType, idNumber string) error {
	switch {
	case !validIDType(t):
		return badField("id_type", "id_type is not a known ID type")
	case idNumber != "" && t == IDTypeNone:
		return badField("id_type", "id_type is required with id_number")
	case idNumber == "" && t != IDTypeNone:
		// A type without its number identifies nobody (and a passport
		// "set" so would be taken for checked).
		return badField("id_number", "id_number is required with id_type (or set id_type to none)")
	case t == IDTypeResidentID && idNumber != "" && !validResidentID(idNumber):
		return badField("id_number", "id_number is not a valid 18-character resident ID number")
	case t == IDTypeUSCC && idNumber != "" && !validUSCC(idNumber):
		return badField("id_number", "id_number is not a valid 18-character unified social credit code")
	case t == IDTypeOrgCode && idNumber != "" && !validOrgCode(idNumber):
		return badField("id_number", "id_number is not a valid 9-character organisation code (8 characters and the check character, with or without a hyphen before it)")
	}
	return nil
}

// newUser checks n and makes the user it describes (password hashed,
// personal values sealed) with the events of its creation; across: its
// login name and ID number are checked with level 1 too (uniq.go; not for
// each centre's own bootstrap administrators).
func (s *Service) newUser(ctx context.Context, n NewUser, across bool) (*User, []events.Event, error) {
	start := s.now()
	// An ID number is compared, keyed and stored without the spaces around
	// it (as the import reads it): " X" and "X" are one person's.
	n.IDNumber = normalIDNumber(n.IDType, n.IDNumber)
	if err := checkAccountID(n.UserType, n.IDType, n.IDNumber); err != nil {
		return nil, nil, err
	}
	if err := checkPhone(n.Phone); err != nil {
		return nil, nil, err
	}
	if err := checkEmail(n.Email); err != nil {
		return nil, nil, err
	}
	if err := checkPersonLevel(n.MinAuthLevel, n.PasswordOnly); err != nil {
		return nil, nil, err
	}
	if !n.IsAdmin {
		// (an administrator's AdminLogin issues the token all the same,
		// saying the change is due: TestAdminLoginCannotChangePassword)
		if err := checkPasswordFlags(n.MustChange, n.CannotChange); err != nil {
			return nil, nil, err
		}
	}
	if err := s.ownOrg(ctx, n.OrgID, "org "+n.OrgID); err != nil {
		return nil, nil, err
	}
	if err := s.activeOrg(ctx, n.OrgID, "ORG_DISABLED", "org"); err != nil {
		return nil, nil, err
	}
	u := &User{ID: ids.New(), LoginName: n.LoginName, DisplayName: n.DisplayName, UserType: StoredUserType(n.UserType), IDType: n.IDType,
		Email: n.Email, OrgID: n.OrgID, Status: StatusActive, IsAdmin: n.IsAdmin,
		MustChange: n.MustChange, NeverExpires: n.NeverExpires, CannotChange: n.CannotChange,
		PasswordOnly: n.PasswordOnly, MinAuthLevel: n.MinAuthLevel, CreatedAt: start, UpdatedAt: start}
	if err := s.sealPersonal(u, n.IDNumber, n.Phone); err != nil {
		return nil, nil, err
	}
	u.FeatureCode = s.accountFeatureCode(u.UserType, n.IDType, n.IDNumber, n.DisplayName, n.LoginName)
	u.IDKey = s.idKey(n.IDType, n.IDNumber)
	u.CentresKey = s.centresKey(n.IDType, n.IDNumber)
	reason := "OK"
	if across {
		var err error
		if reason, err = s.claimAcross(ctx, u, true, true); err != nil {
			return nil, nil, err
		}
	}
	if n.Password != "" {
		if err := s.refuseDirectoryPassword(ctx, &User{OrgID: n.OrgID}); err != nil {
			return nil, nil, err
		}
		if err := s.cfg.Policy.CheckPassword(n.Password, n.LoginName); err != nil {
			return nil, nil, err
		}
		h, err := s.hasher.Hash(ctx, n.Password)
		if err != nil {
			return nil, nil, errOverloaded
		}
		u.PasswordHash, u.PasswordChangedAt, u.PasswordByOther = h, start, !n.OwnPassword
	}
	var levelSet map[string]any
	if u.MinAuthLevel > 0 {
		levelSet = map[string]any{"min_auth_level": u.MinAuthLevel}
	}
	return u, []events.Event{s.replicaChange(ctx, "user", "created", u.ID, userView(u), s.withSealed(userReplica(u, true), u)),
		s.audit(ctx, "user.create", "user:"+u.ID, u.OrgID, "success", reason, start, userChangeDetail(u, levelSet))}, nil
}

func (s *Service) sealPersonal(u *User, idNumber, phone string) error {
	u.IDNumberEnc, u.IDNumberMask, u.PhoneEnc, u.PhoneMask = "", "", "", ""
	if idNumber != "" {
		enc, err := s.sealer.Seal([]byte(idNumber), []byte("user.id_number"))
		if err != nil {
			return fmt.Errorf("seal id number: %w", err)
		}
		u.IDNumberEnc, u.IDNumberMask = enc, ulog.MaskIDNumber(idNumber)
	}
	if phone != "" {
		enc, err := s.sealer.Seal([]byte(phone), []byte("user.phone"))
		if err != nil {
			return fmt.Errorf("seal phone: %w", err)
		}
		u.PhoneEnc, u.PhoneMask = enc, ulog.MaskPhone(phone)
	}
	return nil
}

// featureCode is the unique per-person code from ID type + ID number + name +
// login name: a keyed hash, so it reveals none of them.
func (s *Service) featureCode(t IDType, idNumber, name, login string) string {
	return s.sealer.BlindIndex(fmt.Sprintf("%d\x00%s\x00%s\x00%s", t, strings.ToUpper(idNumber), name, login))[:32]
}

// idKeyPrefix starts what idKey hashes: a feature code's input starts with
// a digit (the ID type), so the two never hash the same input.
const idKeyPrefix = "uias.id_key\x00"

// idKey is the blind index that makes an ID number one account's: a keyed
// hash (the never-rotating index key) of the ID type and the upper-cased
// number ('x' and 'X' are one check character). "" without an ID number,
// or when several accounts may share one (Policy.SharedIDNumbers).
func (s *Service) idKey(t IDType, idNumber string) string {
	if idNumber == "" || s.cfg.Policy.SharedIDNumbers {
		return ""
	}
	t, idNumber = keyedID(t, idNumber)
	return s.sealer.BlindIndex(fmt.Sprintf("%s%d\x00%s", idKeyPrefix, t, strings.ToUpper(strings.TrimSpace(idNumber))))[:32]
}

// openPersonal decrypts u's sealed values. A value that does not decrypt is
// an error, never an empty value: re-sealing an empty value would erase the
// stored one. A key id this instance does not know yet (another instance
// rotated) makes it reload the data keys once.
func (s *Service) openPersonal(ctx context.Context, u *User) (idNumber, phone string, err error) {
	open := func(v, aad string) (string, error) {
		if v == "" {
			return "", nil
		}
		b, err := s.sealer.Open(v, []byte(aad))
		if errors.Is(err, crypto.ErrUnknownKeyID) && s.keys != nil {
			if rerr := s.keys.Reload(ctx); rerr != nil {
				return "", errKeys(rerr)
			}
			b, err = s.sealer.Open(v, []byte(aad))
		}
		if err != nil {
			s.logUnreadable(ctx, u, "stored personal data cannot be decrypted with the data keys", err)
			return "", apierr.Wrap(err, apierr.FailedPrecondition, reasonPersonalDataUnreadable,
				"the stored personal data of this user cannot be decrypted (key ring or data keys do not match); nothing was changed")
		}
		return string(b), nil
	}
	if idNumber, err = open(u.IDNumberEnc, "user.id_number"); err != nil {
		return "", "", err
	}
	if phone, err = open(u.PhoneEnc, "user.phone"); err != nil {
		return "", "", err
	}
	return idNumber, phone, nil
}

// GetUser returns one user, from this instance's user cache when it holds a
// fresh copy (see usercache.go).
func (s *Service) GetUser(ctx context.Context, id string) (*User, error) {
	u, err := s.UserValue(ctx, id)
	if err != nil {
		return nil, err
	}
	return &u, nil // a copy: callers may change it
}

// UserValue is GetUser with the user returned as a value: a caller that
// reads it and keeps nothing of it (an answer made from it) gets it
// without an allocation.
func (s *Service) UserValue(ctx context.Context, id string) (User, error) {
	c, err := s.cachedUser(ctx, id)
	return c.User, err
}

// UserWithTOTP is UserValue with when the person enrolled an authenticator
// app (zero: none), as the administrator's GetUser answers both: from the
// user cache too, which holds the two together.
func (s *Service) UserWithTOTP(ctx context.Context, id string) (User, time.Time, error) {
	c, err := s.cachedUser(ctx, id)
	return c.User, c.totpAt, err
}

// cachedUser is the user cache's entry of id, read from the store (the
// user, then their enrolment) when it holds none.
func (s *Service) cachedUser(ctx context.Context, id string) (cachedUser, error) {
	if c, ok := s.users.Get(id, s.now()); ok {
		return c, nil
	}
	gen := s.users.Generation()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return cachedUser{}, err
	}
	t, err := s.getTOTP(ctx, id)
	if err != nil {
		return cachedUser{}, err
	}
	c := cachedUser{User: *u}
	if t != nil {
		c.totpAt = t.CreatedAt
	}
	s.users.PutIfCurrent(id, c, gen, s.now())
	return c, nil
}

// UserOrg returns the org of one user as GetUser would find it (the
// administrator guard asks it on every call about a person).
func (s *Service) UserOrg(ctx context.Context, id string) (string, error) {
	u, err := s.UserValue(ctx, id)
	if err != nil {
		return "", err
	}
	return u.OrgID, nil
}

// loadUser reads a user from the store, never from the cache: for
// read-modify-write and checks that must see the stored state.
func (s *Service) loadUser(ctx context.Context, id string) (*User, error) {
	u, err := s.store.GetUser(ctx, id)
	return u, err
}

// ListUsers lists users with filters and a page.
func (s *Service) ListUsers(ctx context.Context, f UserFilter, size int32, token string) ([]*User, string, error) {
	if err := s.filterExists(ctx, token, orgNamed(f.OrgID)); err != nil {
		return nil, "", err
	}
	f.Within = withinOf(ctx, f.Within)
	if f.PasswordExpired {
		if s.cfg.Policy.MaxAge <= 0 {
			return nil, "", apierr.New(apierr.FailedPrecondition, "PASSWORD_EXPIRY_OFF",
				"passwords do not expire here (identity.policy.max_age_days is 0): no password has expired")
		}
		f.PasswordChangedBefore = s.now().Add(-s.cfg.Policy.MaxAge)
	}
	return listRead(ctx, s, size, token, func(ctx context.Context, p Page) ([]*User, string, error) {
		return s.store.ListUsers(ctx, f, p)
	})
}

// UserUpdate carries the fields of UpdateUser; Mask names those to change.
type UserUpdate struct {
	Mask                                   []string
	DisplayName, Phone, Email, OrgID       string
	MustChange, NeverExpires, CannotChange bool
	PasswordOnly                           bool
	// IDType and IDNumber (mask id_type, id_number; either or both): the
	// person's identity document, corrected. The number stays one
	// account's (ID_NUMBER_TAKEN); an empty number with ID type none
	// removes it.
	IDType   IDType
	IDNumber string
	// MinAuthLevel (mask min_auth_level): see User.
	MinAuthLevel int
	// UserType (mask user_type): a person's or a unit's account (0 a
	// person's); the ID type must fit it (ID_TYPE_MISMATCH).
	UserType UserType
}

// UpdateUser changes the named fields of a user.
func (s *Service) UpdateUser(ctx context.Context, id string, up UserUpdate) (*User, error) {
	start := s.now()
	if len(up.Mask) == 0 {
		return nil, badField("update_mask", "update_mask must name at least one field")
	}
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.ownUser(ctx, u); err != nil {
		if s.levelOneAsksChange(ctx, u, up) {
			return s.mustChangeHeldReplica(ctx, u, start)
		}
		return nil, err
	}
	return s.updateUser(ctx, u, up, "user.update", start)
}

// changeDetail is the audit detail of a user update: the fields changed
// with their new values, personal data masked or only named, as the
// audit log is permanent and read by the security auditor (the change
// event carries the e-mail and name, which provisioning needs): e-mail
// masked, the display name "changed", the phone and ID number masked (as
// in the event), the ID type by name; the feature code (derived from the
// ID number) left out.
func changeDetail(changed map[string]any) map[string]string {
	out := make(map[string]string, len(changed))
	for k, v := range changed {
		switch k {
		case "feature_code":
			continue
		case "display_name":
			out[k] = "changed"
		case "email":
			out[k] = ulog.MaskEmail(fmt.Sprint(v))
		case "user_type":
			if t, ok := v.(UserType); ok {
				out[k] = userTypeNames[t.Norm()]
				continue
			}
			out[k] = fmt.Sprint(v)
		case "id_type":
			if t, ok := v.(IDType); ok {
				out[k] = idTypeNames[t]
				if t == IDTypeNone {
					out[k] = "none"
				}
				continue
			}
			out[k] = fmt.Sprint(v)
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out
}

// expiryText is an expiry for an audit record: RFC 3339, or "never".
func expiryText(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format(time.RFC3339)
}

// checkContactFields checks the fields of up a person may also change
// themselves (display_name, phone, email) that up.Mask names: the rules
// of UpdateUser, whoever makes the change.
func checkContactFields(up UserUpdate) error {
	for _, f := range up.Mask {
		var err error
		switch f {
		case "display_name":
			if up.DisplayName == "" {
				err = badField("display_name", "display_name is required")
			}
		case "phone":
			err = checkPhone(up.Phone)
		case "email":
			err = checkEmail(up.Email)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// updateUser applies up to u (loaded, at its home centre) and writes it
// with its CHANGES user.updated event and the audit record api.
func (s *Service) updateUser(ctx context.Context, u *User, up UserUpdate, api string, start time.Time) (*User, error) {
	if err := checkContactFields(up); err != nil {
		return nil, err
	}
	idNumber, phone, err := s.openPersonal(ctx, u)
	if err != nil {
		return nil, err
	}
	changed := map[string]any{}
	idChanged := false
	for _, f := range up.Mask {
		switch f {
		case "display_name":
			u.DisplayName = up.DisplayName
			changed[f] = up.DisplayName
		case "phone":
			phone = up.Phone
			changed[f] = ulog.MaskPhone(up.Phone)
		case "email":
			u.Email = up.Email
			changed[f] = up.Email
		case "org_id":
			if err := s.ownOrg(ctx, up.OrgID, "org "+up.OrgID); err != nil {
				return nil, err
			}
			if err := s.activeOrg(ctx, up.OrgID, "ORG_DISABLED", "org"); err != nil {
				return nil, err
			}
			u.OrgID = up.OrgID
			changed[f] = up.OrgID
		case "must_change_password":
			u.MustChange, u.WriteMustChange = up.MustChange, true
			changed[f] = up.MustChange
		case "password_never_expires":
			u.NeverExpires = up.NeverExpires
			changed[f] = up.NeverExpires
		case "user_cannot_change_password":
			u.CannotChange = up.CannotChange
			changed[f] = up.CannotChange
		case "password_only":
			u.PasswordOnly = up.PasswordOnly
			changed[f] = up.PasswordOnly
		case "min_auth_level":
			u.MinAuthLevel = up.MinAuthLevel
			changed[f] = up.MinAuthLevel
		case "id_type":
			u.IDType, idChanged = up.IDType, true
			changed[f] = up.IDType
		case "id_number":
			idNumber, idChanged = strings.TrimSpace(up.IDNumber), true
			changed[f] = ulog.MaskIDNumber(idNumber)
		case "user_type":
			if !validUserType(up.UserType) {
				return nil, badField("user_type", "user_type is not a known user type")
			}
			u.UserType, idChanged = StoredUserType(up.UserType), true
			changed[f] = u.UserType
		default:
			return nil, badField("update_mask", "update_mask field %q cannot be updated", truncate(f, 40))
		}
	}
	if err := checkPersonLevel(u.MinAuthLevel, u.PasswordOnly); err != nil {
		return nil, err
	}
	if _, mc := changed["must_change_password"]; u.MustChange && u.CannotChange {
		_, cc := changed["user_cannot_change_password"]
		switch {
		case mc:
			// asked for now: refused, naming the way out
			if err := checkPasswordFlags(u.MustChange, u.CannotChange); err != nil {
				return nil, err
			}
		case cc:
			// a person who may no longer change their password is not
			// sent to a change they would be refused (as ResetPassword
			// and SetPassword leave it off for them)
			u.MustChange, u.WriteMustChange = false, true
			changed["must_change_password"] = false
		}
		// neither: stored so before; their other updates go on
	}
	if idChanged {
		idNumber = normalIDNumber(u.IDType, idNumber)
		if err := checkAccountID(u.UserType, u.IDType, idNumber); err != nil {
			return nil, err
		}
		if _, ok := changed["id_number"]; ok {
			changed["id_number"] = ulog.MaskIDNumber(idNumber)
		}
		u.IDKey = s.idKey(u.IDType, idNumber)
		u.CentresKey = s.centresKey(u.IDType, idNumber)
	}
	reason := "OK"
	if idChanged {
		if reason, err = s.claimAcross(ctx, u, false, true); err != nil {
			return nil, err
		}
	}
	if err := s.sealPersonal(u, idNumber, phone); err != nil {
		return nil, err
	}
	if fc := s.accountFeatureCode(u.UserType, u.IDType, idNumber, u.DisplayName, u.LoginName); fc != u.FeatureCode {
		// the business systems that keep it learn the new one
		u.FeatureCode, changed["feature_code"] = fc, fc
	}
	u.UpdatedAt = start
	err = s.write(ctx, func(evs []events.Event) error { return s.store.UpdateUser(ctx, u, evs) },
		s.replicaChange(ctx, "user", "updated", u.ID, changed, s.withSealed(userReplica(u, false), u)),
		s.audit(ctx, api, "user:"+u.ID, u.OrgID, "success", reason, start, changeDetail(changed)))
	if err != nil {
		return u, err
	}
	if _, moved := changed["org_id"]; moved {
		if err := s.dropDirectoryHash(ctx, u, start); err != nil {
			return u, err
		}
	}
	return u, nil
}

// dropDirectoryHash removes the local password hash of u once u's password
// is a directory's (u moved into an identity.ldap_auth subtree; also an
// org_id "change" to the same org, which is how an administrator clears
// the hash of a person moved in before): kept, it signed in again
// wherever no source covered u (moved out, a centre without the same
// ldap_auth, an org code that stopped resolving; review sec27a M2). The
// hash goes as a password change does (into the history, the replicas
// told: other centres keep no usable copy; the person's sessions end),
// audited user.clear_password with reason DIRECTORY.
func (s *Service) dropDirectoryHash(ctx context.Context, u *User, start time.Time) error {
	if u.PasswordHash == "" {
		return nil
	}
	src, err := s.sourceOf(ctx, u)
	if err != nil || src == nil {
		return err
	}
	at := s.now()
	if prev := u.PasswordChangedAt.Truncate(time.Millisecond); !at.Truncate(time.Millisecond).After(prev) {
		at = prev.Add(time.Millisecond)
	}
	after := *u
	after.PasswordHash, after.PasswordChangedAt, after.MustChange, after.UpdatedAt = "", at, false, at
	evs := []events.Event{
		s.audit(ctx, "user.clear_password", "user:"+u.ID, u.OrgID, "success", "OK", start,
			map[string]string{"reason": "DIRECTORY", "credential_source": "ldap:" + src.Name()}),
		s.replicaChange(ctx, "user", "password_changed", u.ID, passwordChanged(false, "", at), userReplica(&after, true)),
	}
	keep := max(s.cfg.Policy.History, 1)
	if err := s.store.SetPassword(ctx, u.ID, "", at, PasswordSet{}, keep, evs); err != nil {
		return err
	}
	*u = after
	s.kick()
	return nil
}

// mutateUser loads a user, applies fn and stores it with events for op.
func (s *Service) mutateUser(ctx context.Context, id, op string, data map[string]any, fn func(u *User) error) (*User, error) {
	start := s.now()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.ownUser(ctx, u); err != nil {
		return nil, err
	}
	if err := fn(u); err != nil {
		return nil, err
	}
	u.UpdatedAt = start
	err = s.write(ctx, func(evs []events.Event) error { return s.store.UpdateUser(ctx, u, evs) },
		s.replicaChange(ctx, "user", op, u.ID, data, userReplica(u, false)),
		s.audit(ctx, "user."+op, "user:"+u.ID, u.OrgID, "success", "OK", start, userChangeDetail(u, data)))
	return u, err
}

// userChangeDetail is the audit detail of a change of u: its login name
// (kept with the record when the person is renamed or deleted) and what
// changed (data; a status by its name).
func userChangeDetail(u *User, data map[string]any) map[string]string {
	d := map[string]string{"login": u.LoginName}
	for k, v := range data {
		switch x := v.(type) {
		case Status:
			d[k] = map[Status]string{StatusActive: "active", StatusDisabled: "disabled"}[x]
			if d[k] == "" {
				d[k] = fmt.Sprint(int(x))
			}
		case time.Time:
			d[k] = x.UTC().Format(time.RFC3339)
		default:
			d[k] = fmt.Sprint(v)
		}
	}
	return d
}

// stateTries is how often a change of an account's state (lock, unlock,
// disable, enable) is tried when the account changes state between its
// read and its write (ADR 0047).
const stateTries = 5

// ReasonAccountStateChanging refuses a change of an account's state that
// kept meeting other state changes (stateTries).
const ReasonAccountStateChanging = "ACCOUNT_STATE_CHANGING"

var errAccountStateChanging = apierr.New(apierr.FailedPrecondition, ReasonAccountStateChanging,
	"the account kept changing state (other administrators or failed logins) while this change was written: nothing was changed; look at the person again and retry")

// mutateState is mutateUser for a change of the account's state: fn calls
// stateChanged, whose new state time is computed from the copy read, and
// the store writes it only if the row's is still the one read
// (User.IfStateChangedAt). When another state change (an administrator's,
// the login gate's lock) landed in between, the copy is read again and
// the change rebuilt, so that its event names exactly the time stored,
// after any a login answered before it commits: the ticket component ends
// those sessions (review sec32a M1).
func (s *Service) mutateState(ctx context.Context, id, op string, data map[string]any, fn func(u *User) error) (*User, error) {
	for range stateTries {
		u, err := s.mutateUser(ctx, id, op, data, fn)
		if err == nil || !errors.Is(err, ErrConflict) {
			return u, err
		}
		s.ForgetUser(id)
	}
	return nil, errAccountStateChanging
}

// SetUserStatus disables or re-enables a user.
func (s *Service) SetUserStatus(ctx context.Context, id string, st Status) (*User, error) {
	if st != StatusActive && st != StatusDisabled {
		return nil, badField("status", "status must be ACTIVE or DISABLED")
	}
	if st == StatusDisabled {
		if err := notOwnAccount(ctx, id, "disable"); err != nil {
			return nil, err
		}
	}
	// Level 1 disables and enables a person of a level-2 centre
	// (replica_disable.go).
	if held, err := s.levelOneHolds(ctx, id); err != nil || held != nil {
		if err != nil {
			return nil, err
		}
		return s.setHeldReplicaStatus(ctx, held, st)
	}
	data := map[string]any{"status": st}
	return s.mutateState(ctx, id, "status_changed", data, func(u *User) error {
		u.Status = st
		s.stateChanged(u, data)
		return nil
	})
}

// LockUser locks an account for d (0: until unlocked).
func (s *Service) LockUser(ctx context.Context, id string, d time.Duration) (*User, error) {
	if d < 0 {
		return nil, badField("duration_seconds", "duration_seconds must not be negative")
	}
	if err := notOwnAccount(ctx, id, "lock"); err != nil {
		return nil, err
	}
	until := LockForever
	if d > 0 {
		until = s.now().Add(d)
	}
	if s.homes != nil && s.homes.Level == 1 {
		u, err := s.loadUser(ctx, id)
		if err != nil {
			return nil, err
		}
		if !s.homedHere(ctx, u) {
			return s.lockHeldReplica(ctx, u, until)
		}
	}
	data := map[string]any{"locked_until": until}
	return s.mutateState(ctx, id, "locked", data, func(u *User) error {
		u.LockedUntil, u.WriteGate = until, true
		s.stateChanged(u, data)
		return nil
	})
}

// lockHeldReplica locks person u, whom level 1 holds as a replica of
// their level-2 home: level 1 manages every user (004 §2.1.1), and a
// person must be stoppable there while their home may be unreachable. The
// lock is written here (the later of it and any lock held) and travels to
// the home as a lock change (replica_lock.go), which locks them there
// until the same time; both centres end their SSO sessions (ticket hears
// lock changes). Only the home unlocks them: an unlock here is refused,
// naming it.
func (s *Service) lockHeldReplica(ctx context.Context, u *User, until time.Time) (*User, error) {
	start := s.now()
	lock := until
	err := s.store.UpdateLoginGate(ctx, u.ID, "", func(g LoginGate) (LoginGateWrite, bool) {
		if g.LockedUntil.After(lock) {
			lock = g.LockedUntil
		}
		w := LoginGateWrite{FailedCount: g.FailedCount, SourceFailures: g.SourceFailures, NextAttemptAt: g.NextAttemptAt,
			LockedUntil: lock, Pending: g.Pending, PendingAt: g.PendingAt, StateChangedAt: nextStateAt(g.StateAt, s.now())}
		w.Events = []events.Event{
			s.audit(ctx, "user.locked", "user:"+u.ID, u.OrgID, "success", "OK", start,
				userChangeDetail(u, map[string]any{"locked_until": lock, "centre": s.homes.Self})),
			s.lockChange(ctx, u, lock, w.StateChangedAt, false, "ADMIN_LOCKED")}
		return w, true
	})
	if err != nil {
		return nil, err
	}
	s.ForgetUser(u.ID)
	s.kick()
	after := *u
	after.LockedUntil = lock
	return &after, nil
}

// DeleteUser removes a person for good, with their account links,
// fingerprints, group memberships, password history and administrator
// tokens (CHANGES user.deleted ends their SSO sessions and tells the
// business systems provisioned with them; the audit log keeps what they
// did). Nobody deletes their own account.
func (s *Service) DeleteUser(ctx context.Context, id string) error {
	start := s.now()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return err
	}
	if err := s.ownUser(ctx, u); err != nil {
		return err
	}
	if err := notOwnAccount(ctx, id, "delete"); err != nil {
		return err
	}
	parts, err := s.deletedParts(ctx, id)
	if err != nil {
		return err
	}
	parts["org_id"] = u.OrgID
	err = s.write(ctx, func(evs []events.Event) error { return s.store.DeleteUser(ctx, id, evs) },
		s.change(ctx, "user", "deleted", id, parts),
		s.audit(ctx, "user.delete", "user:"+id, u.OrgID, "success", "OK", start, userChangeDetail(u, nil)))
	if err == nil {
		s.ForgetUser(id)
	}
	return err
}

// deletedParts names, for the change of a person's deletion, what goes
// with them that other centres keep objects of their own for: their
// account links and the groups they are a member of (links, groups), so
// that a centre that left one of them out as a conflict knows it settled
// (review sec17 N6).
func (s *Service) deletedParts(ctx context.Context, id string) (map[string]any, error) {
	var links []string
	if err := eachPage(ctx, func(p Page) ([]*AccountLink, string, error) {
		return s.store.ListLinks(ctx, LinkFilter{UserID: id}, p)
	}, func(l *AccountLink) { links = append(links, l.ID) }); err != nil {
		return nil, err
	}
	gs, err := s.store.UserGroups(ctx, id)
	if err != nil {
		return nil, err
	}
	groups := make([]string, 0, len(gs))
	for _, g := range gs {
		groups = append(groups, g.ID)
	}
	out := map[string]any{}
	if len(links) > 0 {
		out["links"] = links
	}
	if len(groups) > 0 {
		out["groups"] = groups
	}
	return out, nil
}

// notOwnAccount refuses an administrator disabling, locking or deleting (verb) their
// own account: the last system administrator doing so would leave nobody to
// administer (a system administrator is changed by nobody else, and the
// bootstrap password applies only to an empty database).
func notOwnAccount(ctx context.Context, id, verb string) error {
	if c := caller.From(ctx); c != nil && c.Principal != "" && c.Principal == id {
		return apierr.New(apierr.FailedPrecondition, "OWN_ACCOUNT",
			"you cannot "+verb+" your own account: another administrator can")
	}
	return nil
}

// UnlockUser clears a lock and the failure count.
func (s *Service) UnlockUser(ctx context.Context, id string) (*User, error) {
	data := map[string]any{}
	return s.mutateState(ctx, id, "unlocked", data, func(u *User) error {
		u.LockedUntil, u.FailedCount, u.WriteGate = time.Time{}, 0, true
		s.stateChanged(u, data)
		return nil
	})
}

// stateChanged gives u, whose status or lock is changing now, its new
// state time, and names it in its change's data (state_at): the ticket
// component ends, on a lock or disable, only the sessions whose login saw
// an earlier state (ADR 0047).
// The store writes it only if the row's is still the one u was read with
// (IfStateChangedAt; mutateState reads again otherwise).
func (s *Service) stateChanged(u *User, data map[string]any) {
	read := u.StateChangedAt
	u.IfStateChangedAt = &read
	u.StateChangedAt = nextStateAt(u.StateAt(), s.now())
	data["state_at"] = u.StateChangedAt
}

// byOther: the caller setting user id's password is someone else (an
// administrator setting their own sets their own).
func byOther(ctx context.Context, id string) bool {
	c := caller.From(ctx)
	return c == nil || c.Principal != id
}

// SetPassword is an administrator setting a user's password. A person
// who may not change their own password (CannotChange) is never made to
// change it at the next login, whatever mustChange says (as ResetPassword
// does): they could sign in nowhere, the change form refusing them.
func (s *Service) SetPassword(ctx context.Context, id, password string, mustChange bool) (*User, error) {
	start := s.now()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.ownUser(ctx, u); err != nil {
		return nil, err
	}
	if err := s.setPassword(ctx, u, password, PasswordSet{MustChange: mustChange && !u.CannotChange, ByOther: byOther(ctx, id)}, false, "user.set_password", start, ""); err != nil {
		return nil, err
	}
	return s.loadUser(ctx, id)
}

// ResetPassword gives user id a random temporary password that meets the
// policy and must be changed at next login (unless the user may not change
// their password), and returns it (shown this once). It ends the user's SSO sessions, as SetPassword does.
//
// With ifChangedAt, the reset is made only if the person's password
// change time is still that one (the zero time: no password set), read and
// written in one statement (ReasonPasswordChangedSince else): a form that
// showed the person before their password last changed (a reload of the
// console's answer) resets nothing.
func (s *Service) ResetPassword(ctx context.Context, id string, ifChangedAt *time.Time) (*User, string, error) {
	start := s.now()
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if err := s.ownUser(ctx, u); err != nil {
		return nil, "", err
	}
	set := PasswordSet{MustChange: !u.CannotChange, ByOther: byOther(ctx, id)}
	if ifChangedAt != nil {
		if !u.PasswordChangedAt.Truncate(time.Millisecond).Equal(ifChangedAt.Truncate(time.Millisecond)) {
			return nil, "", errPasswordChangedSince
		}
		at := u.PasswordChangedAt
		set.IfChangedAt = &at
	}
	pw, err := s.cfg.Policy.Temporary(u.LoginName)
	if err != nil {
		return nil, "", err
	}
	// A user who may not change their password would be stuck on the
	// change page: theirs stays until an administrator sets another.
	if err := s.setPassword(ctx, u, pw, set, false, "user.reset_password", start, ""); err != nil {
		if ifChangedAt != nil && errors.Is(err, ErrConflict) {
			return nil, "", errPasswordChangedSince
		}
		return nil, "", err
	}
	u, err = s.loadUser(ctx, id)
	if err != nil {
		return nil, "", err
	}
	return u, pw, nil
}

// ReasonPasswordChangedSince refuses a conditional reset of a password
// that changed since (ResetPassword's ifChangedAt).
const ReasonPasswordChangedSince = "PASSWORD_CHANGED_SINCE"

var errPasswordChangedSince = apierr.New(apierr.FailedPrecondition, ReasonPasswordChangedSince,
	"the password was changed after the page you reset it from was shown: nothing was reset; open the person again to reset it")

// PasswordExpiry is when u's password expires (zero: never) and whether
// it has at now.
func (s *Service) PasswordExpiry(u *User, now time.Time) (time.Time, bool) {
	at := s.cfg.Policy.ExpiresAt(u)
	return at, !at.IsZero() && now.After(at)
}

// ---- groups ----

// CreateGroup adds a group in an org.
func (s *Service) CreateGroup(ctx context.Context, code, name, orgID string) (*Group, error) {
	start := s.now()
	if err := s.ownOrg(ctx, orgID, "org "+orgID); err != nil {
		return nil, err
	}
	if err := s.activeOrg(ctx, orgID, "ORG_DISABLED", "org"); err != nil {
		return nil, err
	}
	g := &Group{ID: ids.New(), Code: code, Name: name, OrgID: orgID, CreatedAt: start}
	err := s.write(ctx, func(evs []events.Event) error { return s.store.CreateGroup(ctx, g, evs) },
		s.replicaChange(ctx, "group", "created", g.ID, map[string]any{"code": code, "name": name, "org_id": orgID}, groupReplica(g)),
		s.adminAudit(ctx, "group.create", "group:"+g.ID, orgID, start))
	if err != nil {
		return nil, err
	}
	return g, nil
}

// GetGroup returns a group with its members.
func (s *Service) GetGroup(ctx context.Context, id string) (*Group, error) {
	g, err := s.store.GetGroup(ctx, id)
	return g, err
}

// DeleteGroup removes a group and its memberships (CHANGES group.deleted:
// business systems provisioned with it are told; authz forgets it).
func (s *Service) DeleteGroup(ctx context.Context, id string) error {
	start := s.now()
	g, err := s.GetGroup(ctx, id)
	if err != nil {
		return err
	}
	if err := s.ownOrg(ctx, g.OrgID, "group "+g.ID); err != nil {
		return err
	}
	return s.write(ctx, func(evs []events.Event) error { return s.store.DeleteGroup(ctx, id, evs) },
		s.change(ctx, "group", "deleted", id, map[string]any{"org_id": g.OrgID}),
		s.adminAudit(ctx, "group.delete", "group:"+id, g.OrgID, start))
}

// UpdateGroup renames group id (its code stays: business systems know the
// group by it). CHANGES group.updated tells the subscriptions provisioning
// it; a centre holding its replica renames it too.
func (s *Service) UpdateGroup(ctx context.Context, id, name string) (*Group, error) {
	start := s.now()
	if strings.TrimSpace(name) == "" {
		return nil, badField("name", "name must not be blank")
	}
	g, err := s.GetGroup(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.ownOrg(ctx, g.OrgID, "group "+g.ID); err != nil {
		return nil, err
	}
	g.Name = name
	err = s.write(ctx, func(evs []events.Event) error { return s.store.UpdateGroup(ctx, g, evs) },
		s.replicaChange(ctx, "group", "updated", g.ID, map[string]any{"code": g.Code, "name": name, "org_id": g.OrgID}, groupReplica(g)),
		s.adminAudit(ctx, "group.update", "group:"+g.ID, g.OrgID, start))
	if err != nil {
		return nil, err
	}
	return g, nil
}

// ListGroups lists groups.
func (s *Service) ListGroups(ctx context.Context, f GroupFilter, size int32, token string) ([]*Group, string, error) {
	if err := s.filterExists(ctx, token, orgNamed(f.OrgID)); err != nil {
		return nil, "", err
	}
	f.Within = withinOf(ctx, f.Within)
	return listRead(ctx, s, size, token, func(ctx context.Context, p Page) ([]*Group, string, error) {
		return s.store.ListGroups(ctx, f, p)
	})
}

// SetGroupMember adds (add=true) or removes a member.
func (s *Service) SetGroupMember(ctx context.Context, groupID, userID string, add bool) (*Group, error) {
	start := s.now()
	g, err := s.GetGroup(ctx, groupID)
	if err != nil {
		return nil, err
	}
	if err := s.ownOrg(ctx, g.OrgID, "group "+g.ID); err != nil {
		return nil, err
	}
	if _, err := s.loadUser(ctx, userID); err != nil {
		return nil, err
	}
	op, fn := "member_added", s.store.AddGroupMember
	if !add {
		op, fn = "member_removed", s.store.RemoveGroupMember
	}
	err = s.write(ctx, func(evs []events.Event) error { return fn(ctx, groupID, userID, evs) },
		s.change(ctx, "group", op, groupID, map[string]any{"user_id": userID}),
		s.adminAudit(ctx, "group."+op, "group:"+groupID, g.OrgID, start))
	if err != nil {
		return nil, err
	}
	return s.GetGroup(ctx, groupID)
}

// ---- apps ----

// NewApp is the input of CreateApp.
type NewApp struct {
	Type, Code, Name string
	IPAllowList      []string
	RateLimit        float64
	RateBurst        int
	MaxConcurrent    int
	// NameRelease: see App ("": the name in clear).
	NameRelease string
	// ClientCertSHA256 binds the app to a client certificate (see App).
	ClientCertSHA256 string
	// SecretLifetime is the app's own secret lifetime (zero: the server
	// default; see secretlife.go).
	SecretLifetime time.Duration
	// SigningKeys are request signing public keys (PEM or DER; signing.go);
	// RequireSignatures needs one.
	SigningKeys       [][]byte
	RequireSignatures bool
	// GrantedAPIs, AccessFrom, AccessUntil: see App.
	GrantedAPIs             []string
	AccessFrom, AccessUntil time.Time
	// SecurityLevel: see App (0: 1).
	SecurityLevel int
	// MinAuthLevel: see App (0: any).
	MinAuthLevel int
	// LegacyIPOnly: see App (checkLegacyIPOnly).
	LegacyIPOnly bool
}

// checkAccess checks an application's interface grants and access period.
func checkAccess(apis []string, from, until time.Time) error {
	if err := caller.CheckAPIs(apis); err != nil {
		return err
	}
	if !from.IsZero() && !until.IsZero() && !from.Before(until) {
		return badField("access_until", "access_until (%s) must be after access_from (%s)", until.UTC().Format(time.RFC3339),
			from.UTC().Format(time.RFC3339))
	}
	return nil
}

// accessDetail is the audit detail of an application's grants and period.
func accessDetail(a *App, detail map[string]string) {
	detail["granted_apis"] = "all"
	if len(a.GrantedAPIs) > 0 {
		detail["granted_apis"] = strings.Join(a.GrantedAPIs, ",")
	}
	open := func(t time.Time) string {
		if t.IsZero() {
			return "open"
		}
		return t.UTC().Format(time.RFC3339)
	}
	detail["access_from"], detail["access_until"] = open(a.AccessFrom), open(a.AccessUntil)
}

// createAppDetail is the audit detail of a's creation.
func createAppDetail(a *App) map[string]string {
	d := signingKeysDetail(a)
	if a.MinAuthLevel > 0 {
		if d == nil {
			d = map[string]string{}
		}
		d["min_auth_level"] = fmt.Sprint(a.MinAuthLevel)
	}
	if len(a.GrantedAPIs) > 0 || !a.AccessFrom.IsZero() || !a.AccessUntil.IsZero() {
		if d == nil {
			d = map[string]string{}
		}
		accessDetail(a, d)
	}
	if a.LegacyIPOnly {
		if d == nil {
			d = map[string]string{}
		}
		d["legacy_ip_only"] = "true"
	}
	return d
}

// certFingerprint normalizes a SHA-256 certificate fingerprint as tools
// print it (hex, any case, colons or spaces between bytes) to 64 lower case
// hex digits; "" stays "" (no binding).
func certFingerprint(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	if len(v) > 128 {
		return "", badRequest("client_cert_sha256 is not a SHA-256 fingerprint (64 hex digits)")
	}
	h := strings.ToLower(strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(v)))
	if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
		return "", badRequest("client_cert_sha256 is not a SHA-256 fingerprint (64 hex digits)")
	}
	return h, nil
}

// checkApp checks an application's settings as they will be stored (an
// update may name some of them only); the proto rules bound the strings.
func checkApp(name string, ips []string, rate float64, burst int) error {
	if name == "" {
		return badField("name", "name is required")
	}
	for _, c := range ips {
		if _, err := netip.ParsePrefix(c); err != nil {
			if _, aerr := netip.ParseAddr(c); aerr != nil {
				return badField("ip_allow_list", "ip_allow_list entry %q is not a CIDR (e.g. 10.1.0.0/16) or an IP address", truncate(c, 48))
			}
		}
	}
	if rate < 0 || rate > 1e6 || rate != rate {
		return badField("rate_limit", "rate_limit must be between 0 (unlimited) and 1000000 per second")
	}
	if burst < 0 || burst > 1e6 {
		return badField("rate_burst", "rate_burst must be between 0 and 1000000")
	}
	return nil
}

// checkMaxConcurrent checks an application's concurrency limit.
func checkMaxConcurrent(n int) error {
	if n < 0 || n > 1e6 {
		return badField("max_concurrent", "max_concurrent must be between 0 (no bound) and 1000000 calls in progress")
	}
	return nil
}

// requiredAllowList refuses an empty IP allow-list where every application
// must have one (identity.policy.require_ip_allow_list).
func (s *Service) requiredAllowList(list []string) error {
	if s.cfg.Policy.RequireIPAllowList && len(list) == 0 {
		return badField("ip_allow_list", "every application needs an IP allow-list here (identity.policy.require_ip_allow_list): "+
			"name the addresses or networks it calls from, e.g. 10.1.0.0/16")
	}
	return nil
}

// CreateApp registers an application and returns its secret (shown once).
func (s *Service) CreateApp(ctx context.Context, n NewApp) (*App, string, error) {
	start := s.now()
	// Every centre registers its own business systems (a level-2 bureau's
	// local systems too): the application is homed where it is created,
	// and its replicas elsewhere refuse writes (ownApp).
	if err := checkApp(n.Name, n.IPAllowList, n.RateLimit, n.RateBurst); err != nil {
		return nil, "", err
	}
	if err := s.requiredAllowList(n.IPAllowList); err != nil {
		return nil, "", err
	}
	if err := checkMaxConcurrent(n.MaxConcurrent); err != nil {
		return nil, "", err
	}
	if err := checkNameRelease(n.NameRelease); err != nil {
		return nil, "", err
	}
	fp, err := certFingerprint(n.ClientCertSHA256)
	if err != nil {
		return nil, "", err
	}
	if err := checkSecretLifetime("secret_lifetime_seconds", n.SecretLifetime); err != nil {
		return nil, "", err
	}
	keys, err := signingKeys(n.SigningKeys, nil, start, s.signingKeyLifetime(n.SecurityLevel))
	if err != nil {
		return nil, "", err
	}
	if err := checkSignaturePolicy(n.RequireSignatures, keys); err != nil {
		return nil, "", err
	}
	if err := checkAccess(n.GrantedAPIs, n.AccessFrom, n.AccessUntil); err != nil {
		return nil, "", err
	}
	if err := checkSecurityLevel(n.SecurityLevel, n.RequireSignatures); err != nil {
		return nil, "", err
	}
	if err := checkLevel("min_auth_level", n.MinAuthLevel); err != nil {
		return nil, "", err
	}
	secret := crypto.RandomToken(32)
	a := &App{ID: ids.New(), Type: n.Type, Code: n.Code, Name: n.Name, Status: AppActive,
		IPAllowList: append([]string{}, n.IPAllowList...), RateLimit: n.RateLimit, RateBurst: n.RateBurst, MaxConcurrent: n.MaxConcurrent,
		SecretHash: crypto.HashToken(secret), SecretLifetime: n.SecretLifetime, ClientCertSHA256: fp,
		SigningKeys: keys, RequireSignatures: n.RequireSignatures, GrantedAPIs: slices.Clone(n.GrantedAPIs),
		AccessFrom: n.AccessFrom.UTC(), AccessUntil: n.AccessUntil.UTC(), SecurityLevel: max(n.SecurityLevel, 1),
		MinAuthLevel: n.MinAuthLevel, LegacyIPOnly: n.LegacyIPOnly, NameRelease: n.NameRelease, CreatedAt: start, UpdatedAt: start}
	if a.LegacyIPOnly {
		if err := checkLegacyIPOnly(a); err != nil {
			return nil, "", err
		}
	}
	if n.AccessFrom.IsZero() {
		a.AccessFrom = time.Time{}
	}
	if n.AccessUntil.IsZero() {
		a.AccessUntil = time.Time{}
	}
	s.issueSecret(a, start)
	err = s.write(ctx, func(evs []events.Event) error { return s.store.CreateApp(ctx, a, evs) },
		s.replicaChange(ctx, "app", "created", a.ID, appView(a), appReplica(a, true)),
		s.audit(ctx, "app.create", "app:"+a.ID, "", "success", "OK", start, createAppDetail(a)))
	s.legacyApps.Drop(a.Type + "\x00" + a.Code) // a miss remembered for the pair
	if !a.SecretExpires.IsZero() {
		s.secretsChanged()
	}
	if err != nil {
		return nil, "", err
	}
	return a, secret, nil
}

// GetApp returns one application.
func (s *Service) GetApp(ctx context.Context, id string) (*App, error) {
	a, err := s.store.GetApp(ctx, id)
	return a, err
}

// ListApps lists applications (f.SecretExpiresWithin: those whose secret
// expires within it from now, the expired included).
func (s *Service) ListApps(ctx context.Context, f AppFilter, size int32, token string) ([]*App, string, error) {
	f, err := s.appFilter(f)
	if err != nil {
		return nil, "", err
	}
	return listRead(ctx, s, size, token, func(ctx context.Context, p Page) ([]*App, string, error) {
		return s.store.ListApps(ctx, f, p)
	})
}

// AppUpdate carries UpdateApp's fields; Mask names those to change.
type AppUpdate struct {
	Mask        []string
	Name        string
	Status      AppStatus
	IPAllowList []string
	RateLimit   float64
	RateBurst   int
	// MaxConcurrent (mask max_concurrent; 0: no bound).
	MaxConcurrent int
	// NameRelease (mask name_release): see App.
	NameRelease string
	// ClientCertSHA256: "" removes the certificate binding.
	ClientCertSHA256 string
	// SecretLifetime (mask secret_lifetime_seconds; zero: the server
	// default) recomputes the current secret's expiry from its issue time.
	SecretLifetime time.Duration
	// SigningKeys (mask signing_keys) replaces the request signing keys;
	// RequireSignatures (mask require_signed_requests).
	SigningKeys       [][]byte
	RequireSignatures bool
	// GrantedAPIs (mask granted_apis; empty: every interface),
	// AccessFrom (mask access_from), AccessUntil (mask access_until; zero:
	// open).
	GrantedAPIs             []string
	AccessFrom, AccessUntil time.Time
	// SecurityLevel (mask security_level; 0: 1).
	SecurityLevel int
	// MinAuthLevel (mask min_auth_level; 0: any).
	MinAuthLevel int
	// LegacyIPOnly (mask legacy_ip_only; checkLegacyIPOnly when set).
	LegacyIPOnly bool
}

// UpdateApp changes the named fields.
func (s *Service) UpdateApp(ctx context.Context, id string, up AppUpdate) (*App, error) {
	start := s.now()
	if len(up.Mask) == 0 {
		return nil, badField("update_mask", "update_mask must name at least one field")
	}
	a, err := s.GetApp(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.ownApp(a); err != nil {
		return nil, err
	}
	levelBefore := max(a.SecurityLevel, 1)
	detail := map[string]string{"fields": strings.Join(up.Mask, ",")}
	for _, f := range up.Mask {
		switch f {
		case "name":
			a.Name = up.Name
		case "status":
			if up.Status != AppActive && up.Status != AppSuspended {
				return nil, badField("status", "status must be ACTIVE or SUSPENDED")
			}
			a.Status = up.Status
		case "ip_allow_list":
			a.IPAllowList = append([]string{}, up.IPAllowList...)
		case "rate_limit":
			a.RateLimit = up.RateLimit
		case "rate_burst":
			a.RateBurst = up.RateBurst
		case "max_concurrent":
			if err := checkMaxConcurrent(up.MaxConcurrent); err != nil {
				return nil, err
			}
			a.MaxConcurrent = up.MaxConcurrent
			detail[f] = fmt.Sprint(a.MaxConcurrent)
		case "name_release":
			if err := checkNameRelease(up.NameRelease); err != nil {
				return nil, err
			}
			a.NameRelease = up.NameRelease
			detail[f] = nameReleaseWord(a.NameRelease)
		case "client_cert_sha256":
			fp, err := certFingerprint(up.ClientCertSHA256)
			if err != nil {
				return nil, err
			}
			a.ClientCertSHA256 = fp
		case "secret_lifetime_seconds":
			if err := checkSecretLifetime(f, up.SecretLifetime); err != nil {
				return nil, err
			}
			if err := s.relife(a, up.SecretLifetime, start); err != nil {
				return nil, err
			}
			detail[f] = fmt.Sprint(int64(up.SecretLifetime / time.Second))
			detail["secret_expire_time"] = expiryText(a.SecretExpires)
		case "signing_keys":
			level := a.SecurityLevel
			if slices.Contains(up.Mask, "security_level") {
				level = up.SecurityLevel // the level the application has after the update
			}
			keys, err := signingKeys(up.SigningKeys, a.SigningKeys, start, s.signingKeyLifetime(level))
			if err != nil {
				return nil, err
			}
			maps.Copy(detail, retiredKeys(a.SigningKeys, keys))
			a.SigningKeys = keys
			detail[f] = "none"
			maps.Copy(detail, signingKeysDetail(a))
		case "require_signed_requests":
			a.RequireSignatures = up.RequireSignatures
			detail[f] = fmt.Sprint(up.RequireSignatures)
		case "granted_apis":
			a.GrantedAPIs = slices.Clone(up.GrantedAPIs)
		case "access_from":
			a.AccessFrom = time.Time{}
			if !up.AccessFrom.IsZero() {
				a.AccessFrom = up.AccessFrom.UTC()
			}
		case "security_level":
			if err := checkSecurityLevel(up.SecurityLevel, true); err != nil {
				return nil, err
			}
			a.SecurityLevel = max(up.SecurityLevel, 1)
			detail[f] = fmt.Sprint(a.SecurityLevel)
		case "min_auth_level":
			if err := checkLevel(f, up.MinAuthLevel); err != nil {
				return nil, err
			}
			a.MinAuthLevel = up.MinAuthLevel
			detail[f] = fmt.Sprint(a.MinAuthLevel)
		case "legacy_ip_only":
			a.LegacyIPOnly = up.LegacyIPOnly
			detail[f] = fmt.Sprint(up.LegacyIPOnly)
		case "access_until":
			a.AccessUntil = time.Time{}
			if !up.AccessUntil.IsZero() {
				a.AccessUntil = up.AccessUntil.UTC()
			}
		default:
			return nil, badField("update_mask", "update_mask field %q cannot be updated", truncate(f, 40))
		}
	}
	if err := checkApp(a.Name, a.IPAllowList, a.RateLimit, a.RateBurst); err != nil {
		return nil, err
	}
	if slices.Contains(up.Mask, "ip_allow_list") {
		if err := s.requiredAllowList(a.IPAllowList); err != nil {
			return nil, err
		}
	}
	if a.RequireSignatures && len(a.SigningKeys) == 0 && slices.Contains(up.Mask, "signing_keys") && !slices.Contains(up.Mask, "require_signed_requests") {
		return nil, apierr.New(apierr.FailedPrecondition, signingKeyRequired,
			"this application must sign its requests, so its last signing key cannot be removed: stop requiring signatures first "+
				"(require_signed_requests false; uias ctl app update --no-signatures), then remove the keys")
	}
	if err := checkSignaturePolicy(a.RequireSignatures, a.SigningKeys); err != nil {
		return nil, err
	}
	if err := checkSecurityLevel(a.SecurityLevel, a.RequireSignatures); err != nil {
		return nil, err
	}
	if a.LegacyIPOnly && slices.Contains(up.Mask, "legacy_ip_only") {
		// Checked when it is set, on the application as the update leaves
		// it; a change made later (a certificate, signatures, A2, an
		// empty allow-list) is not refused, but then every call without
		// App_ID and secret is (caller.AppAuthenticator.
		// AuthenticateLegacyAddress).
		if err := checkLegacyIPOnly(a); err != nil {
			return nil, err
		}
	}
	if a.SecurityLevel == 2 && levelBefore < 2 {
		// Raised to A2: keys without a validity period get A2's from now
		// (review sec27b L3: they kept none).
		if d := s.signingKeyLifetime(2); d > 0 {
			for i := range a.SigningKeys {
				if a.SigningKeys[i].ExpiresAt.IsZero() {
					a.SigningKeys[i].ExpiresAt = start.Add(d)
				}
			}
		}
	}
	if slices.Contains(up.Mask, "granted_apis") || slices.Contains(up.Mask, "access_from") || slices.Contains(up.Mask, "access_until") {
		if err := checkAccess(a.GrantedAPIs, a.AccessFrom, a.AccessUntil); err != nil {
			return nil, err
		}
		accessDetail(a, detail)
	}
	a.UpdatedAt = start
	err = s.write(ctx, func(evs []events.Event) error { return s.store.UpdateApp(ctx, a, evs) },
		s.replicaChange(ctx, "app", "updated", a.ID, appView(a), appReplica(a, false)),
		s.audit(ctx, "app.update", "app:"+a.ID, "", "success", "OK", start, detail))
	s.appAuth.Forget(id)
	if slices.Contains(up.Mask, "secret_lifetime_seconds") {
		s.secretsChanged()
	}
	return a, err
}

// zeroOverlapSkew is how far before the rotation a secret replaced without
// overlap ends.
const zeroOverlapSkew = 2 * time.Minute

// RotateAppSecret issues a new secret; the old one stays valid for overlap.
//
// With ifIssuedAt, only if the current secret was issued at that time (to
// the millisecond; ReasonSecretRotatedSince else, in the one write): a
// rotation asked twice from one page (a double click, a reload) issues one
// secret, and the secret the application runs with stays the previous one.
func (s *Service) RotateAppSecret(ctx context.Context, id string, overlap *time.Duration, ifIssuedAt *time.Time) (*App, string, error) {
	start := s.now()
	ov := s.cfg.SecretOverlap
	if overlap != nil {
		ov = *overlap
	}
	if ov < 0 || ov > 30*24*time.Hour {
		return nil, "", badField("overlap_seconds", "overlap_seconds must be between 0 and 2592000 (30 days)")
	}
	a, err := s.GetApp(ctx, id)
	if err != nil {
		return nil, "", err
	}
	if err := s.ownApp(a); err != nil {
		return nil, "", err
	}
	if ifIssuedAt != nil {
		if !a.SecretIssuedAt.Truncate(time.Millisecond).Equal(ifIssuedAt.Truncate(time.Millisecond)) {
			return nil, "", errSecretRotatedSince
		}
		at := a.SecretIssuedAt
		a.WriteIfSecretIssuedAt = &at
	}
	secret := crypto.RandomToken(32)
	// The old secret keeps working for the overlap, but not beyond its own
	// expiry: a rotation does not revive an expired secret.
	prevEnd := start.Add(ov)
	if !a.SecretExpires.IsZero() && a.SecretExpires.Before(prevEnd) {
		prevEnd = a.SecretExpires
	}
	a.PrevSecretHash, a.PrevSecretExpires = a.SecretHash, prevEnd
	if !a.SecretExpires.IsZero() && !a.SecretExpires.After(start) {
		// expired already: nothing to tell its holder but that it is wrong
		a.PrevSecretHash, a.PrevSecretExpires = "", time.Time{}
	}
	// With no overlap the previous secret is kept, ended already: its
	// holder is told APP_SECRET_REPLACED, as after an overlap. Its end is
	// set back by the clock difference components may have (the one
	// origin signatures allow), so that no instance or centre whose clock
	// is behind this one's still takes it.
	if a.PrevSecretHash != "" && !a.PrevSecretExpires.After(start) {
		a.PrevSecretExpires = start.Add(-zeroOverlapSkew)
	}
	a.SecretHash, a.UpdatedAt = crypto.HashToken(secret), start
	s.issueSecret(a, start)
	err = s.write(ctx, func(evs []events.Event) error { return s.store.UpdateApp(ctx, a, evs) },
		s.replicaChange(ctx, "app", "secret_rotated", a.ID, map[string]any{"overlap_seconds": int64(ov.Seconds()),
			"secret_lifetime_seconds": int64(s.secretLifetime(a) / time.Second)}, appReplica(a, true)),
		s.audit(ctx, "app.rotate_secret", "app:"+a.ID, "", "success", "OK", start, map[string]string{
			"overlap_seconds": fmt.Sprint(int64(ov / time.Second)), "previous_secret_until": expiryText(a.PrevSecretExpires),
			"secret_expire_time": expiryText(a.SecretExpires)}))
	s.appAuth.Forget(id)
	s.secretsChanged()
	if ifIssuedAt != nil && errors.Is(err, ErrConflict) {
		return nil, "", errSecretRotatedSince
	}
	if err != nil {
		return nil, "", err
	}
	a.WriteIfSecretIssuedAt = nil
	return a, secret, nil
}

// ReasonSecretRotatedSince refuses a conditional rotation of a secret
// that was issued again since (RotateAppSecret's ifIssuedAt).
const ReasonSecretRotatedSince = "SECRET_ROTATED_SINCE"

var errSecretRotatedSince = apierr.New(apierr.FailedPrecondition, ReasonSecretRotatedSince,
	"the application's secret was issued again after the page you asked from was shown: no other secret was issued (the one shown then stays; the previous one keeps its overlap)")

// DeleteApp removes a business system for good: its row with its secrets,
// its account links and its fingerprint bypass setting (the schema's
// cascades), in one transaction with CHANGES app.deleted (ticket drops its
// CAS services, authz its model, sync its subscriptions; a centre holding
// its replica deletes it) and the audit record. Only a suspended
// application is deleted (APP_ACTIVE otherwise): suspending first is the
// reversible step that shows whether anything still calls it. Its
// credentials stop working here at once (the cache forgets it).
func (s *Service) DeleteApp(ctx context.Context, id string) error {
	start := s.now()
	a, err := s.GetApp(ctx, id)
	if err != nil {
		return err
	}
	if err := s.ownApp(a); err != nil {
		return err
	}
	if a.Status != AppSuspended {
		return ErrAppActive
	}
	err = s.write(ctx, func(evs []events.Event) error { return s.store.DeleteApp(ctx, id, start, evs) },
		s.change(ctx, "app", "deleted", id, map[string]any{"app_type": a.Type, "app_code": a.Code}),
		s.audit(ctx, "app.delete", "app:"+id, "", "success", "OK", start, deletedAppDetail(a)))
	s.appAuth.Forget(id)
	s.legacyApps.Drop(a.Type + "\x00" + a.Code)
	return err
}

// ---- account links ----

// CreateLink ties a user to their account in an application.
func (s *Service) CreateLink(ctx context.Context, userID, appID, account string) (*AccountLink, error) {
	start := s.now()
	u, err := s.loadUser(ctx, userID)
	if err == nil {
		err = s.ownUser(ctx, u)
	}
	if err != nil {
		return nil, err
	}
	if _, err := s.GetApp(ctx, appID); err != nil {
		return nil, err
	}
	l := &AccountLink{ID: ids.New(), UserID: userID, AppID: appID, AppAccountID: account, Status: StatusActive, CreatedAt: start}
	err = s.write(ctx, func(evs []events.Event) error { return s.store.CreateLink(ctx, l, evs) },
		s.replicaChange(ctx, "link", "created", l.ID, map[string]any{"user_id": userID, "app_id": appID, "app_account_id": account}, linkReplica(l)),
		s.adminAudit(ctx, "link.create", "user:"+userID, u.OrgID, start))
	if err != nil {
		return nil, err
	}
	return l, nil
}

// ListLinks lists account links.
func (s *Service) ListLinks(ctx context.Context, f LinkFilter, size int32, token string) ([]*AccountLink, string, error) {
	if err := s.filterExists(ctx, token, filterRef{"user", f.UserID}, filterRef{"application", f.AppID}); err != nil {
		return nil, "", err
	}
	f.Within = withinOf(ctx, f.Within)
	return listRead(ctx, s, size, token, func(ctx context.Context, p Page) ([]*AccountLink, string, error) {
		return s.store.ListLinks(ctx, f, p)
	})
}

// GetLink returns the account link id.
func (s *Service) GetLink(ctx context.Context, id string) (*AccountLink, error) {
	return s.store.GetLink(ctx, id)
}

// DeleteLink removes an account link.
func (s *Service) DeleteLink(ctx context.Context, id string) error {
	start := s.now()
	l, err := s.store.GetLink(ctx, id)
	if err != nil {
		return err
	}
	if u, err := s.loadUser(ctx, l.UserID); err == nil {
		if err := s.ownUser(ctx, u); err != nil {
			return err
		}
	}
	return s.write(ctx, func(evs []events.Event) error { return s.store.DeleteLink(ctx, id, evs) },
		s.change(ctx, "link", "deleted", id, map[string]any{"user_id": l.UserID, "app_id": l.AppID}),
		s.adminAudit(ctx, "link.delete", "user:"+l.UserID, "", start))
}

// ---- bootstrap ----

// The logins of the first start's administrators.
const (
	BootstrapAdminLogin   = "admin"
	BootstrapAuditorLogin = "auditor"
)

// FirstAdmins are the passwords of the first start's two administrators:
// the system administrator (UIAS_BOOTSTRAP_PASSWORD) and the security
// auditor (UIAS_BOOTSTRAP_AUDITOR_PASSWORD). An empty one is generated.
// NoAuditor creates the system administrator only (Bootstrap).
type FirstAdmins struct {
	AdminPassword, AuditorPassword string
	NoAuditor                      bool
}

// Bootstrapped says what BootstrapAdmins did: Created, and the passwords
// it generated (to print once; empty when given).
type Bootstrapped struct {
	Created                        bool
	AdminPassword, AuditorPassword string
}

// Bootstrap is BootstrapAdmins of the system administrator alone (tests
// and tools; a UIAS process's first start makes the security auditor too).
func (s *Service) Bootstrap(ctx context.Context, password string) (created bool, generated string, err error) {
	r, err := s.BootstrapAdmins(ctx, FirstAdmins{AdminPassword: password, NoAuditor: true})
	return r.Created, r.AdminPassword, err
}

// BootstrapAdmins creates the root org and the first administrators on the
// first start: the system administrator "admin" (the legacy is_admin flag,
// which identity turns into authz's system_admin grant) and the security
// auditor "auditor" (a recorded appointment to security_auditor). They are
// two people: one never holds both roles, so their passwords must differ.
// Both users are created in one transaction with the appointment. A given
// password is checked against the policy before anything is written. It
// does nothing once a user exists (passwords given then are ignored,
// whatever they are, with a log line, so a UIAS_BOOTSTRAP_PASSWORD left set
// never blocks a restart), and finishes a start that created the root org
// but no user.
func (s *Service) BootstrapAdmins(ctx context.Context, p FirstAdmins) (Bootstrapped, error) {
	var res Bootstrapped
	// its records name the process, not an anonymous caller (trial11 D12)
	bctx := caller.With(ctx, &caller.Caller{RequestID: "bootstrap", System: "bootstrap"})
	var root *Org
	n, err := s.store.CountOrgs(ctx)
	if err != nil {
		return res, err
	}
	if n > 0 {
		users, _, err := s.store.ListUsers(ctx, UserFilter{}, Page{Size: 1})
		if err != nil {
			return res, err
		}
		if len(users) > 0 {
			if p.AdminPassword != "" || p.AuditorPassword != "" {
				s.log.Info("bootstrap password ignored: the first administrators already exist " +
					"(UIAS_BOOTSTRAP_PASSWORD and UIAS_BOOTSTRAP_AUDITOR_PASSWORD are used only on a first start, with an empty database; unset them)")
			}
			return res, nil
		}
	}
	if p.AdminPassword != "" {
		if err := s.cfg.Policy.CheckPassword(p.AdminPassword, BootstrapAdminLogin); err != nil {
			return res, fmt.Errorf("bootstrap password (UIAS_BOOTSTRAP_PASSWORD): %w", err)
		}
	}
	if p.AuditorPassword != "" && !p.NoAuditor {
		if err := s.cfg.Policy.CheckPassword(p.AuditorPassword, BootstrapAuditorLogin); err != nil {
			return res, fmt.Errorf("security auditor's bootstrap password (UIAS_BOOTSTRAP_AUDITOR_PASSWORD): %w", err)
		}
		if p.AuditorPassword == p.AdminPassword {
			return res, errors.New("UIAS_BOOTSTRAP_AUDITOR_PASSWORD must differ from UIAS_BOOTSTRAP_PASSWORD: " +
				"the security auditor and the system administrator are two different people")
		}
	}
	if n > 0 {
		// Orgs but no user at all: an earlier bootstrap stopped half-way.
		orgs, _, err := s.store.ListOrgs(ctx, OrgFilter{}, Page{Size: 500})
		if err != nil {
			return res, err
		}
		for _, o := range orgs {
			if o.ParentID == "" {
				root = o
			}
		}
		if root == nil {
			return res, errors.New("bootstrap: orgs exist but no root org")
		}
	} else if root, err = s.CreateOrg(bctx, "root", "Root", ""); err != nil {
		return res, err
	}
	generate := func(given string, out *string) string {
		if given != "" {
			return given
		}
		*out = "Ua" + crypto.RandomToken(18) + "#9"
		return *out
	}
	admin, evs, err := s.newUser(bctx, NewUser{LoginName: BootstrapAdminLogin, DisplayName: "System Administrator",
		OrgID: root.ID, Password: generate(p.AdminPassword, &res.AdminPassword), NeverExpires: true, IsAdmin: true,
		OwnPassword: true}, false)
	if err != nil {
		return Bootstrapped{}, fmt.Errorf("create system administrator: %w", err)
	}
	users, appoint := []*User{admin}, []Appointment(nil)
	if !p.NoAuditor {
		auditor, audEvs, err := s.newUser(bctx, NewUser{LoginName: BootstrapAuditorLogin, DisplayName: "Security Auditor",
			OrgID: root.ID, Password: generate(p.AuditorPassword, &res.AuditorPassword), NeverExpires: true,
			OwnPassword: true}, false)
		if err != nil {
			return Bootstrapped{}, fmt.Errorf("create security auditor: %w", err)
		}
		users, evs = append(users, auditor), append(evs, audEvs...)
		appoint = append(appoint, Appointment{UserID: auditor.ID, Role: RoleSecurityAuditor})
	}
	if err := s.write(bctx, func(evs []events.Event) error {
		return s.store.CreateFirstAdmins(bctx, users, appoint, evs)
	}, evs...); err != nil {
		return Bootstrapped{}, fmt.Errorf("create the first administrators: %w", err)
	}
	if s.appointed != nil {
		s.appointed()
	}
	res.Created = true
	return res, nil
}

// ---- field checks ----

// checkPhone accepts a phone number as people write it: digits, a leading
// '+', single spaces, '-' or '.' between digit groups, and one group in
// parentheses (an area code): "+86 138 0013 8000", "(0571) 8765-4321",
// "010-12345678". It is stored as given (encrypted; nothing looks a person
// up by it).
func checkPhone(p string) error {
	if p == "" {
		return nil
	}
	bad := func() error {
		return badField("phone", "phone may contain only digits, a leading '+', single spaces, '-' or '.' between digit groups "+
			"and one area code in parentheses, e.g. +86 10 1234-5678 or (0571) 8765-4321")
	}
	// prev is the kind of the rune before: 'd' a digit, 's' a separator,
	// '+', '(', ')', or 0 at the start.
	digits, groups, open, prev := 0, 0, false, byte(0)
	for i, r := range p {
		switch {
		case r >= '0' && r <= '9':
			digits, prev = digits+1, 'd'
		case r == '+' && i == 0:
			prev = '+'
		case r == ' ' || r == '-' || r == '.':
			if prev != 'd' && prev != ')' {
				return bad()
			}
			prev = 's'
		case r == '(':
			if open || groups > 0 || prev == 'd' || prev == ')' {
				return bad()
			}
			open, prev = true, '('
		case r == ')':
			if !open || prev != 'd' {
				return bad()
			}
			open, groups, prev = false, groups+1, ')'
		default:
			return bad()
		}
	}
	if open || prev == 's' || prev == '+' {
		return bad()
	}
	if digits < minPhoneDigits || digits > maxPhoneDigits {
		// (E.164 numbers have at most 15 digits; trial11 D7)
		return badField("phone", "phone must have %d to %d digits (a mainland mobile number has 11)", minPhoneDigits, maxPhoneDigits)
	}
	return nil
}

// The digits a phone number may have: an extension of a few digits at
// least, E.164's 15 at most.
const (
	minPhoneDigits = 5
	maxPhoneDigits = 15
)

func checkEmail(e string) error {
	if e == "" {
		return nil
	}
	at := strings.LastIndexByte(e, '@')
	if at < 1 || at == len(e)-1 || strings.ContainsAny(e, " <>\"") {
		return badField("email", "email is not a valid address")
	}
	return nil
}

// validResidentID checks the 18-character resident ID check digit
// (GB 11643-1999).
func validResidentID(id string) bool {
	if len(id) != 18 {
		return false
	}
	weights := [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}
	sum := 0
	for i := 0; i < 17; i++ {
		c := id[i]
		if c < '0' || c > '9' {
			return false
		}
		sum += int(c-'0') * weights[i]
	}
	check := "10X98765432"[sum%11]
	last := id[17]
	if last == 'x' {
		last = 'X'
	}
	return last == check
}
