#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang 16+, AGENTOS_FUZZ=ON) and runs
# each one for a bounded time on a copy of its seed corpus, so nothing is
# written into the repository. Fails if any target crashes, leaks, times out
# or runs out of memory; the input that did it is left in
# <build>/fuzz-run/<target>/ with the command that reproduces it.
#
#   scripts/run-fuzzers.sh [seconds-per-target, default 60] [build dir, default build-fuzz]
#
# Environment: FUZZ_TARGETS="a b" runs only those; JOBS (default: nproc)
# for the build; WERROR=OFF to build without -Werror.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_PER_TARGET=${1:-60}
BUILD=${2:-build-fuzz}
JOBS=${JOBS:-$(nproc)}

die() { echo "run-fuzzers: $*" >&2; exit 1; }
[[ $SECONDS_PER_TARGET =~ ^[0-9]+$ ]] && [ "$SECONDS_PER_TARGET" -gt 0 ] ||
  die "seconds per target must be a positive whole number, got '$SECONDS_PER_TARGET'"

# The first clang++ of version 16 or newer (see fuzz/CMakeLists.txt for why 16).
find_clang() {
  local c v
  for c in clang++-19 clang++-18 clang++-17 clang++-16 clang++; do
    command -v "$c" >/dev/null || continue
    v=$("$c" -dumpversion 2>/dev/null | cut -d. -f1)
    if [ "${v:-0}" -ge 16 ]; then echo "$c"; return 0; fi
  done
  return 1
}
CXX_BIN=$(find_clang) || die "no clang++ 16 or newer; install it with: sudo apt-get install -y clang-16 libclang-rt-16-dev"
# Stacks with function names and lines: the symbolizer of the same LLVM.
symbolizer=/usr/lib/llvm-$("$CXX_BIN" -dumpversion | cut -d. -f1)/bin/llvm-symbolizer
if [ -z "${ASAN_SYMBOLIZER_PATH:-}" ] && [ -x "$symbolizer" ]; then export ASAN_SYMBOLIZER_PATH=$symbolizer; fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B "$BUILD" -DCMAKE_CXX_COMPILER="$CXX_BIN" -DAGENTOS_FUZZ=ON -DAGENTOS_BUILD_TESTS=OFF \
  -DAGENTOS_BUILD_BENCH=OFF -DAGENTOS_WERROR="${WERROR:-ON}" "${launcher[@]}" >/dev/null
cmake --build "$BUILD" -j"$JOBS" --target fuzzers

targets=${FUZZ_TARGETS:-$(cat "$BUILD/fuzz/targets.txt")}
RUN_DIR=$BUILD/fuzz-run
# Leaks are errors; UBSan findings abort (the targets are built with
# -fno-sanitize-recover=all) and print where they happened.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# "<key>: <value>" from libFuzzer's -print_final_stats lines, or "?".
stat_of() { sed -n "s/^stat::$2: *//p" "$1" | tail -1 | grep . || echo "?"; }
# The last "cov:"/"ft:"/"corp:" figure libFuzzer printed.
figure_of() { grep -o "$2: [0-9/a-zA-Z]*" "$1" | tail -1 | cut -d' ' -f2 | grep . || echo "?"; }

failed=()
summary=()
for t in $targets; do
  bin=$BUILD/fuzz/$t
  [ -x "$bin" ] || die "no fuzz target $bin (known: $(tr '\n' ' ' < "$BUILD/fuzz/targets.txt"))"
  work=$RUN_DIR/$t
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  if [ -d "fuzz/corpus/$t" ]; then cp -r "fuzz/corpus/$t/." "$work/corpus/"; fi
  seeds=$(find "$work/corpus" -type f | wc -l)
  dict=()
  case $t in
    fuzz_frame_decoder | fuzz_connection) dict=(-dict="$ROOT/fuzz/dict/frame.dict") ;;
    fuzz_config_file) dict=(-dict="$ROOT/fuzz/dict/toml.dict") ;;
    *) dict=(-dict="$ROOT/fuzz/dict/json.dict") ;;
  esac
  echo "== $t: ${SECONDS_PER_TARGET}s from $seeds seed(s)"
  status=0
  "$bin" -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/artifacts/" "${dict[@]}" "$work/corpus" >"$work/log" 2>&1 || status=$?
  result=ok
  if [ "$status" -ne 0 ]; then
    result="FAILED (exit $status)"
    failed+=("$t")
    grep -E "ERROR: |runtime error:|FUZZ_CHECK|SUMMARY:" "$work/log" | head -5 >&2 || true
    for a in "$work"/artifacts/*; do
      [ -e "$a" ] && echo "   reproduce: $bin $a" >&2
    done
    echo "   full log: $work/log" >&2
  fi
  summary+=("$(printf '%-20s %10s %8s %6s %6s %9s  %s' "$t" "$(stat_of "$work/log" number_of_executed_units)" \
    "$(stat_of "$work/log" average_exec_per_sec)" "$(figure_of "$work/log" cov)" "$(figure_of "$work/log" ft)" \
    "$seeds>$(find "$work/corpus" -type f | wc -l)" "$result")")
done

echo
printf '%-20s %10s %8s %6s %6s %9s  %s\n' target execs exec/s cov ft corpus result
printf '%s\n' "${summary[@]}"
total=$(echo $targets | wc -w)
echo "fuzzers: $((total - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "run-fuzzers: failed: ${failed[*]}" >&2
  exit 1
fi
