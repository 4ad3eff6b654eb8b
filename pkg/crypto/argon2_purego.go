//go:build !(cgo && libargon2)

package crypto

import (
	"encoding/binary"
	"math/bits"
	"sync"
	"unsafe"

	"golang.org/x/crypto/blake2b"
)

// argon2id in pure Go, after RFC 9106 (version 0x13), written here instead
// of calling golang.org/x/crypto/argon2 because that package allocates the
// whole block memory (19 MiB at the default parameters) for every hash and
// clears it: under a login storm the garbage of those buffers, not the
// waiting calls, made the heap grow to about 4x the workers' hash memory,
// and clearing them took about a tenth of the hash's CPU. Here a hash
// worker passes its argon2Memory and every hash reuses it (the first pass
// writes every block before any is read, so nothing needs clearing), as
// the libargon2 build does with libargon2's allocation callbacks.
// TestArgon2MatchesXCrypto checks the result against x/crypto for many
// parameter sets; the speed is compared in BenchmarkArgon2id.

// argon2Block is one 1 KiB block of argon2 memory.
type argon2Block [128]uint64

const (
	argon2SyncPoints = 4    // slices per pass
	argon2Version    = 0x13 // RFC 9106
	argon2TypeID     = 2
)

// blocks returns the worker memory as n blocks, growing it if needed (nil
// m: fresh memory).
func (m *argon2Memory) blocks(n int) []argon2Block {
	if m == nil {
		return make([]argon2Block, n)
	}
	buf := m.get(n * 1024)
	return unsafe.Slice((*argon2Block)(unsafe.Pointer(unsafe.SliceData(buf))), n)
}

// argon2idGo derives p.KeyLen bytes of argon2id(password, salt) in mem.
func argon2idGo(mem *argon2Memory, password, salt []byte, p Argon2Params) []byte {
	lanes := uint32(p.Threads)
	if p.Time < 1 || lanes < 1 {
		panic("crypto: argon2id needs time and threads of at least 1")
	}
	h0 := argon2H0(password, salt, p)
	// Memory in blocks: a multiple of 4 x lanes, at least 8 per lane.
	m := p.MemoryKiB / (argon2SyncPoints * lanes) * (argon2SyncPoints * lanes)
	if m < 2*argon2SyncPoints*lanes {
		m = 2 * argon2SyncPoints * lanes
	}
	q := m / lanes // columns per lane
	b := mem.blocks(int(m))
	// With yield, the hash gives its processor away every yieldEvery
	// blocks, with the meter paused meanwhile (hashMeter); its lanes on
	// goroutines of their own (several) do not pause it.
	yield := yielding(mem) // assigned once: the lanes' closure copies it
	if mem != nil && lanes > 1 {
		mem.meter.unsplit()
	}

	var seed [72]byte
	copy(seed[:], h0[:])
	var first [1024]byte
	for l := range lanes {
		binary.LittleEndian.PutUint32(seed[68:], l)
		for j := range uint32(2) {
			binary.LittleEndian.PutUint32(seed[64:], j)
			argon2Hprime(first[:], seed[:])
			blk := &b[l*q+j]
			for k := range blk {
				blk[k] = binary.LittleEndian.Uint64(first[k*8:])
			}
		}
	}
	for pass := range p.Time {
		for slice := range uint32(argon2SyncPoints) {
			if lanes == 1 {
				argon2Segment(b, pass, slice, 0, lanes, q, m, p.Time, yield)
				continue
			}
			// Lanes of one slice only read other lanes' finished slices.
			var wg sync.WaitGroup
			for l := range lanes {
				wg.Go(func() { argon2Segment(b, pass, slice, l, lanes, q, m, p.Time, yield) })
			}
			wg.Wait()
		}
	}
	last := b[q-1]
	for l := uint32(1); l < lanes; l++ {
		for k, w := range b[l*q+q-1] {
			last[k] ^= w
		}
	}
	var final [1024]byte
	for k, w := range last {
		binary.LittleEndian.PutUint64(final[k*8:], w)
	}
	out := make([]byte, p.KeyLen)
	argon2Hprime(out, final[:])
	return out
}

