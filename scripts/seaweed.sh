# Sourced by scripts/bench.sh, bench-ab.sh, load.sh and bench-nginx.sh: what
# every measurement sets up the same way. Needs `weed` on PATH (scripts/venv.sh)
# and CARGO_TARGET_DIR.
#
#   measure_setup               release build; sets $bin, $work (scratch, removed
#                               on exit) and `pids` (killed on exit)
#   start_seaweed KEY SECRET    starts `weed mini` with that identity; sets $s3port
#   measure_upstream            measure_setup, then SeaweedFS with the key $UK/$US;
#                               sets $direct, its endpoint
#   start_proxy NAME [BINARY [DATA_DIR [POLICY_DIR]]]
#                               principal NAME (with the built-in policy `full`, or
#                               with every POLICY_DIR/*.json stored and attached
#                               instead), and the proxy (default: the release
#                               build, data in $work/data) in front of $direct with
#                               the upstream key $UK/$US; sets $AK, $SK, $pport,
#                               $aport (admin), $proxied, $proxy_pid
measure_setup() {
  cargo build --release -p egress-proxy -p egress-e2e --bins
  bin="$CARGO_TARGET_DIR/release"
  work="$(mktemp -d)"
  pids=()
  trap cleanup EXIT
}

measure_upstream() {
  measure_setup
  UK=BENCHUPSTREAMKEY0001 US=bench-upstream-secret-000000000000000001
  start_seaweed "$UK" "$US"
  direct="http://127.0.0.1:$s3port"
}

cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_seaweed() {
  local key=$1 secret=$2 flag ports=()
  echo "{\"identities\":[{\"name\":\"proxy\",\"credentials\":[{\"accessKey\":\"$key\",\"secretKey\":\"$secret\"}],\"actions\":[\"Admin\",\"Read\",\"Write\",\"List\",\"Tagging\"]}]}" > "$work/s3.json"
  mkdir -p "$work/weed" "$work/logs"
  s3port=$(free_port)
  # Every port of its own, so that two instances never collide.
  for flag in s3.port.grpc s3.port.iceberg s3.port.lance master.port master.port.grpc volume.port volume.port.grpc filer.port filer.port.grpc admin.port admin.port.grpc; do
    ports+=("-$flag=$(free_port)")
  done
  weed -logdir="$work/logs" mini -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$work/weed" -s3.port="$s3port" \
    -s3.config="$work/s3.json" -admin.ui=false -webdav=false "${ports[@]}" > "$work/weed.out" 2>&1 &
  pids+=($!)
}

start_proxy() {
  local name=$1 binary=${2:-$bin/egress-proxy} data=${3:-$work/data} policy_dir=${4:-} attach=(--policy full) file
  if [ -n "$policy_dir" ]; then
    attach=()
    for file in "$policy_dir"/*.json; do
      "$binary" policy put "$(basename "$file" .json)" "$file" --data-dir "$data" >/dev/null
      attach+=(--policy "$(basename "$file" .json)")
    done
  fi
  "$binary" principal create "$name" "${attach[@]}" --data-dir "$data" > "$work/key-$name.json"
  AK=$(python3 -c "import json;print(json.load(open('$work/key-$name.json'))['access_key_id'])")
  SK=$(python3 -c "import json;print(json.load(open('$work/key-$name.json'))['secret_access_key'])")
  pport=$(free_port)
  aport=$(free_port)
  AWS_ACCESS_KEY_ID=$UK AWS_SECRET_ACCESS_KEY=$US AWS_EC2_METADATA_DISABLED=true EGRESS_LOG=warn \
    "$binary" serve --listen "127.0.0.1:$pport" --admin-listen "127.0.0.1:$aport" \
    --data-dir "$data" --upstream "$direct" > "$work/proxy-$name.out" 2>&1 &
  proxy_pid=$!
  pids+=($proxy_pid)
  proxied="http://127.0.0.1:$pport"
}
