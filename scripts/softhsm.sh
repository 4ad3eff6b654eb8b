#!/usr/bin/env bash
# Prints the path of SoftHSM2's PKCS#11 module (a software cipher machine)
# for the tests of the opt-in pkcs11 build (docs/operators.md, Key ring),
# installing Debian's softhsm2 with apt-get when missing and this runs as
# root. Exits non-zero when there is none and it cannot be installed; the
# tests then skip, saying so. The tests make their own token in a temporary
# directory (SOFTHSM2_CONF); the package's own token directory is not used.
set -euo pipefail
find_module() {
	for p in /usr/lib/softhsm/libsofthsm2.so /usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so \
		/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so /usr/local/lib/softhsm/libsofthsm2.so; do
		if [ -f "$p" ] && command -v softhsm2-util >/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}
if find_module; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
	echo "softhsm.sh: SoftHSM2 not found; install it (as root: apt-get install -y --no-install-recommends softhsm2)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
{ apt-get install -y --no-install-recommends softhsm2 >&2 ||
	{ apt-get update >&2 && apt-get install -y --no-install-recommends softhsm2 >&2; }; } || {
	echo "softhsm.sh: installing softhsm2 failed" >&2
	exit 1
}
find_module
