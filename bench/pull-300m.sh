#!/usr/bin/env bash
# Pull of a 5-layer image of about 300 MB (3 random, 2 compressible layers)
# from one rregistry into a fresh store: rctl pull vs docker pull vs
# skopeo copy docker:// oci:, alternating, median of RUNS runs. rctl is
# also timed at several --max-concurrent-downloads settings, and the
# engine's unpack of the image into overlay2 layers one at a time (as
# docker extracts) and five at once.
# Usage: bench/pull-300m.sh [RUNS]   (as root; needs dockerd, skopeo, a release build)
source "$(dirname "$0")/lib.sh"
RUNS=${1:-3}
[ -x "$TARGET/rregistry" ] && [ -x "$TARGET/rctl" ] && [ -x "$TARGET/unpack-bench" ] || cargo build --release -p rregistry -p rctl -p rbench
bench_workdir pull300
PORT=5091
start_rregistry "$PORT"
start_dockerd

# The image: 3 random layers of 100 MB and 2 compressible ones of 60 MB.
mkdir -p "$WORK/ctx"
for i in 1 2 3; do head -c 100000000 /dev/urandom > "$WORK/ctx/random$i"; done
for i in 1 2; do (yes "compressible line $i of the benchmark image" || true) | head -c 60000000 > "$WORK/ctx/text$i"; done
printf 'FROM scratch\nCOPY random1 /r1\nCOPY random2 /r2\nCOPY random3 /r3\nCOPY text1 /t1\nCOPY text2 /t2\n' > "$WORK/ctx/Dockerfile"
IMAGE=127.0.0.1:$PORT/bench/pull:1
DOCKER_BUILDKIT=0 $DOCKER build -q -t "$IMAGE" "$WORK/ctx" >/dev/null
$DOCKER push "$IMAGE" >/dev/null
SIZE=$(du -sb "$WORK/registry/blobs" | cut -f1)
$DOCKER rmi "$IMAGE" >/dev/null

t() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
rctl_pull() { rm -rf "$WORK/rctl"; "$TARGET/rctl" --root "$WORK/rctl" pull -q --max-concurrent-downloads "$1" "$IMAGE"; }
docker_pull() { $DOCKER rmi "$IMAGE" >/dev/null 2>&1 || true; $DOCKER pull -q "$IMAGE"; }
skopeo_copy() { rm -rf "$WORK/oci"; skopeo copy -q --src-tls-verify=false "docker://$IMAGE" "oci:$WORK/oci:bench"; }

for c in 1 3 5; do : > "$WORK/rctl-$c"; done
: > "$WORK/docker"; : > "$WORK/skopeo"
for _ in $(seq "$RUNS"); do
  sync
  t rctl_pull 3 >> "$WORK/rctl-3"
  sync
  t docker_pull >> "$WORK/docker"
  sync
  t skopeo_copy >> "$WORK/skopeo"
  sync
  t rctl_pull 1 >> "$WORK/rctl-1"
  sync
  t rctl_pull 5 >> "$WORK/rctl-5"
done
r=$(median < "$WORK/rctl-3"); d=$(median < "$WORK/docker"); s=$(median < "$WORK/skopeo")
printf 'pull of a 5-layer image, %s bytes of blobs on the registry (median of %s)\n' "$SIZE" "$RUNS"
printf '%-34s %8.2f s\n' "rctl pull (3 downloads at once)" "$r"
printf '%-34s %8.2f s   rctl is %.1fx faster\n' "docker pull" "$d" "$(echo "$d / $r" | bc -l)"
printf '%-34s %8.2f s   rctl is %.1fx faster\n' "skopeo copy docker:// oci:" "$s" "$(echo "$s / $r" | bc -l)"
for c in 1 5; do printf '%-34s %8.2f s\n' "rctl pull ($c at once)" "$(median < "$WORK/rctl-$c")"; done
rctl_pull 3 >/dev/null
u1=$("$TARGET/unpack-bench" "$WORK/rctl" "$IMAGE" 1 "$RUNS")
u5=$("$TARGET/unpack-bench" "$WORK/rctl" "$IMAGE" 5 "$RUNS")
printf '%-34s %8.2f s\n' "unpack, one layer at a time" "$u1"
printf '%-34s %8.2f s   %.1fx\n' "unpack, 5 layers at once" "$u5" "$(echo "$u1 / $u5" | bc -l)"