// argon2H0 is the 64-byte pre-hash of the parameters and inputs (no secret,
// no associated data).
func argon2H0(password, salt []byte, p Argon2Params) [64]byte {
	h, _ := blake2b.New512(nil)
	var w [4]byte
	put := func(v uint32) {
		binary.LittleEndian.PutUint32(w[:], v)
		h.Write(w[:])
	}
	put(uint32(p.Threads))
	put(p.KeyLen)
	put(p.MemoryKiB)
	put(p.Time)
	put(argon2Version)
	put(argon2TypeID)
	put(uint32(len(password)))
	h.Write(password)
	put(uint32(len(salt)))
	h.Write(salt)
	put(0) // secret
	put(0) // associated data
	var out [64]byte
	h.Sum(out[:0])
	return out
}

// argon2Hprime is the variable-length hash H' of RFC 9106 section 3.3,
// filling out.
func argon2Hprime(out, in []byte) {
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(out)))
	if len(out) <= blake2b.Size {
		h, _ := blake2b.New(len(out), nil)
		h.Write(n[:])
		h.Write(in)
		h.Sum(out[:0])
		return
	}
	h, _ := blake2b.New512(nil)
	h.Write(n[:])
	h.Write(in)
	var v [blake2b.Size]byte
	h.Sum(v[:0])
	pos := copy(out, v[:32])
	for len(out)-pos > blake2b.Size {
		v = blake2b.Sum512(v[:])
		pos += copy(out[pos:], v[:32])
	}
	h, _ = blake2b.New(len(out)-pos, nil)
	h.Write(v[:])
	h.Sum(out[pos:pos])
}

// yielding returns mem if a hash in it yields its processor, else nil.
func yielding(mem *argon2Memory) *argon2Memory {
	if mem != nil && mem.yield {
		return mem
	}
	return nil
}

// yieldEvery is how many blocks a yielding hash computes between two
// yields of its processor (about 1-2 ms of CPU at 0.4-1 µs a block). 512
// (0.2-0.5 ms) cost the logins' rows more than it gained other calls
// (ADR 0005, "How often a hash yields").
const yieldEvery = 2048

// argon2Segment computes the segment (pass, slice) of lane l. With yield
// (not nil) it lets the goroutines waiting for a processor run every
// yieldEvery blocks (see argon2Memory.yield and yieldProcessor).
func argon2Segment(b []argon2Block, pass, slice, l, lanes, q, m, t uint32, yield *argon2Memory) {
	seg := q / argon2SyncPoints
	// Argon2id: data-independent addresses in the first half of the first
	// pass, data-dependent ones after.
	indep := pass == 0 && slice < argon2SyncPoints/2
	var addr, input, zero argon2Block
	if indep {
		input[0], input[1], input[2] = uint64(pass), uint64(l), uint64(slice)
		input[3], input[4], input[5] = uint64(m), uint64(t), argon2TypeID
	}
	nextAddresses := func() {
		input[6]++
		argon2G(&addr, &zero, &input, false)
		argon2G(&addr, &zero, &addr, false)
	}
	start := uint32(0)
	if pass == 0 && slice == 0 {
		start = 2 // the first two blocks come from H'
	}
	if indep && start != 0 {
		nextAddresses()
	}
	offset := l*q + slice*seg + start
	for i := start; i < seg; i, offset = i+1, offset+1 {
		if indep && i%128 == 0 {
			nextAddresses()
		}
		prev := offset - 1
		if offset%q == 0 {
			prev = offset + q - 1 // the lane's last block
		}
		var rand uint64
		if indep {
			rand = addr[i%128]
		} else {
			rand = b[prev][0]
		}
		refLane := uint32(rand>>32) % lanes
		if pass == 0 && slice == 0 {
			refLane = l
		}
		ref := argon2RefIndex(pass, slice, i, uint32(rand), refLane == l, seg, q)
		argon2G(&b[offset], &b[prev], &b[refLane*q+ref], pass > 0)
		if yield != nil && i%yieldEvery == yieldEvery-1 {
			yield.yieldProcessor()
		}
	}
}

