#!/usr/bin/env bash
# Runs go vet and every module's tests. Unless UIAS_NO_PG=1, starts a
# throwaway PostgreSQL (scripts/pg.sh installs it if missing) so the storage
# conformance suites also run against PostgreSQL, and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
MODULES=$(scripts/modules.sh) # from go.work

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

# In CI (CI=true, as CI services set it; .ci/run sets it too) the Active
# Directory provisioning tests fail rather than skip when Samba is missing
# or its ports are taken (services/sync/provision/ldap/ad_test.go);
# UIAS_REQUIRE_SAMBA=0 turns that off.
if [ "${CI:-}" = true ]; then
  export UIAS_REQUIRE_SAMBA=${UIAS_REQUIRE_SAMBA:-1}
fi

if [ "${UIAS_NO_PG:-}" != "1" ] && [ -z "${UIAS_TEST_PG_DSN:-}" ]; then
  PGDIR=$(mktemp -d /tmp/uias-pg.XXXXXX)
  trap 'scripts/pg.sh stop "$PGDIR" >/dev/null 2>&1 || true; rm -rf "$PGDIR"' EXIT
  UIAS_TEST_PG_DSN=$(scripts/pg.sh start "$PGDIR" | tail -n 1)
  export UIAS_TEST_PG_DSN
  echo "test.sh: PostgreSQL for tests at ${UIAS_TEST_PG_DSN}"
fi

status=0
# The Helm chart: helm lint, helm template and kubeconform -strict (tools
# installed into .bin by scripts/chart-tools.sh on the first run); the chart's
# Go tests run with cmd/uias below, with this helm (UIAS_HELM: they fail
# rather than skip when it is missing).
echo "== charts/uias"
scripts/chart-test.sh || status=1
export UIAS_HELM=$PWD/.bin/helm
for m in $MODULES; do
  echo "== $m"
  (cd "$m" && go vet ./... && go test -count=1 -timeout 15m ./...) || status=1
done
# The argon2id code has two builds (pure Go by default, libargon2 with
# LIBARGON2=1); the suite above ran one, so check the other one's hashes too:
# always the pure-Go one, the libargon2 one when this machine can build it
# (nothing is installed for it; scripts/install-libargon2.sh does, as root).
case " $GOFLAGS " in
*libargon2*)
  echo "== pkg/crypto (pure Go argon2id)"
  (cd pkg && export GOFLAGS=-buildvcs=false CGO_ENABLED=0 && go vet ./crypto && go test -count=1 ./crypto) || status=1
  ;;
*)
  if why=$(scripts/buildtags.sh --probe 2>&1); then
    echo "== pkg/crypto (libargon2 argon2id)"
    (cd pkg && export GOFLAGS="-buildvcs=false -tags=libargon2" CGO_ENABLED=1 &&
      go vet ./crypto && go test -count=1 ./crypto) || status=1
  else
    echo "== pkg/crypto (libargon2 argon2id): skipped: $why"
  fi
  ;;
esac
# A cipher machine (master keys in a PKCS#11 token) is in the opt-in pkcs11
# build (cgo); its tests run against SoftHSM2, which scripts/softhsm.sh
# installs (as root) when missing: pkg/crypto, the identity keys and ticket's with
# -tags pkcs11 when a C compiler is there and SoftHSM2 is or can be had.
cc=$(CGO_ENABLED=1 go env CC 2>/dev/null)
if ! command -v "${cc:-gcc}" >/dev/null; then
  echo "== pkcs11 (cipher machine): skipped: no C compiler (${cc:-gcc})"
elif ! why=$(scripts/softhsm.sh 2>&1 >/dev/null); then
  echo "== pkcs11 (cipher machine): skipped: $why"
  # In CI the cipher machine's tests must run, as the AD tests must.
  if [ "${CI:-}" = true ]; then echo "== pkcs11: CI=true: SoftHSM2 is required" >&2; status=1; fi
else
  echo "== pkg/crypto, services/identity, services/ticket, uias keys (pkcs11, SoftHSM2)"
  (export GOFLAGS="-buildvcs=false -tags=pkcs11" CGO_ENABLED=1 &&
    cd pkg && go vet ./crypto && go test -count=1 ./crypto &&
    (cd ../services/identity && go test -count=1 -run 'PKCS11|Key|Reencrypt|Rotation' .) &&
    (cd ../services/ticket && go test -count=1 -run 'PKCS11|CredentialSealer' ./component) &&
    cd ../cmd/uias && go test -count=1 ./internal/keyring) || status=1
fi
exit $status
