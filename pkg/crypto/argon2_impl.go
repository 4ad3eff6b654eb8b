package crypto

import "sync"

// argon2Memory is the block memory of one argon2id computation, kept by a
// Hasher worker from one hash to the next so that a login allocates nothing
// big. Both builds hash in it (the pure-Go one in argon2_purego.go, the
// libargon2 one through libargon2's allocation callbacks). It is not safe
// for concurrent use; the zero value is ready.
type argon2Memory struct {
	buf []byte
	// yield makes a pure-Go hash in this memory give its processor (P) to
	// the goroutines waiting for one every few hundred microseconds
	// (runtime.Gosched), as a Hasher's workers do. Without it a hash holds
	// its P for its whole 20-50 ms but for the runtime's forced preemption
	// every 10 ms: with every P hashing, each step of every other call (a
	// gRPC read, a store read, the answer) waited up to 10 ms for one,
	// several times a login. The libargon2 build ignores it (C code holds
	// no P for long: the runtime hands it to others).
	yield bool
	// jobs hands work to the worker's own thread (HasherConfig.OwnThreads).
	jobs chan *job
	// meter times the hash running in this memory (Hasher.run).
	meter hashMeter
	// backToBack: the work running in this memory was queued and began
	// the moment the work before it ended (Hasher.observe).
	backToBack bool
}

// get returns n bytes, growing the memory only when it is too small. The
// contents are whatever the previous hash left: argon2 writes every block
// before reading it.
func (m *argon2Memory) get(n int) []byte {
	if cap(m.buf) < n {
		m.buf = make([]byte, n)
	}
	return m.buf[:n]
}

// RawArgon2id derives an argon2id key with the implementation this binary is
// built with (Argon2Implementation) and fresh memory.
func RawArgon2id(password, salt []byte, p Argon2Params) []byte {
	return argon2idKey(nil, password, salt, p)
}

// rawMemories are the memories RawArgon2idReusing hashes in: one per call
// running at once, kept for the next calls.
var rawMemories struct {
	sync.Mutex
	free []*argon2Memory
}

// RawArgon2idReusing is RawArgon2id in memory kept from one call to the
// next (one memory per call running at once), as a Hasher's worker hashes:
// the bare cost of one hash, nothing allocated, and the benchmark floor.
// The memories stay allocated once used; it is meant for benchmarks.
func RawArgon2idReusing(password, salt []byte, p Argon2Params) []byte {
	rawMemories.Lock()
	var m *argon2Memory
	if n := len(rawMemories.free); n > 0 {
		m = rawMemories.free[n-1]
		rawMemories.free = rawMemories.free[:n-1]
	} else {
		m = new(argon2Memory)
	}
	rawMemories.Unlock()
	key := argon2idKey(m, password, salt, p)
	rawMemories.Lock()
	rawMemories.free = append(rawMemories.free, m)
	rawMemories.Unlock()
	return key
}
