#!/usr/bin/env bash
# bench/fuzz.sh [SECONDS] [TARGET...]
#
# The long fuzzing run: every fuzz target (or those named) for SECONDS
# each (600 by default), one at a time at the lowest priority, so it can
# run beside other work. The working corpus grows across runs in
# $CARGO_TARGET_DIR/fuzz/corpus; a crash stops nothing else and is printed
# with its replay command at the end (see fuzz/run.sh). CI runs the same
# targets for 15 s each.
set -euo pipefail
cd "$(dirname "$0")/.."
time_each=${1:-600}
[ $# -gt 0 ] && shift
exec nice -n 19 fuzz/run.sh --time "$time_each" --parallel 1 "$@"
