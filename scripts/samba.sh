#!/usr/bin/env bash
# Prints the paths of Samba's samba and samba-tool (one a line) for the
# Active Directory provisioning tests, installing Debian's Samba AD DC
# packages with apt-get when missing and this runs as root. Exits non-zero
# when there is none and it cannot be installed; the AD tests then skip,
# saying so. The tests provision their own throwaway domain in a temporary
# directory and run it on the loopback interface (ports 389/636: Samba's
# LDAP ports are fixed); the Debian package's own server is not used.
# An install leaves no Samba service running or enabled (policy-rc.d while
# installing, then the services stopped, disabled and masked). With
# UIAS_REQUIRE_SAMBA=1 (CI: .ci/run, and scripts/test.sh when CI=true) the
# AD tests fail instead of skipping when Samba is missing or its ports are
# taken.
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
# Debian's postinst starts smbd/nmbd (and samba-ad-dc) on all interfaces
# and enables them at boot: a test run must not open network services on
# the machine (review sec30a L5). A policy-rc.d answering 101 keeps
# invoke-rc.d from starting them during the install (ours only when none is
# there, removed afterwards), and then the services are stopped, disabled
# and masked, in case the init system started them anyway.
policy=/usr/sbin/policy-rc.d
ours=""
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# scripts/samba.sh: no service starts while it installs Samba\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	ours=1
	trap 'rm -f "$policy"' EXIT
fi
# shellcheck disable=SC2086
{ apt-get install -y --no-install-recommends $pkgs >&2 ||
	{ apt-get update >&2 && apt-get install -y --no-install-recommends $pkgs >&2; }; } || {
	echo "samba.sh: installing Samba failed" >&2
	exit 1
}
services="smbd nmbd samba-ad-dc winbind"
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
	for svc in $services; do
		systemctl disable --now "$svc" >/dev/null 2>&1 || true
		systemctl mask "$svc" >/dev/null 2>&1 || true
	done
elif command -v update-rc.d >/dev/null; then
	for svc in $services; do
		[ -x "/etc/init.d/$svc" ] || continue
		"/etc/init.d/$svc" stop >/dev/null 2>&1 || true
		update-rc.d "$svc" disable >/dev/null 2>&1 || true
	done
fi
if [ -n "$ours" ]; then
	rm -f "$policy"
	trap - EXIT
fi
find_samba
