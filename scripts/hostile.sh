#!/usr/bin/env bash
# Hostile load (issue 14: what unauthenticated clients can cost): a release
# build of the proxy in front of SeaweedFS on loopback, five measurements by
# egress-hostile (tests/src/bin/egress-hostile.rs), each from a loopback
# source address of its own, the legitimate client on 127.0.0.1:
#
#   ledger_cost     LEDGER_REQUESTS refused requests (anonymous, bogus SigV4) with a
#                   KEY_CHARS key and an AGENT_CHARS User-Agent, 8 connections from
#                   127.0.0.3: growth of ledger/segment-*.jsonl per 1,000      ≤ 2 MB
#   random_buckets  BUCKET_REQUESTS refused requests, each to a new bucket name, from
#                   127.0.0.4: the proxy's RSS (0, half, all) and /metrics size  RSS +≤ 10 MiB,
#                                                                               /metrics +< 64 KiB
#   latency         LATENCY_REQUESTS signed 4 KiB GETs on one connection, idle and during a
#                   flood of refused requests (8 connections) from 127.0.0.2     p50 ≤ 2x idle
#   silent          SILENT_CONNECTIONS connections from 127.0.0.2 that send nothing, with
#                   --header-read-timeout-secs HEADER_READ_TIMEOUT_SECS          all closed by
#                                                                               timeout + 2 s
#   silent_waves    WAVE_TOTAL silent connections from 127.0.0.2 in waves of WAVE_SIZE every
#                   WAVE_INTERVAL_MS (held by helper processes), the proxy's fds sampled;
#                   then a signed GET from 127.0.0.1                            answered in 2 s
#
# After every phase the proxy must be alive and POST /v1/ledger/verify pass;
# at the end it is stopped with SIGTERM and `ledger verify` must pass.
# Prints the figures as JSON (with the command); exits 1 when a target is
# missed or a phase could not run (reported as skipped, with the reason).
#
#   scripts/hostile.sh                                    the release build of this tree
#   EGRESS_PROXY_BIN=/tmp/egress-proxy-before scripts/hostile.sh   another build
#   REPORT_ONLY=1 scripts/hostile.sh                      figures only, exit 0 whatever they are
#   PROXY_COMMIT=abc1234 EGRESS_PROXY_BIN=...             the commit that binary was built from, for the report
#
# The proxy gets --header-read-timeout-secs, --idle-timeout-secs and
# --max-connections-per-ip only if its `serve --help` lists them
# (HEADER_READ_TIMEOUT_SECS=5, IDLE_TIMEOUT_SECS=5, MAX_CONNECTIONS_PER_IP=1000;
# set one empty to leave that flag out).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy/target}"
settings=(REPORT_ONLY EGRESS_PROXY_BIN LEDGER_REQUESTS KEY_CHARS AGENT_CHARS BUCKET_REQUESTS LATENCY_REQUESTS
  FLOOD_CONNECTIONS SILENT_CONNECTIONS WAVE_TOTAL WAVE_SIZE WAVE_INTERVAL_MS HEADER_READ_TIMEOUT_SECS
  IDLE_TIMEOUT_SECS MAX_CONNECTIONS_PER_IP PROXY_COMMIT)
# The command as given: the settings from the environment, then the script.
command_line="$(for s in "${settings[@]}"; do [ -n "${!s+x}" ] && printf '%s=%q ' "$s" "${!s}"; done; printf '%s' "$0")"
REPORT_ONLY="${REPORT_ONLY:-}"
LEDGER_REQUESTS="${LEDGER_REQUESTS:-1000}"
KEY_CHARS="${KEY_CHARS:-30000}"
AGENT_CHARS="${AGENT_CHARS:-30000}"
BUCKET_REQUESTS="${BUCKET_REQUESTS:-20000}"
LATENCY_REQUESTS="${LATENCY_REQUESTS:-1000}"
FLOOD_CONNECTIONS="${FLOOD_CONNECTIONS:-8}"
SILENT_CONNECTIONS="${SILENT_CONNECTIONS:-2000}"
WAVE_TOTAL="${WAVE_TOTAL:-20000}"
WAVE_SIZE="${WAVE_SIZE:-2000}"
WAVE_INTERVAL_MS="${WAVE_INTERVAL_MS:-1000}"
HEADER_READ_TIMEOUT_SECS="${HEADER_READ_TIMEOUT_SECS-5}"
IDLE_TIMEOUT_SECS="${IDLE_TIMEOUT_SECS-5}"
MAX_CONNECTIONS_PER_IP="${MAX_CONNECTIONS_PER_IP-1000}"

