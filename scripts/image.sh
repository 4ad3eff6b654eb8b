#!/usr/bin/env bash
# Builds the container image from deploy/Dockerfile with the first container
# builder that works here: docker (with a reachable daemon), podman, or
# buildah. Where none works it says so and exits 1; nothing is installed.
#
#   scripts/image.sh [IMAGE]        default IMAGE: uias:<version>
#
# VERSION (default: git describe, else "dev"), REVISION (default: git HEAD)
# and SOURCE become the image's OCI labels and `uias version`.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=${VERSION:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
REVISION=${REVISION:-$(git rev-parse HEAD 2>/dev/null || echo unknown)}
SOURCE=${SOURCE:-https://github.com/uias/uias}
IMAGE=${1:-uias:${VERSION}}

builder=""
why=()
for b in docker podman buildah; do
	if ! command -v "$b" >/dev/null; then
		why+=("$b: not installed")
		continue
	fi
	case $b in
	docker) check=(docker info) ;;
	podman) check=(podman info) ;;
	buildah) check=(buildah version) ;;
	esac
	if out=$(timeout 20 "${check[@]}" 2>&1); then
		builder=$b
		break
	fi
	why+=("$b: installed but not usable ($(printf '%s' "$out" | grep -iE 'error|cannot|denied' | head -n 1))")
done
if [[ -z $builder ]]; then
	echo "image.sh: no container builder works on this machine, so no image was built:" >&2
	printf '  %s\n' "${why[@]}" >&2
	echo "Build deploy/Dockerfile where docker (with its daemon), podman or buildah runs; the static binary alone: scripts/build-static.sh bin/uias" >&2
	exit 1
fi

args=(-f deploy/Dockerfile --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION"
	--build-arg "SOURCE=$SOURCE" -t "$IMAGE" .)
echo "image.sh: building $IMAGE with $builder" >&2
case $builder in
docker) DOCKER_BUILDKIT=1 docker build "${args[@]}" ;;
podman) podman build "${args[@]}" ;;
buildah) buildah build "${args[@]}" ;;
esac
echo "image.sh: built $IMAGE" >&2
