#!/usr/bin/env bash
# Container start-to-exit: `rctl run --rm IMAGE true` vs `docker run --rm
# IMAGE true` vs `runc run` of a bundle made from the same image, each
# RUNS times (default 20), alternating; the median wall time of each.
# The image is busybox FROM scratch (Debian's busybox-static), built by
# docker and loaded into rctl's store. docker runs with --network none
# (no bridge here), which matches rctl's default: a private network
# namespace with loopback only.
# Usage: bench/run-true.sh [RUNS]   (as root; needs dockerd, runc, busybox-static, a release build)
source "$(dirname "$0")/lib.sh"
RUNS=${1:-20}
[ -x "$TARGET/rctl" ] || cargo build --release -p rctl
bench_workdir runtrue
start_dockerd

mkdir -p "$WORK/ctx"
cp "$(command -v busybox)" "$WORK/ctx/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["sh"]\n' > "$WORK/ctx/Dockerfile"
IMAGE=localhost/bench/busybox:1
DOCKER_BUILDKIT=0 $DOCKER build -q --network none -t "$IMAGE" "$WORK/ctx" >/dev/null
$DOCKER save "$IMAGE" | "$TARGET/rctl" --root "$WORK/rctl" load -q >/dev/null

# The runc bundle: the image's files, and runc's default spec running `true`.
mkdir -p "$WORK/bundle/rootfs"
cid=$($DOCKER create "$IMAGE" true)
$DOCKER export "$cid" | tar -C "$WORK/bundle/rootfs" -x
$DOCKER rm "$cid" >/dev/null
(cd "$WORK/bundle" && runc spec)
python3 - "$WORK/bundle/config.json" <<'PY'
import json, sys
path = sys.argv[1]
spec = json.load(open(path))
spec["process"]["terminal"] = False
spec["process"]["args"] = ["true"]
json.dump(spec, open(path, "w"))
PY

t() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
ms() { awk '{printf "%.1f", $1 / 1000}'; } # µs to ms
rctl_run() { "$TARGET/rctl" --root "$WORK/rctl" run --rm "$IMAGE" true; }
docker_run() { $DOCKER run --rm --network none "$IMAGE" true; }
runc_run() { runc --root "$WORK/runc-state" run --bundle "$WORK/bundle" "bench$1"; }

rctl_run; docker_run; runc_run warm   # warm caches (and rctl's unpack) before timing
: > "$WORK/t-rctl"; : > "$WORK/t-docker"; : > "$WORK/t-runc"
for i in $(seq "$RUNS"); do
  t rctl_run >> "$WORK/t-rctl"
  t docker_run >> "$WORK/t-docker"
  t runc_run "$i" >> "$WORK/t-runc"
done
r=$(median < "$WORK/t-rctl" | ms); d=$(median < "$WORK/t-docker" | ms); c=$(median < "$WORK/t-runc" | ms)
printf 'run --rm IMAGE true, median of %s runs\n' "$RUNS"
printf '%-28s %8s ms\n' "rctl run --rm" "$r"
printf '%-28s %8s ms   rctl is %.1fx faster\n' "docker run --rm" "$d" "$(echo "$d / $r" | bc -l)"
printf '%-28s %8s ms   (runtime only: no image, no overlay, no cgroup limits)\n' "runc run" "$c"
