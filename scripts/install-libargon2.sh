#!/usr/bin/env bash
# Installs Debian's libargon2-dev (the C reference argon2 library and header)
# for the opt-in libargon2 build (`make build LIBARGON2=1`; see
# docs/operators.md). Run it yourself, as root, on a build machine or in a
# container image's build stage; no make target runs it.
set -euo pipefail
cd "$(dirname "$0")/.."

if scripts/buildtags.sh --probe 2>/dev/null; then
	echo "install-libargon2.sh: libargon2-dev is already installed and builds"
	exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
	echo "install-libargon2.sh: must run as root (it runs apt-get install libargon2-dev)" >&2
	exit 1
fi
if ! command -v apt-get >/dev/null; then
	echo "install-libargon2.sh: apt-get not found; install the argon2 reference library (header argon2.h, static libargon2.a) with this system's package manager" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y --no-install-recommends libargon2-dev ||
	{ apt-get update && apt-get install -y --no-install-recommends libargon2-dev; }
if ! LIBARGON2=1 scripts/buildtags.sh >/dev/null; then
	exit 1
fi
echo "install-libargon2.sh: libargon2-dev installed; build with make build LIBARGON2=1"
