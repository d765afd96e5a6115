#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ from their seeds, FUZZ_SECONDS each.
# Exits 1 if any target crashed (after running the others); the crashing
# input stays in fuzz/artifacts/<target>/. New corpus entries go to a scratch dir, never
# into fuzz/seeds. Prints one JSON object per target, then a summary.
#
#   scripts/fuzz.sh                              all targets, 600 s each
#   FUZZ_SECONDS=20 scripts/fuzz.sh sigv2 aws_chunked
#   FUZZ_CORPUS_DIR=~/corpus scripts/fuzz.sh     keep (and reuse) the grown corpus
#
# Needs the nightly toolchain. Uses `cargo +nightly fuzz` (installing
# cargo-fuzz into ~/.cache/egress-proxy/tools when missing); if that cannot
# be had, builds the targets with the sanitizer-coverage flags libfuzzer-sys
# needs and runs the binaries directly (FUZZ_PLAIN=1 forces that road).
set -euo pipefail
cd "$(dirname "$0")/.."
cache="${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy"
FUZZ_SECONDS="${FUZZ_SECONDS:-600}"
# Its own target dir: the fuzz build's flags differ from every other build's.
FUZZ_TARGET_DIR="${FUZZ_TARGET_DIR:-$cache/fuzz-target}"
triple=x86_64-unknown-linux-gnu
all_targets=(sigv4_header sigv2 aws_chunked ledger_line request_parse policy_parse access_log_line)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -d "fuzz/seeds/$t" ] || { echo "unknown fuzz target '$t' (have: ${all_targets[*]})" >&2; exit 64; }
done
rustup toolchain list | grep -q '^nightly' || { echo "needs the nightly toolchain: rustup toolchain install nightly" >&2; exit 69; }

# The fuzz crate is a workspace of its own (its lock file is not kept):
# start it from the main workspace's versions rather than the newest ones.
[ -f fuzz/Cargo.lock ] || cp Cargo.lock fuzz/Cargo.lock

work="$(mktemp -d)"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
corpus_root="$(realpath -m "${FUZZ_CORPUS_DIR:-$work/corpus}")"

export PATH="$cache/tools/bin:$PATH"
mode=cargo-fuzz
if [ "${FUZZ_PLAIN:-0}" = 1 ]; then
  mode=plain
elif ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "# cargo-fuzz missing: installing it into $cache/tools" >&2
  if ! CARGO_INSTALL_ROOT="$cache/tools" CARGO_TARGET_DIR="$cache/tools-target" \
    cargo install cargo-fuzz --locked >&2; then
    echo "# cargo-fuzz install failed: building the targets with plain cargo" >&2
    mode=plain
  fi
fi

# Both roads build with the libFuzzer coverage instrumentation and
# cfg(fuzzing); cargo-fuzz adds AddressSanitizer and debug assertions.
if [ "$mode" = cargo-fuzz ]; then
  (cd fuzz && cargo +nightly fuzz build --target-dir "$FUZZ_TARGET_DIR") >&2
else
  RUSTFLAGS="--cfg fuzzing -Cdebug-assertions -Coverflow-checks -Cpasses=sancov-module \
-Cllvm-args=-sanitizer-coverage-level=4 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
-Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares" \
    cargo +nightly build --manifest-path fuzz/Cargo.toml --release --target "$triple" \
    --target-dir "$FUZZ_TARGET_DIR" --bins >&2
fi
bin="$FUZZ_TARGET_DIR/$triple/release"

cd fuzz
failed=()
for t in "${targets[@]}"; do
  mkdir -p "$corpus_root/$t" "artifacts/$t"
  # libFuzzer adds new inputs to the first corpus dir only: the scratch one.
  flags=(-max_total_time="$FUZZ_SECONDS" -print_final_stats=1)
  if [ "$mode" = cargo-fuzz ]; then
    # cargo-fuzz puts crashing inputs into fuzz/artifacts/<target>/ itself.
    cmd=(cargo +nightly fuzz run --target-dir "$FUZZ_TARGET_DIR" "$t" "$corpus_root/$t" "seeds/$t" -- "${flags[@]}")
  else
    cmd=("$bin/$t" "$corpus_root/$t" "seeds/$t" -artifact_prefix="artifacts/$t/" "${flags[@]}")
  fi
  echo "# $t: ${cmd[*]}" >&2
  started=$(date +%s)
  status=0
  "${cmd[@]}" > "$work/$t.log" 2>&1 || status=$?
  seconds=$(($(date +%s) - started))
  # Figures from libFuzzer's own lines (absent if it died early).
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$t.log" | tail -1)
  cov=$(sed -n 's/.* cov: \([0-9]*\) .*/\1/p' "$work/$t.log" | tail -1)
  crash=$(sed -n 's/.*Test unit written to \([^ ]*\).*/\1/p' "$work/$t.log" | tail -1)
  [ -z "$crash" ] || crash=$(realpath -m --relative-to=.. "$crash")
  if [ "$status" -ne 0 ]; then
    failed+=("$t")
    tail -40 "$work/$t.log" >&2
  fi
  printf '{"target":"%s","ok":%s,"seconds":%s,"executions":%s,"coverage":%s,"corpus_files":%s,"crash_input":%s,"command":"cd fuzz && %s"}\n' \
    "$t" "$([ "$status" -eq 0 ] && echo true || echo false)" "$seconds" "${runs:-null}" "${cov:-null}" \
    "$(find "$corpus_root/$t" -type f | wc -l)" "$([ -n "$crash" ] && echo "\"$crash\"" || echo null)" "${cmd[*]}"
done
printf '{"mode":"%s","fuzz_seconds":%s,"targets":%s,"failed":%s}\n' "$mode" "$FUZZ_SECONDS" "${#targets[@]}" "${#failed[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found a crash in: ${failed[*]} (inputs in fuzz/artifacts/; replay: cd fuzz && cargo +nightly fuzz run TARGET artifacts/TARGET/crash-…)" >&2
  exit 1
fi
