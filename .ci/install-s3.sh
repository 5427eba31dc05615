#!/usr/bin/env bash
# Installs the S3-compatible server that cache/s3's tests run against:
# MinIO, built from source through the Go module proxy (MinIO tags its
# releases outside semver, so a commit's pseudo-version pins it). The
# binary is cached by version, so a second run does nothing.
#
# MinIO is AGPL-3.0. It is a test tool here, run as a separate process:
# wharf never imports, links, vendors or ships it.
#
# Prints the binary's path on stdout (progress goes to stderr), and links
# it as $cache/bin/minio, where the tests look when WHARF_MINIO is unset.
set -euo pipefail

MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c

cache="${WHARF_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wharf}"
dir="$cache/minio-$MINIO_VERSION"
if [ ! -x "$dir/minio" ]; then
  echo "building MinIO $MINIO_VERSION (a few minutes on a fresh machine)" >&2
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.minio-build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # Outside any module, so that wharf's go.mod plays no part.
  (cd "$tmp" && GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS= go install "github.com/minio/minio@$MINIO_VERSION") >&2
  mkdir -p "$dir"
  mv "$tmp/minio" "$dir/minio" # same filesystem: the binary appears whole or not at all
fi
mkdir -p "$cache/bin"
ln -sfn "$dir/minio" "$cache/bin/minio"
echo "$dir/minio"
