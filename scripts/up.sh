#!/usr/bin/env bash
# scripts/up.sh: run Warren locally with one command (the README's first command).
#
#   scripts/up.sh              install, build, start everything, stay in the foreground;
#                              Ctrl-C stops everything it started
#   scripts/up.sh --detach     the same, but return once everything is ready
#   scripts/up.sh down         stop what an earlier scripts/up.sh started (from any terminal)
#   scripts/up.sh --no-build   (with or without --detach) skip install-deps and the build
#
# What it does:
#   1. scripts/install-deps.sh (installs missing Debian packages; instant when all are there)
#   2. cmake configure + build into build/ (RelWithDebInfo)
#   3. a private Postgres and RabbitMQ under .run/ (scripts/lib/stack.sh), on ports
#      WARREN_STACK_PG_PORT (55432), WARREN_STACK_AMQP_PORT (56720), WARREN_STACK_MGMT_PORT
#      (56730), WARREN_STACK_DIST_PORT (56740); "source .run/env" gives their URLs
#   4. build/bin/warrenctl migrate and topology declare
#   5. an API token file .run/api-tokens (created once: "dev-admin <token> admin")
#   6. one producer on 127.0.0.1:${WARREN_STACK_HTTP_PORT:-58080} and, when the binary
#      exists, two consumers (health endpoints on 127.0.0.1:59091 and 59092)
#   7. waits until the producer's /readyz answers 200, then prints how to use it
#
# Everything runs in the background with its PID in .run/*.pid and its log in .run/logs/
# (servers: .run/postgres/postgres.log, .run/rabbitmq/log/). Stopping uses those PIDs only:
# nothing this script did not start is ever signalled (the machine's shared epmd included).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source-path=SCRIPTDIR source=lib/stack.sh
source "$ROOT/scripts/lib/stack.sh"

RUN_DIR=$ROOT/.run
LOG_DIR=$RUN_DIR/logs
BIN=$ROOT/build/bin
HTTP_PORT=${WARREN_STACK_HTTP_PORT:-58080}
CONSUMER_HEALTH_PORTS=(59091 59092)
APPS=(producer consumer-1 consumer-2)

say() { printf 'up: %s\n' "$*" >&2; }
die() {
  printf 'up: error: %s\n' "$*" >&2
  exit 1
}
usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

mode=foreground build=1
for arg in "$@"; do
  case $arg in
    --detach | -d) mode=detach ;;
    --no-build) build=0 ;;
    down | stop) mode=down ;;
    -h | --help) usage ;;
    *) usage ;;
  esac
done

# ---------------------------------------------------------------------------------------
# Our own processes (producer, consumers): started with their PID in .run/NAME.pid

app_pid() { # NAME -> PID of the running process, or return 1
  local pid binary=warren-${1%-[0-9]} # producer -> warren-producer, consumer-2 -> warren-consumer
  pid=$(_stack_read_pid "$RUN_DIR/$1.pid") || return 1
  _stack_alive "$pid" "$binary" || return 1
  printf '%s\n' "$pid"
}

app_running() { [[ -n $(app_pid "$1") ]]; } # (tests without redirecting our output)

start_app() { # NAME BINARY [VAR=VALUE...]
  local name=$1 binary=$2 pid
  shift 2
  if pid=$(app_pid "$name"); then
    say "$name: already running (pid $pid)"
    return 0
  fi
  mkdir -p "$LOG_DIR"
  echo "==== $(date '+%F %T') starting $name" >>"$LOG_DIR/$name.log"
  # Own session (setsid): a Ctrl-C in the terminal reaches this script only, which then
  # stops everything in order; --detach'ed processes survive the terminal.
  env "$@" setsid -w "$binary" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
  pid=$!
  echo "$pid" >"$RUN_DIR/$name.pid"
  say "$name: started (pid $pid), log $LOG_DIR/$name.log"
}

