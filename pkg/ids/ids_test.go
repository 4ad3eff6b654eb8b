package ids

import (
	"encoding/hex"
	"sort"
	"testing"
	"time"
)

func TestNewIsHexAndUnique(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		for _, id := range []string{New(), Random()} {
			if len(id) != 32 {
				t.Fatalf("id %q has %d characters, want 32", id, len(id))
			}
			if _, err := hex.DecodeString(id); err != nil {
				t.Fatalf("id %q is not hex: %v", id, err)
			}
			if seen[id] {
				t.Fatalf("id %q made twice", id)
			}
			seen[id] = true
		}
	}
}

// Ids made in later milliseconds sort after earlier ones, whatever their
// random part.
func TestNewSortsByCreationTime(t *testing.T) {
	base := time.Date(2026, 11, 3, 10, 0, 0, 0, time.UTC)
	var made []string
	for i := range 50 {
		made = append(made, newAt(base.Add(time.Duration(i)*time.Millisecond)))
	}
	if !sort.StringsAreSorted(made) {
		t.Fatalf("ids of increasing times are not sorted: %v", made)
	}
	// The time prefix is the millisecond clock.
	if got, want := made[0][:12], "01a1a0d9f100"; got != want {
		t.Fatalf("time prefix = %s, want %s (ms since epoch of %v, hex)", got, want, base)
	}
}
