#!/usr/bin/env bash
# Direct vs through the proxy, in one run, against the same local upstream
# (SeaweedFS), release build. Prints each measurement as JSON, then ratios.
#
#   scripts/bench.sh                      1 GiB GET, 4 KiB GETs at 64 concurrent, RSS over a 4 GiB GET
#   LARGE_MIB=256 HUGE_MIB=1024 SMALL_REQUESTS=5000 ROUNDS=3 scripts/bench.sh   smaller (5 rounds by default)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy/target}"
. scripts/venv.sh
LARGE_MIB="${LARGE_MIB:-1024}"
HUGE_MIB="${HUGE_MIB:-4096}"
SMALL_REQUESTS="${SMALL_REQUESTS:-20000}"

. scripts/seaweed.sh
measure_upstream

start_proxy bench

up() { "$bin/egress-bench" --endpoint "$direct" --access-key "$UK" --secret-key "$US" "$@"; }
via() { "$bin/egress-bench" --endpoint "$proxied" --access-key "$AK" --secret-key "$SK" "$@"; }
for _ in $(seq 100); do up --bucket bench --key probe put --size 1 >/dev/null 2>&1 && break; sleep 0.2; done

up --bucket bench --key large put --size $((LARGE_MIB << 20)) >/dev/null
up --bucket bench --key huge put --size $((HUGE_MIB << 20)) >/dev/null
up --bucket bench --key small put --size 4096 >/dev/null

# Runs alternate direct and proxy so that drift on this shared machine hits
# both; the summary takes the median of the rounds.
echo "# warm-up"
up --bucket bench --key small get --concurrency 64 --requests "$SMALL_REQUESTS" >/dev/null
via --bucket bench --key small get --concurrency 64 --requests "$SMALL_REQUESTS" >/dev/null
# The first read of the large object after the writes runs at half speed
# whichever way it goes.
up --bucket bench --key large get >/dev/null
via --bucket bench --key large get >/dev/null
echo "# large GET (${LARGE_MIB} MiB), direct then proxy, ${ROUNDS:=5} rounds"
for round in $(seq "$ROUNDS"); do
  up --bucket bench --key large get | tee "$work/large-direct-$round.json"
  via --bucket bench --key large get | tee "$work/large-proxy-$round.json"
done
echo "# small GETs (4 KiB, 64 concurrent, $SMALL_REQUESTS requests), direct then proxy, $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  up --bucket bench --key small get --concurrency 64 --requests "$SMALL_REQUESTS" | tee "$work/small-direct-$round.json"
  via --bucket bench --key small get --concurrency 64 --requests "$SMALL_REQUESTS" | tee "$work/small-proxy-$round.json"
done

echo "# proxy RSS while streaming ${HUGE_MIB} MiB"
rss_before=$(awk '/VmRSS/{print $2}' /proc/$proxy_pid/status)
via --bucket bench --key huge get | tee "$work/huge-proxy.json" &
getter=$!
peak=0
while kill -0 $getter 2>/dev/null; do
  rss=$(awk '/VmRSS/{print $2}' /proc/$proxy_pid/status)
  [ "$rss" -gt "$peak" ] && peak=$rss
  sleep 0.1
done
wait $getter
hwm=$(awk '/VmHWM/{print $2}' /proc/$proxy_pid/status)

python3 - "$work" "$ROUNDS" "$rss_before" "$peak" "$hwm" <<'PY'
import json, sys, statistics
w, rounds, before, peak, hwm = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
j = lambda n: json.load(open(f"{w}/{n}.json"))
med = lambda kind, who, field: statistics.median(j(f"{kind}-{who}-{r}")[field] for r in range(1, rounds + 1))
ld, lp = med("large", "direct", "mb_per_s"), med("large", "proxy", "mb_per_s")
sd, sp = med("small", "direct", "req_per_s"), med("small", "proxy", "req_per_s")
p99d, p99p = med("small", "direct", "p99_ms"), med("small", "proxy", "p99_ms")
print(json.dumps({
  "rounds": rounds,
  "large_get_mb_per_s_median": {"direct": round(ld, 1), "proxy": round(lp, 1), "ratio": round(lp / ld, 3)},
  "small_get_req_per_s_median": {"direct": round(sd), "proxy": round(sp), "ratio": round(sp / sd, 3)},
  "small_get_p50_ms_median": {"direct": round(med("small", "direct", "p50_ms"), 2), "proxy": round(med("small", "proxy", "p50_ms"), 2)},
  "small_get_p99_ms_median": {"direct": round(p99d, 2), "proxy": round(p99p, 2), "added": round(p99p - p99d, 2)},
  "proxy_rss_mib": {"idle": round(before / 1024, 1), "peak_while_streaming": round(peak / 1024, 1), "vm_hwm": round(hwm / 1024, 1)},
}, indent=2))
PY
"$bin/egress-proxy" ledger verify --data-dir "$work/data" || true
