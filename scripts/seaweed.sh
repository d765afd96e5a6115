# Sourced by scripts/bench.sh, load.sh and bench-nginx.sh: the local
# upstream for the measurements. Needs `weed` on PATH (scripts/venv.sh),
# $work (a scratch dir) and the array `pids` (killed by the caller's trap).
#
#   start_seaweed KEY SECRET    starts `weed mini` with that identity; sets $s3port
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
