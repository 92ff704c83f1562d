#!/usr/bin/env bash
# scripts/bench.sh: Warren's benchmark suite (bench/, issue 6) on its own private servers.
#
#   scripts/bench.sh [--record] [warren-bench arguments]
#       e.g. scripts/bench.sh                       every scenario at full size (~10 minutes)
#            scripts/bench.sh --only floor,drain    some of them
#            scripts/bench.sh --size tiny           N=500, what CI runs (ctest -L bench)
#            scripts/bench.sh --record              and append the table to bench/RESULTS.md
#
# Builds build/ (release flags: RelWithDebInfo, as users run it), starts a fresh Postgres at
# its durable defaults (fsync, synchronous_commit, full_page_writes on) and RabbitMQ under
# .run-bench/ (ports WARREN_STACK_PG_PORT 55444, WARREN_STACK_AMQP_PORT 56723,
# WARREN_STACK_MGMT_PORT 56733, WARREN_STACK_DIST_PORT 56743, WARREN_STACK_AMQPS_PORT 56753:
# apart from test.sh, chaos.sh and up.sh), runs build/bin/warren-bench, and stops the servers
# by PID. The markdown table goes to stdout, the JSON to .run-bench/bench-results.json, every
# Warren process's log to .run-bench/bench-logs/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR source=lib/stack.sh
source "$ROOT/scripts/lib/stack.sh"

RECORD=0
ARGS=()
for arg in "$@"; do
  if [[ $arg == --record ]]; then RECORD=1; else ARGS+=("$arg"); fi
done

BUILD_DIR=${WARREN_BUILD_DIR:-build}
STACK_DIR=$ROOT/.run-bench
export WARREN_STACK_PG_PORT=${WARREN_STACK_PG_PORT:-55444}
export WARREN_STACK_AMQP_PORT=${WARREN_STACK_AMQP_PORT:-56723}
export WARREN_STACK_MGMT_PORT=${WARREN_STACK_MGMT_PORT:-56733}
export WARREN_STACK_DIST_PORT=${WARREN_STACK_DIST_PORT:-56743}
export WARREN_STACK_AMQPS_PORT=${WARREN_STACK_AMQPS_PORT:-56753}

scripts/install-deps.sh
export CCACHE_BASEDIR=$ROOT CCACHE_NOHASHDIR=true
export CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER_LAUNCHER=ccache >/dev/null
cmake --build "$BUILD_DIR" --target warren-bench >&2

stack_start_private "$STACK_DIR"
WARREN_BENCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || WARREN_BENCH_COMMIT+="+changes"
export WARREN_BENCH_COMMIT

"$BUILD_DIR/bin/warren-bench" --json "$STACK_DIR/bench-results.json" "${ARGS[@]}" |
  tee "$STACK_DIR/bench-results.md"
if ((RECORD)); then
  { echo; cat "$STACK_DIR/bench-results.md"; } >>bench/RESULTS.md
  echo "bench.sh: appended to bench/RESULTS.md" >&2
fi
