#!/usr/bin/env bash
# scripts/test.sh: THE test command (the README's, and what .ci/run calls).
#
#   scripts/test.sh [extra ctest arguments]      e.g.  scripts/test.sh -R Submit
#
# 1. installs missing Debian packages (scripts/install-deps.sh; instant when all are there)
# 2. configures and builds into build/ (RelWithDebInfo, warnings are errors)
# 3. starts a fresh private Postgres and RabbitMQ under .run-test/ (scripts/lib/stack.sh), on
#    ports that do not collide with the local stack of scripts/up.sh:
#      WARREN_STACK_PG_PORT (55442)   WARREN_STACK_AMQP_PORT (56721)
#      WARREN_STACK_MGMT_PORT (56731) WARREN_STACK_DIST_PORT (56741)
#      WARREN_STACK_AMQPS_PORT (56751)
# 4. runs the unit tests (ctest -L unit), the integration tests (ctest -L integration) and the
#    chaos soak's short form (ctest -L chaos, about 3 minutes; tests/chaos/) and the benchmark
#    suite at its tiny size (ctest -L bench, under a minute; bench/), passing the extra
#    arguments to each (`scripts/test.sh -LE 'chaos|bench'` skips both). The tests find the
#    servers through
#      WARREN_TEST_DATABASE_URL             the warren role (CREATEDB) on database warren
#      WARREN_TEST_AMQP_URL                 amqp://guest:guest@127.0.0.1:PORT/%2f
#      WARREN_TEST_RABBITMQ_MANAGEMENT_URL  http://guest:guest@127.0.0.1:PORT
#      WARREN_TEST_AMQPS_PORT               the broker's TLS port (same users and vhost)
#      WARREN_TEST_TLS_CA                   the CA (PEM) that signed both servers' certificate
#      WARREN_TEST_STACK_DIR                the stack directory (absolute)
#      WARREN_TEST_STACK_SCRIPT             scripts/stack.sh (absolute), to stop and start
#                                           one server: "$WARREN_TEST_STACK_SCRIPT
#                                           stop-rabbitmq $WARREN_TEST_STACK_DIR"
# 5. always stops the servers it started (by PID), also on failure or Ctrl-C. Their data
#    and logs stay in .run-test/ until the next run, for post-mortems.
#
# Exits non-zero if any step or test fails. WARREN_BUILD_DIR (default build) changes the
# build directory.
#
# Sanitizers: WARREN_SANITIZE=address,undefined (or thread) builds with them into build-asan
# (build-tsan) instead and runs the same suites with every Warren process sanitized: a report
# makes the process exit non-zero, which fails its test (tests check exit statuses).
# `WARREN_SANITIZE=address,undefined scripts/test.sh -LE 'chaos|bench'` is the second step of
# .ci/run.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR source=lib/stack.sh
source "$ROOT/scripts/lib/stack.sh"

SANITIZE=${WARREN_SANITIZE:-}
case $SANITIZE in
  '') DEFAULT_BUILD_DIR=build ;;
  address,undefined) DEFAULT_BUILD_DIR=build-asan ;;
  thread) DEFAULT_BUILD_DIR=build-tsan ;;
  *) echo "test.sh: WARREN_SANITIZE is address,undefined or thread, not '$SANITIZE'" >&2; exit 2 ;;
esac
BUILD_DIR=${WARREN_BUILD_DIR:-$DEFAULT_BUILD_DIR}
# Read by the sanitizer runtimes of every test binary and every Warren process they start.
# halt_on_error: the first report ends the process with a failure, so no report goes unseen.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$ROOT/tests/sanitizers/lsan.supp}
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}
STACK_DIR=$ROOT/.run-test
export WARREN_STACK_PG_PORT=${WARREN_STACK_PG_PORT:-55442}
export WARREN_STACK_AMQP_PORT=${WARREN_STACK_AMQP_PORT:-56721}
export WARREN_STACK_MGMT_PORT=${WARREN_STACK_MGMT_PORT:-56731}
export WARREN_STACK_DIST_PORT=${WARREN_STACK_DIST_PORT:-56741}
export WARREN_STACK_AMQPS_PORT=${WARREN_STACK_AMQPS_PORT:-56751}

