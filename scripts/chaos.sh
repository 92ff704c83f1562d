#!/usr/bin/env bash
# scripts/chaos.sh: the chaos soak on its own private servers (tests/chaos/, README "Reliability").
#
#   scripts/chaos.sh [--duration 30m] [--seed N] [--rate JOBS_PER_S] [--quiet-timeout 240s]
#
# Builds build/ if needed, starts a fresh Postgres and RabbitMQ under .run-chaos/ (ports
# WARREN_STACK_PG_PORT 55443, WARREN_STACK_AMQP_PORT 56722, WARREN_STACK_MGMT_PORT 56732,
# WARREN_STACK_DIST_PORT 56742, WARREN_STACK_AMQPS_PORT 56752: apart from scripts/test.sh and
# scripts/up.sh, so it can run beside them), runs build/bin/warren-chaos with the arguments, and stops the servers by PID.
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
export WARREN_STACK_AMQPS_PORT=${WARREN_STACK_AMQPS_PORT:-56752}

scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" --target warren-chaos

stack_start_private "$STACK_DIR"

"$BUILD_DIR/bin/warren-chaos" "$@"
