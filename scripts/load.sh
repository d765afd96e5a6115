#!/usr/bin/env bash
# Soak test: CONNECTIONS keep-alive connections downloading through the proxy
# for DURATION_SECS against a local upstream (SeaweedFS), release build.
# Passes when no GET failed, the proxy's RSS stayed flat, it stopped cleanly,
# `ledger verify` passes, every start has an end, and the ledger holds as many
# complete GetObjects (and bytes) as the load tool counted. Prints the proxy's
# RSS and open fds every 10 s, then the figures as JSON.
#
#   scripts/load.sh                                   1,000 connections for 10 minutes
#   DURATION_SECS=60 CONNECTIONS=200 scripts/load.sh  shorter
#   SMALL_BYTES=4096 LARGE_BYTES=1048576 LARGE_EVERY=8  the mix: 1 GET in 8 is the large object
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy/target}"
. scripts/venv.sh
DURATION_SECS="${DURATION_SECS:-600}"
CONNECTIONS="${CONNECTIONS:-1000}"
SMALL_BYTES="${SMALL_BYTES:-4096}"
LARGE_BYTES="${LARGE_BYTES:-1048576}"
LARGE_EVERY="${LARGE_EVERY:-8}"
SAMPLE_SECS="${SAMPLE_SECS:-10}"

# Every connection is a socket at the load tool, two at the proxy (client
# and upstream side) and one at SeaweedFS, and the proxy keeps idle upstream
# connections besides; the shell's limit is inherited.
want_fds=$((CONNECTIONS * 4 + 1024))
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt "$want_fds" ]; then
  ulimit -n "$want_fds" 2>/dev/null || {
    echo "open-file limit $(ulimit -n) is too low for $CONNECTIONS connections (need $want_fds; hard limit $(ulimit -Hn))" >&2
    exit 69
  }
fi

. scripts/seaweed.sh
measure_upstream
start_proxy load

up() { "$bin/egress-bench" --endpoint "$direct" --access-key "$UK" --secret-key "$US" --bucket load "$@"; }
for _ in $(seq 100); do up --key probe put --size 1 >/dev/null 2>&1 && break; sleep 0.2; done
up --key small put --size "$SMALL_BYTES" >/dev/null
up --key large put --size "$LARGE_BYTES" >/dev/null
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
keys=$(python3 -c "print(','.join(['small'] * ($LARGE_EVERY - 1) + ['large']))")

# Only the load run goes through the proxy: the ledger must hold exactly its GETs.
load_cmd=("$bin/egress-bench" --endpoint "http://127.0.0.1:$pport" --access-key "$AK" --secret-key "$SK"
  --bucket load --key small get --connections "$CONNECTIONS" --duration-secs "$DURATION_SECS"
  --keys "$keys" --progress-secs "$SAMPLE_SECS")
echo "# ${load_cmd[*]}" | sed "s/$SK/\$SECRET/; s/$AK/\$ACCESS_KEY/"
# One row: phase, seconds, proxy RSS (KiB), its open fds, its threads, and
# the GETs done so far (the load tool's last progress line).
sample() {
  local rss fds threads gets
  rss=$(awk '/VmRSS/{print $2}' "/proc/$proxy_pid/status")
  threads=$(awk '/Threads/{print $2}' "/proc/$proxy_pid/status")
  fds=$(find "/proc/$proxy_pid/fd" -mindepth 1 -maxdepth 1 | wc -l)
  gets=$({ grep '^{' "$work/progress.log" 2>/dev/null || true; } | tail -1 | python3 -c 'import json,sys; l=sys.stdin.read(); print(json.loads(l)["requests"] if l else 0)')
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$(($(date +%s) - t0))" "$rss" "$fds" "$threads" "$gets" | tee -a "$work/samples.tsv" |
    awk -F'\t' '{printf "%-6s %5ss  rss %7.1f MiB  fds %5d  threads %3d  gets %9d\n", $1, $2, $3 / 1024, $4, $5, $6}'
}
t0=$(date +%s)
sample idle
"${load_cmd[@]}" > "$work/load.json" 2> "$work/progress.log" &
loader=$!
# A second after each of the load tool's progress lines, so a row shows its count.
next=$((t0 + SAMPLE_SECS + 1))
while kill -0 "$loader" 2>/dev/null; do
  if [ "$(date +%s)" -ge "$next" ]; then sample load; next=$((next + SAMPLE_SECS)); fi
  sleep 0.5
done
load_status=0
wait "$loader" || load_status=$?
sample after
sleep 5
sample rest
grep -v '^{' "$work/progress.log" >&2 || true
cat "$work/load.json"

