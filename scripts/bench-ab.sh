#!/usr/bin/env bash
# A/B of two egress-proxy binaries against going direct, in one run: the same
# SeaweedFS, rounds alternating direct, A, B (rotated) so that drift on this
# shared machine hits all three; per binary the median, its ratio to direct,
# B/A, and the proxies' CPU per request (or per GiB) from process accounting,
# steadier than the rates. For a change whose gain is smaller than the noise
# between two runs. A thin wrapper of `egress-bench ab` (docs/BENCHMARKS.md);
# extra arguments go to it.
#
#   BIN_A=/tmp/before BIN_B=/tmp/after scripts/bench-ab.sh          4 KiB GETs, 64 connections
#   LARGE=1 BIN_A=... BIN_B=... scripts/bench-ab.sh                 the 1 GiB GET instead
#   WORKERS_B=1 BIN_A=x BIN_B=x scripts/bench-ab.sh                 one binary, B with 1 worker thread
#   POLICIES_B=10x20 BIN_A=x BIN_B=x scripts/bench-ab.sh             one binary: A's principal has the built-in
#                                                                  `full`, B's ten policies of 20 statements
#                                                                  (scripts/policies-10x20.py); or a dir of *.json
#   ARGS_B="--archive s3://archive/bench --aws-endpoint {seaweed} --archive-retention-days 0 --archive-interval 1s" \
#     SETTLE_MS=1500 BIN_A=x BIN_B=x scripts/bench-ab.sh             one binary, B shipping its ledger to SeaweedFS
#                                                                  ({seaweed}: its plain S3 endpoint; the bucket is
#                                                                  created); ARGS_A likewise for A
#   ROUNDS=4 REQUESTS=20000   SHAPE=deployed (or tls-upstream)      LABEL_A=... LABEL_B=... (in the JSON)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy/target}"
. scripts/venv.sh
: "${BIN_A:?set BIN_A and BIN_B to two egress-proxy binaries (copies: cargo overwrites its own)}" "${BIN_B:?}"
cargo build --release -p egress-e2e --bin egress-bench
bench=$(mktemp -d)
trap 'rm -rf "$bench"' EXIT
cp "$CARGO_TARGET_DIR/release/egress-bench" "$bench/"
args=(--bin-a "$BIN_A" --bin-b "$BIN_B" --rounds "${ROUNDS:-4}" --shape "${SHAPE:-plain}")
if [ -n "${LARGE:-}" ]; then
  args+=(--workloads large --large-mib "${LARGE_MIB:-1024}")
else
  args+=(--workloads small --small-requests "${REQUESTS:-20000}")
fi
# WORKERS_A -> --workers-a, POLICIES_B -> --policies-b, ARGS_B -> --args-b, SETTLE_MS -> --settle-ms, ...
for var in WORKERS_A WORKERS_B POLICIES_A POLICIES_B ARGS_A ARGS_B LABEL_A LABEL_B SETTLE_MS; do
  if [ -n "${!var:-}" ]; then args+=("--$(echo "$var" | tr A-Z_ a-z-)" "${!var}"); fi
done
"$bench/egress-bench" ab "${args[@]}" "$@"
