#!/usr/bin/env bash
# make bench: build wharf, the distribution registry (from the Go module
# proxy, at the version go.mod names), the relay and the baseline, then run
# the harness, which writes docs/benchmarks.md and docs/benchmarks.svg.
#
# Environment (all optional):
#   BENCH_SCALE=full|quick   full (default, ~10-15 min): 3 rounds, 8 x 40 MiB image, 1 GiB blob
#                            quick (~2-3 min): 1 round, 4 x 16 MiB image, 256 MiB blob
#                            (the cluster scenarios add about a minute at quick scale, the WAN
#                            scenarios about 40 s at quick and 3 minutes at full scale)
#   BENCH_ROUNDS=N  BENCH_LAYERS=N  BENCH_LAYER_SIZE=40MiB  BENCH_BLOB_SIZE=1GiB
#   BENCH_RATE=200MiB        the link to the upstream
#   BENCH_UNTHROTTLED=0      skip the unthrottled repeat of the cold pulls
#   BENCH_PROFILE=1          also take CPU profiles of wharf (after the rounds)
#   BENCH_REV=HEAD           benchmark a committed revision instead of the working tree
#   BENCH_BASE_REV=REV       with BENCH_ONLY=cold or wan: wharf at REV too, beside wharf, in the same rounds
#   BENCH_ONLY=peer-hop|wan|cold  run one scenario alone (peer-hop needs the cluster's tools;
#                            cold: the plain link's cold pulls, 1 client and 8): its
#                            figures go to the log and bench/out/run.json, docs are not written
#   BENCH_WAN=0              skip the WAN scenarios (issue 14): direct, wharf and distribution
#                            over a link with a round-trip time and a rate per connection,
#                            pulling a 12-layer image of mixed sizes (full: 64,1,32,2,16,4,48,
#                            8,24,1,12,40 MiB = 252 MiB; quick: half) 3 layers at a time
#   BENCH_RTT=50ms           the WAN link's round-trip time (each way: half; a new connection: one)
#   BENCH_CONN_RATE=25MiB    the WAN link's rate per connection (BENCH_RATE stays the shared one)
#   BENCH_WAN_LAYERS=64MiB,1MiB,...  the WAN image's layer sizes
#   BENCH_CLUSTER=0          skip the cluster scenarios (3 replicas on MinIO behind HAProxy),
#                            which need HAProxy (apt-get install haproxy) and MinIO (built
#                            once by .ci/install-s3.sh into ~/.cache/wharf); also for a
#                            BENCH_REV from before the cluster section existed
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
BIN=bench/bin
mkdir -p "$BIN"

log() { printf '[bench] %s\n' "$*" >&2; }

# wharf, built as `make build` builds it.
ldflags="-s -w -X main.version=$(git describe --tags --always --dirty 2>/dev/null || echo dev)"
if [[ -n "${BENCH_REV:-}" ]]; then
	src=$(mktemp -d)
	trap 'rm -rf "$src"' EXIT
	log "building wharf at $BENCH_REV"
	git archive "$BENCH_REV" | tar -x -C "$src"
	ldflags="-s -w -X main.version=$(git describe --tags --always "$BENCH_REV")"
	(cd "$src" && CGO_ENABLED=0 $GO build -trimpath -ldflags "$ldflags" -o "$OLDPWD/$BIN/wharf" ./cmd/wharf)
else
	log "building wharf from the working tree"
	CGO_ENABLED=0 $GO build -trimpath -ldflags "$ldflags" -o "$BIN/wharf" ./cmd/wharf
fi

# BENCH_BASE_REV: wharf at that revision too, as bin/wharf-base, a third
# mirror in BENCH_ONLY=cold or wan (the way to show a change costs nothing).
if [[ -n "${BENCH_BASE_REV:-}" ]]; then
	BENCH_BASE_REV=$(git rev-parse --short "$BENCH_BASE_REV") # as the report names it
	bver=$(git describe --tags --always "$BENCH_BASE_REV")
	base=$(mktemp -d)
	log "building wharf at $BENCH_BASE_REV as wharf-base"
	git archive "$BENCH_BASE_REV" | tar -x -C "$base"
	(cd "$base" && CGO_ENABLED=0 $GO build -trimpath -ldflags "-s -w -X main.version=$bver" -o "$OLDPWD/$BIN/wharf-base" ./cmd/wharf) || { rm -rf "$base"; exit 1; }
	rm -rf "$base"
fi

