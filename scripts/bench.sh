#!/usr/bin/env bash
# The benchmark of issue 16 (docs/BENCHMARKS.md): the proxy against nginx and
# against going direct to the same SeaweedFS, in three shapes (plain, TLS
# upstream, TLS both sides), one run with rounds alternating; release build.
# A thin wrapper of `egress-bench compare`: builds, copies the binaries out of
# the target dir (colleagues' builds replace them), runs. Progress and a table
# on stderr, the JSON on stdout; extra arguments go to `egress-bench compare`.
#
#   scripts/bench.sh                                   1 GiB GET, 4 KiB GETs at 64 connections, RSS over 4 GiB, 3 rounds
#   scripts/bench.sh --large-mib 64 --huge-mib 256 --small-requests 2000 --rounds 1     a smoke run (< 1 min)
#   scripts/bench.sh --shapes plain --no-nginx         the proxy against direct only
#   LARGE_MIB=256 HUGE_MIB=1024 SMALL_REQUESTS=5000 ROUNDS=5 scripts/bench.sh            the same through variables
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy/target}"
. scripts/venv.sh
cargo build --release -p egress-proxy -p egress-e2e --bins
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
cp "$CARGO_TARGET_DIR"/release/{egress-proxy,egress-bench,egress-relay} "$bin/"
label="$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- proxy admin ledger access 2>/dev/null || echo +uncommitted)"
"$bin/egress-bench" compare --proxy-bin "$bin/egress-proxy" --proxy-label "$label" \
  --large-mib "${LARGE_MIB:-1024}" --huge-mib "${HUGE_MIB:-4096}" \
  --small-requests "${SMALL_REQUESTS:-20000}" --rounds "${ROUNDS:-3}" "$@"
