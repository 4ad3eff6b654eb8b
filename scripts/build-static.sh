#!/usr/bin/env bash
# Builds the uias binary of the container image: argon2id in libargon2 (cgo,
# -tags libargon2), linked fully statically (glibc too, with the pure-Go DNS
# resolver and user lookup: netgo, osusergo), so it runs in an image with no
# libc at all (distroless static or scratch). deploy/Dockerfile runs it, and
# cmd/uias TestStaticImageBinary checks that what it builds has no ELF
# interpreter and no shared-library dependency.
#
#   scripts/build-static.sh OUT [VERSION]
#
# Needs a C compiler, glibc's static libraries (libc6-dev) and libargon2-dev
# (scripts/install-libargon2.sh); scripts/buildtags.sh says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/build-static.sh OUT [VERSION]}
version=${2:-dev}
if ! LIBARGON2=1 scripts/buildtags.sh >/dev/null; then
	exit 1
fi
export CGO_ENABLED=1 GOFLAGS=-buildvcs=false
go build -trimpath -tags libargon2,netgo,osusergo \
	-ldflags "-s -w -X main.version=${version} -linkmode=external -extldflags=-static" \
	-o "$out" ./cmd/uias
