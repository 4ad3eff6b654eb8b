#!/usr/bin/env bash
# Throwaway PostgreSQL 15 for tests.
#
#   scripts/pg.sh start DIR [PORT]   initdb (if needed) + start + create database uias_test;
#                                    prints the DSN as the last line on stdout
#   scripts/pg.sh stop DIR           stop the server started in DIR
#   scripts/pg.sh dsn DIR            print the DSN of a running server in DIR
#
# Both commands are idempotent: starting a running server just prints its DSN, stopping a
# stopped server is a no-op. Progress messages go to stderr, so
#   export UIAS_TEST_PG_DSN=$(scripts/pg.sh start /tmp/pgtest | tail -1)
# works. Must run as root (it installs packages and switches to the postgres user).
set -euo pipefail

PGBIN=/usr/lib/postgresql/15/bin
DBNAME=uias_test

log() { echo "pg.sh: $*" >&2; }
die() {
	echo "pg.sh: error: $*" >&2
	exit 1
}

usage() {
	cat >&2 <<EOF
usage: $0 start DIR [PORT]
       $0 stop DIR
       $0 dsn DIR
EOF
	exit 2
}

need_root() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (uses apt-get and runuser -u postgres)"
}

install_pg() {
	if [[ -x $PGBIN/initdb ]]; then
		return
	fi
	log "PostgreSQL 15 not found at $PGBIN; installing postgresql-15 with apt-get"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update >&2 || die "apt-get update failed"
	apt-get install -y --no-install-recommends postgresql-15 >&2 ||
		die "apt-get install postgresql-15 failed"
	[[ -x $PGBIN/initdb ]] || die "postgresql-15 installed but $PGBIN/initdb is still missing"
}

# port_in_use PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {
	local i p
	for i in $(seq 1 200); do
		p=$((20000 + RANDOM % 20000))
		if ! port_in_use "$p"; then
			echo "$p"
			return
		fi
	done
	die "could not find a free TCP port on 127.0.0.1"
}

as_pg() { runuser -u postgres -- "$@"; }

is_running() { [[ -f $1/data/PG_VERSION ]] && as_pg "$PGBIN/pg_ctl" -D "$1/data" status >/dev/null 2>&1; }

dsn() { echo "postgres://postgres@127.0.0.1:$1/$DBNAME?sslmode=disable"; }

# absdir DIR [create]: absolute path of DIR.
absdir() {
	if [[ ${2:-} == create ]]; then
		mkdir -p "$1" || die "cannot create directory $1"
	fi
	[[ -d $1 ]] || die "directory $1 does not exist"
	(cd "$1" && pwd)
}

cmd_start() {
	local dir=$1 port=${2:-}
	need_root
	install_pg
	local D
	D=$(absdir "$dir" create)
	chown postgres: "$D"
	as_pg test -w "$D" || die "user postgres cannot write to $D (check the permissions of its parent directories)"

	if is_running "$D"; then
		local running
		running=$(cat "$D/port" 2>/dev/null || true)
		[[ -n $running ]] || die "a server is running in $D but $D/port is missing; run '$0 stop $D' first"
		if [[ -n $port && $port != "$running" ]]; then
			die "a server is already running in $D on port $running (asked for $port); stop it first"
		fi
		log "already running in $D on port $running"
		port=$running
	else
		if [[ ! -f $D/data/PG_VERSION ]]; then
			log "initializing cluster in $D/data"
			rm -rf "$D/data"
			as_pg "$PGBIN/initdb" -D "$D/data" -U postgres -A trust --no-sync >"$D/initdb.log" 2>&1 ||
				die "initdb failed, see $D/initdb.log"
		fi
		if [[ -z $port ]]; then
			# Reuse the previous port of this cluster when it is free, else pick one.
			port=$(cat "$D/port" 2>/dev/null || true)
			if [[ ! $port =~ ^[0-9]+$ ]] || port_in_use "$port"; then
				port=$(pick_port)
			fi
		elif [[ ! $port =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then
			die "invalid port '$port'"
		elif port_in_use "$port"; then
			die "port $port on 127.0.0.1 is already in use"
		fi
		log "starting PostgreSQL on 127.0.0.1:$port (log: $D/postgres.log)"
		as_pg "$PGBIN/pg_ctl" -D "$D/data" -l "$D/postgres.log" -w -t 60 \
			-o "-c listen_addresses=127.0.0.1 -p $port -k $D -c fsync=off" start >&2 ||
			die "pg_ctl start failed, see $D/postgres.log"
		echo "$port" >"$D/port"
	fi

	local exists
	exists=$(as_pg "$PGBIN/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
		"SELECT 1 FROM pg_database WHERE datname = '$DBNAME'") ||
		die "cannot query the server on port $port"
	if [[ $exists != 1 ]]; then
		log "creating database $DBNAME"
		as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DBNAME" ||
			die "createdb $DBNAME failed"
	fi
	log "ready"
	dsn "$port"
}

cmd_stop() {
	local dir=$1
	need_root
	if [[ ! -d $dir ]]; then
		log "nothing to stop: $dir does not exist"
		return
	fi
	local D
	D=$(absdir "$dir")
	if [[ ! -x $PGBIN/pg_ctl ]] || ! is_running "$D"; then
		log "no server running in $D"
		return
	fi
	log "stopping PostgreSQL in $D"
	as_pg "$PGBIN/pg_ctl" -D "$D/data" -w -t 60 -m fast stop >&2 || die "pg_ctl stop failed"
	log "stopped"
}

cmd_dsn() {
	local D
	D=$(absdir "$1")
	is_running "$D" || die "no server running in $D"
	dsn "$(cat "$D/port")"
}

[[ $# -ge 1 ]] || usage
case $1 in
start)
	[[ $# -ge 2 && $# -le 3 ]] || usage
	cmd_start "$2" "${3:-}"
	;;
stop)
	[[ $# -eq 2 ]] || usage
	cmd_stop "$2"
	;;
dsn)
	[[ $# -eq 2 ]] || usage
	cmd_dsn "$2"
	;;
*) usage ;;
esac
