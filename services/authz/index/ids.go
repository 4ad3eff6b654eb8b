package index

import "strings"

// idBlock is the size of a block of grant ids.
const idBlock = 64 << 10

// idStore keeps the grant ids in blocks of a few thousand: a million grants
// then hold their ids in a few hundred objects without pointers instead of
// a million strings, which every GC cycle would mark one by one. A block's
// bytes never change once written; an id read from it (get) is a substring
// of the block. A block is dropped when none of its ids is in use any more;
// until then the ids of grants deleted since waste its room.
type idStore struct {
	blocks []string // the written part of each block ("" once dropped)
	live   []int32  // ids in use per block
	free   []int32  // numbers of dropped blocks, to reuse
	cur    strings.Builder
	curBlk int32 // the block being written, -1 none
}

// idRef is an id's place: block, offset and length.
type idRef struct{ blk, off, n int32 }

func newIDStore() idStore { return idStore{curBlk: -1} }

func (s *idStore) newBlock() int32 {
	if n := len(s.free); n > 0 {
		b := s.free[n-1]
		s.free = s.free[:n-1]
		return b
	}
	s.blocks = append(s.blocks, "")
	s.live = append(s.live, 0)
	return int32(len(s.blocks) - 1)
}

// put stores id and returns its place.
func (s *idStore) put(id string) idRef {
	if len(id) > idBlock/16 {
		// A long id has a block of its own.
		b := s.newBlock()
		s.blocks[b] = strings.Clone(id)
		s.live[b] = 1
		return idRef{blk: b, n: int32(len(id))}
	}
	if s.curBlk < 0 || s.cur.Cap()-s.cur.Len() < len(id) {
		if s.curBlk >= 0 && s.live[s.curBlk] == 0 {
			s.dropBlock(s.curBlk)
		}
		s.cur = strings.Builder{}
		s.cur.Grow(idBlock)
		s.curBlk = s.newBlock()
	}
	off := s.cur.Len()
	s.cur.WriteString(id)
	// The builder's string shares its buffer, which only grows in place
	// (never past the capacity reserved above): earlier ids stay valid.
	s.blocks[s.curBlk] = s.cur.String()
	s.live[s.curBlk]++
	return idRef{blk: s.curBlk, off: int32(off), n: int32(len(id))}
}

// get returns the id at r.
func (s *idStore) get(r idRef) string {
	return s.blocks[r.blk][r.off : r.off+r.n]
}

// drop releases the id at r.
func (s *idStore) drop(r idRef) {
	s.live[r.blk]--
	if s.live[r.blk] == 0 && r.blk != s.curBlk {
		s.dropBlock(r.blk)
	}
}

func (s *idStore) dropBlock(b int32) {
	s.blocks[b] = ""
	s.free = append(s.free, b)
	if b == s.curBlk {
		s.curBlk = -1
	}
}
