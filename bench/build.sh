#!/usr/bin/env bash
# A 9-step Dockerfile (ENV, WORKDIR, COPY of 5 MB, three RUNs, CMD) on a
# busybox base: `rctl build` vs `docker build` (classic builder,
# DOCKER_BUILDKIT=0), cold (--no-cache) and fully cached, alternating,
# median of RUNS runs (default 3). Both have the base image before timing.
# Usage: bench/build.sh [RUNS]   (as root; needs dockerd, busybox-static, a release build)
source "$(dirname "$0")/lib.sh"
RUNS=${1:-3}
[ -x "$TARGET/rctl" ] && [ -x "$TARGET/rregistry" ] || cargo build --release -p rctl -p rregistry
bench_workdir buildbench
PORT=5093
start_rregistry "$PORT"
start_dockerd

# The base: busybox FROM scratch, in the registry, pulled by both.
mkdir -p "$WORK/base"
cp "$(command -v busybox)" "$WORK/base/busybox"
printf 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nCMD ["sh"]\n' > "$WORK/base/Dockerfile"
BASE=127.0.0.1:$PORT/bench/busybox:1
DOCKER_BUILDKIT=0 $DOCKER build -q --network none -t "$BASE" "$WORK/base" >/dev/null
$DOCKER push "$BASE" >/dev/null
RCTL="$TARGET/rctl --root $WORK/rctl"
$RCTL pull -q "$BASE" >/dev/null

mkdir -p "$WORK/ctx/data"
for i in $(seq 1 20); do head -c 262144 /dev/urandom > "$WORK/ctx/data/f$i"; done
cat > "$WORK/ctx/Dockerfile" <<DOCKERFILE
FROM $BASE
ENV APP=/app
WORKDIR /app
COPY data/ /app/data/
RUN for i in \$(seq 1 200); do echo line \$i >> /app/log; done
RUN tar -czf /app/data.tgz /app/data
RUN sha256sum /app/data.tgz > /app/sum
LABEL bench=build
CMD ["cat", "/app/sum"]
DOCKERFILE

t() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000000 )); }
rctl_build() { $RCTL build "$@" -t bench/app:1 "$WORK/ctx"; }
docker_build() { DOCKER_BUILDKIT=0 $DOCKER build --network none "$@" -t bench/app:1 "$WORK/ctx"; }
rctl_build >/dev/null; docker_build >/dev/null   # both must work before timing
for f in rc rw dc dw; do : > "$WORK/t-$f"; done
for _ in $(seq "$RUNS"); do
  t rctl_build --no-cache >> "$WORK/t-rc"
  t docker_build --no-cache >> "$WORK/t-dc"
  t rctl_build >> "$WORK/t-rw"
  t docker_build >> "$WORK/t-dw"
done
rc=$(median < "$WORK/t-rc"); dc=$(median < "$WORK/t-dc"); rw=$(median < "$WORK/t-rw"); dw=$(median < "$WORK/t-dw")
printf 'build of a 9-step Dockerfile (median of %s)\n' "$RUNS"
printf '%-28s %8s ms   docker build %8s ms   rctl is %.1fx faster\n' "cold (--no-cache)" "$rc" "$dc" "$(echo "$dc / $rc" | bc -l)"
printf '%-28s %8s ms   docker build %8s ms   rctl is %.1fx faster\n' "fully cached" "$rw" "$dw" "$(echo "$dw / $rw" | bc -l)"
