package index

import "hash/maphash"

// grantTable finds a grant's node by the grant's id: open addressing with
// linear probing over slots without pointers (a Go map from id to node
// would hold a string per grant for every GC cycle to follow). A slot holds
// the node's number and 32 bits of the id's hash, which place the slot and
// spare most comparisons of ids.
type grantTable struct {
	slots []grantSlot
	n     int
	seed  maphash.Seed
}

// idSource reads the id of a grant node (the Index).
type idSource interface{ grantID(gi int32) string }

type grantSlot struct {
	hash uint32
	node int32 // 0: empty
}

func newGrantTable() grantTable { return grantTable{seed: maphash.MakeSeed()} }

func (t *grantTable) hashOf(id string) uint32 { return uint32(maphash.String(t.seed, id)) }

// find returns the slot of id (found) or the empty slot where it would go.
func (t *grantTable) find(id string, h uint32, idOf idSource) (int, bool) {
	if len(t.slots) == 0 {
		return -1, false
	}
	mask := len(t.slots) - 1
	for i := int(h) & mask; ; i = (i + 1) & mask {
		s := t.slots[i]
		if s.node == 0 {
			return i, false
		}
		if s.hash == h && idOf.grantID(s.node) == id {
			return i, true
		}
	}
}

// get returns the node of id (0 if none).
func (t *grantTable) get(id string, idOf idSource) int32 {
	i, ok := t.find(id, t.hashOf(id), idOf)
	if !ok {
		return 0
	}
	return t.slots[i].node
}

// put adds node gi under id, which the table does not hold.
func (t *grantTable) put(id string, gi int32, idOf idSource) {
	t.putHashed(id, t.hashOf(id), gi, idOf)
}

// putHashed is put of an id whose hash is h.
func (t *grantTable) putHashed(id string, h uint32, gi int32, idOf idSource) {
	if (t.n+1)*4 > len(t.slots)*3 {
		t.grow(t.n + 1)
	}
	i, _ := t.find(id, h, idOf)
	t.slots[i] = grantSlot{hash: h, node: gi}
	t.n++
}

// grow makes room for n entries at most three quarters full.
func (t *grantTable) grow(n int) {
	size := 16
	for size*3 < n*4 {
		size *= 2
	}
	if size <= len(t.slots) {
		return
	}
	old := t.slots
	t.slots = make([]grantSlot, size)
	mask := size - 1
	for _, s := range old {
		if s.node == 0 {
			continue
		}
		i := int(s.hash) & mask
		for t.slots[i].node != 0 {
			i = (i + 1) & mask
		}
		t.slots[i] = s
	}
}

// remove takes id out of the table and returns its node (0 if none). The
// entries after it in its run move back, so that no tombstone is left.
func (t *grantTable) remove(id string, idOf idSource) int32 {
	return t.removeHashed(id, t.hashOf(id), idOf)
}

// removeHashed is remove of an id whose hash is h.
func (t *grantTable) removeHashed(id string, h uint32, idOf idSource) int32 {
	i, ok := t.find(id, h, idOf)
	if !ok {
		return 0
	}
	gi := t.slots[i].node
	t.n--
	mask := len(t.slots) - 1
	for {
		t.slots[i] = grantSlot{}
		j := i
		for {
			j = (j + 1) & mask
			if t.slots[j].node == 0 {
				return gi
			}
			// An entry whose home lies cyclically in (i, j] stays.
			k := int(t.slots[j].hash) & mask
			if i <= j {
				if i < k && k <= j {
					continue
				}
			} else if i < k || k <= j {
				continue
			}
			break
		}
		t.slots[i] = t.slots[j]
		i = j
	}
}

// each calls fn for every node in the table.
func (t *grantTable) each(fn func(gi int32)) {
	for _, s := range t.slots {
		if s.node != 0 {
			fn(s.node)
		}
	}
}
