package audit

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/uias/uias/pkg/crypto"
)

// KeyPurpose is the purpose under which the checkpoint signing keys are
// derived from the key ring's signing keys (crypto.Ring.Ed25519).
const KeyPurpose = "audit checkpoint"

var originRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$`)

// ValidOrigin reports whether s may name a log (the first line of its
// checkpoints and the name of its signing keys).
func ValidOrigin(s string) bool { return originRE.MatchString(s) }

// Signer signs and opens the log's checkpoints. A checkpoint is a signed
// note (sumdb/note) whose text follows the C2SP tlog-checkpoint format:
//
//	<origin>
//	<tree size>
//	<root hash, base64>
//	time <unix milliseconds>
//
// signed with Ed25519 keys named after the origin, one per signing key of
// the key ring (crypto.Ring.Ed25519(KeyPurpose)): the active one signs,
// every one verifies.
type Signer struct {
	origin    string
	active    note.Signer
	verifiers note.Verifiers
	vkeys     []string
	signing   string // the verifier key of active
}

// NewSigner returns the signer of the log origin with keys.
func NewSigner(origin string, keys *crypto.Ed25519Keys) (*Signer, error) {
	if !ValidOrigin(origin) {
		return nil, fmt.Errorf("invalid audit log origin %q", origin)
	}
	s := &Signer{origin: origin}
	var vs []note.Verifier
	ids := make([]string, 0, len(keys.Keys))
	for id := range keys.Keys {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		priv := keys.Keys[id]
		vkey, err := note.NewEd25519VerifierKey(origin, priv.Public().(ed25519.PublicKey))
		if err != nil {
			return nil, err
		}
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return nil, err
		}
		vs = append(vs, v)
		s.vkeys = append(s.vkeys, vkey)
		if id == keys.Active {
			s.active = &noteSigner{name: origin, hash: v.KeyHash(), key: priv}
			s.signing = vkey
		}
	}
	if s.active == nil {
		return nil, errors.New("the active signing key has no Ed25519 pair")
	}
	s.verifiers = note.VerifierList(vs...)
	return s, nil
}

// Origin is the log's name.
func (s *Signer) Origin() string { return s.origin }

// VerifierKeys are the public verifier keys (note format
// "<origin>+<hash>+<key>") a witness needs to check checkpoints.
func (s *Signer) VerifierKeys() []string { return slices.Clone(s.vkeys) }

// SigningVerifierKey is the verifier key of the key that signs new
// checkpoints (one of VerifierKeys; the others verify older ones).
func (s *Signer) SigningVerifierKey() string { return s.signing }

// Sign makes the signed checkpoint of a tree.
func (s *Signer) Sign(size int64, root tlog.Hash, at time.Time) (Checkpoint, error) {
	at = time.UnixMilli(at.UnixMilli()).UTC()
	text := fmt.Sprintf("%s\n%d\n%s\ntime %d\n", s.origin, size, root, at.UnixMilli())
	msg, err := note.Sign(&note.Note{Text: text}, s.active)
	if err != nil {
		return Checkpoint{}, err
	}
	return Checkpoint{Size: size, Root: root, Time: at, Note: msg}, nil
}

// Open checks the signature of a signed checkpoint with the log's keys and
// returns what it states.
func (s *Signer) Open(msg []byte) (Checkpoint, error) {
	return OpenCheckpoint(msg, s.origin, s.verifiers)
}

// OpenCheckpoint checks a signed checkpoint of log origin against known
// verifiers and parses it.
func OpenCheckpoint(msg []byte, origin string, known note.Verifiers) (Checkpoint, error) {
	n, err := note.Open(msg, known)
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		// signed, by none of the keys known: say by which (trial11 D4)
		var by []string
		for _, sig := range unverified.Note.UnverifiedSigs {
			by = append(by, fmt.Sprintf("%s+%08x", sig.Name, sig.Hash))
		}
		return Checkpoint{}, fmt.Errorf("checkpoint signature: signed by %s, none of the verifier keys given "+
			"(pin every verifier key the log lists, or the one whose name and hash those are): %w", strings.Join(by, ", "), err)
	}
	if err != nil {
		return Checkpoint{}, fmt.Errorf("checkpoint signature: %w", err)
	}
	lines := strings.Split(strings.TrimSuffix(n.Text, "\n"), "\n")
	if len(lines) < 3 || lines[0] != origin {
		return Checkpoint{}, fmt.Errorf("checkpoint is not of log %q", origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || lines[1] != strconv.FormatInt(size, 10) {
		return Checkpoint{}, errors.New("checkpoint has an invalid tree size")
	}
	root, err := tlog.ParseHash(lines[2])
	if err != nil {
		return Checkpoint{}, errors.New("checkpoint has an invalid root hash")
	}
	c := Checkpoint{Size: size, Root: root, Note: msg}
	for _, l := range lines[3:] {
		if v, ok := strings.CutPrefix(l, "time "); ok {
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Checkpoint{}, errors.New("checkpoint has an invalid time")
			}
			c.Time = time.UnixMilli(ms).UTC()
		}
	}
	return c, nil
}

// VerifiersFromKeys parses verifier keys (as VerifierKeys returns them).
func VerifiersFromKeys(vkeys []string) (note.Verifiers, error) {
	var vs []note.Verifier
	for _, k := range vkeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("verifier key %q: %w", k, err)
		}
		vs = append(vs, v)
	}
	return note.VerifierList(vs...), nil
}

// noteSigner is a note.Signer over an Ed25519 key derived from the ring.
type noteSigner struct {
	name string
	hash uint32
	key  ed25519.PrivateKey
}

func (s *noteSigner) Name() string                    { return s.name }
func (s *noteSigner) KeyHash() uint32                 { return s.hash }
func (s *noteSigner) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }
