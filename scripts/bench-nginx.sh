#!/usr/bin/env bash
# Plain HTTP only: direct, nginx (Debian's), a bare TCP relay (egress-relay:
# threads copying bytes, the least any proxy does) and the proxy, to the same
# SeaweedFS, in one run with rounds alternating; release build. A thin wrapper
# of `egress-bench compare --shapes plain --relay` (docs/BENCHMARKS.md; for
# the TLS shapes, scripts/bench.sh). Extra arguments go to `egress-bench compare`.
#
#   scripts/bench-nginx.sh                                4 KiB GETs, 64 connections, 20,000 per run, 3 rounds
#   SMALL_REQUESTS=5000 ROUNDS=3 scripts/bench-nginx.sh   shorter
#   LARGE_MIB=1024 scripts/bench-nginx.sh                 one 1 GiB GET per run instead (MB/s)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy/target}"
. scripts/venv.sh
if ! command -v nginx >/dev/null; then
  echo "installing nginx (Debian)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
cargo build --release -p egress-proxy -p egress-e2e --bins
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cp "$CARGO_TARGET_DIR"/release/{egress-proxy,egress-bench,egress-relay} "$bin/"
label="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- proxy admin ledger access 2>/dev/null || echo +uncommitted)"
if [ -n "${LARGE_MIB:-}" ]; then
  workload=(--workloads large --large-mib "$LARGE_MIB")
else
  workload=(--workloads small --small-requests "${SMALL_REQUESTS:-20000}" --small-bytes "${SMALL_BYTES:-4096}"
    --connections "${CONCURRENCY:-64}")
fi
"$bin/egress-bench" compare --proxy-bin "$bin/egress-proxy" --proxy-label "$label" --shapes plain --relay \
  --rounds "${ROUNDS:-3}" "${workload[@]}" "$@"
