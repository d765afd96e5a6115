#!/usr/bin/env bash
# A/B of two egress-proxy binaries against going direct, in one run: the same
# local upstream (SeaweedFS), rounds alternating direct, A, B so that drift on
# this shared machine hits all three. Prints each round, then per binary the
# median and its ratio to direct. For a change whose gain is smaller than the
# noise between two bench.sh runs.
#
#   BIN_A=/tmp/before BIN_B=/tmp/after scripts/bench-ab.sh          4 KiB GETs, 64 concurrent
#   LARGE=1 BIN_A=... BIN_B=... scripts/bench-ab.sh                 the 1 GiB GET instead
#   WORKERS_B=1 BIN_A=x BIN_B=x scripts/bench-ab.sh                 one binary, B with 1 worker thread
#   ROUNDS=4 REQUESTS=20000
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy/target}"
. scripts/venv.sh
: "${BIN_A:?set BIN_A and BIN_B to two egress-proxy binaries (copies: cargo overwrites its own)}" "${BIN_B:?}"
ROUNDS="${ROUNDS:-4}"
REQUESTS="${REQUESTS:-20000}"

. scripts/seaweed.sh
measure_upstream

# One proxy per binary, each with its own data dir; WORKERS_A / WORKERS_B
# become that proxy's EGRESS_WORKER_THREADS.
for who in A B; do
  binary_var=BIN_$who workers_var=WORKERS_$who
  if [ -n "${!workers_var:-}" ]; then
    EGRESS_WORKER_THREADS=${!workers_var} start_proxy "bench-$who" "${!binary_var}" "$work/data-$who"
  else
    start_proxy "bench-$who" "${!binary_var}" "$work/data-$who"
  fi
  printf -v "ep_$who" '%s' "$proxied"
  printf -v "key_$who" '%s' "$AK"
  printf -v "sec_$who" '%s' "$SK"
done
ep_D=$direct key_D=$UK sec_D=$US
run() {
  local ep=ep_$1 key=key_$1 sec=sec_$1; shift
  "$bin/egress-bench" --endpoint "${!ep}" --access-key "${!key}" --secret-key "${!sec}" "$@"
}
for _ in $(seq 100); do run D --bucket bench --key probe put --size 1 >/dev/null 2>&1 && break; sleep 0.2; done
for who in A B; do
  for _ in $(seq 100); do run $who --bucket bench --key probe get >/dev/null 2>&1 && break; sleep 0.2; done
done
if [ -n "${LARGE:-}" ]; then
  run D --bucket bench --key large put --size $((1024 << 20)) >/dev/null
  what=(--bucket bench --key large get)
else
  run D --bucket bench --key small put --size 4096 >/dev/null
  what=(--bucket bench --key small get --concurrency 64 --requests "$REQUESTS")
fi
echo "# warm-up"
for who in D A B; do run $who "${what[@]}" >/dev/null; done
echo "# $ROUNDS rounds of: direct, A, B"
for round in $(seq "$ROUNDS"); do
  for who in D A B; do
    run $who "${what[@]}" > "$work/$who-$round.json"
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(sys.argv[2], round(j['req_per_s'] if j['requests'] > 1 else j['mb_per_s']), j['p50_ms'], j['p99_ms'])" "$work/$who-$round.json" "$who"
  done
done
python3 - "$work" "$ROUNDS" <<'PY'
import json, sys, statistics as st
w, rounds = sys.argv[1], int(sys.argv[2])
j = lambda who, r: json.load(open(f"{w}/{who}-{r}.json"))
rate = lambda d: d["req_per_s"] if d["requests"] > 1 else d["mb_per_s"]
med = lambda who, f: st.median(f(j(who, r)) for r in range(1, rounds + 1))
direct, p99_direct = med("D", rate), med("D", lambda d: d["p99_ms"])
out = {"unit": "req/s" if j("D", 1)["requests"] > 1 else "MB/s", "direct": round(direct, 1)}
for who in "AB":
    out[who] = {
        "median": round(med(who, rate), 1),
        "ratio": round(med(who, rate) / direct, 3),
        "per_round_ratio": [round(rate(j(who, r)) / rate(j("D", r)), 3) for r in range(1, rounds + 1)],
        "p99_added_ms": round(med(who, lambda d: d["p99_ms"]) - p99_direct, 2),
    }
print(json.dumps(out, indent=2))
PY
