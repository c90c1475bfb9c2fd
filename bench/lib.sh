# Shared by the bench scripts (source it): a work directory and the
# processes started in it, stopped on exit; rregistry and a private
# dockerd (no bridge, no iptables) on loopback; the median of a column.

set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=${CARGO_TARGET_DIR:-target}/release
PIDS=()

# bench_workdir NAME: a fresh $WORK, removed (with every process started) on exit.
bench_workdir() {
  WORK=$(mktemp -d "/tmp/$1.XXXXXX")
  trap bench_cleanup EXIT
}

bench_cleanup() {
  if [ -f "$WORK/docker.pid" ]; then kill "$(cat "$WORK/docker.pid")" 2>/dev/null && sleep 3; fi
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$WORK" 2>/dev/null || true
}

# start_rregistry PORT: the release rregistry on 127.0.0.1:PORT, storing in $WORK/registry.
start_rregistry() {
  cat > "$WORK/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: 127.0.0.1:$1
YAML
  "$TARGET/rregistry" serve "$WORK/config.yml" >"$WORK/registry.log" 2>&1 &
  PIDS+=($!)
}

# start_dockerd: a dockerd of this run's own; sets $DOCKER to talk to it.
start_dockerd() {
  dockerd --host "unix://$WORK/docker.sock" --data-root "$WORK/docker-data" --exec-root "$WORK/docker-exec" \
    --pidfile "$WORK/docker.pid" --bridge=none --iptables=false --ip-forward=false --ip-masq=false >"$WORK/dockerd.log" 2>&1 &
  DOCKER="docker -H unix://$WORK/docker.sock"
  for _ in $(seq 120); do $DOCKER version >/dev/null 2>&1 && break; sleep 0.5; done
}

# median < column: the middle value.
median() { sort -n | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }
