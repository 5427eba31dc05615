#!/bin/sh
# Build wharf's image with no base image: two static binaries built here
# (CGO_ENABLED=0), the wharf user's passwd/group, the image's config file and
# this host's CA bundle, put FROM scratch by deploy/Dockerfile.local.
#
#   deploy/docker/build-local.sh [TAG [DOCKER-BUILD-FLAGS...]]
#
# TAG defaults to wharf:local; further arguments go to docker build
# (e.g. --no-cache, --label k=v).
#
# Environment: GO (go), DOCKER (docker), VERSION (git describe),
# CA_BUNDLE (/etc/ssl/certs/ca-certificates.crt), GOARCH (this machine's).
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
tag=${1:-wharf:local}
[ $# -gt 0 ] && shift
GO=${GO:-go}
DOCKER=${DOCKER:-docker}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
VERSION=${VERSION:-$(git -C "$root" describe --tags --always --dirty 2>/dev/null || echo dev)}

if [ ! -r "$CA_BUNDLE" ]; then
	echo "build-local.sh: no CA bundle at $CA_BUNDLE (set CA_BUNDLE; Debian: apt-get install ca-certificates)" >&2
	exit 1
fi

ctx=$(mktemp -d "${TMPDIR:-/tmp}/wharf-image.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
trap 'exit 130' INT TERM

cd "$root"
CGO_ENABLED=0 GOOS=linux "$GO" build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$ctx/wharf" ./cmd/wharf
cp deploy/docker/passwd deploy/docker/group deploy/docker/config.yaml "$ctx/"
cp "$CA_BUNDLE" "$ctx/ca-certificates.crt"
# A Dockerfile outside the context is sent along with it by the CLI.
"$DOCKER" build --force-rm "$@" -f "$root/deploy/Dockerfile.local" -t "$tag" "$ctx"
