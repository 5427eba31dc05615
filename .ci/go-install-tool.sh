#!/usr/bin/env bash
# go-install-tool.sh NAME PACKAGE VERSION: builds a test tool from source
# through the Go module proxy (go install PACKAGE@VERSION) and caches the
# binary by version, so a second run does nothing. The install-*.sh
# scripts call it, one per tool, each saying why its tool is there.
#
# Prints the binary's path on stdout (progress goes to stderr), and links
# it as $cache/bin/NAME, where the tests look when their WHARF_* variable
# is unset.
set -euo pipefail

name="$1" pkg="$2" version="$3"

cache="${WHARF_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/wharf}"
dir="$cache/$name-$version"
if [ ! -x "$dir/$name" ]; then
  echo "building $name $version (minutes on a fresh machine)" >&2
  mkdir -p "$cache"
  tmp="$(mktemp -d "$cache/.$name-build.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  # Outside any module, so that wharf's go.mod plays no part.
  (cd "$tmp" && GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS= go install "$pkg@$version") >&2
  mkdir -p "$dir"
  mv "$tmp/$name" "$dir/$name" # same filesystem: the binary appears whole or not at all
fi
mkdir -p "$cache/bin"
ln -sfn "$dir/$name" "$cache/bin/$name"
echo "$dir/$name"
