#!/usr/bin/env bash
# scripts/chaos.sh: the chaos soak on its own private servers (tests/chaos/, README "Reliability").
#
#   scripts/chaos.sh [--duration 30m] [--seed N] [--rate JOBS_PER_S] [--quiet-timeout 240s]
#
# Builds build/ if needed, starts a fresh Postgres and RabbitMQ under .run-chaos/ (ports
# WARREN_STACK_PG_PORT 55443, WARREN_STACK_AMQP_PORT 56722, WARREN_STACK_MGMT_PORT 56732,
# WARREN_STACK_DIST_PORT 56742: apart from scripts/test.sh and scripts/up.sh, so it can run
# beside them), runs build/bin/warren-chaos with the arguments, and stops the servers by PID.
# The soak restarts those servers itself. Without --seed a random one is used and printed; pass
# it back to replay a failure's workload and fault schedule. Exit status: warren-chaos's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR source=lib/stack.sh
source "$ROOT/scripts/lib/stack.sh"

BUILD_DIR=${WARREN_BUILD_DIR:-build}
STACK_DIR=$ROOT/.run-chaos
export WARREN_STACK_PG_PORT=${WARREN_STACK_PG_PORT:-55443}
export WARREN_STACK_AMQP_PORT=${WARREN_STACK_AMQP_PORT:-56722}
export WARREN_STACK_MGMT_PORT=${WARREN_STACK_MGMT_PORT:-56732}
export WARREN_STACK_DIST_PORT=${WARREN_STACK_DIST_PORT:-56742}

scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target warren-chaos

STACK_STARTED=0
# shellcheck disable=SC2317  # (called by the EXIT trap)
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  ((STACK_STARTED)) && { stack_stop "$STACK_DIR" || rc=1; }
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

STACK_STARTED=1
stack_wipe "$STACK_DIR"
rm -rf -- "$STACK_DIR"
stack_start "$STACK_DIR"
export WARREN_TEST_DATABASE_URL WARREN_TEST_AMQP_URL WARREN_TEST_RABBITMQ_MANAGEMENT_URL
# shellcheck source=/dev/null
WARREN_TEST_DATABASE_URL=$(source "$STACK_DIR/env" && echo "$WARREN_DATABASE_URL")
# shellcheck source=/dev/null
WARREN_TEST_AMQP_URL=$(source "$STACK_DIR/env" && echo "$WARREN_AMQP_URL")
# shellcheck source=/dev/null
WARREN_TEST_RABBITMQ_MANAGEMENT_URL=$(source "$STACK_DIR/env" && echo "$WARREN_RABBITMQ_MANAGEMENT_URL")
export WARREN_TEST_STACK_DIR=$STACK_DIR
export WARREN_TEST_STACK_SCRIPT=$ROOT/scripts/stack.sh

"$BUILD_DIR/bin/warren-chaos" "$@"