# The distribution registry binary, as released: `go install pkg@version`
# builds it with its own go.mod, outside this module.
dver=$($GO list -m -f '{{.Version}}' github.com/distribution/distribution/v3)
if [[ ! -x "$BIN/registry-$dver" ]]; then
	log "building distribution $dver (first time only)"
	GOBIN="$PWD/$BIN/.install" $GO install "github.com/distribution/distribution/v3/cmd/registry@$dver"
	mv "$BIN/.install/registry" "$BIN/registry-$dver"
	rmdir "$BIN/.install"
fi
ln -sf "registry-$dver" "$BIN/registry"

log "building the relay, the baseline and the harness"
for cmd in relay baseline harness; do
	$GO build -o "$BIN/$cmd" "./bench/$cmd"
done

args=(--scale "${BENCH_SCALE:-full}" --bin "$BIN" --work bench/out --docs docs)

# The cluster's parts: MinIO as CI builds it, HAProxy from the system,
# and e2e's s3tool (minio-go) to make each cluster's bucket. Any missing:
# the run goes on without the cluster scenarios, and says so.
if [[ "${BENCH_CLUSTER:-1}" != 0 ]]; then
	haproxy=$(command -v haproxy || true)
	[[ -z "$haproxy" && -x /usr/sbin/haproxy ]] && haproxy=/usr/sbin/haproxy
	minio=${WHARF_MINIO:-}
	if [[ -z "$minio" ]]; then
		log "locating MinIO (.ci/install-s3.sh builds it the first time)"
		minio=$(.ci/install-s3.sh) || minio=""
	fi
	if [[ -z "$haproxy" ]]; then
		log "NO CLUSTER SCENARIOS: HAProxy is not installed (apt-get install haproxy); BENCH_CLUSTER=0 silences this"
	elif [[ -z "$minio" || ! -x "$minio" ]]; then
		log "NO CLUSTER SCENARIOS: MinIO could not be built or found (.ci/install-s3.sh, or set WHARF_MINIO)"
	else
		$GO build -o "$BIN/s3tool" ./e2e/testdata/s3tool
		args+=(--minio "$minio" --haproxy "$haproxy" --s3tool "$PWD/$BIN/s3tool")
		log "cluster scenarios: MinIO $minio, HAProxy $haproxy"
	fi
fi
command="make bench"
for v in BENCH_ONLY BENCH_SCALE BENCH_ROUNDS BENCH_LAYERS BENCH_LAYER_SIZE BENCH_BLOB_SIZE BENCH_RATE BENCH_UNTHROTTLED BENCH_PROFILE BENCH_REV BENCH_BASE_REV BENCH_CLUSTER \
	BENCH_WAN BENCH_RTT BENCH_CONN_RATE BENCH_WAN_LAYERS; do
	[[ -n "${!v:-}" ]] && command+=" $v=${!v}"
done
[[ -n "${BENCH_ROUNDS:-}" ]] && args+=(--rounds "$BENCH_ROUNDS")
[[ -n "${BENCH_LAYERS:-}" ]] && args+=(--layers "$BENCH_LAYERS")
[[ -n "${BENCH_LAYER_SIZE:-}" ]] && args+=(--layer-size "$BENCH_LAYER_SIZE")
[[ -n "${BENCH_BLOB_SIZE:-}" ]] && args+=(--blob-size "$BENCH_BLOB_SIZE")
[[ -n "${BENCH_RATE:-}" ]] && args+=(--rate "$BENCH_RATE")
[[ "${BENCH_UNTHROTTLED:-1}" == 0 ]] && args+=(--unthrottled=false)
[[ "${BENCH_PROFILE:-0}" == 1 ]] && args+=(--profile)
[[ -n "${BENCH_ONLY:-}" ]] && args+=(--only "$BENCH_ONLY")
[[ "${BENCH_WAN:-1}" == 0 ]] && args+=(--wan=false)
[[ -n "${BENCH_RTT:-}" ]] && args+=(--rtt "$BENCH_RTT")
[[ -n "${BENCH_CONN_RATE:-}" ]] && args+=(--conn-rate "$BENCH_CONN_RATE")
[[ -n "${BENCH_WAN_LAYERS:-}" ]] && args+=(--wan-layers "$BENCH_WAN_LAYERS")
[[ -n "${BENCH_BASE_REV:-}" ]] && args+=(--base "$BENCH_BASE_REV")
args+=(--command "$command")

log "running: $BIN/harness ${args[*]}"
exec "$BIN/harness" "${args[@]}"
