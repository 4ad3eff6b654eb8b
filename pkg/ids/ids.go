// Package ids makes the identifiers UIAS components give to what they create
// (entities, events) and to requests. Every id is 128 bits written as 32
// lower-case hex characters.
package ids

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// New returns an id whose first 48 bits are the current time in
// milliseconds and whose other 80 bits are random, so ids sort roughly by
// creation (pages ordered by id follow creation order) and never collide
// in practice.
func New() string {
	return newAt(time.Now())
}

func newAt(t time.Time) string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(t.UnixMilli())<<16)
	// crypto/rand.Read never returns an error (Go >= 1.24); it panics
	// when the system has no randomness.
	_, _ = rand.Read(b[6:])
	return hex.EncodeToString(b[:])
}

// Random returns an id of 128 random bits (request ids, where creation
// order tells nothing).
func Random() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
