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

exec "$(dirname "$0")/go-install-tool.sh" minio github.com/minio/minio "$MINIO_VERSION"