# A clean stop: SIGTERM drains, closes the ledger with a checkpoint.
kill -TERM "$proxy_pid"
stop_status=0
wait "$proxy_pid" || stop_status=$?
verify_status=0
"$bin/egress-proxy" ledger verify --data-dir "$work/data" > "$work/verify.out" 2>&1 || verify_status=$?
echo "# $bin/egress-proxy ledger verify --data-dir DATA  -> exit $verify_status: $(tail -1 "$work/verify.out")"
echo "# $bin/egress-proxy ledger export --data-dir DATA | (count GetObject starts and their ends)"
"$bin/egress-proxy" ledger export --data-dir "$work/data" > "$work/ledger.jsonl"

python3 - "$work" "$load_status" "$stop_status" "$verify_status" "$DURATION_SECS" <<'PY'
import json, sys, collections
w, load_status, stop_status, verify_status, duration = sys.argv[1], *map(int, sys.argv[2:])
load = json.load(open(f"{w}/load.json"))
starts, ends = {}, {}
for line in open(f"{w}/ledger.jsonl"):
    r = json.loads(line)
    if r["kind"] == "start":
        starts[r["seq"]] = r
    elif r["kind"] == "end":
        ends[r["start_seq"]] = r
gets = {s: r for s, r in starts.items() if r["operation"] == "GetObject"}
outcomes = collections.Counter(ends[s]["outcome"] if s in ends else "no end" for s in gets)
complete = [ends[s] for s in gets if s in ends and ends[s]["outcome"] == "complete" and 200 <= (ends[s]["status"] or 0) < 300]
rows = [l.split("\t") for l in open(f"{w}/samples.tsv").read().split("\n") if l]
under = [(int(t), int(rss), int(fds)) for phase, t, rss, fds, _, _ in rows if phase == "load"]
mib = lambda kb: round(kb / 1024, 1)
# Flat: from a quarter into the run (past warm-up) to its end, the mean RSS
# of the second half exceeds the first half's by no more than 10% or 16 MiB,
# whichever is larger. Means, since single samples swing with the requests
# in flight; the least-squares trend is reported beside them.
settled_rows = [(t, rss) for t, rss, _ in under if t >= duration / 4] or [(t, rss) for t, rss, _ in under]
settled = [rss for _, rss in settled_rows]
half = len(settled) // 2
first_half = sum(settled[:half]) / half if half else 0
second_half = sum(settled[half:]) / (len(settled) - half) if settled else 0
growth = second_half - first_half
flat = bool(half) and growth <= max(16 * 1024, first_half / 10)
def trend_kib_per_min(rows):
    if len(rows) < 2:
        return 0.0
    mt, mr = sum(t for t, _ in rows) / len(rows), sum(r for _, r in rows) / len(rows)
    var = sum((t - mt) ** 2 for t, _ in rows)
    return sum((t - mt) * (r - mr) for t, r in rows) / var * 60 if var else 0.0
checks = {
    "no_errors": load_status == 0 and load["errors"] == 0,
    "rss_flat": flat,
    "clean_stop": stop_status == 0,
    "ledger_verifies": verify_status == 0,
    "every_start_has_end": len(ends) == len(starts) and all(s in ends for s in starts),
    "complete_gets_equal_requests": len(complete) == load["requests"],
    "bytes_sent_equal_bytes": sum(e["bytes_sent"] for e in complete) == load["bytes"],
}
print(json.dumps({
    "connections": load["concurrency"], "duration_s": round(load["seconds"], 1),
    "requests": load["requests"], "errors": load["errors"], "errors_by_kind": load["errors_by_kind"],
    "req_per_s": round(load["req_per_s"]), "mb_per_s": round(load["mb_per_s"], 1),
    "p50_ms": load["p50_ms"], "p99_ms": load["p99_ms"], "connects": load["connects"],
    "proxy_rss_mib": {
        "idle": mib(int(rows[0][2])),
        "under_load_min": mib(min(r for _, r, _ in under)) if under else None,
        "under_load_max": mib(max(r for _, r, _ in under)) if under else None,
        "settled_first_half_mean": mib(first_half), "settled_second_half_mean": mib(second_half),
        "growth_settled": mib(growth), "trend_mib_per_min": mib(trend_kib_per_min(settled_rows)),
        "after": mib(int(rows[-2][2])), "rest": mib(int(rows[-1][2])),
    },
    "proxy_fds": {"idle": int(rows[0][3]), "under_load_max": max(f for _, _, f in under) if under else None,
                  "rest": int(rows[-1][3])},
    "ledger": {"starts": len(starts), "ends": len(ends), "get_starts": len(gets),
               "get_outcomes": dict(outcomes), "complete_gets": len(complete),
               "bytes_sent": sum(e["bytes_sent"] for e in complete), "load_tool_bytes": load["bytes"]},
    "checks": checks,
}, indent=2))
sys.exit(0 if all(checks.values()) else 1)
PY