T_START=$(date +%s)
PHASE_NAME='' PHASE_T0=0
SUMMARY=()

phase() { # NAME: start timing a phase (and close the previous one)
  phase_end
  PHASE_NAME=$1 PHASE_T0=$(date +%s)
  printf '\n==== %s\n' "$PHASE_NAME" >&2
}
phase_end() { # [RESULT]
  [[ -n $PHASE_NAME ]] || return 0
  local line
  line=$(printf '%-22s %4d s  %s' "$PHASE_NAME" $(($(date +%s) - PHASE_T0)) "${1:-ok}")
  SUMMARY+=("$line")
  printf '==== %s\n' "$line" >&2
  PHASE_NAME=''
}

STACK_STARTED=0
# shellcheck disable=SC2317  # (called by the EXIT trap)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n $PHASE_NAME ]] && phase_end "FAILED"
  if ((STACK_STARTED)); then
    printf '\n==== stopping the test servers\n' >&2
    stack_stop "$STACK_DIR" || rc=1
  fi
  printf '\n==== summary (total %d s)\n' $(($(date +%s) - T_START)) >&2
  ((${#SUMMARY[@]})) && printf '  %s\n' "${SUMMARY[@]}" >&2
  if ((rc == 0)); then echo "test.sh: PASSED" >&2; else echo "test.sh: FAILED (exit $rc)" >&2; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

phase "install-deps"
scripts/install-deps.sh

phase "configure"
# ccache keeps rebuilds short, also in a fresh clone elsewhere (CI clones main anew each time):
# paths are hashed relative to the clone (BASEDIR, NOHASHDIR), and the sloppiness lets it cache
# compilations that use the precompiled headers.
export CCACHE_BASEDIR=$ROOT CCACHE_NOHASHDIR=true
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWARREN_WERROR=ON \
  -DWARREN_SANITIZE="$SANITIZE" -DCMAKE_CXX_COMPILER_LAUNCHER=ccache

phase "build"
cmake --build "$BUILD_DIR"

phase "start servers"
# Leftover servers of an earlier run (killed before it could clean up) are stopped by the
# PIDs recorded in .run-test/, then everything there is deleted.
STACK_STARTED=1
stack_wipe "$STACK_DIR"
rm -rf -- "$STACK_DIR"
stack_start "$STACK_DIR"
stack_export_test_env "$STACK_DIR"
echo "WARREN_TEST_DATABASE_URL=$WARREN_TEST_DATABASE_URL" >&2
echo "WARREN_TEST_AMQP_URL=$WARREN_TEST_AMQP_URL" >&2
echo "WARREN_TEST_RABBITMQ_MANAGEMENT_URL=$WARREN_TEST_RABBITMQ_MANAGEMENT_URL" >&2

# Every suite runs even if an earlier one fails, so one run reports everything.
failed=0
suites_run=0
# A suite the extra arguments leave empty (`-LE chaos` for the soak) is reported as skipped;
# otherwise --no-tests=error makes a selection that matches nothing a failure, not a green run.
selected_tests() { # CTEST-LABEL [extra ctest arguments] -> how many tests they select
  ctest --test-dir "$BUILD_DIR" -N -L "$@" | sed -n 's/^Total Tests: //p'
}
run_suite() { # PHASE-NAME CTEST-LABEL [extra ctest arguments]
  phase "$1"
  if [[ $(selected_tests "${@:2}") == 0 ]]; then
    echo "no $2 test matches the arguments ${*:3}" >&2
    phase_end skipped
    return
  fi
  suites_run=$((suites_run + 1))
  if ctest --test-dir "$BUILD_DIR" --output-on-failure --no-tests=error -L "${@:2}"; then
    phase_end ok
  else
    phase_end FAILED
    failed=1
  fi
}
run_suite "unit tests" unit --parallel "$(nproc)" "$@"  # pure logic: safe to run side by side
run_suite "integration tests" integration "$@"
run_suite "chaos soak (short)" chaos "$@"
run_suite "benchmark (tiny)" bench "$@"  # proves bench/ works; no threshold (scripts/bench.sh)
if ((suites_run == 0)); then
  echo "test.sh: the arguments $* select no test at all" >&2
  failed=1
fi

exit "$failed"
