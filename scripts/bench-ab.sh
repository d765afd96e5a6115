#!/usr/bin/env bash
# A/B of two egress-proxy binaries against going direct, in one run: the same
# local upstream (SeaweedFS), rounds alternating direct, A, B so that drift on
# this shared machine hits all three. Prints each round, then per binary the
# median and its ratio to direct. For a change whose gain is smaller than the
# noise between two bench.sh runs. Also the proxies' CPU per request (or per
# GiB) from process accounting (utime + stime in /proc/<pid>/stat), which is
# steadier than the rates on a shared machine.
#
#   BIN_A=/tmp/before BIN_B=/tmp/after scripts/bench-ab.sh          4 KiB GETs, 64 concurrent
#   LARGE=1 BIN_A=... BIN_B=... scripts/bench-ab.sh                 the 1 GiB GET instead
#   WORKERS_B=1 BIN_A=x BIN_B=x scripts/bench-ab.sh                 one binary, B with 1 worker thread
#   POLICIES_B=10x20 BIN_A=x BIN_B=x scripts/bench-ab.sh             one binary: A's principal has the built-in
#                                                                  `full`, B's ten policies of 20 statements
#                                                                  (scripts/policies-10x20.py); or a dir of *.json
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
  binary_var=BIN_$who workers_var=WORKERS_$who policies_var=POLICIES_$who
  policy_dir=${!policies_var:-}
  if [ "$policy_dir" = 10x20 ]; then
    policy_dir="$work/policies-$who"
    python3 scripts/policies-10x20.py "$policy_dir" bench
  fi
  if [ -n "${!workers_var:-}" ]; then
    EGRESS_WORKER_THREADS=${!workers_var} start_proxy "bench-$who" "${!binary_var}" "$work/data-$who" "$policy_dir"
  else
    start_proxy "bench-$who" "${!binary_var}" "$work/data-$who" "$policy_dir"
  fi
  printf -v "pid_$who" '%s' "$proxy_pid"
  printf -v "ep_$who" '%s' "$proxied"
  printf -v "key_$who" '%s' "$AK"
  printf -v "sec_$who" '%s' "$SK"
done
ep_D=$direct key_D=$UK sec_D=$US
# CPU time (utime + stime, clock ticks) a proxy has used so far; 0 for direct.
cpu_ticks() {
  local pid=pid_$1
  if [ "$1" = D ]; then echo 0; else awk '{print $14 + $15}' "/proc/${!pid}/stat"; fi
}
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
    before=$(cpu_ticks $who)
    run $who "${what[@]}" > "$work/$who-$round.json"
    echo $(( $(cpu_ticks $who) - before )) > "$work/$who-$round.cpu"
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print(sys.argv[2], round(j['req_per_s'] if j['requests'] > 1 else j['mb_per_s']), j['p50_ms'], j['p99_ms'])" "$work/$who-$round.json" "$who"
  done
done
python3 - "$work" "$ROUNDS" "$(getconf CLK_TCK)" <<'PY'
import json, sys, statistics as st
w, rounds, tick = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
cpu = lambda who, r: int(open(f"{w}/{who}-{r}.cpu").read()) / tick
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
    # The proxy's own CPU (process accounting), per unit of work.
    per = [cpu(who, r) / (j(who, r)["requests"] if j(who, r)["requests"] > 1 else j(who, r)["bytes"] / 2**30)
           for r in range(1, rounds + 1)]
    if j("D", 1)["requests"] > 1:
        out[who]["cpu_us_per_request"] = round(st.median(per) * 1e6, 1)
    else:
        out[who]["cpu_s_per_gib"] = round(st.median(per), 3)
print(json.dumps(out, indent=2))
PY