stop_apps() { # NAME...: SIGTERM those that run, then wait for them (30 s grace, then SIGKILL)
  local name pid i pids=() names=()
  for name in "$@"; do
    if pid=$(app_pid "$name"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid") names+=("$name")
    fi
  done
  for i in "${!pids[@]}"; do
    if ! _stack_wait_gone "${pids[$i]}" 30; then
      say "${names[$i]}: still alive after 30 s, sending SIGKILL to pid ${pids[$i]}"
      kill -KILL "${pids[$i]}" 2>/dev/null || true
      _stack_wait_gone "${pids[$i]}" 5 || true
    fi
    say "${names[$i]}: stopped (pid ${pids[$i]})"
  done
  for name in "$@"; do rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.port"; done
}

stop_everything() {
  local rc=0
  # Consumers first (they finish in-flight work while Postgres and RabbitMQ still run),
  # then the producer, then the servers.
  stop_apps consumer-1 consumer-2 || rc=1
  stop_apps producer || rc=1
  if [[ -f $RUN_DIR/stack.env ]]; then stack_stop "$RUN_DIR" || rc=1; fi
  return $rc
}

# ---------------------------------------------------------------------------------------
# down

if [[ $mode == down ]]; then
  # A foreground scripts/up.sh still running elsewhere: ask it to stop everything itself.
  if pid=$(_stack_read_pid "$RUN_DIR/up.pid") && _stack_alive "$pid" up.sh && ((pid != $$)); then
    say "asking the foreground scripts/up.sh (pid $pid) to stop everything"
    kill -TERM "$pid" 2>/dev/null || true
    _stack_wait_gone "$pid" 120 || say "scripts/up.sh (pid $pid) did not exit; stopping directly"
  fi
  rm -f "$RUN_DIR/up.pid"
  stop_everything
  say "everything stopped"
  exit 0
fi

# ---------------------------------------------------------------------------------------
# up

T0=$(date +%s)
if ((build)); then
  scripts/install-deps.sh
  say "building into build/ (cmake + ninja)"
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build build
fi

mkdir -p "$RUN_DIR" "$LOG_DIR"

# From here on, a failure (or Ctrl-C) stops everything this script manages.
on_exit() {
  local rc=$?
  trap - EXIT INT TERM HUP
  if ((rc != 0)) || [[ $mode == foreground ]]; then
    case $rc in
      0) ;;
      129 | 130 | 143) say "stopping everything" ;;
      *) say "failed; stopping everything (exit $rc)" ;;
    esac
    stop_everything || true
    rm -f "$RUN_DIR/up.pid"
  fi
  exit "$rc"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
if [[ $mode == foreground ]]; then echo $$ >"$RUN_DIR/up.pid"; fi

stack_start "$RUN_DIR"
# shellcheck source=/dev/null
source "$RUN_DIR/env" # WARREN_DATABASE_URL, WARREN_AMQP_URL, WARREN_RABBITMQ_MANAGEMENT_URL

if [[ -x $BIN/warrenctl ]]; then
  "$BIN/warrenctl" migrate
  "$BIN/warrenctl" topology declare
else
  say "build/bin/warrenctl does not exist (not built yet?): skipping migrate and topology declare"
fi

TOKENS_FILE=$RUN_DIR/api-tokens
if [[ ! -f $TOKENS_FILE ]]; then
  (
    umask 077
    printf '# name token scopes (see API.md, Authentication). Created by scripts/up.sh.\n' >"$TOKENS_FILE"
    printf 'dev-admin %s admin\n' "$(head -c 16 /dev/urandom | od -An -vtx1 | tr -d ' \n')" >>"$TOKENS_FILE"
  )
  say "created $TOKENS_FILE (token dev-admin, scope admin)"
fi
chmod 0600 "$TOKENS_FILE"
TOKEN=$(awk '!/^[[:space:]]*(#|$)/ { print $2; exit }' "$TOKENS_FILE")

have_producer=0
if [[ -x $BIN/warren-producer ]]; then
  have_producer=1
  # A producer still running from an earlier scripts/up.sh --detach keeps its port.
  if app_running producer && old_port=$(_stack_read_pid "$RUN_DIR/producer.port"); then
    if [[ -n ${WARREN_STACK_HTTP_PORT:-} && $old_port != "$HTTP_PORT" ]]; then
      say "ignoring WARREN_STACK_HTTP_PORT=$HTTP_PORT: the running producer keeps port $old_port"
    fi
    HTTP_PORT=$old_port
  fi
  if ! app_running producer && _stack_port_busy "$HTTP_PORT"; then
    die "port 127.0.0.1:$HTTP_PORT is in use by another program; choose another with WARREN_STACK_HTTP_PORT"
  fi
  start_app producer "$BIN/warren-producer" \
    "WARREN_HTTP_ADDR=127.0.0.1:$HTTP_PORT" "WARREN_API_TOKENS_FILE=$TOKENS_FILE"
  echo "$HTTP_PORT" >"$RUN_DIR/producer.port"
else
  say "build/bin/warren-producer does not exist (not built yet?): not starting the producer"
fi

if [[ -x $BIN/warren-consumer ]]; then
  for i in 1 2; do
    port=${CONSUMER_HEALTH_PORTS[$((i - 1))]}
    if ! app_running "consumer-$i" && _stack_port_busy "$port"; then
      die "port 127.0.0.1:$port (consumer-$i health) is in use by another program"
    fi
    start_app "consumer-$i" "$BIN/warren-consumer" \
      "WARREN_WORKER_ID=local-consumer-$i" "WARREN_HEALTH_ADDR=127.0.0.1:$port"
  done
