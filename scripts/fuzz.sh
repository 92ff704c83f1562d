#!/usr/bin/env bash
# scripts/fuzz.sh: build the libFuzzer targets of tests/fuzz/ and run each for a bounded time
# (what CI runs for fuzzing; the seeds also run as unit tests in every normal build).
#
#   scripts/fuzz.sh [target...]      targets: job_request job_message delay_route api_tokens
#                                    (default: all of them)
#
# 1. installs missing Debian packages (scripts/install-deps.sh: clang-14, libclang-rt-14-dev,
#    llvm-14 for symbolized reports; instant when all are there)
# 2. configures build-fuzz/ with clang-14 and WARREN_FUZZ=ON (Ninja, ccache when installed) and
#    builds only the fuzz targets (`--target warren_fuzzers`: a few shared sources, not the
#    whole project), with -fsanitize=fuzzer,address,undefined
# 3. runs each target for WARREN_FUZZ_SECONDS (default 30) seconds, one after the other, on a
#    fresh COPY of its seed corpus tests/fuzz/corpus/<target>/ (new inputs go to the copy, in
#    build-fuzz/fuzz-runs/<target>/corpus/, never into the repository), with its dictionary
#    tests/fuzz/<target>.dict when there is one, and prints one line per target: executions,
#    coverage (libFuzzer's cov: edges and ft: features), corpus size and new entries.
#
# Exits non-zero when any target finds a crash, a sanitizer report, a leak, an out-of-memory or
# a timeout; the reproducer's path and the end of the report are printed, the whole log is in
# build-fuzz/fuzz-runs/<target>/fuzz.log. To turn a finding into a regression test: fix the
# bug, copy the reproducer into tests/fuzz/corpus/<target>/ (the replay test fuzz_replay_<target>
# then runs it in every build) and add a focused unit test. Reproduce one input with
#   build-fuzz/tests/fuzz/<target>_fuzzer <file>
#
# Environment: WARREN_FUZZ_SECONDS (30), WARREN_FUZZ_BUILD_DIR (build-fuzz). Run it niced on a
# shared machine: `nice -n 10 scripts/fuzz.sh`.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

BUILD_DIR=${WARREN_FUZZ_BUILD_DIR:-build-fuzz}
FUZZ_SECONDS=${WARREN_FUZZ_SECONDS:-30}
ALL_TARGETS=(job_request job_message delay_route api_tokens)

# Longest input libFuzzer may generate, per target: room for every field of a request or a
# message with its headers, a routing key beyond AMQP's 255 bytes, a token file of ~100 lines.
declare -A MAX_LEN=([job_request]=8192 [job_message]=8192 [delay_route]=512 [api_tokens]=4096)

targets=("$@")
((${#targets[@]})) || targets=("${ALL_TARGETS[@]}")
for target in "${targets[@]}"; do
  if [[ -z ${MAX_LEN[$target]:-} ]]; then
    echo "fuzz.sh: unknown target '$target' (known: ${ALL_TARGETS[*]})" >&2
    exit 2
  fi
done
[[ $FUZZ_SECONDS =~ ^[1-9][0-9]*$ ]] || {
  echo "fuzz.sh: WARREN_FUZZ_SECONDS must be a positive number of seconds" >&2
  exit 2
}

scripts/install-deps.sh

echo "==== configure $BUILD_DIR (clang-14, WARREN_FUZZ=ON)" >&2
cmake_args=(-S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWARREN_FUZZ=ON
  -DWARREN_BUILD_TESTS=OFF)
if command -v ccache >/dev/null; then cmake_args+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
CC=clang-14 CXX=clang++-14 cmake "${cmake_args[@]}" >/dev/null

echo "==== build ${targets[*]/%/_fuzzer}" >&2
t0=$(date +%s)
cmake --build "$BUILD_DIR" --target "${targets[@]/%/_fuzzer}"
echo "==== built in $(($(date +%s) - t0)) s" >&2

# Reports name functions and lines; every sanitizer finding aborts so libFuzzer saves it.
SYMBOLIZER=$(command -v llvm-symbolizer-14 || command -v llvm-symbolizer || true)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:symbolize=1${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1${SYMBOLIZER:+:external_symbolizer_path=$SYMBOLIZER}

# stat::NAME from libFuzzer's -print_final_stats, or "?".
fuzz_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1 | grep . || echo '?'; }

failed=()
results=()
for target in "${targets[@]}"; do
  binary=$BUILD_DIR/tests/fuzz/${target}_fuzzer
  run_dir=$ROOT/$BUILD_DIR/fuzz-runs/$target
  rm -rf -- "$run_dir"
  mkdir -p "$run_dir/corpus" "$run_dir/artifacts"
  cp -R "tests/fuzz/corpus/$target/." "$run_dir/corpus/"
  seeds=$(find "$run_dir/corpus" -type f | wc -l)
  args=(-max_total_time="$FUZZ_SECONDS" -max_len="${MAX_LEN[$target]}" -timeout=10
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$run_dir/artifacts/")
  [[ -f tests/fuzz/$target.dict ]] && args+=(-dict="tests/fuzz/$target.dict")
  echo "==== $target: ${FUZZ_SECONDS} s from $seeds seeds" >&2
  rc=0
  "$binary" "${args[@]}" "$run_dir/corpus" >"$run_dir/fuzz.log" 2>&1 || rc=$?

  execs=$(fuzz_stat number_of_executed_units "$run_dir/fuzz.log")
  per_second=$(fuzz_stat average_exec_per_sec "$run_dir/fuzz.log")
  new_units=$(fuzz_stat new_units_added "$run_dir/fuzz.log")
  # The last status line: "#N  DONE   cov: 1234 ft: 5678 corp: 90/12Kb ..."
  last=$(grep -E '^#[0-9]+' "$run_dir/fuzz.log" | tail -n 1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
  units=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
  # Files: the seeds plus what libFuzzer wrote (new inputs; reductions replace theirs);
  # units: libFuzzer's own corpus at the end; added: its count of new units over the run.
  files=$(find "$run_dir/corpus" -type f | wc -l)
  line=$(printf '%-11s %-6s execs %-8s (%5s/s)  cov %-5s ft %-6s corpus %3s -> %-5s (+%s new files; %s units, %s added)' \
    "$target" "$( ((rc == 0)) && echo ok || echo FAILED)" "$execs" "$per_second" "${cov:-?}" \
    "${ft:-?}" "$seeds" "$files" "$((files - seeds))" "${units:-?}" "$new_units")
  results+=("$line")
  echo "$line" >&2
  if ((rc != 0)); then
    failed+=("$target")
    echo "---- $target: libFuzzer exited $rc; end of $run_dir/fuzz.log:" >&2
    grep -E 'ERROR: |SUMMARY: |invariant violated|runtime error|unexpected exception|DEADLYSIGNAL' \
      "$run_dir/fuzz.log" | head -n 8 >&2 || true
    tail -n 25 "$run_dir/fuzz.log" >&2
    for artifact in "$run_dir"/artifacts/*; do
      [[ -e $artifact ]] || continue
      echo "---- $target: reproducer $artifact  (rerun: $binary $artifact)" >&2
    done
  fi
done

printf '\n==== fuzz summary (%s s per target, logs in %s/fuzz-runs/)\n' "$FUZZ_SECONDS" \
  "$BUILD_DIR" >&2
printf '  %s\n' "${results[@]}" >&2
if ((${#failed[@]})); then
  echo "fuzz.sh: FAILED: findings in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: PASSED" >&2