// argon2RefIndex maps the pseudo-random j1 of block i of segment (pass,
// slice) to the column of the reference block (RFC 9106 section 3.4.1.2).
func argon2RefIndex(pass, slice, i, j1 uint32, sameLane bool, seg, q uint32) uint32 {
	var size, start uint32
	switch {
	case pass == 0 && sameLane:
		size = slice*seg + i - 1
	case pass == 0:
		size = slice * seg
		if i == 0 {
			size--
		}
	case sameLane:
		size = q - seg + i - 1
	default:
		size = q - seg
		if i == 0 {
			size--
		}
	}
	if pass > 0 && slice != argon2SyncPoints-1 {
		start = (slice + 1) * seg
	}
	x := uint64(j1) * uint64(j1) >> 32
	y := uint64(size) * x >> 32
	return uint32((uint64(start) + uint64(size) - 1 - y) % uint64(q))
}

// argon2G is the compression function: out = G(x, y), or out ^= G(x, y)
// with xor (passes after the first). out may be x or y.
func argon2G(out, x, y *argon2Block, xor bool) {
	var r, z argon2Block
	for k := range r {
		r[k] = x[k] ^ y[k]
	}
	z = r
	for row := 0; row < 128; row += 16 {
		argon2Row((*[16]uint64)(z[row : row+16]))
	}
	for c := 0; c < 16; c += 2 {
		argon2Column((*[114]uint64)(z[c : c+114]))
	}
	if xor {
		for k := range out {
			out[k] ^= z[k] ^ r[k]
		}
		return
	}
	for k := range out {
		out[k] = z[k] ^ r[k]
	}
}

// argon2Row is the permutation P on 16 consecutive words (a row of the
// block); BLAKE2b's round with BlaMka's multiplications, written out so
// that the words stay in registers.
func argon2Row(s *[16]uint64) {
	v0, v1, v2, v3 := s[0], s[1], s[2], s[3]
	v4, v5, v6, v7 := s[4], s[5], s[6], s[7]
	v8, v9, v10, v11 := s[8], s[9], s[10], s[11]
	v12, v13, v14, v15 := s[12], s[13], s[14], s[15]
	v0 += v4 + 2*uint64(uint32(v0))*uint64(uint32(v4))
	v12 = bits.RotateLeft64(v12^v0, -32)
	v8 += v12 + 2*uint64(uint32(v8))*uint64(uint32(v12))
	v4 = bits.RotateLeft64(v4^v8, -24)
	v0 += v4 + 2*uint64(uint32(v0))*uint64(uint32(v4))
	v12 = bits.RotateLeft64(v12^v0, -16)
	v8 += v12 + 2*uint64(uint32(v8))*uint64(uint32(v12))
	v4 = bits.RotateLeft64(v4^v8, -63)
	v1 += v5 + 2*uint64(uint32(v1))*uint64(uint32(v5))
	v13 = bits.RotateLeft64(v13^v1, -32)
	v9 += v13 + 2*uint64(uint32(v9))*uint64(uint32(v13))
	v5 = bits.RotateLeft64(v5^v9, -24)
	v1 += v5 + 2*uint64(uint32(v1))*uint64(uint32(v5))
	v13 = bits.RotateLeft64(v13^v1, -16)
	v9 += v13 + 2*uint64(uint32(v9))*uint64(uint32(v13))
	v5 = bits.RotateLeft64(v5^v9, -63)
	v2 += v6 + 2*uint64(uint32(v2))*uint64(uint32(v6))
	v14 = bits.RotateLeft64(v14^v2, -32)
	v10 += v14 + 2*uint64(uint32(v10))*uint64(uint32(v14))
	v6 = bits.RotateLeft64(v6^v10, -24)
	v2 += v6 + 2*uint64(uint32(v2))*uint64(uint32(v6))
	v14 = bits.RotateLeft64(v14^v2, -16)
	v10 += v14 + 2*uint64(uint32(v10))*uint64(uint32(v14))
	v6 = bits.RotateLeft64(v6^v10, -63)
	v3 += v7 + 2*uint64(uint32(v3))*uint64(uint32(v7))
	v15 = bits.RotateLeft64(v15^v3, -32)
	v11 += v15 + 2*uint64(uint32(v11))*uint64(uint32(v15))
	v7 = bits.RotateLeft64(v7^v11, -24)
	v3 += v7 + 2*uint64(uint32(v3))*uint64(uint32(v7))
	v15 = bits.RotateLeft64(v15^v3, -16)
	v11 += v15 + 2*uint64(uint32(v11))*uint64(uint32(v15))
	v7 = bits.RotateLeft64(v7^v11, -63)
	v0 += v5 + 2*uint64(uint32(v0))*uint64(uint32(v5))
	v15 = bits.RotateLeft64(v15^v0, -32)
	v10 += v15 + 2*uint64(uint32(v10))*uint64(uint32(v15))
	v5 = bits.RotateLeft64(v5^v10, -24)
	v0 += v5 + 2*uint64(uint32(v0))*uint64(uint32(v5))
	v15 = bits.RotateLeft64(v15^v0, -16)
	v10 += v15 + 2*uint64(uint32(v10))*uint64(uint32(v15))
	v5 = bits.RotateLeft64(v5^v10, -63)
	v1 += v6 + 2*uint64(uint32(v1))*uint64(uint32(v6))
	v12 = bits.RotateLeft64(v12^v1, -32)
	v11 += v12 + 2*uint64(uint32(v11))*uint64(uint32(v12))
	v6 = bits.RotateLeft64(v6^v11, -24)
	v1 += v6 + 2*uint64(uint32(v1))*uint64(uint32(v6))
	v12 = bits.RotateLeft64(v12^v1, -16)
	v11 += v12 + 2*uint64(uint32(v11))*uint64(uint32(v12))
	v6 = bits.RotateLeft64(v6^v11, -63)
	v2 += v7 + 2*uint64(uint32(v2))*uint64(uint32(v7))
	v13 = bits.RotateLeft64(v13^v2, -32)
	v8 += v13 + 2*uint64(uint32(v8))*uint64(uint32(v13))
	v7 = bits.RotateLeft64(v7^v8, -24)
	v2 += v7 + 2*uint64(uint32(v2))*uint64(uint32(v7))
	v13 = bits.RotateLeft64(v13^v2, -16)
	v8 += v13 + 2*uint64(uint32(v8))*uint64(uint32(v13))
	v7 = bits.RotateLeft64(v7^v8, -63)
	v3 += v4 + 2*uint64(uint32(v3))*uint64(uint32(v4))
	v14 = bits.RotateLeft64(v14^v3, -32)
	v9 += v14 + 2*uint64(uint32(v9))*uint64(uint32(v14))
	v4 = bits.RotateLeft64(v4^v9, -24)
	v3 += v4 + 2*uint64(uint32(v3))*uint64(uint32(v4))
	v14 = bits.RotateLeft64(v14^v3, -16)
	v9 += v14 + 2*uint64(uint32(v9))*uint64(uint32(v14))
	v4 = bits.RotateLeft64(v4^v9, -63)
	s[0], s[1], s[2], s[3] = v0, v1, v2, v3
	s[4], s[5], s[6], s[7] = v4, v5, v6, v7
	s[8], s[9], s[10], s[11] = v8, v9, v10, v11
	s[12], s[13], s[14], s[15] = v12, v13, v14, v15
}

