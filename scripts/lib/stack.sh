# shellcheck shell=bash
# scripts/lib/stack.sh: a private Postgres 15 and a private RabbitMQ 3.10 under one directory.
#
# Source this file (scripts/stack.sh is the command-line front end; scripts/up.sh and
# scripts/test.sh source it too). Every function takes DIR, the "stack directory":
#
#   stack_start DIR            start both servers (no-op for a server already running)
#   stack_stop DIR             stop both servers
#   stack_start_postgres DIR   / stack_stop_postgres DIR
#   stack_start_rabbitmq DIR   / stack_stop_rabbitmq DIR
#   stack_status DIR           one line per server; returns 0 only if both run
#   stack_wipe DIR             stop both, then delete their data (DIR/postgres, DIR/rabbitmq)
#
# What ends up in DIR:
#   stack.env       ports and names chosen on the first start; later starts and stops reuse
#                   them, so the environment variables below only matter the first time
#   env             "source DIR/env" exports WARREN_DATABASE_URL, WARREN_AMQP_URL,
#                   WARREN_RABBITMQ_MANAGEMENT_URL and WARREN_STACK_DIR for this stack, and
#                   WARREN_STACK_TLS_CA and WARREN_STACK_AMQPS_PORT (see TLS below)
#   tls/            ca.pem (a throwaway CA made for this stack), server.pem and server.key (its
#                   certificate for 127.0.0.1 and localhost), used by both servers
#   postgres/       Postgres's area: data/ (PGDATA), run/ (unix socket), postgres.log.
#                   When the postgres user cannot reach DIR (say a checkout under /root,
#                   mode 0700) this is a symlink to /var/tmp/warren-pg-<hash of DIR>/
#   postgres.pid    the postmaster's PID
#   rabbitmq/       rabbitmq.conf, enabled_plugins, mnesia/ (data), log/, home/.erlang.cookie
#   rabbitmq.pid    the broker's PID (the Erlang VM, beam.smp)
#
# Ports (first start only; defaults in parentheses):
#   WARREN_STACK_PG_PORT (55432)    WARREN_STACK_AMQP_PORT (56720)
#   WARREN_STACK_MGMT_PORT (56730)  WARREN_STACK_DIST_PORT (56740, Erlang distribution)
#   WARREN_STACK_AMQPS_PORT (56750, AMQP over TLS)
#
# TLS: on its first start a stack makes, with openssl, a CA of its own and a server
# certificate signed by it (EC P-256; subjectAltName IP:127.0.0.1 and DNS:localhost), kept in
# DIR/tls and renewed when it is missing or about to expire. RabbitMQ listens for TLS on
# WARREN_STACK_AMQPS_PORT (no client certificates asked for) and Postgres accepts TLS on its
# usual port; plain connections keep working on both. Clients trust DIR/tls/ca.pem:
#   amqps://guest:guest@127.0.0.1:AMQPS_PORT/%2f?cacertfile=DIR/tls/ca.pem
#   postgresql://warren:warren@127.0.0.1:PG_PORT/warren?sslmode=verify-full&sslrootcert=DIR/tls/ca.pem
# A stack made before TLS support (no WARREN_STACK_AMQPS_PORT in its stack.env) runs without
# TLS until it is wiped: its ports, and those of other stacks, are not guessed at.
#
# Rules this file keeps (see RUNNING.md, "Known facts about this platform"):
#   - Postgres refuses to run as root: as root, every Postgres command runs as the postgres
#     user (runuser), from "/" so that an unreadable current directory does not matter.
#   - RabbitMQ is started with /usr/lib/rabbitmq/bin/rabbitmq-server, not the /usr/sbin
#     wrappers (they switch user and use the system's Erlang cookie).
#   - Processes are stopped only by the PIDs recorded in DIR, never by name. The machine's
#     shared Erlang port mapper (epmd), which the broker starts if needed, is left running.
#
# Functions return non-zero on failure (they do not rely on the caller's "set -e").

WARREN_PG_BIN=${WARREN_PG_BIN:-/usr/lib/postgresql/15/bin}
WARREN_RABBITMQ_BIN=${WARREN_RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}

# The repository holding the rabbitmq/ templates (this file is scripts/lib/stack.sh).
_STACK_REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

# ---------------------------------------------------------------------------------------
# Small helpers

_stack_say() { printf '%s\n' "$*" >&2; }
_stack_fail() { printf 'error: %s\n' "$*" >&2; return 1; }

# Milliseconds since the epoch, for "started in 7.1 s" messages.
_stack_now_ms() { date +%s%3N; }
_stack_secs_since() { # START_MS -> "7.1"
  local ms=$(($(_stack_now_ms) - $1))
  printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

# Is PID a live process? (A zombie, which an orphaned process can stay as when nothing
# reaps it, counts as dead.) With a second argument, its command line must also contain
# that text: protects against a recorded PID reused by some unrelated process.
_stack_alive() {
  local pid=$1 want=${2:-} state cmdline
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/stat ]] || return 1
  state=$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z && $state != X ]] || return 1
  if [[ -n $want ]]; then
    cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
    [[ $cmdline == *"$want"* ]] || return 1
  fi
  return 0
}

# Wait up to SECONDS for PID to exit; returns 1 if it is still alive.
_stack_wait_gone() {
  local pid=$1 seconds=$2 i
  for ((i = 0; i < seconds * 10; i++)); do
    _stack_alive "$pid" || return 0
    sleep 0.1
  done
  ! _stack_alive "$pid"
}

