package ticket

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/uias/uias/pkg/crypto"
)

// Ticket prefixes (CAS 3.0).
const (
	PrefixTGT    = "TGT-"
	PrefixST     = "ST-"
	PrefixPT     = "PT-"
	PrefixPGT    = "PGT-"
	PrefixPGTIOU = "PGTIOU-"
)

// MaxTicketLen is the longest ticket CAS 3.0 allows (and the longest this
// component makes).
const MaxTicketLen = 256

// randomBytes is the randomness of every ticket: 256 bits for session-like
// tickets (TGT, PGT, PGTIOU), 128 for the serial of a signed ticket.
const (
	randomBytes = 32
	serialBytes = 16
)

// The character classes of ticket values, checked byte by byte with a
// table (every issue and validation checks a few hundred bytes: a regular
// expression cost more than the rest of the parse, a predicate called per
// byte still ~7 ns a byte).
const (
	classDigit  uint8 = 1 << iota // 0-9
	classLower                    // a-z
	classUpper                    // A-Z
	classHyphen                   // -
	classHexLow                   // a-f
)

var charClass = func() (t [256]uint8) {
	for c := '0'; c <= '9'; c++ {
		t[c] |= classDigit
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] |= classLower
		t[c-'a'+'A'] |= classUpper
	}
	for c := 'a'; c <= 'f'; c++ {
		t[c] |= classHexLow
	}
	t['-'] |= classHyphen
	return t
}()

// allIn reports whether s is not empty and every byte of it is in one of
// the classes of set.
func allIn(s string, set uint8) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if charClass[s[i]]&set == 0 {
			return false
		}
	}
	return true
}

// ValidTicketChars reports whether t has only the characters CAS 3.0
// allows (A-Z, a-z, 0-9 and -; deployed clients drop tickets with others)
// and at most MaxTicketLen of them.
func ValidTicketChars(t string) bool {
	return len(t) <= MaxTicketLen && allIn(t, classDigit|classLower|classUpper|classHyphen)
}

// validCentre reports whether c is a centre code (it goes into ticket
// values): 1-16 letters or digits.
func validCentre(c string) bool { return len(c) <= 16 && allIn(c, classDigit|classLower|classUpper) }

// lowerHex reports whether s is lower-case hex, how serials, key ids and
// MACs are written (one spelling only).
func lowerHex(s string) bool {
	return allIn(s, classDigit|classHexLow)
}

// newOpaque returns prefix + 256 random bits (hex) + "-" + centre.
func newOpaque(prefix, centre string) string {
	b := make([]byte, randomBytes)
	_, _ = rand.Read(b) // never fails (Go >= 1.24)
	return prefix + hex.EncodeToString(b) + "-" + centre
}

// keyOf is the storage key of a ticket value: a one-way hash, so that what
// the buckets hold (and operators may read) cannot be replayed as a ticket.
func keyOf(t string) string {
	var sum [sha256.Size]byte
	if len(t) <= MaxTicketLen {
		// Copied on the stack (a ticket is at most MaxTicketLen bytes):
		// no heap copy of the value on every issue and validation.
		var buf [MaxTicketLen]byte
		sum = sha256.Sum256(buf[:copy(buf[:], t)])
	} else {
		sum = sha256.Sum256([]byte(t))
	}
	var out [32]byte
	hex.Encode(out[:], sum[:16])
	return string(out[:])
}

// SessionID is the public id of the session of a TGT (a hash of it).
func SessionID(tgt string) string { return keyOf(tgt) }

// signed is the content of a signed ticket (ST or PT): its serial, validity
// window, issuing centre and the instance that holds it (Replica), under a
// signature from the key ring.
type signed struct {
	Prefix  string
	Serial  string // 128 random bits, hex
	Issued  time.Time
	Expires time.Time
	Centre  string
	Replica string
}

// ValidReplica reports whether r may name an instance in ticket values
// (Store.Replica): 1-16 lower-case letters or digits.
func ValidReplica(r string) bool {
	return len(r) <= 16 && allIn(r, classDigit|classLower)
}

var errMalformed = errors.New("malformed ticket")

