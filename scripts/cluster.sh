#!/usr/bin/env bash
# A local UIAS cluster in microservices mode, as processes on this machine:
# one etcd, a 3-node NATS cluster with JetStream, a throwaway PostgreSQL
# (scripts/pg.sh), and N replicas of every component (`uias serve
# --target=<name>`), the gateways in front. Loopback only, no TLS: for
# development and the failure tests (make chaos), not for production.
#
#   scripts/cluster.sh up [N]      build what is missing, start everything (N replicas each, default 2)
#   scripts/cluster.sh status      each process: running or not, ready or not
#   scripts/cluster.sh down        stop everything (--purge: and delete the cluster's directory)
#   scripts/cluster.sh stop NAME   SIGTERM one process and wait for it (e.g. identity-1, nats-2, etcd, pg)
#   scripts/cluster.sh kill NAME   SIGKILL one process
#   scripts/cluster.sh start NAME  start one process again, as `up` started it
#   scripts/cluster.sh env         print the settings a client needs (gateway URLs, admin password, ...)
#
# Environment: UIAS_CLUSTER_DIR (default /tmp/uias-cluster), UIAS_CLUSTER_PORT
# (first port of the range it uses, default 17000), UIAS_CLUSTER_LEASE_TTL
# (etcd lease TTL of the registrations, default 5 s), UIAS_TOOLS_BIN (where
# the etcd and nats-server binaries are built once, default
# ~/.cache/uias/bin), UIAS_BOOTSTRAP_PASSWORD (default: generated, see env).
# etcd and nats-server are built from the Go module proxy (etcd server
# v3.7.3, nats-server v2.15.2), like scripts/bench.sh does.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dir=${UIAS_CLUSTER_DIR:-/tmp/uias-cluster}
base=${UIAS_CLUSTER_PORT:-17000}
tools=${UIAS_TOOLS_BIN:-$HOME/.cache/uias/bin}
ttl=${UIAS_CLUSTER_LEASE_TTL:-5}

log() { echo "cluster.sh: $*" >&2; }
die() {
	echo "cluster.sh: error: $*" >&2
	exit 1
}

# Ports: etcd base+79 (client) base+80 (peer); NATS node i: base+421+i
# (client), base+521+i (route), base+621+i (monitor); PostgreSQL base+432;
# component c (0-based, registry order), replica r (1-based): gRPC
# base+100+10c+r, HTTP base+200+10c+r.
etcd_port=$((base + 79))
pg_port=$((base + 432))
nats_url() {
	local i urls=()
	for i in 1 2 3; do urls+=("nats://127.0.0.1:$((base + 421 + i))"); done
	local IFS=,
	echo "${urls[*]}"
}

# build_tool NAME MODULE VERSION PKG: go build PKG of MODULE@VERSION into
# $tools/NAME, in a module of its own (the workspace stays as it is), once.
build_tool() {
	local name=$1 mod=$2 ver=$3 pkg=$4
	[[ -x $tools/$name ]] && return
	log "building $name from $mod $ver (once, into $tools)"
	mkdir -p "$tools"
	local b
	b=$(mktemp -d)
	printf 'module uias.local/cluster-%s\n\ngo 1.26\n\nrequire %s %s\n' "$name" "$mod" "$ver" >"$b/go.mod"
	(cd "$b" && GOWORK=off GOFLAGS="-buildvcs=false -mod=mod" CGO_ENABLED=0 go build -o "$tools/$name.tmp" "$pkg")
	mv "$tools/$name.tmp" "$tools/$name"
	rm -rf "$b"
}

# spawn NAME CMD...: start CMD in the background (its own session), with
# its output in log/NAME.log, and remember how to start it again.
spawn() {
	local name=$1
	shift
	mkdir -p "$dir/run" "$dir/log"
	printf '%q ' "$@" >"$dir/run/$name.cmd"
	start_saved "$name"
}

