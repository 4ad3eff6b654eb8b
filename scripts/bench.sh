#!/usr/bin/env bash
# Runs `uias bench` (Authenticate, login burst and storm, cheap-RPC
# throughput/latency against floors measured in the same run, and the
# scheduling rows of a lone `uias serve --target=identity`) once per argon2id
# build and writes docs/benchmarks.md with a section for each: the default
# pure-Go build, then the libargon2 build when it can be made here
# (scripts/buildtags.sh --probe; nothing is installed; LIBARGON2=0 skips it).
# About 3 minutes per build on 2 CPUs, then `uias bench scale` (identity with
# 1 M people) once. Extra arguments are passed to every
# `uias bench`, e.g.
#   scripts/bench.sh --count 1 --duration 2s
#   BENCH_OUT=/tmp/b.md scripts/bench.sh --only echo,getuser
set -euo pipefail
cd "$(dirname "$0")/.."

out="${BENCH_OUT:-docs/benchmarks.md}"
bin=$(mktemp -d /tmp/uias-bench.XXXXXX)
trap 'rm -rf "$bin"' EXIT

# Build first so compilation does not overlap the measurements.
GOFLAGS=-buildvcs=false CGO_ENABLED=0 go build -o "$bin/uias" ./cmd/uias
builds=("$bin/uias")
if [[ ${LIBARGON2:-} == 0 ]]; then
	echo "bench.sh: LIBARGON2=0: measuring the pure-Go build only" >&2
elif why=$(scripts/buildtags.sh --probe 2>&1); then
	GOFLAGS="-buildvcs=false -tags=libargon2" CGO_ENABLED=1 go build -o "$bin/uias-libargon2" ./cmd/uias
	builds+=("$bin/uias-libargon2")
else
	echo "bench.sh: measuring the pure-Go build only: $why" >&2
fi
# The scheduling rows run `uias serve --target=identity`, which registers in
# etcd: an etcd built from the module version the end-to-end tests use, in a
# module of its own so that the workspace stays as it is.
mkdir "$bin/etcd-build"
printf 'module uias.local/bench-etcd\n\ngo 1.26\n\nrequire go.etcd.io/etcd/server/v3 v3.7.3\n' >"$bin/etcd-build/go.mod"
(cd "$bin/etcd-build" && GOWORK=off GOFLAGS="-buildvcs=false -mod=mod" CGO_ENABLED=0 go build -o "$bin/etcd" go.etcd.io/etcd/server/v3)

# The page is rewritten: keep the sections of other scale runs (make soak).
cp "$out" "$bin/earlier.md" 2>/dev/null || : >"$bin/earlier.md"
append=()
for uias in "${builds[@]}"; do
	"$uias" bench --count 3 --duration 3s --warmup 1s --slices 3 --concurrency 50 \
		--etcd-bin "$bin/etcd" --out "$out" "${append[@]}" "$@"
	append=(--append)
done
# Identity with 1 M generated people (listings, search, Authenticate while
# administrators search), pure-Go build; about 5 minutes on 2 CPUs.
"${builds[0]}" bench scale --people 1000000 --out "$out" --carry "$bin/earlier.md"
