#!/usr/bin/env bash
# Prints the Go build tags for this machine (the Makefile passes them to
# every go command through GOFLAGS):
#   libargon2  when cgo works and Debian's libargon2-dev is installed: argon2id
#              runs in the C reference library (faster, and a hash does not
#              hold a Go scheduler P; see docs/operators.md). As root, a
#              missing libargon2-dev is installed with apt-get.
# Nothing (the pure-Go golang.org/x/crypto/argon2 build) when UIAS_PURE_GO=1,
# when CGO_ENABLED=0, or when the library cannot be had; the reason goes to
# stderr. Both builds compute the same hashes.
set -uo pipefail

note() { echo "buildtags.sh: $*; building argon2id in pure Go" >&2; }

if [[ ${UIAS_PURE_GO:-} == 1 ]]; then
	exit 0
fi
if [[ $(go env CGO_ENABLED 2>/dev/null) != 1 ]]; then
	note "cgo is disabled"
	exit 0
fi
have() { [[ -f /usr/include/argon2.h ]] && ls /usr/lib/*/libargon2.a >/dev/null 2>&1; }
if ! have; then
	if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null; then
		note "libargon2-dev is not installed (apt-get install libargon2-dev as root)"
		exit 0
	fi
	echo "buildtags.sh: installing libargon2-dev with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	{ apt-get install -y --no-install-recommends libargon2-dev ||
		{ apt-get update && apt-get install -y --no-install-recommends libargon2-dev; }; } >&2
	if ! have; then
		note "installing libargon2-dev failed"
		exit 0
	fi
fi
echo libargon2