start_saved() {
	local name=$1
	[[ -f $dir/run/$name.cmd ]] || die "unknown process $name (see: $0 status)"
	if running "$name"; then
		log "$name already runs (pid $(cat "$dir/run/$name.pid"))"
		return
	fi
	# shellcheck disable=SC2046
	(
		set -a
		# shellcheck source=/dev/null
		[[ -f $dir/env ]] && . "$dir/env"
		set +a
		eval "exec setsid $(cat "$dir/run/$name.cmd")" >>"$dir/log/$name.log" 2>&1 </dev/null
	) &
	echo $! >"$dir/run/$name.pid"
}

running() {
	local f=$dir/run/$1.pid
	[[ -f $f ]] && kill -0 "$(cat "$f")" 2>/dev/null
}

# wait_for NAME WHAT CMD...: until CMD succeeds (at most 60 s).
wait_for() {
	local name=$1 what=$2
	shift 2
	local i
	for ((i = 0; i < 600; i++)); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		if [[ $name != - ]] && ! running "$name"; then
			tail -5 "$dir/log/$name.log" >&2 || true
			die "$name exited while waiting for $what"
		fi
		sleep 0.1
	done
	die "$what: not within 60 s (see $dir/log/$name.log)"
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }

# components lists the registered components in registry order, from the
# binary itself (its error message for an unknown target lists them).
components() {
	"$dir/bin/uias" serve --target=nosuchcomponent --etcd-endpoints=http://127.0.0.1:1 \
		--nats-url=nats://127.0.0.1:1 --grpc-addr=127.0.0.1:0 --http-addr= 2>&1 | sed -n 's/.*(known: all, \(.*\)).*/\1/p' | tr -d ' ' | tr ',' '\n'
}

