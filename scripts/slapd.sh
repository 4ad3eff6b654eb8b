#!/usr/bin/env bash
# Prints the path of OpenLDAP's slapd for the LDAP provisioning tests,
# installing Debian's slapd and ldap-utils with apt-get when missing and this
# runs as root. Exits non-zero when there is none and it cannot be
# installed; the LDAP tests then skip, saying so. The tests start their own
# slapd (a fresh configuration and database in a temporary directory, on a
# loopback port); the Debian package's own server is not used.
set -euo pipefail
find_slapd() {
	for p in /usr/sbin/slapd /usr/local/libexec/slapd "$(command -v slapd 2>/dev/null || true)"; do
		if [ -n "$p" ] && [ -x "$p" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}
if find_slapd; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
	echo "slapd.sh: slapd not found; install it (as root: apt-get install -y --no-install-recommends slapd ldap-utils)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# the package's post-install configures a server; it is not started here
{ apt-get install -y --no-install-recommends slapd ldap-utils >&2 ||
	{ apt-get update >&2 && apt-get install -y --no-install-recommends slapd ldap-utils >&2; }; } || {
	echo "slapd.sh: installing slapd failed" >&2
	exit 1
}
find_slapd
