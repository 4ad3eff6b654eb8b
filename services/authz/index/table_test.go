package index

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

type fakeIDs map[int32]string

func (f fakeIDs) grantID(gi int32) string { return f[gi] }

// The grant table answers as a Go map through random puts and removes,
// with hashes forced to collide (every entry in one run) and not.
func TestGrantTableMatchesMap(t *testing.T) {
	for _, collide := range []bool{false, true} {
		tab := newGrantTable()
		ids := fakeIDs{}
		want := map[string]int32{}
		rng := rand.New(rand.NewPCG(1, 2))
		next := int32(1)
		n := 20000
		if collide {
			n = 600
		}
		for range n {
			id := "g" + strconv.Itoa(rng.IntN(n/2))
			if gi, ok := want[id]; ok && rng.IntN(3) > 0 {
				var got int32
				if collide {
					got = tab.removeHashed(id, 0xFFFFFFFF, ids)
				} else {
					got = tab.remove(id, ids)
				}
				if got != gi {
					t.Fatalf("remove %s: %d, want %d", id, got, gi)
				}
				delete(want, id)
				delete(ids, gi)
				continue
			} else if ok {
				continue
			}
			ids[next] = id
			want[id] = next
			if collide {
				// Every hash alike and homed at the last slot: one run wrapping round the end, which removes shift back.
				tab.putHashed(id, 0xFFFFFFFF, next, ids)
			} else {
				tab.put(id, next, ids)
			}
			next++
		}
		if tab.n != len(want) {
			t.Fatalf("collide %v: %d entries, want %d", collide, tab.n, len(want))
		}
		for i := range n / 2 {
			id := "g" + strconv.Itoa(i)
			var got int32
			if collide {
				if j, ok := tab.find(id, 0xFFFFFFFF, ids); ok {
					got = tab.slots[j].node
				}
			} else {
				got = tab.get(id, ids)
			}
			if got != want[id] {
				t.Fatalf("collide %v: get %s: %d, want %d", collide, id, got, want[id])
			}
		}
		seen := 0
		tab.each(func(gi int32) {
			if want[ids[gi]] != gi {
				t.Fatalf("each: node %d not in the map", gi)
			}
			seen++
		})
		if seen != len(want) {
			t.Fatalf("each: %d, want %d", seen, len(want))
		}
	}
}