cmd_up() {
	local n=${1:-2}
	[[ $n =~ ^[1-9]$ ]] || die "replicas: 1..9, got $n"
	if [[ -f $dir/run/etcd.cmd ]] && running etcd; then
		die "a cluster already runs in $dir ($0 status; $0 down first)"
	fi
	rm -rf "$dir/run" "$dir/data" "$dir/log"
	mkdir -p "$dir/bin" "$dir/run" "$dir/log"
	chmod 755 "$dir" # PostgreSQL runs as user postgres under it
	build_tool etcd go.etcd.io/etcd/server/v3 v3.7.3 go.etcd.io/etcd/server/v3
	build_tool nats-server github.com/nats-io/nats-server/v2 v2.15.2 github.com/nats-io/nats-server/v2
	log "building uias"
	(cd "$root" && GOFLAGS=-buildvcs=false go build -o "$dir/bin/uias" ./cmd/uias)

	log "etcd on 127.0.0.1:$etcd_port"
	spawn etcd "$tools/etcd" --name=uias-local --data-dir="$dir/data/etcd" \
		--listen-client-urls="http://127.0.0.1:$etcd_port" --advertise-client-urls="http://127.0.0.1:$etcd_port" \
		--listen-peer-urls="http://127.0.0.1:$((base + 80))" --initial-advertise-peer-urls="http://127.0.0.1:$((base + 80))" \
		--initial-cluster="uias-local=http://127.0.0.1:$((base + 80))" --log-level=warn
	echo "http://127.0.0.1:$etcd_port/health" >"$dir/run/etcd.health"

	log "NATS cluster (3 nodes, JetStream) on $(nats_url)"
	local i routes=()
	for i in 1 2 3; do routes+=("nats-route://127.0.0.1:$((base + 521 + i))"); done
	for i in 1 2 3; do
		mkdir -p "$dir/data/nats-$i"
		cat >"$dir/run/nats-$i.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:$((base + 421 + i))
http: 127.0.0.1:$((base + 621 + i))
jetstream { store_dir: "$dir/data/nats-$i", max_memory_store: 64MB, max_file_store: 1GB }
cluster {
  name: uias-local
  listen: 127.0.0.1:$((base + 521 + i))
  routes: [$(
			IFS=,
			echo "${routes[*]}"
		)]
}
EOF
		spawn "nats-$i" "$tools/nats-server" -c "$dir/run/nats-$i.conf"
		# Its health: 200 once JetStream is current on this node.
		echo "http://127.0.0.1:$((base + 621 + i))/healthz" >"$dir/run/nats-$i.health"
	done

	log "PostgreSQL on 127.0.0.1:$pg_port"
	local dsn
	dsn=$("$root/scripts/pg.sh" start "$dir/pg" "$pg_port" | tail -1)

	wait_for etcd "etcd to answer" curl -fsS --max-time 2 "http://127.0.0.1:$etcd_port/health"
	for i in 1 2 3; do
		wait_for "nats-$i" "NATS node $i to serve JetStream" http_ok "http://127.0.0.1:$((base + 621 + i))/healthz?js-enabled-only=true"
	done

	local pw=${UIAS_BOOTSTRAP_PASSWORD:-}
	if [[ -z $pw ]]; then
		pw="Local-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')!"
	fi
	[[ -f $dir/keyring.json ]] || "$dir/bin/uias" keys new --out "$dir/keyring.json" >/dev/null
	# Every process gets these (besides its own flags): one database, one
	# NATS cluster, one etcd, one key ring, one internal key.
	local ikey
	ikey=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
	umask 077
	cat >"$dir/env" <<EOF
UIAS_DB_DRIVER=postgres
UIAS_DB_DSN=$dsn
UIAS_NATS_URL=$(nats_url)
UIAS_ETCD_ENDPOINTS=http://127.0.0.1:$etcd_port
UIAS_ETCD_LEASE_TTL=$ttl
UIAS_ETCD_DIAL_TIMEOUT=2s
UIAS_KEYRING=$(base64 -w0 "$dir/keyring.json")
UIAS_INTERNAL_KEY=$ikey
UIAS_BOOTSTRAP_PASSWORD=$pw
UIAS_TICKET_KV_REPLICAS=3
UIAS_LOG_LEVEL=${UIAS_LOG_LEVEL:-warn}
EOF
	# Password hashing settings pass through (the failure tests make hashes
	# cheap so that their loads stay short).
	env | grep -E '^UIAS_(ARGON2_|HASH_|MAX_HASH_WAIT|POLICY_|LOGIN_THROTTLE_)' >>"$dir/env" || true
	umask 022
	log "JetStream streams with 3 replicas (uias nats setup)"
	(
		set -a
		. "$dir/env"
		set +a
		# A fresh 3-node cluster may still be electing its JetStream meta
		# leader: retry for up to a minute before giving up.
		for try in 1 2 3 4 5 6; do
			"$dir/bin/uias" nats setup --replicas 3 >&2 && exit 0
			echo "cluster.sh: nats setup failed (attempt $try), JetStream may still be electing a leader; retrying" >&2
			sleep 5
		done
		exit 1
	) || die "uias nats setup failed: see the lines above"

	local comps c r idx=0 edge=()
	mapfile -t comps < <(components)
	[[ ${#comps[@]} -gt 0 ]] || die "no components found in $dir/bin/uias"
	# identity first (its first replica bootstraps the database), then the
	# others, the gateway last.
	local order=() name
	for name in identity "${comps[@]}"; do
		[[ $name == gateway ]] && continue
		[[ " ${order[*]} " == *" $name "* ]] || order+=("$name")
	done
	order+=(gateway)
	for name in "${order[@]}"; do
		idx=0
		for c in "${comps[@]}"; do
			[[ $c == "$name" ]] && break
			idx=$((idx + 1))
		done
		for ((r = 1; r <= n; r++)); do
			local grpc=$((base + 100 + 10 * idx + r)) http=$((base + 200 + 10 * idx + r))
			local args=(serve --target="$name" --data-dir="$dir/data/$name-$r" --http-addr="127.0.0.1:$http")
			if [[ $name == gateway ]]; then
				args+=(--grpc-addr=)
				edge+=("http://127.0.0.1:$http")
			else
				args+=(--grpc-addr="127.0.0.1:$grpc")
				echo "127.0.0.1:$grpc" >"$dir/run/$name-$r.grpc"
			fi
			spawn "$name-$r" "$dir/bin/uias" "${args[@]}"
			echo "http://127.0.0.1:$http" >"$dir/run/$name-$r.http"
			if [[ $name == identity && $r == 1 ]]; then
				wait_for identity-1 "identity-1 to be ready" http_ok "http://127.0.0.1:$http/readyz"
			fi
		done
	done
	for name in "${order[@]}"; do
		for ((r = 1; r <= n; r++)); do
			wait_for "$name-$r" "$name-$r to be ready" http_ok "$(cat "$dir/run/$name-$r.http")/readyz"
		done
	done
	{
		echo "UIAS_CLUSTER_GATEWAYS=$(
			IFS=,
			echo "${edge[*]}"
		)"
		echo "UIAS_CLUSTER_REPLICAS=$n"
	} >>"$dir/env"
	log "up: ${order[*]} x $n; gateways ${edge[*]}"
	log "admin login \"admin\", password in $dir/env (UIAS_BOOTSTRAP_PASSWORD); logs in $dir/log"
}

names() {
	local f
	for f in "$dir"/run/*.cmd; do
		[[ -e $f ]] || continue
		basename "$f" .cmd
	done
}

cmd_status() {
	[[ -d $dir/run ]] || {
		echo "no cluster in $dir"
		return 1
	}
	local name st ready
	for name in $(names); do
		st=stopped
		running "$name" && st="running (pid $(cat "$dir/run/$name.pid"))"
		ready=""
		if [[ -f $dir/run/$name.http ]] && running "$name"; then
			if http_ok "$(cat "$dir/run/$name.http")/readyz"; then ready=", ready"; else ready=", NOT ready"; fi
		elif [[ -f $dir/run/$name.health ]] && running "$name"; then
			if http_ok "$(cat "$dir/run/$name.health")"; then ready=", healthy"; else ready=", NOT healthy"; fi
		fi
		printf '%-12s %s%s\n' "$name" "$st" "$ready"
	done
	if "$root/scripts/pg.sh" dsn "$dir/pg" >/dev/null 2>&1; then
		printf '%-12s %s\n' pg running
	else
		printf '%-12s %s\n' pg stopped
	fi
}

# stop_one NAME SIGNAL: signal the process and wait for it (SIGKILL after 20 s).
stop_one() {
	local name=$1 sig=$2
	if [[ $name == pg ]]; then
		if [[ $sig == KILL ]]; then
			pkill_pg KILL
		else
			"$root/scripts/pg.sh" stop "$dir/pg" >&2
		fi
		return
	fi
	[[ -f $dir/run/$name.cmd ]] || die "unknown process $name"
	running "$name" || return 0
	local pid i
	pid=$(cat "$dir/run/$name.pid")
	kill -"$sig" "$pid" 2>/dev/null || true
	for ((i = 0; i < 200; i++)); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	log "$name did not stop within 20 s: SIGKILL"
	kill -KILL "$pid" 2>/dev/null || true
}

# pkill_pg kills the postmaster of the cluster's PostgreSQL (by its pid file).
pkill_pg() {
	local pidf=$dir/pg/data/postmaster.pid
	[[ -f $pidf ]] && kill -"$1" "$(head -1 "$pidf")" 2>/dev/null || true
}

cmd_down() {
	local purge=${1:-}
	[[ -d $dir/run ]] || return 0
	local name
	# The edge first, infrastructure last.
	for name in $(names | grep '^gateway-' || true) $(names | grep -v -e '^gateway-' -e '^etcd$' -e '^nats-' || true) \
		$(names | grep -e '^nats-' || true) etcd; do
		[[ -f $dir/run/$name.cmd ]] && stop_one "$name" TERM
	done
	"$root/scripts/pg.sh" stop "$dir/pg" >&2 || true
	if [[ $purge == --purge ]]; then
		rm -rf "$dir"
		log "down; $dir deleted"
	else
		log "down (data and logs kept in $dir; --purge deletes them)"
	fi
}

case ${1:-} in
up) cmd_up "${2:-2}" ;;
status) cmd_status ;;
down) cmd_down "${2:-}" ;;
stop) stop_one "${2:?name}" TERM ;;
kill) stop_one "${2:?name}" KILL ;;
start)
	if [[ ${2:?name} == pg ]]; then
		"$root/scripts/pg.sh" start "$dir/pg" "$pg_port" >/dev/null
	else
		start_saved "$2"
	fi
	;;
env) cat "$dir/env" ;;
*)
	sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
	exit 2
	;;
esac