# The waves' helper processes hold up to 10,000 connections each.
ulimit -n "$(ulimit -Hn)"
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 10100 ]; then
  echo "open-file limit $(ulimit -n) is too low: the silent waves need 10,100 per process" >&2
  exit 69
fi

. scripts/venv.sh
. scripts/seaweed.sh
# Only what this script runs is built: with EGRESS_PROXY_BIN the proxy in
# this tree need not even compile.
# The proxy's commit goes into the report: PROXY_COMMIT for another build.
if [ -n "${EGRESS_PROXY_BIN:-}" ]; then
  cargo build --release -p egress-e2e --bin egress-hostile --bin egress-bench
  proxy_bin="$EGRESS_PROXY_BIN"
  proxy_commit="${PROXY_COMMIT:-unknown (set PROXY_COMMIT)}"
else
  cargo build --release -p egress-proxy -p egress-e2e --bin egress-proxy --bin egress-hostile --bin egress-bench
  proxy_bin="$CARGO_TARGET_DIR/release/egress-proxy"
  proxy_commit="$(git rev-parse HEAD)"
  [ -z "$(git status --porcelain -- proxy admin ledger Cargo.lock)" ] || proxy_commit+=" with uncommitted changes"
fi
bin="$CARGO_TARGET_DIR/release"
work="$(mktemp -d)"
pids=()
trap cleanup EXIT

UK=HOSTILEUPSTREAMKEY01 US=hostile-upstream-secret-0000000000000001
start_seaweed "$UK" "$US"
direct="http://127.0.0.1:$s3port"

# Which of the connection limits this build has.
help="$("$proxy_bin" serve --help)"
flags=()
declare -A flag_values=([header-read-timeout-secs]="$HEADER_READ_TIMEOUT_SECS"
  [idle-timeout-secs]="$IDLE_TIMEOUT_SECS" [max-connections-per-ip]="$MAX_CONNECTIONS_PER_IP")
flags_json="{"
for flag in header-read-timeout-secs idle-timeout-secs max-connections-per-ip; do
  value="${flag_values[$flag]}"
  if ! grep -q -- "--$flag " <<<"$help" && ! grep -q -- "--$flag\$" <<<"$help"; then
    flags_json+="\"$flag\":\"absent from serve --help\","
  elif [ -z "$value" ]; then
    flags_json+="\"$flag\":\"not passed (empty setting)\","
  else
    flags+=("--$flag" "$value")
    flags_json+="\"$flag\":$value,"
  fi
done
flags_json="${flags_json%,}}"
header_timeout=""
[[ " ${flags[*]} " == *" --header-read-timeout-secs "* ]] && header_timeout="$HEADER_READ_TIMEOUT_SECS"

data="$work/data"
"$proxy_bin" principal create hostile --policy full --data-dir "$data" > "$work/key.json"
AK=$(python3 -c "import json;print(json.load(open('$work/key.json'))['access_key_id'])")
SK=$(python3 -c "import json;print(json.load(open('$work/key.json'))['secret_access_key'])")
pport=$(free_port)
aport=$(free_port)
proxy_cmd=("$proxy_bin" serve --listen "127.0.0.1:$pport" --admin-listen "127.0.0.1:$aport"
  --data-dir "$data" --upstream "$direct" "${flags[@]}")
echo "# ${proxy_cmd[*]}" >&2
AWS_ACCESS_KEY_ID=$UK AWS_SECRET_ACCESS_KEY=$US AWS_EC2_METADATA_DISABLED=true EGRESS_LOG=warn \
  "${proxy_cmd[@]}" > "$work/proxy.out" 2>&1 &
proxy_pid=$!
pids+=("$proxy_pid")
proxied="http://127.0.0.1:$pport"
admin="http://127.0.0.1:$aport"

up() { "$bin/egress-bench" --endpoint "$direct" --access-key "$UK" --secret-key "$US" --bucket hostile "$@"; }
# SeaweedFS takes a second when the machine is idle, far longer when not.
for _ in $(seq 300); do up --key probe put --size 1 >/dev/null 2>&1 && break; sleep 0.2; done
up --key small put --size 4096 >/dev/null 2>&1 || {
  echo "SeaweedFS did not take an upload within a minute; its output:" >&2
  tail -20 "$work/weed.out" >&2
  exit 1
}
for _ in $(seq 100); do curl -sf "$admin/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf "$admin/readyz" >/dev/null || { echo "the proxy did not get ready:" >&2; cat "$work/proxy.out" >&2; exit 1; }
token_file="$data/admin.token"

mkdir -p "$work/phases"
hostile=("$bin/egress-hostile" --endpoint "$proxied" --pid "$proxy_pid")
legit=(--access-key "$AK" --bucket hostile --key small)
export AWS_SECRET_ACCESS_KEY="$SK"   # the legitimate client's secret, kept off the command line

