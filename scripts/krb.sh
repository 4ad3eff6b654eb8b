#!/usr/bin/env bash
# A throwaway MIT Kerberos realm for the Kerberos (SPNEGO) sign-in tests.
#
#   scripts/krb.sh                 prints the path of krb5kdc, installing
#                                  Debian's krb5-kdc and krb5-admin-server
#                                  (kadmin.local) with apt-get when missing
#                                  and this runs as root; exits non-zero,
#                                  saying why, when there is none and it
#                                  cannot be installed (the tests then skip,
#                                  saying so).
#   scripts/krb.sh start DIR [NAME...]
#                                  creates a realm in DIR (its own krb5.conf,
#                                  kdc.conf, database and stash), starts a KDC
#                                  on a free loopback port (TCP and UDP), adds
#                                  the people NAME... (default: alice) with one
#                                  random password, HTTP/localhost and
#                                  HTTP/other.localhost with random keys, and
#                                  exports their keys to DIR/http.keytab and
#                                  DIR/other.keytab (mode 0600). Prints
#                                  KEY=value lines for the tests: REALM, KDC,
#                                  KRB5_CONFIG, KEYTAB, OTHER_KEYTAB, SPN,
#                                  OTHER_SPN, PASSWORD, PEOPLE.
#   scripts/krb.sh stop DIR        stops the KDC of DIR.
#
# The Debian package's own KDC (its service and /etc/krb5kdc) is not used;
# nothing outside DIR is written but the installed package.
set -euo pipefail

find_kdc() {
	for p in /usr/sbin/krb5kdc "$(command -v krb5kdc 2>/dev/null || true)"; do
		if [ -n "$p" ] && [ -x "$p" ] && [ -x "$(dirname "$p")/kadmin.local" ] && [ -x "$(dirname "$p")/kdb5_util" ]; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

install_kdc() {
	if find_kdc; then
		return 0
	fi
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
		echo "krb.sh: krb5kdc not found; install it (as root: apt-get install -y --no-install-recommends krb5-kdc krb5-admin-server)" >&2
		return 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# the packages' post-install asks nothing non-interactively and its own
	# KDC, without a database, does not start; it is not used here
	{ apt-get install -o DPkg::Lock::Timeout=300 -y --no-install-recommends krb5-kdc krb5-admin-server >&2 ||
		{ apt-get -o DPkg::Lock::Timeout=300 update >&2 && apt-get install -o DPkg::Lock::Timeout=300 -y --no-install-recommends krb5-kdc krb5-admin-server >&2; }; } || {
		echo "krb.sh: installing krb5-kdc failed" >&2
		return 1
	}
	find_kdc
}

# free_port prints a loopback port nothing listens on (TCP); the KDC's
# start is retried on another one should it be taken meanwhile.
free_port() {
	local p
	for _ in $(seq 1 50); do
		p=$((20000 + RANDOM % 30000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

start() {
	local dir=$1
	shift
	local people=("$@")
	if [ ${#people[@]} -eq 0 ]; then
		people=(alice)
	fi
	local kdc sbin
	kdc=$(install_kdc) || exit 1
	sbin=$(dirname "$kdc")
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local realm=UIAS.TEST
	local pw master
	pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
	master=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
	export KRB5_CONFIG="$dir/krb5.conf" KRB5_KDC_PROFILE="$dir/kdc.conf"
	local port log=$dir/kdc.log
	for attempt in 1 2 3 4 5; do
		port=$(free_port) || {
			echo "krb.sh: no free loopback port" >&2
			exit 1
		}
		cat >"$dir/krb5.conf" <<EOF
[libdefaults]
	default_realm = $realm
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	udp_preference_limit = 1
	default_tkt_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	default_tgs_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96
	permitted_enctypes = aes256-cts-hmac-sha1-96 aes128-cts-hmac-sha1-96

[realms]
	$realm = {
		kdc = 127.0.0.1:$port
		admin_server = 127.0.0.1:1
	}

[domain_realm]
	localhost = $realm
	.localhost = $realm
EOF
		cat >"$dir/kdc.conf" <<EOF
[kdcdefaults]
	kdc_listen = 127.0.0.1:$port
	kdc_tcp_listen = 127.0.0.1:$port

[realms]
	$realm = {
		database_name = $dir/principal
		key_stash_file = $dir/stash
		acl_file = $dir/kadm5.acl
		supported_enctypes = aes256-cts-hmac-sha1-96:normal aes128-cts-hmac-sha1-96:normal
		max_life = 10h
		max_renewable_life = 1d
	}

[logging]
	kdc = FILE:$log
EOF
		: >"$dir/kadm5.acl"
		if [ ! -e "$dir/principal" ]; then
			"$sbin/kdb5_util" -r "$realm" -P "$master" create -s >/dev/null 2>&1 || {
				echo "krb.sh: kdb5_util create failed" >&2
				exit 1
			}
			for n in "${people[@]}"; do
				"$sbin/kadmin.local" -r "$realm" -q "addprinc -pw $pw $n" >/dev/null 2>&1
			done
			"$sbin/kadmin.local" -r "$realm" -q "addprinc -randkey HTTP/localhost" >/dev/null 2>&1
			"$sbin/kadmin.local" -r "$realm" -q "addprinc -randkey HTTP/other.localhost" >/dev/null 2>&1
			"$sbin/kadmin.local" -r "$realm" -q "ktadd -k $dir/http.keytab HTTP/localhost" >/dev/null 2>&1
			"$sbin/kadmin.local" -r "$realm" -q "ktadd -k $dir/other.keytab HTTP/other.localhost" >/dev/null 2>&1
			chmod 600 "$dir/http.keytab" "$dir/other.keytab"
		fi
		"$kdc" -r "$realm" -P "$dir/kdc.pid" >>"$log" 2>&1 || true
		for _ in $(seq 1 50); do
			if [ -s "$dir/kdc.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
				echo "REALM=$realm"
				echo "KDC=127.0.0.1:$port"
				echo "KRB5_CONFIG=$dir/krb5.conf"
				echo "KEYTAB=$dir/http.keytab"
				echo "OTHER_KEYTAB=$dir/other.keytab"
				echo "SPN=HTTP/localhost@$realm"
				echo "OTHER_SPN=HTTP/other.localhost@$realm"
				echo "PASSWORD=$pw"
				echo "PEOPLE=${people[*]}"
				return 0
			fi
			sleep 0.1
		done
		stop "$dir" >/dev/null 2>&1 || true
		echo "krb.sh: the KDC did not start on port $port (attempt $attempt)" >&2
	done
	echo "krb.sh: the KDC did not start; see $log" >&2
	exit 1
}

stop() {
	local dir=$1
	if [ -s "$dir/kdc.pid" ]; then
		kill "$(cat "$dir/kdc.pid")" 2>/dev/null || true
		rm -f "$dir/kdc.pid"
	fi
}

case "${1:-}" in
"") install_kdc ;;
start)
	[ $# -ge 2 ] || {
		echo "usage: $0 start DIR [NAME...]" >&2
		exit 2
	}
	shift
	start "$@"
	;;
stop)
	[ $# -eq 2 ] || {
		echo "usage: $0 stop DIR" >&2
		exit 2
	}
	stop "$2"
	;;
*)
	echo "usage: $0 [start DIR [NAME...] | stop DIR]" >&2
	exit 2
	;;
esac