// argon2Column is P on a column of the block: the word pairs 0-1, 16-17,
// ..., 112-113 from s.
func argon2Column(s *[114]uint64) {
	v0, v1, v2, v3 := s[0], s[1], s[16], s[17]
	v4, v5, v6, v7 := s[32], s[33], s[48], s[49]
	v8, v9, v10, v11 := s[64], s[65], s[80], s[81]
	v12, v13, v14, v15 := s[96], s[97], s[112], s[113]
	v0 += v4 + 2*uint64(uint32(v0))*uint64(uint32(v4))
	v12 = bits.RotateLeft64(v12^v0, -32)
	v8 += v12 + 2*uint64(uint32(v8))*uint64(uint32(v12))
	v4 = bits.RotateLeft64(v4^v8, -24)
	v0 += v4 + 2*uint64(uint32(v0))*uint64(uint32(v4))
	v12 = bits.RotateLeft64(v12^v0, -16)
	v8 += v12 + 2*uint64(uint32(v8))*uint64(uint32(v12))
	v4 = bits.RotateLeft64(v4^v8, -63)
	v1 += v5 + 2*uint64(uint32(v1))*uint64(uint32(v5))
	v13 = bits.RotateLeft64(v13^v1, -32)
	v9 += v13 + 2*uint64(uint32(v9))*uint64(uint32(v13))
	v5 = bits.RotateLeft64(v5^v9, -24)
	v1 += v5 + 2*uint64(uint32(v1))*uint64(uint32(v5))
	v13 = bits.RotateLeft64(v13^v1, -16)
	v9 += v13 + 2*uint64(uint32(v9))*uint64(uint32(v13))
	v5 = bits.RotateLeft64(v5^v9, -63)
	v2 += v6 + 2*uint64(uint32(v2))*uint64(uint32(v6))
	v14 = bits.RotateLeft64(v14^v2, -32)
	v10 += v14 + 2*uint64(uint32(v10))*uint64(uint32(v14))
	v6 = bits.RotateLeft64(v6^v10, -24)
	v2 += v6 + 2*uint64(uint32(v2))*uint64(uint32(v6))
	v14 = bits.RotateLeft64(v14^v2, -16)
	v10 += v14 + 2*uint64(uint32(v10))*uint64(uint32(v14))
	v6 = bits.RotateLeft64(v6^v10, -63)
	v3 += v7 + 2*uint64(uint32(v3))*uint64(uint32(v7))
	v15 = bits.RotateLeft64(v15^v3, -32)
	v11 += v15 + 2*uint64(uint32(v11))*uint64(uint32(v15))
	v7 = bits.RotateLeft64(v7^v11, -24)
	v3 += v7 + 2*uint64(uint32(v3))*uint64(uint32(v7))
	v15 = bits.RotateLeft64(v15^v3, -16)
	v11 += v15 + 2*uint64(uint32(v11))*uint64(uint32(v15))
	v7 = bits.RotateLeft64(v7^v11, -63)
	v0 += v5 + 2*uint64(uint32(v0))*uint64(uint32(v5))
	v15 = bits.RotateLeft64(v15^v0, -32)
	v10 += v15 + 2*uint64(uint32(v10))*uint64(uint32(v15))
	v5 = bits.RotateLeft64(v5^v10, -24)
	v0 += v5 + 2*uint64(uint32(v0))*uint64(uint32(v5))
	v15 = bits.RotateLeft64(v15^v0, -16)
	v10 += v15 + 2*uint64(uint32(v10))*uint64(uint32(v15))
	v5 = bits.RotateLeft64(v5^v10, -63)
	v1 += v6 + 2*uint64(uint32(v1))*uint64(uint32(v6))
	v12 = bits.RotateLeft64(v12^v1, -32)
	v11 += v12 + 2*uint64(uint32(v11))*uint64(uint32(v12))
	v6 = bits.RotateLeft64(v6^v11, -24)
	v1 += v6 + 2*uint64(uint32(v1))*uint64(uint32(v6))
	v12 = bits.RotateLeft64(v12^v1, -16)
	v11 += v12 + 2*uint64(uint32(v11))*uint64(uint32(v12))
	v6 = bits.RotateLeft64(v6^v11, -63)
	v2 += v7 + 2*uint64(uint32(v2))*uint64(uint32(v7))
	v13 = bits.RotateLeft64(v13^v2, -32)
	v8 += v13 + 2*uint64(uint32(v8))*uint64(uint32(v13))
	v7 = bits.RotateLeft64(v7^v8, -24)
	v2 += v7 + 2*uint64(uint32(v2))*uint64(uint32(v7))
	v13 = bits.RotateLeft64(v13^v2, -16)
	v8 += v13 + 2*uint64(uint32(v8))*uint64(uint32(v13))
	v7 = bits.RotateLeft64(v7^v8, -63)
	v3 += v4 + 2*uint64(uint32(v3))*uint64(uint32(v4))
	v14 = bits.RotateLeft64(v14^v3, -32)
	v9 += v14 + 2*uint64(uint32(v9))*uint64(uint32(v14))
	v4 = bits.RotateLeft64(v4^v9, -24)
	v3 += v4 + 2*uint64(uint32(v3))*uint64(uint32(v4))
	v14 = bits.RotateLeft64(v14^v3, -16)
	v9 += v14 + 2*uint64(uint32(v9))*uint64(uint32(v14))
	v4 = bits.RotateLeft64(v4^v9, -63)
	s[0], s[1], s[16], s[17] = v0, v1, v2, v3
	s[32], s[33], s[48], s[49] = v4, v5, v6, v7
	s[64], s[65], s[80], s[81] = v8, v9, v10, v11
	s[96], s[97], s[112], s[113] = v12, v13, v14, v15
}
