#!/usr/bin/env bash
# Runs `uias bench` (Authenticate and cheap-RPC throughput/latency against
# floors measured in the same run) and writes docs/benchmarks.md. About 2.5
# minutes on 2 CPUs. Extra arguments are passed to `uias bench`, e.g.
#   scripts/bench.sh --count 1 --duration 2s
#   BENCH_OUT=/tmp/b.md scripts/bench.sh --only echo,getuser
set -euo pipefail
cd "$(dirname "$0")/.."
# Build as the Makefile does when run without it: pure Go with cgo off, or,
# with LIBARGON2=1, argon2id in libargon2 through cgo (scripts/buildtags.sh
# fails, saying what is missing, if that cannot be built here).
if [ -z "${GOFLAGS:-}" ]; then
  tags=$(scripts/buildtags.sh)
  GOFLAGS="-buildvcs=false${tags:+ -tags=$tags}"
  if [ -n "$tags" ]; then CGO_ENABLED=1; else CGO_ENABLED=0; fi
  export CGO_ENABLED
fi
export GOFLAGS

out="${BENCH_OUT:-docs/benchmarks.md}"
bin=$(mktemp -d /tmp/uias-bench.XXXXXX)
trap 'rm -rf "$bin"' EXIT
# Build first so compilation does not overlap the measurements.
go build -o "$bin/uias" ./cmd/uias
"$bin/uias" bench --count 3 --duration 3s --warmup 1s --slices 3 --concurrency 50 --out "$out" "$@"
