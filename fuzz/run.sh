#!/usr/bin/env bash
# Searches for new findings: builds the fuzz targets (fuzz/fuzz.h) with clang,
# libFuzzer, ASan and UBSan in BUILD_DIR (default build-fuzz beside fuzz/),
# then runs the targets one after another, each for FUZZ_SECONDS (default
# 300), starting from its corpus, fuzz/corpus/<target>/ (history starts
# from change_chunk's: its input is the same).
#
#   fuzz/run.sh [TARGET...]      (default: every target)
#
# New inputs go to BUILD_DIR/corpus/<target>/, not into the tree. A finding
# (crash, sanitizer report, timeout of 5 s, or over 2 GB) stops its target
# and is written to BUILD_DIR/findings/<target>/; the script exits 1 if any
# target found one. To keep a finding once it is fixed, copy it into
# fuzz/corpus/<target>/: `make test` replays that corpus. To fold the new
# inputs into the corpus, `BUILD_DIR/etherply_fuzz_<target> -merge=1
# fuzz/corpus/<target> BUILD_DIR/corpus/<target>`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD_DIR:-$ROOT/build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-300}
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=(change_chunk sync_message client_input history)
corpus_of() { [[ $1 == history ]] && echo change_chunk || echo "$1"; }  # the same input

command -v clang++ >/dev/null || { echo "fuzz/run.sh: clang++ is required (scripts/setup.sh clang)" >&2; exit 1; }
CXX=clang++ cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DETHERPLY_SANITIZE=ON -DETHERPLY_FUZZ=ON -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link >/dev/null
cmake --build "$BUILD" -j "$(nproc)" --target "${TARGETS[@]/#/etherply_fuzz_}"

found=0
for t in "${TARGETS[@]}"; do
  mkdir -p "$BUILD/corpus/$t" "$BUILD/findings/$t"
  echo "fuzz/run.sh: $t for ${SECONDS_EACH}s" >&2
  if ! "$BUILD/etherply_fuzz_$t" -max_total_time="$SECONDS_EACH" -timeout=5 -rss_limit_mb=2048 \
      -max_len=8192 -print_final_stats=1 -artifact_prefix="$BUILD/findings/$t/" \
      "$BUILD/corpus/$t" "$ROOT/fuzz/corpus/$(corpus_of "$t")" >"$BUILD/$t.log" 2>&1; then
    found=1
    echo "fuzz/run.sh: $t: FINDING, see $BUILD/$t.log and $BUILD/findings/$t/" >&2
  fi
  grep -E '^stat::(number_of_executed_units|peak_rss_mb)' "$BUILD/$t.log" | sed "s/^/  $t: /" >&2 || true
done
exit $found
