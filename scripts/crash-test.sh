#!/usr/bin/env bash
# Kills the proxy with SIGKILL at random moments while boto3 clients read and
# write through it, restarts it, and checks the ledger after every restart
# and at the end (tests/tests/e2e/crash.rs). The test suite runs 20 crashes.
#
#   scripts/crash-test.sh              1000 crashes
#   scripts/crash-test.sh 50           50 crashes
#   EGRESS_CRASH_SEED=123 scripts/crash-test.sh 50   repeat a run's timing
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy/target}"
. scripts/venv.sh
export EGRESS_CRASHES="${1:-1000}"
# The proxy (and the `ledger verify` after every restart, over a ledger that
# keeps growing) from a release build; the test harness stays in debug.
cargo build --release -p egress-proxy
export EGRESS_PROXY_BIN="$CARGO_TARGET_DIR/release/egress-proxy"
cargo test -p egress-e2e --test e2e crash:: -- --nocapture
