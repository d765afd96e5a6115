#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need
# (Python clients and the SeaweedFS S3 server into a venv under ~/.cache),
# runs every test of the workspace (the end-to-end harness builds the
# binaries it runs), then the S3 client suites once more with the proxies
# reaching SeaweedFS over plain HTTP instead of HTTPS.
#
#   scripts/test.sh                              everything
#   scripts/test.sh -p egress-e2e --test e2e s3_boto3::   extra arguments go to `cargo test`
#   EGRESS_E2E_UPSTREAM=plain scripts/test.sh -p egress-e2e   the e2e suites over plain HTTP only
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy/target}"
. scripts/venv.sh

cargo test --workspace "$@"
if [ $# -eq 0 ]; then
  # The TLS-upstream run above is the shape AWS users run; this is the one
  # for MinIO, Ceph or SeaweedFS inside a network.
  EGRESS_E2E_UPSTREAM=plain cargo test -p egress-e2e --test e2e s3_
fi
