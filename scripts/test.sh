#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need
# (Python clients and the SeaweedFS S3 server into a venv under ~/.cache),
# builds the binary, runs every test of the workspace.
#
#   scripts/test.sh                 everything
#   scripts/test.sh -p egress-e2e   extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

cache="${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target}"

# Python tools for the end-to-end tests, pinned, in a venv of their own.
venv="${EGRESS_TEST_VENV:-$cache/venv}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum tests/requirements.txt | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "test.sh: installing test tools into $venv" >&2
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian splits venv support out of python3.
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export EGRESS_TEST_VENV="$venv"

cargo build --workspace --bins
cargo test --workspace "$@"
