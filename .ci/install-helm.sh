#!/usr/bin/env bash
# Installs helm, which the Helm chart's tests (deploy/helm) run: helm lint
# and helm template of deploy/helm/wharf. Built from source through the Go
# module proxy (helm.sh/helm/v3 is an ordinary Go module) and cached by
# version, so a second run does nothing. From a clean module and build
# cache it takes about 4 CPU-minutes (6 minutes on a busy 2-core machine).
#
# helm is a test tool here, run as a separate process: wharf never
# imports or ships it, and it stays out of go.mod.
#
# Prints the binary's path on stdout (progress goes to stderr), and links
# it as $cache/bin/helm, where the tests look when WHARF_HELM is unset.
set -euo pipefail

HELM_VERSION=v3.22.0

exec "$(dirname "$0")/go-install-tool.sh" helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