else
  say "build/bin/warren-consumer does not exist (not built yet?): not starting consumers"
fi

if ((have_producer)); then
  say "waiting for http://127.0.0.1:$HTTP_PORT/readyz"
  ready=0
  for ((i = 0; i < 300; i++)); do
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz" || true)
    if [[ $code == 200 ]]; then ready=1 && break; fi
    app_running producer || break
    sleep 0.1
  done
  if ((!ready)); then
    _stack_tail_log "$LOG_DIR/producer.log" 30
    app_running producer || die "the producer exited during start (log above)"
    die "the producer's /readyz did not answer 200 within 30 s (last answer: ${code:-none}; log above)"
  fi
fi
for i in 1 2; do
  if [[ -f $RUN_DIR/consumer-$i.pid ]] && ! app_running "consumer-$i"; then
    _stack_tail_log "$LOG_DIR/consumer-$i.log" 30
    die "consumer-$i exited during start (log above)"
  fi
done

API=http://127.0.0.1:$HTTP_PORT
if ((have_producer)); then
  printf '\nWarren is up (%d s).\n' $(($(date +%s) - T0))
else
  printf '\nPostgres and RabbitMQ are up, but there is no producer yet (build/bin/warren-producer\n'
  printf 'is missing): the API below is not available.\n'
fi
cat <<EOF

  API                 $API/v1/jobs   (health: $API/healthz, $API/readyz; metrics: $API/metrics)
  API token           $TOKEN   (dev-admin, scope admin; in .run/api-tokens)

  Submit a job:
    curl -sS -X POST $API/v1/jobs -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' -d '{"type":"noop","payload":{}}'
  Read it back (JOB_ID = the "id" the line above printed):
    curl -sS $API/v1/jobs/JOB_ID -H "Authorization: Bearer $TOKEN"
    curl -sS $API/v1/jobs/JOB_ID/attempts -H "Authorization: Bearer $TOKEN"
  Consumers           $API/v1/workers; health/metrics of each: http://127.0.0.1:${CONSUMER_HEALTH_PORTS[0]}/readyz,
                      http://127.0.0.1:${CONSUMER_HEALTH_PORTS[1]}/readyz (and /healthz, /metrics)

  RabbitMQ management $(printf '%s' "$WARREN_RABBITMQ_MANAGEMENT_URL" | sed 's#//guest:guest@#//#')   (guest / guest)
  Postgres            psql $WARREN_DATABASE_URL
  Environment         source .run/env     (WARREN_DATABASE_URL, WARREN_AMQP_URL, ...)
  Logs                .run/logs/ (producer.log, consumer-1.log, consumer-2.log),
                      .run/postgres/postgres.log, .run/rabbitmq/log/
EOF

if [[ $mode == detach ]]; then
  cat <<EOF
  Stop                scripts/up.sh down

EOF
  exit 0
fi

cat <<EOF
  Stop                Ctrl-C here, or scripts/up.sh down from another terminal

EOF

# Foreground: watch the processes until Ctrl-C / SIGTERM (the traps above then stop all).
# Stopping one server on purpose (scripts/stack.sh stop-rabbitmq .run, to try an outage) is
# reported, not fatal; when nothing at all runs any more, this script ends too.
_stack_load "$RUN_DIR"
declare -A was_up=()
while true; do
  anything=0
  for name in "${APPS[@]}" postgres rabbitmq; do
    case $name in
      postgres) _stack_pg_running && up=1 || up=0 ;;
      rabbitmq) _stack_rmq_running && up=1 || up=0 ;;
      *)
        [[ -f $RUN_DIR/$name.pid || -n ${was_up[$name]:-} ]] || continue
        app_running "$name" && up=1 || up=0
        ;;
    esac
    ((up)) && anything=1
    if [[ -n ${was_up[$name]:-} && ${was_up[$name]} != "$up" ]]; then
      if ((up)); then
        say "$name is running again"
      else
        case $name in
          postgres | rabbitmq) say "$name is no longer running" ;;
          *)
            _stack_tail_log "$LOG_DIR/$name.log" 20
            say "$name exited (log above); the rest keeps running. Ctrl-C stops everything."
            ;;
        esac
      fi
    fi
    was_up[$name]=$up
  done
  if ((!anything)); then
    say "nothing is running any more; exiting"
    exit 0
  fi
  sleep 2 &
  wait $! || true
done