# Does something accept connections on 127.0.0.1:PORT?
_stack_port_busy() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# At a later start of an existing stack, its ports are fixed (DIR/stack.env).
_stack_check_port_free() { # PORT WHAT
  if _stack_port_busy "$1"; then
    _stack_fail "port 127.0.0.1:$1 ($2) is already in use by another program. This stack's" \
      "ports are kept in $S_DIR/stack.env: free the port, or wipe the stack" \
      "(scripts/stack.sh wipe $S_DIR) and start it with other WARREN_STACK_*_PORT values"
    return 1
  fi
}

_stack_read_pid() { # FILE -> PID on stdout
  local pid
  [[ -r $1 ]] || return 1
  read -r pid <"$1" || [[ -n ${pid:-} ]] || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  printf '%s\n' "$pid"
}

_stack_tail_log() { # FILE [LINES]
  local file=$1 lines=${2:-30}
  if [[ -r $file ]]; then
    _stack_say "---- last $lines lines of $file ----"
    tail -n "$lines" "$file" >&2
    _stack_say "---- end of $file ----"
  else
    _stack_say "(no log file at $file)"
  fi
}

# Prefix for Postgres commands: as root they run as the postgres user (Postgres refuses
# root), always from "/" so that a current directory postgres cannot read (a checkout under
# /root) does not break initdb/pg_ctl. Use as: "${_STACK_AS_PG[@]}" "$WARREN_PG_BIN/psql" ...
# (A plain command rather than a function on purpose: bash runs a signal trap inside the
# redirections of the function call it interrupts, so a Ctrl-C during a function whose
# output goes to a log file would send the trap's messages to that file.)
if ((EUID == 0)); then
  _STACK_AS_PG=(env -C / runuser -u postgres --)
else
  _STACK_AS_PG=(env -C /)
fi

# ---------------------------------------------------------------------------------------
# Configuration of one stack: _stack_load DIR sets these globals
#   S_DIR (absolute), S_HASH, S_PG_PORT, S_AMQP_PORT, S_MGMT_PORT, S_DIST_PORT,
#   S_AMQPS_PORT (empty: a stack made before TLS support, which runs without TLS),
#   S_RABBITMQ_NODE, S_PG_AREA, plus derived paths.
# CREATE=1 as second argument writes DIR/stack.env if it does not exist yet (a start);
# without it a missing stack.env means "this stack was never started" (returns 2).

_stack_load() {
  local dir=$1 create=${2:-0} key value
  [[ -n $dir ]] || { _stack_fail "no stack directory given"; return 1; }
  if [[ $create == 1 ]]; then
    mkdir -p "$dir" || { _stack_fail "cannot create $dir"; return 1; }
  fi
  if [[ ! -d $dir ]]; then
    return 2
  fi
  S_DIR=$(cd "$dir" && pwd -P) || return 1
  S_HASH=$(printf '%s' "$S_DIR" | sha1sum | cut -c1-12)

  S_PG_PORT='' S_AMQP_PORT='' S_MGMT_PORT='' S_DIST_PORT='' S_RABBITMQ_NODE='' S_PG_AREA=''
  S_AMQPS_PORT=''
  if [[ -f $S_DIR/stack.env ]]; then
    while IFS='=' read -r key value; do
      case $key in
        WARREN_STACK_PG_PORT) S_PG_PORT=$value ;;
        WARREN_STACK_AMQP_PORT) S_AMQP_PORT=$value ;;
        WARREN_STACK_MGMT_PORT) S_MGMT_PORT=$value ;;
        WARREN_STACK_DIST_PORT) S_DIST_PORT=$value ;;
        WARREN_STACK_AMQPS_PORT) S_AMQPS_PORT=$value ;;
        WARREN_STACK_RABBITMQ_NODE) S_RABBITMQ_NODE=$value ;;
        WARREN_STACK_PG_AREA) S_PG_AREA=$value ;;
      esac
    done <"$S_DIR/stack.env"
    if [[ -z $S_PG_PORT || -z $S_AMQP_PORT || -z $S_MGMT_PORT || -z $S_DIST_PORT ||
      -z $S_RABBITMQ_NODE || -z $S_PG_AREA ]]; then
      _stack_fail "$S_DIR/stack.env is incomplete; delete it (and the stack's data) to start over"
      return 1
    fi
    _stack_warn_override WARREN_STACK_PG_PORT "$S_PG_PORT"
    _stack_warn_override WARREN_STACK_AMQP_PORT "$S_AMQP_PORT"
    _stack_warn_override WARREN_STACK_MGMT_PORT "$S_MGMT_PORT"
    _stack_warn_override WARREN_STACK_DIST_PORT "$S_DIST_PORT"
    # (No AMQPS port: the stack predates TLS support and keeps running without it. Choosing a
    # port for it now could take one another stack already uses.)
    [[ -z $S_AMQPS_PORT ]] || _stack_warn_override WARREN_STACK_AMQPS_PORT "$S_AMQPS_PORT"
  elif [[ $create == 1 ]]; then
    S_PG_PORT=${WARREN_STACK_PG_PORT:-55432}
    S_AMQP_PORT=${WARREN_STACK_AMQP_PORT:-56720}
    S_MGMT_PORT=${WARREN_STACK_MGMT_PORT:-56730}
    S_DIST_PORT=${WARREN_STACK_DIST_PORT:-56740}
    S_AMQPS_PORT=${WARREN_STACK_AMQPS_PORT:-56750}
    local p
    for p in "$S_PG_PORT" "$S_AMQP_PORT" "$S_MGMT_PORT" "$S_DIST_PORT" "$S_AMQPS_PORT"; do
      if ! [[ $p =~ ^[0-9]+$ ]] || ((p < 1024 || p > 65535)); then
        _stack_fail "bad port '$p' in WARREN_STACK_*_PORT (want 1024..65535)"
        return 1
      fi
    done
    # Choosing the ports of a new stack: refuse busy ones before remembering them.
    local var
    for var in WARREN_STACK_PG_PORT:$S_PG_PORT WARREN_STACK_AMQP_PORT:$S_AMQP_PORT \
      WARREN_STACK_MGMT_PORT:$S_MGMT_PORT WARREN_STACK_DIST_PORT:$S_DIST_PORT \
      WARREN_STACK_AMQPS_PORT:$S_AMQPS_PORT; do
      if _stack_port_busy "${var#*:}"; then
        _stack_fail "port 127.0.0.1:${var#*:} is already in use by another program; choose" \
          "another with ${var%%:*}=..."
        return 1
      fi
    done
    S_RABBITMQ_NODE="warren-$S_HASH@localhost"
    S_PG_AREA=$(_stack_choose_pg_area) || return 1
    _stack_forget_stale_pg_area || return 1
    {
      echo "# Written by scripts/lib/stack.sh on the first start of this stack. Later starts"
      echo "# and stops read it, so the servers keep their ports, node name and data."
      echo "# To change a port: stop the stack, delete this file and the stack's data."
      echo "WARREN_STACK_PG_PORT=$S_PG_PORT"
      echo "WARREN_STACK_AMQP_PORT=$S_AMQP_PORT"
      echo "WARREN_STACK_MGMT_PORT=$S_MGMT_PORT"
      echo "WARREN_STACK_DIST_PORT=$S_DIST_PORT"
      echo "WARREN_STACK_AMQPS_PORT=$S_AMQPS_PORT"
      echo "WARREN_STACK_RABBITMQ_NODE=$S_RABBITMQ_NODE"
      echo "WARREN_STACK_PG_AREA=$S_PG_AREA"
    } >"$S_DIR/stack.env" || return 1
  else
    return 2
  fi

  S_PGDATA=$S_PG_AREA/data
  S_PG_SOCKDIR=$S_PG_AREA/run
  S_PG_LOG=$S_PG_AREA/postgres.log
  S_RMQ=$S_DIR/rabbitmq
  S_RMQ_LOG=$S_RMQ/log/$S_RABBITMQ_NODE.log
  S_RMQ_STDOUT=$S_RMQ/log/stdout.log
  S_TLS=$S_DIR/tls
  return 0
}

