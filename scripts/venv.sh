# Sourced by scripts/test.sh and scripts/bench.sh: the pinned Python tools
# (boto3, the AWS CLI, SeaweedFS's `weed`) in a venv under ~/.cache,
# reinstalled when tests/requirements.txt changes. Sets PATH and
# EGRESS_TEST_VENV.
cache="${XDG_CACHE_HOME:-$HOME/.cache}/egress-proxy"
venv="${EGRESS_TEST_VENV:-$cache/venv}"
stamp="$venv/.requirements.sha256"
want="$(sha256sum tests/requirements.txt | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing test tools into $venv" >&2
  if ! python3 -m venv "$venv" 2>/dev/null; then
    # Debian splits venv support out of python3.
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
  echo "$want" > "$stamp"
fi
export PATH="$venv/bin:$PATH"
export EGRESS_TEST_VENV="$venv"
