package ticket

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
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

// The character classes of ticket values, checked byte by byte (every
// validation parses a ticket: a regular expression cost more than the
// rest of the parse).
func isDigit(c byte) bool { return '0' <= c && c <= '9' }
func isLower(c byte) bool { return 'a' <= c && c <= 'z' }
func isAlnum(c byte) bool { return isDigit(c) || isLower(c) || ('A' <= c && c <= 'Z') }

// all reports whether s is not empty and every byte of it is in class.
func all(s string, class func(byte) bool) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !class(s[i]) {
			return false
		}
	}
	return true
}

// ValidTicketChars reports whether t has only the characters CAS 3.0
// allows (A-Z, a-z, 0-9 and -; deployed clients drop tickets with others)
// and at most MaxTicketLen of them.
func ValidTicketChars(t string) bool {
	return len(t) <= MaxTicketLen && all(t, func(c byte) bool { return isAlnum(c) || c == '-' })
}

// validCentre reports whether c is a centre code (it goes into ticket
// values): 1-16 letters or digits.
func validCentre(c string) bool { return len(c) <= 16 && all(c, isAlnum) }

// lowerHex reports whether s is lower-case hex, how serials, key ids and
// MACs are written (one spelling only).
func lowerHex(s string) bool {
	return all(s, func(c byte) bool { return isDigit(c) || ('a' <= c && c <= 'f') })
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
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:16])
}

// SessionID is the public id of the session of a TGT (a hash of it).
func SessionID(tgt string) string { return keyOf(tgt) }

// MACer signs and checks ticket bodies (crypto.Signer of the key ring).
type MACer interface {
	Sign(msg []byte) string
	Verify(msg []byte, sig string) bool
}

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
	return len(r) <= 16 && all(r, func(c byte) bool { return isDigit(c) || isLower(c) })
}

var errMalformed = errors.New("malformed ticket")

// signedMsg is what the signature covers.
func signedMsg(prefix, body string) []byte {
	return []byte("uias ticket v1\x00" + prefix + body)
}

// newSigned makes a signed ticket value:
//
//	<prefix><serial>-<issued ms base36>-<expires ms base36>-<centre>-<replica>-<key id hex>-<mac hex>
func newSigned(m MACer, prefix, centre, replica string, issued, expires time.Time) (string, signed) {
	b := make([]byte, serialBytes)
	_, _ = rand.Read(b)
	s := signed{Prefix: prefix, Serial: hex.EncodeToString(b), Issued: issued.Truncate(time.Millisecond),
		Expires: expires.Truncate(time.Millisecond), Centre: centre, Replica: replica}
	body := s.Serial + "-" + strconv.FormatInt(s.Issued.UnixMilli(), 36) + "-" +
		strconv.FormatInt(s.Expires.UnixMilli(), 36) + "-" + centre + "-" + replica
	sig := m.Sign(signedMsg(prefix, body))
	kid, mac, _ := strings.Cut(sig, ":")
	raw, _ := base64.RawURLEncoding.DecodeString(mac)
	return prefix + body + "-" + hex.EncodeToString([]byte(kid)) + "-" + hex.EncodeToString(raw), s
}

// parseSigned checks the form and the signature of a signed ticket value
// with prefix, without any lookup.
func parseSigned(m MACer, prefix, t string) (signed, error) {
	if !strings.HasPrefix(t, prefix) || !ValidTicketChars(t) {
		return signed{}, errMalformed
	}
	parts := strings.Split(strings.TrimPrefix(t, prefix), "-")
	if len(parts) != 7 {
		return signed{}, errMalformed
	}
	serial, issued, expires, centre, replica, kidHex, macHex := parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6]
	if len(serial) != 2*serialBytes || !validCentre(centre) || !ValidReplica(replica) || len(macHex) != 64 {
		return signed{}, errMalformed
	}
	if !lowerHex(serial) || !lowerHex(kidHex) || !lowerHex(macHex) {
		return signed{}, errMalformed
	}
	is, err1 := strconv.ParseInt(issued, 36, 64)
	ex, err2 := strconv.ParseInt(expires, 36, 64)
	kid, err3 := hex.DecodeString(kidHex)
	mac, err4 := hex.DecodeString(macHex)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || len(kid) == 0 {
		return signed{}, errMalformed
	}
	body := strings.Join(parts[:5], "-")
	if !m.Verify(signedMsg(prefix, body), string(kid)+":"+base64.RawURLEncoding.EncodeToString(mac)) {
		return signed{}, errMalformed
	}
	return signed{Prefix: prefix, Serial: serial, Issued: time.UnixMilli(is), Expires: time.UnixMilli(ex), Centre: centre,
		Replica: replica}, nil
}
