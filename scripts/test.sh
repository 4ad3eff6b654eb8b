#!/usr/bin/env bash
# Runs go vet and every module's tests. Unless UIAS_NO_PG=1, starts a
# throwaway PostgreSQL (scripts/pg.sh installs it if missing) so the storage
# conformance suites also run against PostgreSQL, and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
MODULES=$(scripts/modules.sh) # from go.work

# Build tags as the Makefile sets them when run without it (scripts/buildtags.sh).
if [ -z "${GOFLAGS:-}" ]; then
  tags=$(scripts/buildtags.sh)
  GOFLAGS="-buildvcs=false${tags:+ -tags=$tags}"
fi
export GOFLAGS

if [ "${UIAS_NO_PG:-}" != "1" ] && [ -z "${UIAS_TEST_PG_DSN:-}" ]; then
  PGDIR=$(mktemp -d /tmp/uias-pg.XXXXXX)
  trap 'scripts/pg.sh stop "$PGDIR" >/dev/null 2>&1 || true; rm -rf "$PGDIR"' EXIT
  UIAS_TEST_PG_DSN=$(scripts/pg.sh start "$PGDIR" | tail -n 1)
  export UIAS_TEST_PG_DSN
  echo "test.sh: PostgreSQL for tests at ${UIAS_TEST_PG_DSN}"
fi

status=0
for m in $MODULES; do
  echo "== $m"
  (cd "$m" && go vet ./... && go test -count=1 -timeout 15m ./...) || status=1
done
# The argon2id code has two builds (scripts/buildtags.sh); the suite above ran
# the one this machine builds, so check the other one's hashes too.
case " $GOFLAGS " in
*libargon2*)
  echo "== pkg/crypto (pure Go argon2id)"
  (cd pkg && GOFLAGS=-buildvcs=false go vet ./crypto && GOFLAGS=-buildvcs=false go test -count=1 ./crypto) || status=1
  ;;
*)
  if [ -f /usr/include/argon2.h ] && [ "$(go env CGO_ENABLED)" = 1 ]; then
    echo "== pkg/crypto (libargon2 argon2id)"
    (cd pkg && GOFLAGS="-buildvcs=false -tags=libargon2" go test -count=1 ./crypto) || status=1
  fi
  ;;
esac
exit $status
