#!/usr/bin/env bash
# 1 GiB monolithic blob upload and download, rregistry against Debian's
# Distribution, on loopback, alternating the two, median of RUNS runs.
# Both: filesystem storage in a fresh temp dir, no auth, delete enabled.
# Upload = POST (start) then one PUT ?digest= with the whole body, the path
# both registries take (Distribution 2.8 answers POST ?digest= with 202).
# Usage: bench/blob-1g.sh [RUNS]   (needs a release build and docker-registry)
source "$(dirname "$0")/lib.sh"
RUNS=${1:-3}
BIN=$TARGET/rregistry
[ -x "$BIN" ] || cargo build --release -p rregistry
command -v docker-registry >/dev/null || { echo "docker-registry is not installed" >&2; exit 1; }
bench_workdir blob1g

head -c $((1024 * 1024 * 1024)) /dev/urandom > "$WORK/blob"
DIGEST=sha256:$(sha256sum "$WORK/blob" | cut -d' ' -f1)

start() { # name port
  local dir="$WORK/$1" cmd
  mkdir -p "$dir"
  cat > "$dir/config.yml" <<YAML
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$2
YAML
  if [ "$1" = rregistry ]; then cmd="$BIN"; else cmd=docker-registry; fi
  "$cmd" serve "$dir/config.yml" >"$dir/log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$2/v2/" >/dev/null && return; sleep 0.1; done
  echo "$1 did not start" >&2; exit 1
}

push() { # port repo -> seconds
  local loc
  loc=$(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$1/v2/$2/blobs/uploads/" | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
  case "$loc" in http*) ;; *) loc="http://127.0.0.1:$1$loc";; esac
  case "$loc" in *\?*) loc="$loc&digest=$DIGEST";; *) loc="$loc?digest=$DIGEST";; esac
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' -H 'Expect:' -H 'Content-Type: application/octet-stream' -T "$WORK/blob" "$loc" \
    | awk '$1!=201{print "upload failed: " $0 > "/dev/stderr"; exit 1} {print $2}'
}

pull() { # port repo -> seconds
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "http://127.0.0.1:$1/v2/$2/blobs/$DIGEST" \
    | awk '$1!=200{print "download failed: " $0 > "/dev/stderr"; exit 1} {print $2}'
}


start rregistry 5071
start distribution 5072
for name in rregistry distribution; do : > "$WORK/$name.push"; : > "$WORK/$name.pull"; done
for run in $(seq "$RUNS"); do
  for name in rregistry distribution; do
    port=5071; [ "$name" = distribution ] && port=5072
    push $port "bench/r$run" >> "$WORK/$name.push"
    sync
    pull $port "bench/r$run" >> "$WORK/$name.pull"
  done
done
# The machine's limits, measured in the same run.
disk=$( { /usr/bin/time -f %e dd if="$WORK/blob" of="$WORK/dd.out" bs=1M conv=fdatasync status=none; } 2>&1 | tail -1)
rm -f "$WORK/dd.out"
sha=$( { /usr/bin/time -f %e openssl dgst -sha256 "$WORK/blob" >/dev/null; } 2>&1 | tail -1)
printf '%-28s %10.2f s (%4.0f MB/s)\n' "limit: disk write 1 GiB" "$disk" "$(echo "1073.741824 / $disk" | bc -l)"
printf '%-28s %10.2f s (%4.0f MB/s)\n' "limit: sha256 1 GiB" "$sha" "$(echo "1073.741824 / $sha" | bc -l)"
printf '%-28s %12s %14s %8s\n' "1 GiB blob (median of $RUNS)" rregistry distribution ratio
for op in push pull; do
  r=$(median < "$WORK/rregistry.$op"); d=$(median < "$WORK/distribution.$op")
  printf '%-28s %10.2f s %12.2f s %7.1fx\n' "$op" "$r" "$d" "$(echo "$d / $r" | bc -l)"
  printf '%-28s %8.0f MB/s %10.0f MB/s\n' "" "$(echo "1073.741824 / $r" | bc -l)" "$(echo "1073.741824 / $d" | bc -l)"
done
