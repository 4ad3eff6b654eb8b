#!/usr/bin/env bash
# Prints the paths of Samba's samba and samba-tool (one a line) for the
# Active Directory provisioning tests, installing Debian's Samba AD DC
# packages with apt-get when missing and this runs as root. Exits non-zero
# when there is none and it cannot be installed; the AD tests then skip,
# saying so. The tests provision their own throwaway domain in a temporary
# directory and run it on the loopback interface (ports 389/636: Samba's
# LDAP ports are fixed); the Debian package's own server is not used.
set -euo pipefail
pkgs="samba samba-ad-provision samba-dsdb-modules samba-vfs-modules"
find_samba() {
	for d in /usr/sbin /usr/bin /usr/local/sbin /usr/local/bin; do
		if [ -x "$d/samba" ] && [ -x "$(command -v samba-tool 2>/dev/null || echo /usr/bin/samba-tool)" ] &&
			[ -d /usr/share/samba/setup/ad-schema ]; then
			echo "$d/samba"
			command -v samba-tool 2>/dev/null || echo /usr/bin/samba-tool
			return 0
		fi
	done
	return 1
}
if find_samba; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
	echo "samba.sh: Samba AD DC not found; install it (as root: apt-get install -y --no-install-recommends $pkgs)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
{ apt-get install -y --no-install-recommends $pkgs >&2 ||
	{ apt-get update >&2 && apt-get install -y --no-install-recommends $pkgs >&2; }; } || {
	echo "samba.sh: installing Samba failed" >&2
	exit 1
}
find_samba