// signedDomain starts what a ticket's signature covers.
const signedDomain = "uias ticket v1\x00"

// signedMsg appends what the signature covers to dst.
func signedMsg(dst []byte, prefix, body string) []byte {
	dst = append(dst, signedDomain...)
	return append(append(dst, prefix...), body...)
}

// newSigned makes a signed ticket value:
//
//	<prefix><serial>-<issued ms base36>-<expires ms base36>-<centre>-<replica>-<key id hex>-<mac hex>
func newSigned(m *crypto.Signer, prefix, centre, replica string, issued, expires time.Time) (string, signed) {
	var serial [serialBytes]byte
	_, _ = rand.Read(serial[:])
	s := signed{Prefix: prefix, Issued: issued.Truncate(time.Millisecond), Expires: expires.Truncate(time.Millisecond),
		Centre: centre, Replica: replica}
	// Written into one buffer (this is on every ticket issued): one
	// allocation, the value itself.
	var buf [MaxTicketLen + len(signedDomain)]byte
	b := append(buf[:0], signedDomain...)
	b = append(b, prefix...)
	b = hex.AppendEncode(b, serial[:])
	b = strconv.AppendInt(append(b, '-'), s.Issued.UnixMilli(), 36)
	b = strconv.AppendInt(append(b, '-'), s.Expires.UnixMilli(), 36)
	b = append(append(append(append(b, '-'), centre...), '-'), replica...)
	var sum [sha256.Size]byte
	kid, raw := m.AppendMAC(sum[:0], b) // the domain, the prefix and the body: signedMsg
	b = hex.AppendEncode(append(b, '-'), []byte(kid))
	b = hex.AppendEncode(append(b, '-'), raw)
	t := string(b[len(signedDomain):])
	s.Serial = t[len(prefix) : len(prefix)+2*serialBytes]
	return t, s
}

// parseSigned checks the form and the signature of a signed ticket value
// with prefix, without any lookup.
func parseSigned(m *crypto.Signer, prefix, t string) (signed, error) {
	if !strings.HasPrefix(t, prefix) || !ValidTicketChars(t) {
		return signed{}, errMalformed
	}
	// Seven parts split at "-" (without a slice: this is on every
	// validation).
	var parts [7]string
	rest := t[len(prefix):]
	for i := range 6 {
		p, r, ok := strings.Cut(rest, "-")
		if !ok {
			return signed{}, errMalformed
		}
		parts[i], rest = p, r
	}
	if strings.Contains(rest, "-") {
		return signed{}, errMalformed
	}
	parts[6] = rest
	serial, issued, expires, centre, replica, kidHex, macHex := parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6]
	if len(serial) != 2*serialBytes || !validCentre(centre) || !ValidReplica(replica) || len(macHex) != 64 {
		return signed{}, errMalformed
	}
	if !lowerHex(serial) || !lowerHex(kidHex) || !lowerHex(macHex) {
		return signed{}, errMalformed
	}
	is, err1 := strconv.ParseInt(issued, 36, 64)
	ex, err2 := strconv.ParseInt(expires, 36, 64)
	var kidBuf [64]byte // a ring's key ids are at most 64 bytes (crypto.CheckKeyID)
	var kid []byte
	var err3 error
	if len(kidHex) <= 2*len(kidBuf) {
		var n int
		n, err3 = hex.Decode(kidBuf[:], []byte(kidHex))
		kid = kidBuf[:n]
	} else {
		kid, err3 = hex.DecodeString(kidHex)
	}
	var mac [sha256.Size]byte
	_, err4 := hex.Decode(mac[:], []byte(macHex)) // 64 hex digits (checked above)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || len(kid) == 0 {
		return signed{}, errMalformed
	}
	body := t[len(prefix) : len(t)-len(kidHex)-len(macHex)-2] // the first five parts
	var msg [128]byte
	if !m.VerifyMAC(string(kid), signedMsg(msg[:0], prefix, body), mac[:]) {
		return signed{}, errMalformed
	}
	return signed{Prefix: prefix, Serial: serial, Issued: time.UnixMilli(is), Expires: time.UnixMilli(ex), Centre: centre,
		Replica: replica}, nil
}
