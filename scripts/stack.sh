#!/usr/bin/env bash
# scripts/stack.sh: start and stop a private Postgres 15 and RabbitMQ 3.10 under a directory.
#
# Usage: scripts/stack.sh COMMAND DIR
#   start DIR            start both servers (a server already running is left alone)
#   stop DIR             stop both servers (data is kept: a later start finds it again)
#   start-postgres DIR   stop-postgres DIR     one server only (tests use these to simulate
#   start-rabbitmq DIR   stop-rabbitmq DIR     a database or broker outage)
#   status DIR           show what runs; exit 0 only if both servers run
#   wipe DIR             stop both servers and delete their data
#
# After a start, "source DIR/env" exports WARREN_DATABASE_URL, WARREN_AMQP_URL,
# WARREN_RABBITMQ_MANAGEMENT_URL, WARREN_STACK_DIR, and for TLS WARREN_STACK_TLS_CA and
# WARREN_STACK_AMQPS_PORT. Ports are chosen on the first start from WARREN_STACK_PG_PORT (55432),
# WARREN_STACK_AMQP_PORT (56720), WARREN_STACK_MGMT_PORT (56730), WARREN_STACK_DIST_PORT (56740)
# and WARREN_STACK_AMQPS_PORT (56750), then remembered in DIR/stack.env.
# The real work is in scripts/lib/stack.sh, which explains the layout of DIR.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib/stack.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/stack.sh"

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[[ $# == 2 && -n $2 ]] || usage
command=$1 dir=$2

case $command in
  start) stack_start "$dir" ;;
  stop) stack_stop "$dir" ;;
  start-postgres) stack_start_postgres "$dir" ;;
  stop-postgres) stack_stop_postgres "$dir" ;;
  start-rabbitmq) stack_start_rabbitmq "$dir" ;;
  stop-rabbitmq) stack_stop_rabbitmq "$dir" ;;
  status) stack_status "$dir" ;;
  wipe) stack_wipe "$dir" ;;
  *) usage ;;
esac
