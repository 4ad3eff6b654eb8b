#!/usr/bin/env bash
# Prints the Go build tags of the build asked for (the Makefile passes them to
# every go command through GOFLAGS, with CGO_ENABLED=1 for libargon2 and 0
# otherwise). It never installs anything.
#
#   scripts/buildtags.sh           LIBARGON2 unset, empty or 0: prints nothing,
#                                  the pure-Go build (golang.org/x/crypto/argon2),
#                                  whatever this machine has installed.
#                                  LIBARGON2=1: prints "libargon2" (argon2id in
#                                  the C reference library through cgo), or fails
#                                  saying what is missing (a C compiler, or Debian's
#                                  libargon2-dev: scripts/install-libargon2.sh).
#   scripts/buildtags.sh --probe   exits 0, silently, when the libargon2 build
#                                  can be made on this machine; else prints why
#                                  on stderr and exits 1.
#
# Both builds compute the same hashes; see docs/operators.md.
set -uo pipefail

# why_not prints why the libargon2 build cannot be made here, or nothing.
why_not() {
	local cc
	cc=$(CGO_ENABLED=1 go env CC 2>/dev/null)
	cc=${cc:-gcc}
	if ! command -v "${cc%% *}" >/dev/null; then
		echo "the C compiler $cc is not installed"
		return
	fi
	# Compile and link what pkg/crypto's cgo file uses (same header, same
	# static library) with the compiler and flags cgo will use.
	local out cflags ldflags
	cflags=$(CGO_ENABLED=1 go env CGO_CPPFLAGS CGO_CFLAGS | tr '\n' ' ')
	ldflags=$(CGO_ENABLED=1 go env CGO_LDFLAGS)
	out=$(mktemp /tmp/uias-argon2-probe.XXXXXX)
	# shellcheck disable=SC2086 # cc and the flags are word lists
	if ! printf '#include <argon2.h>\nint main(void) { return argon2_type2string(Argon2_id, 0) == 0; }\n' |
		$cc $cflags -x c -o "$out" - $ldflags -l:libargon2.a >/dev/null 2>&1; then
		echo "libargon2-dev is not installed (argon2.h and libargon2.a not found by $cc); install it as root with scripts/install-libargon2.sh (apt-get install libargon2-dev)"
	fi
	rm -f "$out"
}

if [[ ${1:-} == --probe ]]; then
	reason=$(why_not)
	if [[ -n $reason ]]; then
		echo "$reason" >&2
		exit 1
	fi
	exit 0
fi

case ${LIBARGON2:-} in
"" | 0)
	exit 0
	;;
1)
	reason=$(why_not)
	if [[ -n $reason ]]; then
		echo "buildtags.sh: LIBARGON2=1 asks for argon2id in libargon2, but $reason. Build without LIBARGON2=1 for pure Go." >&2
		exit 1
	fi
	echo libargon2
	;;
*)
	echo "buildtags.sh: LIBARGON2 must be 1 (libargon2 build) or 0/empty (pure Go), not '$LIBARGON2'" >&2
	exit 1
	;;
esac
