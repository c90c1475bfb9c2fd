#!/usr/bin/env bash
# fuzz/run.sh [--time SECONDS] [--parallel N] [TARGET...]
#
# Builds the fuzz targets (cargo-fuzz, with coverage instrumentation and
# debug assertions, on the stable toolchain: RUSTC_BOOTSTRAP=1 and no
# sanitizer) and runs each for SECONDS (20 by default), N at a time (the
# number of CPUs by default), every target when none is named.
#
# Each target starts from its committed seeds (fuzz/corpus/<target>) plus
# the working corpus of earlier runs, kept beside the build
# ($CARGO_TARGET_DIR/fuzz/corpus/<target>; the committed seeds are never
# written). A crash, a panic, a timeout (-timeout, per input) or running
# out of memory fails the run: the script prints the input that did it
# and the command that replays it, and exits 1 once every target ran.
#
# Used by .ci/run (a short run) and bench/fuzz.sh (a long one). Installs
# cargo-fuzz when it is missing. As root, the targets run in a network
# namespace of their own (the config target resolves listen addresses).
set -euo pipefail
cd "$(dirname "$0")"

time_each=20
parallel=$(nproc 2>/dev/null || echo 2)
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --time) time_each=$2; shift 2 ;;
    --parallel) parallel=$2; shift 2 ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) targets+=("$1"); shift ;;
  esac
done

if ! command -v cargo-fuzz >/dev/null; then
  echo "fuzz/run.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

# A build of its own beside the workspace's (other RUSTFLAGS would rebuild
# the workspace's artifacts every time).
work=${CARGO_TARGET_DIR:-$PWD/../target}/fuzz
export CARGO_TARGET_DIR=$work/build
mkdir -p "$work"
# cargo-fuzz passes -Z flags only for sanitizers; the sancov flags it uses
# are stable codegen options, but it checks for a nightly toolchain.
export RUSTC_BOOTSTRAP=1
# 16 codegen units: a build several times faster for a slightly slower fuzzer.
build=(cargo fuzz build --sanitizer none --debug-assertions --codegen-units 16)

if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
started=$(date +%s)
# Every target is built (cargo fuzz builds one or all).
if ! "${build[@]}" >"$work/build.log" 2>&1; then
  grep -v '^\s*Compiling ' "$work/build.log" >&2
  echo "fuzz/run.sh: build failed" >&2
  exit 1
fi
bin=$CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release
echo "fuzz/run.sh: built ${#targets[@]} targets in $(( $(date +%s) - started ))s; running each for ${time_each}s, ${parallel} at a time" >&2

netns=()
if [ "$(id -u)" = 0 ] && command -v unshare >/dev/null && unshare -n true 2>/dev/null; then
  netns=(unshare -n)
fi

run_one() {
  local target=$1 corpus=$work/corpus/$1 artifacts=$work/artifacts/$1 dict=()
  mkdir -p "$corpus" "$artifacts"
  [ -f "dict/$target.dict" ] && dict=(-dict="dict/$target.dict")
  "${netns[@]}" "$bin/$target" -max_total_time="$time_each" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 "${dict[@]}" -artifact_prefix="$artifacts/" \
    "$corpus" "corpus/$target" >"$work/$target.log" 2>&1
}

failed=()
running=0
for target in "${targets[@]}"; do
  [ -x "$bin/$target" ] || { echo "fuzz/run.sh: no target $target" >&2; exit 2; }
  rm -f "$work/$target.status"
  ( if run_one "$target"; then echo ok; else echo failed; fi >"$work/$target.status" ) &
  running=$((running + 1))
  if [ "$running" -ge "$parallel" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait

printf '%-14s %-7s %12s %10s %8s\n' target result runs "runs/s" corpus
for target in "${targets[@]}"; do
  log=$work/$target.log
  status=$(cat "$work/$target.status" 2>/dev/null || echo failed)
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
  units=$(find "$work/corpus/$target" -type f | wc -l)
  printf '%-14s %-7s %12s %10s %8s\n' "$target" "$status" "${runs:-0}" "${rate:-0}" "$units"
  if [ "$status" != ok ]; then
    failed+=("$target")
  fi
done

for target in "${failed[@]}"; do
  log=$work/$target.log
  echo
  echo "=== fuzz target $target failed; the end of its log:"
  tail -n 40 "$log"
  input=$(grep -o "Test unit written to [^ ]*" "$log" | tail -n 1 | sed 's/Test unit written to //')
  if [ -n "$input" ] && [ -f "$input" ]; then
    echo "=== the input ($input), base64:"
    base64 -w 0 "$input"; echo
    echo "=== replay: (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -s none -a $target $input)"
    echo "    then keep it as a regression seed: cp $input fuzz/corpus/$target/"
  fi
done
[ ${#failed[@]} -eq 0 ]
