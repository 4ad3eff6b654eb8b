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
# the package's post-install configures a server and would start it on all
# interfaces (and hold 389, which the Samba AD tests need): a policy-rc.d
# answering 101 keeps invoke-rc.d from starting it (ours only when none is
# there, removed afterwards), then the service is stopped and disabled
# (review sec30a L5, as scripts/samba.sh)
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# scripts/slapd.sh: no service starts while it installs slapd\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	ours=1
	trap 'rm -f "$policy"' EXIT
fi
{ apt-get install -y --no-install-recommends slapd ldap-utils >&2 ||
	{ apt-get update >&2 && apt-get install -y --no-install-recommends slapd ldap-utils >&2; }; } || {
	echo "slapd.sh: installing slapd failed" >&2
	exit 1
}
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
	systemctl disable --now slapd >/dev/null 2>&1 || true
elif [ -x /etc/init.d/slapd ]; then
	/etc/init.d/slapd stop >/dev/null 2>&1 || true
	update-rc.d slapd disable >/dev/null 2>&1 || true
fi
if [ -n "$ours" ]; then
	rm -f "$policy"
	trap - EXIT
fi
find_slapd
