//go:build cgo && libargon2

package crypto

/*
#cgo LDFLAGS: -l:libargon2.a
#include <argon2.h>
#include <string.h>

// libargon2 clears its memory before freeing it unless this is 0.
extern int FLAG_clear_internal_memory;

// The memory of the current call on this thread, handed to libargon2 by
// uias_alloc instead of a fresh malloc.
static __thread uint8_t *uias_memory;
static __thread size_t uias_memory_len;

static int uias_alloc(uint8_t **memory, size_t n) {
	if (n > uias_memory_len) {
		return ARGON2_MEMORY_ALLOCATION_ERROR;
	}
	*memory = uias_memory;
	return ARGON2_OK;
}

static void uias_free(uint8_t *memory, size_t n) {}

static void uias_argon2_init(void) { FLAG_clear_internal_memory = 0; }

static int uias_argon2id(uint8_t *out, uint32_t outlen, const uint8_t *pwd, uint32_t pwdlen,
		const uint8_t *salt, uint32_t saltlen, uint32_t t_cost, uint32_t m_cost,
		uint32_t lanes, uint8_t *memory, size_t memory_len) {
	argon2_context ctx;
	memset(&ctx, 0, sizeof ctx);
	ctx.out = out;
	ctx.outlen = outlen;
	ctx.pwd = (uint8_t *)pwd;
	ctx.pwdlen = pwdlen;
	ctx.salt = (uint8_t *)salt;
	ctx.saltlen = saltlen;
	ctx.t_cost = t_cost;
	ctx.m_cost = m_cost;
	ctx.lanes = lanes;
	ctx.threads = lanes;
	ctx.version = ARGON2_VERSION_13;
	ctx.flags = ARGON2_DEFAULT_FLAGS;
	if (memory != NULL) {
		uias_memory = memory;
		uias_memory_len = memory_len;
		ctx.allocate_cbk = uias_alloc;
		ctx.free_cbk = uias_free;
	}
	int rc = argon2_ctx(&ctx, Argon2_id);
	uias_memory = NULL;
	return rc;
}
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// Argon2Implementation names the argon2id code this binary hashes with: this
// build links the C reference implementation (Debian's libargon2, statically).
const Argon2Implementation = "libargon2 (C reference implementation, cgo)"

// Argon2Cgo reports whether argon2id runs in C (the libargon2 build).
const Argon2Cgo = true

// argon2ReusesMemory: argon2idKey hashes in the argon2Memory it is given.
const argon2ReusesMemory = true

func init() {
	// Worker memory is reused and overwritten by the next hash; clearing
	// 19 MiB after every hash would double the memory traffic that bounds
	// argon2's speed. golang.org/x/crypto/argon2 does not clear either.
	C.uias_argon2_init()
}

// argon2idKey derives p.KeyLen bytes with libargon2. It runs in C, so the
// Go scheduler hands the goroutine's P to other goroutines while it hashes
// and request handling is not stuck behind a hash. With mem it hashes in
// mem's memory; without, libargon2 mallocs. mem is Go heap (pointer-free,
// so never scanned) rather than C memory on purpose: as live heap it keeps
// the GC's heap goal high, and a login storm's request garbage then triggers
// few collections (with C memory, refusals under overload were several times
// slower in some benchmark runs).
func argon2idKey(mem *argon2Memory, password, salt []byte, p Argon2Params) []byte {
	out := make([]byte, p.KeyLen)
	var blocks []byte
	if mem != nil {
		// libargon2 rounds m down to a multiple of 4 x lanes blocks of 1 KiB
		// (uias_alloc refuses a larger request rather than overrun).
		m := p.MemoryKiB / (4 * uint32(p.Threads)) * (4 * uint32(p.Threads))
		blocks = mem.get(int(m) * 1024)
	}
	rc := C.uias_argon2id(
		(*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(out))), C.uint32_t(len(out)),
		(*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(password))), C.uint32_t(len(password)),
		(*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(salt))), C.uint32_t(len(salt)),
		C.uint32_t(p.Time), C.uint32_t(p.MemoryKiB), C.uint32_t(p.Threads),
		(*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(blocks))), C.size_t(len(blocks)))
	if rc != C.ARGON2_OK {
		// Only invalid parameters fail, and callers validate them
		// (withDefaults, ParsePHC); x/crypto panics on them as well.
		panic(fmt.Sprintf("crypto: libargon2: %s", C.GoString(C.argon2_error_message(rc))))
	}
	return out
}