_stack_warn_override() { # ENVVAR PERSISTED_VALUE
  local name=$1 kept=$2
  if [[ -n ${!name:-} && ${!name} != "$kept" ]]; then
    _stack_say "warning: ignoring $name=${!name}: $S_DIR/stack.env keeps $kept for this stack"
  fi
}

# Where Postgres's files go: DIR/postgres when the postgres user can reach DIR, else a
# directory in /var/tmp named after DIR (the unix socket path must also stay short).
_stack_choose_pg_area() {
  local area=$S_DIR/postgres fallback=/var/tmp/warren-pg-$S_HASH
  if ((EUID == 0)) && ! "${_STACK_AS_PG[@]}" test -x "$S_DIR" -a -r "$S_DIR" 2>/dev/null; then
    area=$fallback
  fi
  # Unix socket paths are limited to 107 bytes.
  if ((${#area} + ${#S_PG_PORT} + 16 > 100)); then
    area=$fallback
  fi
  printf '%s\n' "$area"
}

# A brand-new stack (no stack.env) whose /var/tmp area survived an earlier "rm -rf DIR":
# delete that old data, unless a Postgres still runs on it.
_stack_forget_stale_pg_area() {
  [[ $S_PG_AREA == /var/tmp/warren-pg-* && -d $S_PG_AREA ]] || return 0
  local pid
  if pid=$(_stack_read_pid "$S_PG_AREA/data/postmaster.pid") && _stack_alive "$pid" postgres; then
    _stack_fail "an old Postgres (pid $pid) still runs on $S_PG_AREA/data, left from an earlier" \
      "stack in $S_DIR; stop it: runuser -u postgres -- $WARREN_PG_BIN/pg_ctl -D $S_PG_AREA/data stop"
    return 1
  fi
  _stack_say "postgres: deleting stale data of an earlier stack in $S_DIR ($S_PG_AREA)"
  rm -rf -- "$S_PG_AREA"
}

_stack_write_env() {
  {
    echo "# Generated by scripts/lib/stack.sh: 'source $S_DIR/env' to use this private stack."
    echo "export WARREN_DATABASE_URL='postgresql://warren:warren@127.0.0.1:$S_PG_PORT/warren'"
    echo "export WARREN_AMQP_URL='amqp://guest:guest@127.0.0.1:$S_AMQP_PORT/%2f'"
    echo "export WARREN_RABBITMQ_MANAGEMENT_URL='http://guest:guest@127.0.0.1:$S_MGMT_PORT'"
    echo "export WARREN_STACK_DIR='$S_DIR'"
    if [[ -n $S_AMQPS_PORT ]]; then
      echo "# TLS, trusting this stack's own CA (WARREN_STACK_TLS_CA):"
      echo "#   WARREN_AMQP_URL='amqps://guest:guest@127.0.0.1:$S_AMQPS_PORT/%2f?cacertfile=$S_TLS/ca.pem'"
      echo "#   WARREN_DATABASE_URL='postgresql://warren:warren@127.0.0.1:$S_PG_PORT/warren?sslmode=verify-full&sslrootcert=$S_TLS/ca.pem'"
      echo "export WARREN_STACK_TLS_CA='$S_TLS/ca.pem'"
      echo "export WARREN_STACK_AMQPS_PORT='$S_AMQPS_PORT'"
    fi
  } >"$S_DIR/env"
}

# ---------------------------------------------------------------------------------------
# TLS material (see "TLS" at the top of this file)

# Makes DIR/tls/{ca.pem,server.pem,server.key} unless they are there and the certificate is
# valid for another day. A no-op for a stack without TLS (made before TLS support).
_stack_tls_ensure() {
  [[ -n $S_AMQPS_PORT ]] || return 0
  if [[ -s $S_TLS/ca.pem && -s $S_TLS/server.pem && -s $S_TLS/server.key ]] &&
    openssl x509 -in "$S_TLS/server.pem" -noout -checkend 86400 >/dev/null 2>&1; then
    return 0
  fi
  command -v openssl >/dev/null || {
    _stack_fail "openssl is needed to make the stack's TLS certificates (apt-get install openssl)"
    return 1
  }
  local work
  work=$(mktemp -d "$S_DIR/.tls.XXXXXX") || return 1
  # EC P-256 keys: made in milliseconds (RSA would add seconds to a start).
  cat >"$work/openssl.cnf" <<'CNF' || return 1
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
CNF
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -noenc)
  if ! (cd "$work" &&
    openssl req -config openssl.cnf -x509 -new "${ec[@]}" -keyout ca.key -out ca.pem \
      -days 3650 -subj "/CN=Warren private stack CA $S_HASH" -extensions ca_ext &&
    openssl req -config openssl.cnf -x509 -new "${ec[@]}" -keyout server.key -out server.pem \
      -CA ca.pem -CAkey ca.key -days 825 -subj "/CN=localhost" -extensions server_ext) \
    >"$work/openssl.log" 2>&1; then
    _stack_tail_log "$work/openssl.log"
    rm -rf -- "$work"
    _stack_fail "could not make the stack's TLS certificates with openssl (log above)"
    return 1
  fi
  # The CA signs nothing else: its key goes (a new certificate means a new CA).
  rm -f -- "$work/ca.key" "$work/openssl.cnf" "$work/openssl.log"
  chmod 0755 "$work" || return 1
  chmod 0644 "$work/ca.pem" "$work/server.pem" || return 1
  chmod 0600 "$work/server.key" || return 1
  rm -rf -- "$S_TLS"
  mv -- "$work" "$S_TLS" || return 1
  _stack_say "tls: made a CA and a server certificate for 127.0.0.1/localhost in $S_TLS"
}

# ---------------------------------------------------------------------------------------
# Postgres

# PID of the running postmaster of this stack, or return 1.
_stack_pg_pid() {
  local pid f
  for f in "$S_DIR/postgres.pid" "$S_PGDATA/postmaster.pid"; do
    if pid=$(_stack_read_pid "$f") && _stack_alive "$pid" postgres; then
      printf '%s\n' "$pid"
      return 0
    fi
  done
  return 1
}

_stack_pg_running() { [[ -n $(_stack_pg_pid) ]]; } # (no output: see _STACK_AS_PG)

_stack_psql_admin() { # psql as the postgres superuser over the private unix socket
  "${_STACK_AS_PG[@]}" "$WARREN_PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$S_PG_SOCKDIR" -p "$S_PG_PORT" \
    -U postgres -d postgres "$@"
}

stack_start_postgres() {
  _stack_load "$1" 1 || return 1
  _stack_write_env || return 1
  local pid t0
  t0=$(_stack_now_ms)
  if pid=$(_stack_pg_pid); then
    echo "$pid" >"$S_DIR/postgres.pid"
    _stack_say "postgres: already running on 127.0.0.1:$S_PG_PORT (pid $pid)"
    return 0
  fi
  _stack_check_port_free "$S_PG_PORT" postgres || return 1

  # The area (DIR/postgres or /var/tmp/warren-pg-<hash>) belongs to postgres, mode 0700.
  mkdir -p "$S_PG_AREA" || return 1
  if [[ $S_PG_AREA != "$S_DIR/postgres" ]]; then
    if [[ -e $S_DIR/postgres && ! -L $S_DIR/postgres ]]; then
      _stack_fail "$S_DIR/postgres exists and is not the expected symlink to $S_PG_AREA"
      return 1
    fi
    ln -sfn "$S_PG_AREA" "$S_DIR/postgres" || return 1
  fi
  mkdir -p "$S_PG_SOCKDIR" || return 1
  if ((EUID == 0)); then
    chown postgres:postgres "$S_PG_AREA" "$S_PG_SOCKDIR" || return 1
  fi
  chmod 0700 "$S_PG_AREA" "$S_PG_SOCKDIR" || return 1
  # Postgres's own copies of the certificate and key: it must own the key, mode 0600, and
  # may not be able to reach DIR at all.
  if [[ -n $S_AMQPS_PORT ]]; then
    _stack_tls_ensure || return 1
    local owner=()
    ((EUID == 0)) && owner=(-o postgres -g postgres)
    if ! { install -d -m 0700 "${owner[@]}" "$S_PG_AREA/tls" &&
      install -m 0644 "${owner[@]}" "$S_TLS/server.pem" "$S_PG_AREA/tls/server.pem" &&
      install -m 0600 "${owner[@]}" "$S_TLS/server.key" "$S_PG_AREA/tls/server.key"; }; then
      _stack_fail "postgres: cannot install the TLS certificate in $S_PG_AREA/tls"
      return 1
    fi
  fi

  if [[ ! -f $S_PGDATA/PG_VERSION ]]; then
    rm -rf -- "$S_PGDATA"
    _stack_say "postgres: initdb $S_PGDATA"
    if ! "${_STACK_AS_PG[@]}" "$WARREN_PG_BIN/initdb" -D "$S_PGDATA" -U postgres \
      --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 \
      >"$S_PG_AREA/initdb.log" 2>&1; then
      _stack_tail_log "$S_PG_AREA/initdb.log"
      _stack_fail "postgres: initdb failed (log above)"
      return 1
    fi
    echo "include_if_exists = 'warren.conf'  # written by scripts/lib/stack.sh" \
      >>"$S_PGDATA/postgresql.conf" || return 1
  fi
  # Rewritten at every start from stack.env; included at the end of postgresql.conf.
  {
    echo "# Written by scripts/lib/stack.sh at every start (from $S_DIR/stack.env)."
    echo "listen_addresses = '127.0.0.1'"
    echo "port = $S_PG_PORT"
    echo "unix_socket_directories = '$S_PG_SOCKDIR'"
    echo "max_connections = 200"
    echo "fsync = on                # durable defaults: a stop/start loses no committed data"
    echo "synchronous_commit = on"
    echo "full_page_writes = on"
    if [[ -n $S_AMQPS_PORT ]]; then
      echo "ssl = on                  # TLS as well as plain connections (hostssl/host in pg_hba)"
      echo "ssl_cert_file = '$S_PG_AREA/tls/server.pem'"
      echo "ssl_key_file = '$S_PG_AREA/tls/server.key'"
    fi
  } >"$S_PGDATA/warren.conf" || return 1
  if ((EUID == 0)); then chown postgres:postgres "$S_PGDATA/warren.conf"; fi

  if ! "${_STACK_AS_PG[@]}" "$WARREN_PG_BIN/pg_ctl" -D "$S_PGDATA" -l "$S_PG_LOG" -w -t 60 start \
    >/dev/null 2>"$S_PG_AREA/pg_ctl.err"; then
    cat "$S_PG_AREA/pg_ctl.err" >&2
    _stack_tail_log "$S_PG_LOG"
    _stack_fail "postgres: failed to start on 127.0.0.1:$S_PG_PORT (log above)"
    return 1
  fi
  if ! pid=$(_stack_read_pid "$S_PGDATA/postmaster.pid"); then
    _stack_fail "postgres: started but $S_PGDATA/postmaster.pid is unreadable"
    return 1
  fi
  echo "$pid" >"$S_DIR/postgres.pid"

  # The application's role and database (idempotent: checked at every start).
  if [[ $(_stack_psql_admin -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'warren'") != 1 ]]; then
    _stack_psql_admin -c "CREATE ROLE warren LOGIN PASSWORD 'warren' CREATEDB" || {
      _stack_fail "postgres: could not create role warren"
      return 1
    }
  fi
  # CREATEROLE: tests create roles with passwords of their own (a secret must be unique to be
  # searched for in logs). Granted at every start so stacks made before it get it too.
  _stack_psql_admin -c "ALTER ROLE warren CREATEROLE" || {
    _stack_fail "postgres: could not grant CREATEROLE to warren"
    return 1
  }
  if [[ $(_stack_psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = 'warren'") != 1 ]]; then
    _stack_psql_admin -c "CREATE DATABASE warren OWNER warren" || {
      _stack_fail "postgres: could not create database warren"
      return 1
    }
  fi
  _stack_say "postgres: started on 127.0.0.1:$S_PG_PORT${S_AMQPS_PORT:+ (plain and TLS)} (pid $pid)" \
    "in $(_stack_secs_since "$t0") s"
}

stack_stop_postgres() {
  local rc=0
  _stack_load "$1" || rc=$?
  if ((rc == 2)); then
    _stack_say "postgres: not running (no stack in $1)"
    return 0
  elif ((rc != 0)); then return 1; fi
  local pid t0
  t0=$(_stack_now_ms)
  if ! pid=$(_stack_pg_pid); then
    rm -f "$S_DIR/postgres.pid"
    _stack_say "postgres: not running"
    return 0
  fi
  # Fast shutdown: roll back open transactions, checkpoint, exit. pg_ctl finds the
  # postmaster through the data directory's postmaster.pid (the same PID we recorded).
  "${_STACK_AS_PG[@]}" "$WARREN_PG_BIN/pg_ctl" -D "$S_PGDATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  if ! _stack_wait_gone "$pid" 30; then
    _stack_say "postgres: pid $pid still alive, sending SIGQUIT (immediate shutdown)"
    kill -QUIT "$pid" 2>/dev/null || true
    _stack_wait_gone "$pid" 10 || {
      _stack_fail "postgres: pid $pid does not exit"
      return 1
    }
  fi
  rm -f "$S_DIR/postgres.pid"
  _stack_say "postgres: stopped (pid $pid) in $(_stack_secs_since "$t0") s"
}

# ---------------------------------------------------------------------------------------
# RabbitMQ

# The environment of the broker and of rabbitmqctl for this stack, as NAME=VALUE words in
# the array _STACK_RMQ_ENV (for "env"; RabbitMQ variables of the caller that could point the
# broker elsewhere are removed first).
_stack_rmq_env() {
  _STACK_RMQ_ENV=(
    -u RABBITMQ_NODE_PORT -u RABBITMQ_NODE_IP_ADDRESS -u RABBITMQ_ENABLED_PLUGINS
    -u RABBITMQ_ERLANG_COOKIE -u RABBITMQ_USE_LONGNAME -u RABBITMQ_BASE
    "HOME=$S_RMQ/home"
    "RABBITMQ_CONF_ENV_FILE=/dev/null"
    "RABBITMQ_NODENAME=$S_RABBITMQ_NODE"
    "RABBITMQ_MNESIA_BASE=$S_RMQ/mnesia"
    "RABBITMQ_LOG_BASE=$S_RMQ/log"
    "RABBITMQ_CONFIG_FILE=$S_RMQ/rabbitmq.conf"
    "RABBITMQ_CONFIG_FILES=$S_RMQ/conf.d"
    "RABBITMQ_ADVANCED_CONFIG_FILE=$S_RMQ/advanced.config"
    "RABBITMQ_ENABLED_PLUGINS_FILE=$S_RMQ/enabled_plugins"
    "RABBITMQ_PID_FILE=$S_RMQ/beam.pid"
    "RABBITMQ_DIST_PORT=$S_DIST_PORT"
    "ERL_CRASH_DUMP=$S_RMQ/log/erl_crash.dump"
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}"
  )
}

# Run a command with the broker's environment.
_stack_rmq_run() {
  _stack_rmq_env
  env "${_STACK_RMQ_ENV[@]}" "$@"
}

# rabbitmqctl for this stack's node (same HOME, so same cookie). Handy by hand:
#   source scripts/lib/stack.sh; _stack_load .run; _stack_rabbitmqctl list_queues
_stack_rabbitmqctl() {
  _stack_rmq_run "$WARREN_RABBITMQ_BIN/rabbitmqctl" -n "$S_RABBITMQ_NODE" "$@"
}

# PID of this stack's running broker (the Erlang VM), or return 1.
_stack_rmq_pid() {
  local pid f
  for f in "$S_DIR/rabbitmq.pid" "$S_RMQ/beam.pid"; do
    if pid=$(_stack_read_pid "$f") && _stack_alive "$pid" beam; then
      printf '%s\n' "$pid"
      return 0
    fi
  done
  return 1
}

_stack_rmq_running() { [[ -n $(_stack_rmq_pid) ]]; }

# First half of a start: prepare files and launch the broker in the background. Sets
# _STACK_RMQ_LAUNCHED=1 and _STACK_RMQ_WRAPPER (PID of the rabbitmq-server script) when it
# launched one, 0 when the broker was already running.
_stack_rmq_launch() {
  _stack_load "$1" 1 || return 1
  _stack_write_env || return 1
  local pid template=$_STACK_REPO_ROOT/rabbitmq/rabbitmq.conf
  _STACK_RMQ_T0=$(_stack_now_ms)
  _STACK_RMQ_LAUNCHED=0
  if pid=$(_stack_rmq_pid); then
    echo "$pid" >"$S_DIR/rabbitmq.pid"
    _stack_say "rabbitmq: already running on 127.0.0.1:$S_AMQP_PORT (pid $pid)"
    return 0
  fi
  _stack_check_port_free "$S_AMQP_PORT" "rabbitmq AMQP" || return 1
  _stack_check_port_free "$S_MGMT_PORT" "rabbitmq management" || return 1
  _stack_check_port_free "$S_DIST_PORT" "rabbitmq Erlang distribution" || return 1
  if [[ -n $S_AMQPS_PORT ]]; then
    _stack_check_port_free "$S_AMQPS_PORT" "rabbitmq AMQPS" || return 1
    _stack_tls_ensure || return 1
  else
    _stack_say "note: $S_DIR was made before TLS support and runs without TLS (wipe it to get TLS)"
  fi
  [[ -r $template ]] || { _stack_fail "missing template $template"; return 1; }

  mkdir -p "$S_RMQ/mnesia" "$S_RMQ/log" "$S_RMQ/home" "$S_RMQ/conf.d" || return 1
  chmod 0700 "$S_RMQ/home"
  # A private Erlang cookie: only this stack's broker and rabbitmqctl (same HOME) share it.
  if [[ ! -s $S_RMQ/home/.erlang.cookie ]]; then
    (umask 077 && head -c 30 /dev/urandom | sha256sum | cut -c1-40 | tr a-f A-F |
      tr -d '\n' >"$S_RMQ/home/.erlang.cookie") || return 1
  fi
  chmod 0400 "$S_RMQ/home/.erlang.cookie"
  {
    cat "$template"
    echo
    echo "# ---- Added by scripts/lib/stack.sh for this stack (from $S_DIR/stack.env) ----"
    echo "listeners.tcp.default = 127.0.0.1:$S_AMQP_PORT"
    echo "management.tcp.port = $S_MGMT_PORT"
    echo "management.tcp.ip = 127.0.0.1"
    if [[ -n $S_AMQPS_PORT ]]; then
      # AMQP over TLS with the stack's certificate; clients are not asked for certificates.
      echo "listeners.ssl.default = 127.0.0.1:$S_AMQPS_PORT"
      echo "ssl_options.cacertfile = $S_TLS/ca.pem"
      echo "ssl_options.certfile = $S_TLS/server.pem"
      echo "ssl_options.keyfile = $S_TLS/server.key"
      echo "ssl_options.verify = verify_none"
      echo "ssl_options.fail_if_no_peer_cert = false"
    fi
  } >"$S_RMQ/rabbitmq.conf" || return 1
  cp "$_STACK_REPO_ROOT/rabbitmq/enabled_plugins" "$S_RMQ/enabled_plugins" || return 1
  cp "$_STACK_REPO_ROOT/rabbitmq/advanced.config" "$S_RMQ/advanced.config" || return 1
  rm -f "$S_RMQ/beam.pid" "$S_DIR/rabbitmq.pid"

  # setsid: the broker gets its own session, so a Ctrl-C in the terminal does not reach it
  # directly (our scripts stop it in order) and --detach'ed stacks survive the terminal.
  # The rabbitmq-server script runs the Erlang VM as its child and writes its PID to
  # RABBITMQ_PID_FILE; SIGTERM to either stops the broker cleanly.
  echo "==== $(date '+%F %T') starting $S_RABBITMQ_NODE" >>"$S_RMQ_STDOUT"
  # (A plain command, not a function, goes to the background: $! is then the PID of the
  # rabbitmq-server script itself, as env and setsid exec it.)
  _stack_rmq_env
  env "${_STACK_RMQ_ENV[@]}" setsid -w "$WARREN_RABBITMQ_BIN/rabbitmq-server" \
    </dev/null >>"$S_RMQ_STDOUT" 2>&1 &
  _STACK_RMQ_WRAPPER=$!
  echo "$_STACK_RMQ_WRAPPER" >"$S_RMQ/wrapper.pid"
  _STACK_RMQ_LAUNCHED=1
}

# Second half of a start: wait until the broker launched by _stack_rmq_launch is ready.
_stack_rmq_await() {
  [[ ${_STACK_RMQ_LAUNCHED:-0} == 1 ]] || return 0
  _STACK_RMQ_LAUNCHED=0
  local pid='' i
  # The VM's PID appears in RABBITMQ_PID_FILE within a second or two of launch.
  for ((i = 0; i < 600; i++)); do
    if pid=$(_stack_read_pid "$S_RMQ/beam.pid") && _stack_alive "$pid" beam; then break; fi
    pid=''
    _stack_alive "$_STACK_RMQ_WRAPPER" || break
    sleep 0.1
  done
  if [[ -z $pid ]]; then
    _stack_rmq_launch_failed "the broker exited before writing its pid file"
    return 1
  fi
  echo "$pid" >"$S_DIR/rabbitmq.pid"
  _stack_rmq_env
  if ! env "${_STACK_RMQ_ENV[@]}" "$WARREN_RABBITMQ_BIN/rabbitmqctl" -n "$S_RABBITMQ_NODE" \
    wait --pid "$pid" --timeout 90 >>"$S_RMQ/log/ctl.log" 2>&1; then
    _stack_tail_log "$S_RMQ/log/ctl.log" 10
    _stack_rmq_launch_failed "not ready after 90 s (or it exited)"
    return 1
  fi
  _stack_say "rabbitmq: started on 127.0.0.1:$S_AMQP_PORT${S_AMQPS_PORT:+ (TLS on $S_AMQPS_PORT)}," \
    "management http://127.0.0.1:$S_MGMT_PORT (node $S_RABBITMQ_NODE, pid $pid) in" \
    "$(_stack_secs_since "$_STACK_RMQ_T0") s"
}

_stack_rmq_launch_failed() {
  # The broker's console output of this start: its first errors (the cause, usually) and
  # its last lines; then the end of the node's log file.
  local this_start
  this_start=$(awk '/^==== .* starting /{buf=""} {buf = buf $0 "\n"} END{printf "%s", buf}' \
    "$S_RMQ_STDOUT" 2>/dev/null || true)
  if [[ -n $this_start ]]; then
    _stack_say "---- first errors in $S_RMQ_STDOUT ----"
    grep -m 12 -F '[error]' <<<"$this_start" >&2 || true
    _stack_say "---- last lines of $S_RMQ_STDOUT ----"
    tail -n 8 <<<"$this_start" >&2
    _stack_say "---- end of $S_RMQ_STDOUT ----"
  fi
  [[ -f $S_RMQ_LOG ]] && _stack_tail_log "$S_RMQ_LOG" 30
  # Do not leave a half-started broker behind (stopped through the PIDs we recorded).
  local pid
  if { pid=$(_stack_read_pid "$S_RMQ/beam.pid") && _stack_alive "$pid" beam; } ||
    _stack_alive "$_STACK_RMQ_WRAPPER" rabbitmq-server; then
    stack_stop_rabbitmq "$S_DIR" || true
  fi
  rm -f "$S_DIR/rabbitmq.pid"
  _stack_fail "rabbitmq: failed to start on 127.0.0.1:$S_AMQP_PORT: $1 (logs above)"
}

stack_start_rabbitmq() {
  _stack_rmq_launch "$1" || return 1
  _stack_rmq_await
}

stack_stop_rabbitmq() {
  local rc=0
  _stack_load "$1" || rc=$?
  if ((rc == 2)); then
    _stack_say "rabbitmq: not running (no stack in $1)"
    return 0
  elif ((rc != 0)); then return 1; fi
  local pid='' wrapper='' t0 what
  t0=$(_stack_now_ms)
  pid=$(_stack_rmq_pid) || pid=''
  # The rabbitmq-server script that launched the VM. While the broker is still booting
  # (stopped during a start, e.g. by Ctrl-C) the VM may not have written its PID yet: the
  # script, which forwards SIGTERM to the VM, is then the only handle on it.
  if wrapper=$(_stack_read_pid "$S_RMQ/wrapper.pid") && _stack_alive "$wrapper" rabbitmq-server; then
    :
  else
    wrapper=''
  fi
  if [[ -z $pid && -z $wrapper ]]; then
    rm -f "$S_DIR/rabbitmq.pid" "$S_RMQ/wrapper.pid"
    _stack_say "rabbitmq: not running"
    return 0
  fi
  # SIGTERM makes the Erlang VM shut RabbitMQ down cleanly (queues are flushed to disk).
  if [[ -n $pid ]]; then
    kill -TERM "$pid" 2>/dev/null || true
  else
    kill -TERM "$wrapper" 2>/dev/null || true
  fi
  what=${pid:-$wrapper}
  if ! _stack_wait_gone "$what" 60; then
    _stack_say "rabbitmq: pid $what still alive after 60 s, sending SIGKILL"
    [[ -n $pid ]] || pid=$(_stack_read_pid "$S_RMQ/beam.pid") || pid=''
    [[ -n $pid ]] && kill -KILL "$pid" 2>/dev/null
    _stack_wait_gone "$pid" 10 || true
  fi
  # The script exits right after the VM; the VM, when we only had the script, too.
  if [[ -n $wrapper ]] && ! _stack_wait_gone "$wrapper" 10; then
    kill -KILL "$wrapper" 2>/dev/null || true
  fi
  if [[ -n $pid ]] && _stack_alive "$pid" beam; then
    _stack_fail "rabbitmq: pid $pid does not exit"
    return 1
  fi
  rm -f "$S_DIR/rabbitmq.pid" "$S_RMQ/beam.pid" "$S_RMQ/wrapper.pid"
  _stack_say "rabbitmq: stopped (pid $what) in $(_stack_secs_since "$t0") s"
}

# ---------------------------------------------------------------------------------------
# Both

stack_start() {
  local t0
  t0=$(_stack_now_ms)
  # The broker takes ~7 s to boot: launch it first and start Postgres meanwhile.
  _stack_rmq_launch "$1" || return 1
  if ! stack_start_postgres "$1"; then
    _stack_rmq_await || true
    return 1
  fi
  _stack_rmq_await || return 1
  _stack_say "stack: ready in $(_stack_secs_since "$t0") s; 'source $S_DIR/env' for WARREN_DATABASE_URL etc."
}

stack_stop() {
  local rc=0
  stack_stop_rabbitmq "$1" || rc=1
  stack_stop_postgres "$1" || rc=1
  return $rc
}

stack_status() {
  local rc=0 pid
  _stack_load "$1" || rc=$?
  if ((rc == 2)); then
    _stack_say "postgres: stopped (no stack in $1)"
    _stack_say "rabbitmq: stopped (no stack in $1)"
    return 1
  elif ((rc != 0)); then return 1; fi
  if pid=$(_stack_pg_pid); then
    _stack_say "postgres: running on 127.0.0.1:$S_PG_PORT (pid $pid), data in $S_PGDATA"
  else
    _stack_say "postgres: stopped (port $S_PG_PORT), data in $S_PGDATA"
    rc=1
  fi
  if pid=$(_stack_rmq_pid); then
    _stack_say "rabbitmq: running on 127.0.0.1:$S_AMQP_PORT, management http://127.0.0.1:$S_MGMT_PORT (node $S_RABBITMQ_NODE, pid $pid)"
  else
    _stack_say "rabbitmq: stopped (port $S_AMQP_PORT, node $S_RABBITMQ_NODE)"
    rc=1
  fi
  return $rc
}

# Stop both servers and delete everything this library created in DIR (and the /var/tmp
# area when Postgres lives there). Other files in DIR are left alone.
# Exports the WARREN_TEST_* variables through which the tests, the chaos soak and the benchmark
# find the (started) stack in DIR: WARREN_TEST_DATABASE_URL, _AMQP_URL, _RABBITMQ_MANAGEMENT_URL,
# _AMQPS_PORT, _TLS_CA, _STACK_DIR and _STACK_SCRIPT (scripts/stack.sh, to stop and start one
# server). Read in subshells: the caller gets only these names, not WARREN_DATABASE_URL...
stack_export_test_env() {
  local env_file=$1/env
  # shellcheck source=/dev/null
  WARREN_TEST_DATABASE_URL=$(source "$env_file" && echo "$WARREN_DATABASE_URL")
  # shellcheck source=/dev/null
  WARREN_TEST_AMQP_URL=$(source "$env_file" && echo "$WARREN_AMQP_URL")
  # shellcheck source=/dev/null
  WARREN_TEST_RABBITMQ_MANAGEMENT_URL=$(source "$env_file" && echo "$WARREN_RABBITMQ_MANAGEMENT_URL")
  # shellcheck source=/dev/null
  WARREN_TEST_AMQPS_PORT=$(source "$env_file" && echo "${WARREN_STACK_AMQPS_PORT:-}")
  # shellcheck source=/dev/null
  WARREN_TEST_TLS_CA=$(source "$env_file" && echo "${WARREN_STACK_TLS_CA:-}")
  WARREN_TEST_STACK_DIR=$(cd "$1" && pwd)
  WARREN_TEST_STACK_SCRIPT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/stack.sh
  export WARREN_TEST_DATABASE_URL WARREN_TEST_AMQP_URL WARREN_TEST_RABBITMQ_MANAGEMENT_URL \
    WARREN_TEST_AMQPS_PORT WARREN_TEST_TLS_CA WARREN_TEST_STACK_DIR WARREN_TEST_STACK_SCRIPT
}

# For scripts that own a throwaway stack (chaos.sh, bench.sh): wipes DIR, starts a fresh stack
# there, exports its WARREN_TEST_* variables, and stops it by PID when the script exits, also
# on failure or Ctrl-C (the script's exit status is kept, or 1 if stopping failed).
stack_start_private() {
  _STACK_PRIVATE_DIR=$1
  trap _stack_private_cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
  stack_wipe "$1"
  rm -rf -- "$1"
  stack_start "$1"
  stack_export_test_env "$1"
}

# shellcheck disable=SC2317  # (called by the EXIT trap)
_stack_private_cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stack_stop "$_STACK_PRIVATE_DIR" || rc=1
  exit "$rc"
}

stack_wipe() {
  local rc=0 area=''
  stack_stop "$1" || return 1
  _stack_load "$1" || rc=$?
  if ((rc == 2)); then return 0; elif ((rc != 0)); then return 1; fi
  area=$S_PG_AREA
  if [[ $area == /var/tmp/warren-pg-* ]]; then rm -rf -- "$area"; fi
  rm -rf -- "$S_DIR/postgres" "$S_DIR/rabbitmq" "$S_DIR/postgres.pid" "$S_DIR/rabbitmq.pid" \
    "$S_DIR/env" "$S_DIR/stack.env" "$S_DIR/tls"
  _stack_say "stack: wiped $S_DIR"
}