# The proxy is running: not gone, not a zombie waiting for this shell.
running() { [ -r "/proc/$proxy_pid/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$proxy_pid/status"; }

# phase NAME ARGS...: runs `egress-hostile ARGS` (5 minutes at most), then
# checks that the proxy is alive and that its ledger verifies through the
# admin API; all of it goes to $work/phases/NAME.*. A phase that cannot run
# gets $work/phases/NAME.skipped with the reason instead.
phase() {
  local name=$1
  shift
  if ! running; then
    echo "the proxy was not running when the phase began" > "$work/phases/$name.skipped"
    return
  fi
  echo "# $name: egress-hostile $*" >&2
  printf '%s\n' "egress-hostile $*" > "$work/phases/$name.cmd"
  local status=0
  timeout 300 "${hostile[@]}" "$@" > "$work/phases/$name.json" 2> "$work/phases/$name.err" || status=$?
  echo "$status" > "$work/phases/$name.status"
  if running; then echo true; else echo false; fi > "$work/phases/$name.alive"
  curl -s -m 60 -X POST -H "Authorization: Bearer $(cat "$token_file")" "$admin/v1/ledger/verify" \
    > "$work/phases/$name.verify" 2>/dev/null ||
    echo '{"ok":false,"problem":"the admin API did not answer"}' > "$work/phases/$name.verify"
}

phase ledger_cost ledger-cost --requests "$LEDGER_REQUESTS" --connections 8 --source 127.0.0.3 \
  --key-chars "$KEY_CHARS" --agent-chars "$AGENT_CHARS" --data-dir "$data" --known-access-key "$AK"
phase random_buckets random-buckets --requests "$BUCKET_REQUESTS" --sample-every $((BUCKET_REQUESTS / 2)) \
  --connections 8 --source 127.0.0.4 --admin "$admin" --admin-token-file "$token_file"
phase latency latency "${legit[@]}" --requests "$LATENCY_REQUESTS" \
  --flood-connections "$FLOOD_CONNECTIONS" --flood-source 127.0.0.2
if [ -n "$header_timeout" ]; then
  phase silent silent --connections "$SILENT_CONNECTIONS" --source 127.0.0.2 \
    --timeout-secs "$header_timeout" --slack-secs 2
else
  why=$(python3 -c "import json,sys; print(json.loads(sys.argv[1])['header-read-timeout-secs'])" "$flags_json")
  echo "no header read timeout to measure against: --header-read-timeout-secs $why" > "$work/phases/silent.skipped"
fi
phase silent_waves silent-waves "${legit[@]}" --total "$WAVE_TOTAL" --wave "$WAVE_SIZE" \
  --interval-ms "$WAVE_INTERVAL_MS" --source 127.0.0.2 --get-timeout-ms 2000

# A clean stop: SIGTERM drains, closes the ledger with a checkpoint. A
# minute at most (the shutdown grace is 30 s), then SIGKILL, reported.
stop_status=0
if running; then
  kill -TERM "$proxy_pid"
  for _ in $(seq 600); do running || break; sleep 0.1; done
  if running; then
    kill -KILL "$proxy_pid"
    wait "$proxy_pid" || true
    stop_status="still running 60 s after SIGTERM: killed"
  else
    wait "$proxy_pid" || stop_status=$?
  fi
else
  wait "$proxy_pid" || stop_status=$?
  stop_status="gone before the stop (exit $stop_status)"
fi
verify_status=0
"$proxy_bin" ledger verify --data-dir "$data" > "$work/verify.out" 2>&1 || verify_status=$?

python3 - "$work" "$command_line" "$proxy_bin" "$flags_json" "$stop_status" "$verify_status" \
  "$REPORT_ONLY" "$proxy_commit" "$(git rev-parse HEAD)" "$(sha256sum "$proxy_bin" | cut -d' ' -f1)" <<'PY'
import json, os, sys
w, command, binary, flags, stop_status, verify_status, report_only, proxy_commit, script_commit, sha = sys.argv[1:]
phases_dir = f"{w}/phases"
MB, MiB, KiB = 1_000_000, 1 << 20, 1 << 10

def load(name):
    """One phase: its measurements, or why there are none."""
    p = f"{phases_dir}/{name}"
    if os.path.exists(p + ".skipped"):
        return {"skipped": open(p + ".skipped").read().strip()}
    out = {"command": open(p + ".cmd").read().strip()}
    status = int(open(p + ".status").read())
    try:
        out["measured"] = json.load(open(p + ".json"))
    except (OSError, ValueError):
        err = open(p + ".err").read().strip().splitlines()
        return {**out, "skipped": f"egress-hostile exited {status}: {err[-1] if err else 'no message'}"}
    if status != 0:
        out["tool_exit_status"] = status
    out["proxy_alive_after"] = open(p + ".alive").read().strip() == "true"
    try:
        v = json.load(open(p + ".verify"))
    except ValueError:
        v = {"ok": False, "problem": "the admin API's answer was not JSON"}
    out["ledger_verify_after"] = {k: v.get(k) for k in ("ok", "records", "problem")}
    return out

def none_2xx(answers):
    return all(not k.startswith("2") for k in answers)

def all_answered(answers):
    """Every request got an HTTP answer (a status, not a transport failure)."""
    return all(k[:3].isdigit() for k in answers)

targets = {}
def judge(name, phase, *checks):
    """A phase meets its target when it ran and every check holds."""
    if "skipped" in phase:
        phase["target_met"] = None
    else:
        checks = [c for c in checks] + [("proxy alive after", phase["proxy_alive_after"]),
                                         ("ledger verifies after", bool(phase["ledger_verify_after"]["ok"]))]
        phase["checks"] = {label: bool(ok) for label, ok in checks}
        phase["target_met"] = all(phase["checks"].values())
    targets[name] = phase["target_met"]

report = {"command": command, "proxy_binary": binary, "proxy_binary_sha256": sha, "proxy_commit": proxy_commit,
          "script_commit": script_commit,
          "proxy_flags": json.loads(flags), "phases": {}}
P = report["phases"]

p = P["ledger_cost"] = load("ledger_cost")
if "measured" in p:
    m = p["measured"]
    per = m["ledger"]["bytes_per_1000_requests"]
    p["target"] = "ledger growth <= 2 MB (2,000,000 bytes) per 1,000 refused requests; each answered, none 2xx"
    judge("ledger_cost", p, ("<= 2 MB per 1,000", per <= 2 * MB), ("none answered 2xx", none_2xx(m["answers"])),
          ("every request answered", all_answered(m["answers"])))
else:
    judge("ledger_cost", p)

p = P["random_buckets"] = load("random_buckets")
if "measured" in p:
    m = p["measured"]
    growth, mgrowth = m["rss_growth_kib"], m["metrics_growth_bytes"]
    p["target"] = "RSS growth over all requests <= 10 MiB; /metrics growth < 64 KiB; each answered, none 2xx"
    judge("random_buckets", p, ("RSS within 10 MiB", growth is not None and growth * KiB <= 10 * MiB),
          ("/metrics within 64 KiB", mgrowth is not None and mgrowth < 64 * KiB),
          ("none answered 2xx", none_2xx(m["answers"])), ("every request answered", all_answered(m["answers"])))
else:
    judge("random_buckets", p)

p = P["latency"] = load("latency")
if "measured" in p:
    m = p["measured"]
    idle, flood = m["idle"]["p50_ms"], m["during_flood"]["p50_ms"]
    p["target"] = "p50 of signed GETs during the flood <= 2x idle p50; no signed GET failed"
    judge("latency", p, ("p50 within 2x", idle is not None and flood is not None and flood <= 2 * idle),
          ("no failed GET", m["idle"]["failed"] == 0 and m["during_flood"]["failed"] == 0))
else:
    judge("latency", p)

p = P["silent"] = load("silent")
if "measured" in p:
    m = p["measured"]
    p["target"] = f"every silent connection closed by the proxy within {m['deadline_secs']} s of its connect"
    judge("silent", p, ("all opened", m["opened"] == m["connections"]),
          ("all closed in time", m["closed_by_proxy_within_deadline"] == m["opened"]))
else:
    judge("silent", p)

p = P["silent_waves"] = load("silent_waves")
if "measured" in p:
    m = p["measured"]
    p["target"] = "a signed GET from 127.0.0.1 answered 200 within 2 s after the waves"
    judge("silent_waves", p, ("GET within 2 s", m["get_during_hold"]["ok"]))
else:
    judge("silent_waves", p)

log = open(f"{w}/proxy.out", errors="replace").read().splitlines()
report["end"] = {"stop": stop_status if not stop_status.isdigit() else int(stop_status),
                 "ledger_verify_exit": int(verify_status),
                 "ledger_verify_last_line": open(f"{w}/verify.out").read().strip().splitlines()[-1:],
                 # EGRESS_LOG=warn: what the proxy complained about, cut short.
                 "proxy_log": {"lines": len(log), "first": [l[:300] for l in log[:5]]}}
end_ok = stop_status == "0" and verify_status == "0"
report["targets_met"] = targets
report["passed"] = end_ok and all(v is True for v in targets.values())
report["report_only"] = bool(report_only)
print(json.dumps(report, indent=2))
sys.exit(0 if report["passed"] or report_only else 1)
PY
