#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need
# (Python clients and the SeaweedFS S3 server into a venv under ~/.cache),
# builds the binaries, runs every test of the workspace.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -p egress-e2e   extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy/target}"
. scripts/venv.sh

cargo build --workspace --bins
cargo test --workspace "$@"
