#!/usr/bin/env bash
# Small-object GETs per second: direct, through nginx (Debian's, as a plain
# reverse proxy with its access log on), through a bare TCP relay
# (egress-relay: two threads copying bytes, the least any proxy does) and
# through egress-proxy, all to the same local upstream (SeaweedFS), in one
# run, release build. Prints each measurement as JSON, then medians and the
# ratio proxy/nginx (target ≥ 0.8).
#
#   scripts/bench-nginx.sh                          4 KiB GETs, 64 concurrent, 20,000 per run, 3 rounds
#   SMALL_REQUESTS=5000 ROUNDS=3 scripts/bench-nginx.sh   shorter
#   LARGE_MIB=1024 scripts/bench-nginx.sh           one 1 GiB GET per run instead (MB/s); nginx then
#                                                   streams (proxy_buffering off, 128 KiB buffer)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy/target}"
. scripts/venv.sh
SMALL_REQUESTS="${SMALL_REQUESTS:-20000}"
SMALL_BYTES="${SMALL_BYTES:-4096}"
CONCURRENCY="${CONCURRENCY:-64}"
ROUNDS="${ROUNDS:-3}"
LARGE_MIB="${LARGE_MIB:-}"
# Unbuffered, nginx passes a large body on as it reads it (buffered, it
# would spill it to a temporary file); 128 KiB reads, as the proxy's.
streaming=""
[ -n "$LARGE_MIB" ] && streaming="proxy_buffering off; proxy_buffer_size 128k; proxy_buffers 4 128k; proxy_busy_buffers_size 256k;"

if ! command -v nginx >/dev/null; then
  echo "installing nginx (Debian)" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx >/dev/null
fi
nginx_bin=$(command -v nginx)

. scripts/seaweed.sh
measure_upstream

# nginx in the foreground (so the trap stops it), everything under $work.
# The client signs for the upstream's key and nginx passes Host and the URI
# through unchanged, so SeaweedFS verifies the client's signature itself.
nport=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<EOF
daemon off;
# The master runs as root here; workers too, so that they can use \$work.
user root;
worker_processes $(nproc);
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log $work/nginx/access.log combined;
  client_body_temp_path $work/nginx/client_body;
  proxy_temp_path $work/nginx/proxy;
  fastcgi_temp_path $work/nginx/fastcgi;
  uwsgi_temp_path $work/nginx/uwsgi;
  scgi_temp_path $work/nginx/scgi;
  upstream seaweedfs {
    server 127.0.0.1:$s3port;
    keepalive 256;
  }
  server {
    listen 127.0.0.1:$nport;
    location / {
      proxy_pass http://seaweedfs;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host \$http_host;
      $streaming
    }
  }
}
EOF
"$nginx_bin" -p "$work/nginx" -c "$work/nginx/nginx.conf" > "$work/nginx.out" 2>&1 &
pids+=($!)
via_nginx="http://127.0.0.1:$nport"

# The relay passes Host through like nginx: SeaweedFS checks the client's
# own signature.
rport=$(free_port)
"$bin/egress-relay" "127.0.0.1:$rport" "127.0.0.1:$s3port" > "$work/relay.out" 2>&1 &
pids+=($!)
via_relay="http://127.0.0.1:$rport"

start_proxy bench

up() { "$bin/egress-bench" --endpoint "$direct" --access-key "$UK" --secret-key "$US" --bucket bench "$@"; }
for _ in $(seq 100); do up --key probe put --size 1 >/dev/null 2>&1 && break; sleep 0.2; done
up --key small put --size "$SMALL_BYTES" >/dev/null
[ -n "$LARGE_MIB" ] && up --key large put --size $((LARGE_MIB << 20)) >/dev/null
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$aport/readyz" >/dev/null 2>&1 && break; sleep 0.2; done

get=(--bucket bench --key small get --concurrency "$CONCURRENCY" --requests "$SMALL_REQUESTS")
metric=req_per_s
if [ -n "$LARGE_MIB" ]; then get=(--bucket bench --key large get); metric=mb_per_s; SMALL_REQUESTS=1; fi
run() {
  case $1 in
    direct) "$bin/egress-bench" --endpoint "$direct" --access-key "$UK" --secret-key "$US" "${get[@]}" ;;
    nginx) "$bin/egress-bench" --endpoint "$via_nginx" --access-key "$UK" --secret-key "$US" "${get[@]}" ;;
    relay) "$bin/egress-bench" --endpoint "$via_relay" --access-key "$UK" --secret-key "$US" "${get[@]}" ;;
    proxy) "$bin/egress-bench" --endpoint "$proxied" --access-key "$AK" --secret-key "$SK" "${get[@]}" ;;
  esac
}
echo "# each run: egress-bench --endpoint {direct|nginx|relay|proxy} ${get[*]}"
echo "# warm-up"
for who in direct nginx relay proxy; do run "$who" >/dev/null; done
# Rounds alternate the four so that drift on this shared machine hits all.
echo "# ${get[*]}: direct, nginx, relay, proxy; $ROUNDS rounds"
for round in $(seq "$ROUNDS"); do
  for who in direct nginx relay proxy; do
    run "$who" | tee "$work/$who-$round.json"
  done
done
access_lines=$(wc -l < "$work/nginx/access.log")

python3 - "$work" "$ROUNDS" "$access_lines" "$SMALL_REQUESTS" "$metric" <<'PY'
import json, sys, statistics
w, rounds, access_lines, per_run, metric = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
med = lambda who, field: statistics.median(json.load(open(f"{w}/{who}-{r}.json"))[field] for r in range(1, rounds + 1))
rps = {who: med(who, metric) for who in ("direct", "nginx", "relay", "proxy")}
label = "small_get_req_per_s_median" if metric == "req_per_s" else "large_get_mb_per_s_median"
print(json.dumps({
  "rounds": rounds,
  label: {who: round(v) for who, v in rps.items()},
  "ratio_proxy_to_nginx": round(rps["proxy"] / rps["nginx"], 3),
  "ratio_nginx_to_direct": round(rps["nginx"] / rps["direct"], 3),
  "ratio_relay_to_direct": round(rps["relay"] / rps["direct"], 3),
  "ratio_proxy_to_direct": round(rps["proxy"] / rps["direct"], 3),
  "p50_ms_median": {who: round(med(who, "p50_ms"), 2) for who in rps},
  "p99_ms_median": {who: round(med(who, "p99_ms"), 2) for who in rps},
  # Warm-up and rounds: every GET through nginx is a line of its access log.
  "nginx_access_log_lines": access_lines, "nginx_gets_sent": per_run * (rounds + 1),
  "target_ratio_met": rps["proxy"] / rps["nginx"] >= 0.8,
}, indent=2))
PY
"$bin/egress-proxy" ledger verify --data-dir "$work/data" || true
