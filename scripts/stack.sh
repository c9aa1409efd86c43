#!/usr/bin/env bash
# The whole multi-server set-up on one machine, bound to 127.0.0.1 only:
#
#   PostgreSQL primary (port 5433) --streaming replication--> PostgreSQL replica (5434, made with pg_basebackup)
#   two dashboard replicas (`bangfu serve`, ports 8501 and 8502): writes to the primary, page reads from the replica
#   nginx in front (http://127.0.0.1:8080): sticky sessions, WebSocket upgrade, passive health checks, gzip
#
#   scripts/stack.sh up              start whatever is not running (creates everything the first time)
#   scripts/stack.sh down            stop everything it started (the data stays; `up` brings it back)
#   scripts/stack.sh status          what runs, the replication state and the address
#   scripts/stack.sh stop NAME       stop one part: app-1, app-2, db-replica, db-primary or nginx (failover drills)
#   scripts/stack.sh start NAME      start that part again (`up` starts every stopped part)
#
# Debian packages (nginx, postgresql, python3-venv) are installed when missing and the script runs as root
# (their services are not started: the stack runs its own instances). PostgreSQL runs as the `postgres` user
# when started by root. Nothing touches the machine's own PostgreSQL cluster or nginx site.
#
# Settings (environment; remembered in $BANGFU_STACK_DIR/stack.env after the first `up`):
#   BANGFU_STACK_DIR         state: data, logs, pid files, generated passwords (default /var/tmp/bangfu-stack-$USER)
#   BANGFU_STACK_PG_PORT     primary (5433)          BANGFU_STACK_REPLICA_PORT   replica (5434)
#   BANGFU_STACK_APP_PORTS   "8501 8502"             BANGFU_STACK_HTTP_PORT      nginx (8080)
#   BANGFU_STACK_HOUSEHOLDS  demo households generated into an empty database (20000)
#   BANGFU_READ_RETRY_S      seconds reads stay on the primary after the replica failed (10)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${BANGFU_STACK_DIR:-/var/tmp/bangfu-stack-$(id -un)}"
ENVFILE="$STATE/stack.env"
CMD="${1:-status}"

say() { printf '[stack] %s\n' "$*" >&2; }
die() { printf '[stack] error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

# ------------------------------------------------------------------------------------------- settings

load_settings() {
  if [ -f "$ENVFILE" ]; then
    # shellcheck disable=SC1090
    . "$ENVFILE"
  fi
  PG_PORT="${STACK_PG_PORT:-${BANGFU_STACK_PG_PORT:-5433}}"
  REPLICA_PORT="${STACK_REPLICA_PORT:-${BANGFU_STACK_REPLICA_PORT:-5434}}"
  APP_PORTS="${STACK_APP_PORTS:-${BANGFU_STACK_APP_PORTS:-8501 8502}}"
  HTTP_PORT="${STACK_HTTP_PORT:-${BANGFU_STACK_HTTP_PORT:-8080}}"
  HOUSEHOLDS="${BANGFU_STACK_HOUSEHOLDS:-20000}"
  READ_RETRY="${BANGFU_READ_RETRY_S:-${STACK_READ_RETRY_S:-10}}"
  read -r -a APPS <<<"$APP_PORTS"
  [ "${#APPS[@]}" -ge 1 ] || die "BANGFU_STACK_APP_PORTS is empty"
  PGROOT="$STATE/pg"; PRIMARY="$PGROOT/primary"; REPLICA="$PGROOT/replica"; PGRUN="$PGROOT/run"
  RUN="$STATE/run"; LOG="$STATE/log"; NGX="$STATE/nginx"
  if is_root; then SUPER=postgres; else SUPER="$(id -un)"; fi
}

new_secret() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

write_settings() {
  mkdir -p "$STATE"
  chmod 755 "$STATE"
  if [ -z "${STACK_DB_PASSWORD:-}" ]; then
    STACK_DB_PASSWORD="$(new_secret)"; STACK_REPL_PASSWORD="$(new_secret)"; STACK_COOKIE_SECRET="$(new_secret)"
  fi
  umask 077
  cat >"$ENVFILE" <<EOF
# written by scripts/stack.sh (passwords generated on the first \`up\`); source it to reach the stack
STACK_PG_PORT=$PG_PORT
STACK_REPLICA_PORT=$REPLICA_PORT
STACK_APP_PORTS="$APP_PORTS"
STACK_HTTP_PORT=$HTTP_PORT
STACK_READ_RETRY_S=$READ_RETRY
STACK_DB_PASSWORD=$STACK_DB_PASSWORD
STACK_REPL_PASSWORD=$STACK_REPL_PASSWORD
STACK_COOKIE_SECRET=$STACK_COOKIE_SECRET
DATABASE_URL=postgresql+psycopg://bangfu:$STACK_DB_PASSWORD@127.0.0.1:$PG_PORT/bangfu
BANGFU_READ_DATABASE_URL=postgresql+psycopg://bangfu:$STACK_DB_PASSWORD@127.0.0.1:$REPLICA_PORT/bangfu
BANGFU_STACK_URL=http://127.0.0.1:$HTTP_PORT
EOF
  umask 022
  # shellcheck disable=SC1090
  . "$ENVFILE"
}

# ------------------------------------------------------------------------------------------- packages

PKGS_MISSING=()

find_pgbin() {
  PGBIN=""
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V); do
    [ -x "$d/postgres" ] && [ -x "$d/pg_basebackup" ] && PGBIN="$d"
  done
  if [ -z "$PGBIN" ] && command -v pg_config >/dev/null 2>&1; then
    d="$(pg_config --bindir)"
    [ -x "$d/postgres" ] && PGBIN="$d"
  fi
  true
}

find_nginx() {
  NGINX="$(command -v nginx || true)"
  [ -n "$NGINX" ] || { [ -x /usr/sbin/nginx ] && NGINX=/usr/sbin/nginx; } || true
}

install_packages() {
  find_pgbin; find_nginx
  PKGS_MISSING=()
  [ -n "$PGBIN" ] || PKGS_MISSING+=(postgresql)
  [ -n "$NGINX" ] || PKGS_MISSING+=(nginx)
  [ -x "$ROOT/.venv/bin/python" ] || python3 -c 'import ensurepip' 2>/dev/null || PKGS_MISSING+=(python3-venv)
  [ "${#PKGS_MISSING[@]}" = 0 ] && return 0
  if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
    die "missing Debian packages: ${PKGS_MISSING[*]} — run this script as root, or: sudo apt-get install ${PKGS_MISSING[*]}"
  fi
  say "installing ${PKGS_MISSING[*]} (their own services are not started)"
  local guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then  # Debian's switch that keeps maintainer scripts from starting services
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && guard=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${PKGS_MISSING[@]}"; } \
    >"$STATE/apt.log" 2>&1 || rc=$?
  [ -n "$guard" ] && rm -f /usr/sbin/policy-rc.d
  [ "$rc" = 0 ] || die "apt-get install ${PKGS_MISSING[*]} failed (see $STATE/apt.log)"
  find_pgbin; find_nginx
  [ -n "$PGBIN" ] && [ -n "$NGINX" ] || die "PostgreSQL server or nginx still missing after the installation"
}

ensure_venv() {
  if [ ! -x "$ROOT/.venv/bin/bangfu" ]; then
    say "installing the dashboard into $ROOT/.venv"
    [ -x "$ROOT/.venv/bin/python" ] || python3 -m venv "$ROOT/.venv"
    "$ROOT/.venv/bin/pip" install -q --disable-pip-version-check -e "$ROOT" >"$STATE/pip.log" 2>&1 \
      || die "pip install failed (see $STATE/pip.log)"
  fi
  BANGFU="$ROOT/.venv/bin/bangfu"
}

# ------------------------------------------------------------------------------------------- PostgreSQL

as_pg() { if is_root; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_running() { [ -f "$1/PG_VERSION" ] && as_pg "$PGBIN/pg_ctl" -D "$1" status >/dev/null 2>&1; }
psql_super() { as_pg "$PGBIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PGRUN" -p "$PG_PORT" -U "$SUPER" -d "${PGDB:-postgres}" "$@"; }
psql_replica() { as_pg "$PGBIN/psql" -X -q -At -h "$PGRUN" -p "$REPLICA_PORT" -U "$SUPER" -d postgres "$@"; }

pg_dirs() {
  mkdir -p "$PGROOT" "$PGRUN"
  if is_root; then
    id postgres >/dev/null 2>&1 || die "the postgres user is missing (apt-get install postgresql)"
    chown postgres: "$PGROOT" "$PGRUN"
  fi
  chmod 700 "$PGROOT" "$PGRUN"
}

node_conf() {  # data dir, port: the settings this stack gives a node (included by postgresql.conf)
  as_pg tee "$1/stack.conf" >/dev/null <<EOF
# scripts/stack.sh
listen_addresses = '127.0.0.1'
port = $2
unix_socket_directories = '$PGRUN'
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
max_standby_streaming_delay = 5s
password_encryption = 'scram-sha-256'
EOF
}

pg_start() {  # data dir, name
  pg_running "$1" && return 0
  say "starting PostgreSQL $2"
  as_pg "$PGBIN/pg_ctl" -D "$1" -l "$PGROOT/$2.log" -w -t 120 start >/dev/null \
    || die "PostgreSQL $2 did not start (see $PGROOT/$2.log)"
}

pg_stop() {  # data dir, name
  pg_running "$1" || return 0
  say "stopping PostgreSQL $2"
  as_pg "$PGBIN/pg_ctl" -D "$1" -m fast -w -t 60 stop >/dev/null
}

primary_up() {
  pg_dirs
  if [ ! -f "$PRIMARY/PG_VERSION" ]; then
    say "creating the PostgreSQL primary in $PRIMARY (port $PG_PORT)"
    as_pg "$PGBIN/initdb" -D "$PRIMARY" -U "$SUPER" -E UTF8 --locale=C.UTF-8 --auth-local=trust \
      --auth-host=scram-sha-256 >"$STATE/initdb.log" 2>&1 || die "initdb failed (see $STATE/initdb.log)"
    node_conf "$PRIMARY" "$PG_PORT"
    echo "include_if_exists = 'stack.conf'" | as_pg tee -a "$PRIMARY/postgresql.conf" >/dev/null
    # the socket directory is 0700 (only the server's user reaches it); TCP needs a password
    as_pg tee "$PRIMARY/pg_hba.conf" >/dev/null <<EOF
# scripts/stack.sh
local   all          all                              trust
host    bangfu       bangfu             127.0.0.1/32  scram-sha-256
host    replication  bangfu_replicator  127.0.0.1/32  scram-sha-256
EOF
    pg_start "$PRIMARY" primary
    psql_super <<EOF
CREATE ROLE bangfu LOGIN PASSWORD '$STACK_DB_PASSWORD';
CREATE ROLE bangfu_replicator REPLICATION LOGIN PASSWORD '$STACK_REPL_PASSWORD';
CREATE DATABASE bangfu OWNER bangfu;
EOF
  fi
  pg_start "$PRIMARY" primary
}

data_up() {
  "$BANGFU" db upgrade --db "$DATABASE_URL" >/dev/null
  local n
  n="$(PGDB=bangfu psql_super -At -c 'SELECT count(*) FROM households')"
  if [ "$n" = 0 ]; then
    say "generating demo data ($HOUSEHOLDS households) into the empty database"
    "$BANGFU" demo --households "$HOUSEHOLDS" --db "$DATABASE_URL" >"$LOG/demo.log" 2>&1 \
      || die "bangfu demo failed (see $LOG/demo.log)"
  fi
}

replica_up() {
  if [ ! -f "$REPLICA/PG_VERSION" ]; then
    say "creating the streaming replica in $REPLICA (pg_basebackup, port $REPLICA_PORT)"
    psql_super -c "SELECT pg_drop_replication_slot('bangfu_replica') FROM pg_replication_slots WHERE slot_name = 'bangfu_replica'" >/dev/null
    local pass="$PGROOT/.pgpass"
    echo "127.0.0.1:$PG_PORT:*:bangfu_replicator:$STACK_REPL_PASSWORD" | as_pg tee "$pass" >/dev/null
    as_pg chmod 600 "$pass"
    as_pg env PGPASSFILE="$pass" "$PGBIN/pg_basebackup" -h 127.0.0.1 -p "$PG_PORT" -U bangfu_replicator \
      -D "$REPLICA" -X stream -R -C -S bangfu_replica -c fast >"$STATE/basebackup.log" 2>&1 \
      || die "pg_basebackup failed (see $STATE/basebackup.log)"
    node_conf "$REPLICA" "$REPLICA_PORT"
  fi
  pg_start "$REPLICA" replica
  local i
  for i in $(seq 1 60); do
    [ "$(psql_replica -c 'SELECT pg_is_in_recovery()' 2>/dev/null)" = t ] && \
      [ "$(psql_super -At -c "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")" -ge 1 ] && return 0
    sleep 1
  done
  die "the replica is not streaming from the primary (see $PGROOT/replica.log)"
}

# ------------------------------------------------------------------------------------------- the dashboard

app_pidfile() { echo "$RUN/app-$1.pid"; }
app_index_ok() { [[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le "${#APPS[@]}" ] || die "no dashboard replica app-$1 (there are ${#APPS[@]})"; }

app_running() {  # index
  local f pid
  f="$(app_pidfile "$1")"
  [ -f "$f" ] || return 1
  pid="$(cat "$f")"
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -Eq 'streamlit|bangfu serve'
}

healthy() { "$ROOT/.venv/bin/python" - "$1" <<'EOF'
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=2) as r:
        sys.exit(0 if r.status == 200 else 1)
except OSError:
    sys.exit(1)
EOF
}

app_start() {  # index
  app_index_ok "$1"
  local i="$1" port="${APPS[$(($1 - 1))]}"
  app_running "$i" && return 0
  say "starting dashboard replica app-$i on 127.0.0.1:$port"
  mkdir -p "$RUN" "$LOG"
  (
    cd "$ROOT"
    # its own session and process group (setsid), so that `stop` ends it and its children together
    DATABASE_URL="$DATABASE_URL" BANGFU_READ_DATABASE_URL="$BANGFU_READ_DATABASE_URL" \
    BANGFU_READ_RETRY_S="$READ_RETRY" BANGFU_HOST=127.0.0.1 \
    STREAMLIT_SERVER_COOKIE_SECRET="$STACK_COOKIE_SECRET" STREAMLIT_SERVER_HEADLESS=true \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
      setsid "$BANGFU" serve --port "$port" >>"$LOG/app-$i.log" 2>&1 </dev/null &
    echo $! >"$(app_pidfile "$i")"
  )
  local n pid
  pid="$(cat "$(app_pidfile "$i")")"
  for n in $(seq 1 120); do
    healthy "http://127.0.0.1:$port/_stcore/health" && return 0
    kill -0 "$pid" 2>/dev/null || die "app-$i exited (see $LOG/app-$i.log)"
    sleep 0.5
  done
  die "app-$i is not healthy after 60 s (see $LOG/app-$i.log)"
}

app_stop() {  # index
  app_index_ok "$1"
  local i="$1" pid n
  app_running "$i" || { rm -f "$(app_pidfile "$i")"; return 0; }
  pid="$(cat "$(app_pidfile "$i")")"
  say "stopping dashboard replica app-$i (pid $pid)"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for n in $(seq 1 40); do app_running "$i" || break; sleep 0.25; done
  app_running "$i" && { kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; }
  rm -f "$(app_pidfile "$i")"
}

# ------------------------------------------------------------------------------------------- nginx

nginx_conf() {
  mkdir -p "$NGX/tmp" "$RUN" "$LOG"
  local user="" site="$NGX/bangfu.conf"
  # the operator's site file with this stack's addresses: listen on 127.0.0.1 only, our replicas, our logs
  sed -e "s#^\([[:space:]]*\)listen 80;#\1listen 127.0.0.1:$HTTP_PORT;#" \
      -e "s#^\([[:space:]]*\)\(listen \[::\]:80;\)#\1\# \2#" \
      -e "s#/var/log/nginx/bangfu\.#$LOG/nginx-#g" \
      -e "s#server 127\.0\.0\.1:8501 #server 127.0.0.1:@APP1@ #" \
      -e "s#server 127\.0\.0\.1:8502 #server 127.0.0.1:@APP2@ #" \
      "$ROOT/deploy/nginx/bangfu.conf" >"$site.tmp"
  local servers="" p params
  # the site's own server parameters (max_fails, fail_timeout) for every replica of this stack
  params="$(sed -n 's/^[[:space:]]*server 127\.0\.0\.1:8501 \(.*\);.*$/\1/p' "$ROOT/deploy/nginx/bangfu.conf")"
  [ -n "$params" ] || die "no 'server 127.0.0.1:8501 …;' line in deploy/nginx/bangfu.conf"
  for p in "${APPS[@]}"; do servers+="    server 127.0.0.1:$p $params;\n"; done
  # one `server` line per replica of BANGFU_STACK_APP_PORTS (the site file lists two)
  awk -v s="$servers" '/server 127\.0\.0\.1:@APP1@ /{ printf "%s", s; next } /server 127\.0\.0\.1:@APP2@ /{ next } { print }' \
    "$site.tmp" >"$site" && rm -f "$site.tmp"
  grep -q "listen 127.0.0.1:$HTTP_PORT;" "$site" || die "could not set the listen address in $site"
  if is_root; then
    user="user $(id -u www-data >/dev/null 2>&1 && echo www-data || echo nobody);"
    chown -R "$(id -u www-data >/dev/null 2>&1 && echo www-data || echo nobody)" "$NGX/tmp"
  fi
  cat >"$NGX/nginx.conf" <<EOF
# scripts/stack.sh: this stack's own nginx (the machine's nginx and its sites are not used)
$user
worker_processes 2;
pid $RUN/nginx.pid;
error_log $LOG/nginx-main-error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 65;
    server_tokens off;
    client_body_temp_path $NGX/tmp/body;
    proxy_temp_path $NGX/tmp/proxy;
    fastcgi_temp_path $NGX/tmp/fastcgi;
    uwsgi_temp_path $NGX/tmp/uwsgi;
    scgi_temp_path $NGX/tmp/scgi;
    include $site;
}
EOF
}

ngx() { "$NGINX" -p "$NGX" -c "$NGX/nginx.conf" -e "$LOG/nginx-main-error.log" "$@"; }
nginx_running() { [ -f "$RUN/nginx.pid" ] && kill -0 "$(cat "$RUN/nginx.pid")" 2>/dev/null; }

nginx_up() {
  nginx_conf
  ngx -t -q 2>"$LOG/nginx-test.log" || die "nginx rejected the configuration: $(cat "$LOG/nginx-test.log")"
  if nginx_running; then
    ngx -s reload
  else
    say "starting nginx on http://127.0.0.1:$HTTP_PORT"
    ngx
  fi
  local n
  for n in $(seq 1 40); do healthy "http://127.0.0.1:$HTTP_PORT/_stcore/health" && return 0; sleep 0.25; done
  die "nginx does not answer on 127.0.0.1:$HTTP_PORT (see $LOG/nginx-error.log)"
}

nginx_stop() {
  nginx_running || return 0
  say "stopping nginx"
  local pid n
  pid="$(cat "$RUN/nginx.pid")"
  kill -QUIT "$pid" 2>/dev/null || true
  for n in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
}

# ------------------------------------------------------------------------------------------- commands

up() {
  load_settings
  write_settings
  mkdir -p "$RUN" "$LOG"
  install_packages
  ensure_venv
  primary_up
  data_up
  replica_up
  local i
  for i in $(seq 1 "${#APPS[@]}"); do app_start "$i"; done
  nginx_up
  say "up: http://127.0.0.1:$HTTP_PORT (replicas ${APPS[*]}; reads from 127.0.0.1:$REPLICA_PORT, writes to 127.0.0.1:$PG_PORT)"
  say "settings and passwords: $ENVFILE"
}

down() {
  load_settings
  find_pgbin; find_nginx
  [ -n "$NGINX" ] && nginx_stop
  local i
  for i in $(seq 1 "${#APPS[@]}"); do app_stop "$i"; done
  if [ -n "$PGBIN" ]; then pg_stop "$REPLICA" replica; pg_stop "$PRIMARY" primary; fi
  say "down (data kept in $STATE)"
}

status() {
  load_settings
  find_pgbin; find_nginx
  local ok=0 i
  line() { printf '%-11s %-8s %s\n' "$1" "$2" "$3"; }
  [ -f "$ENVFILE" ] || { echo "no stack in $STATE (scripts/stack.sh up)"; return 3; }
  if [ -n "$PGBIN" ] && pg_running "$PRIMARY"; then
    line db-primary running "127.0.0.1:$PG_PORT"
    psql_super -At -F ' ' -c "SELECT 'replication:', application_name, state, 'replay lag', coalesce(replay_lag::text, '0') FROM pg_stat_replication" 2>/dev/null | sed 's/^/            /'
  else line db-primary stopped "127.0.0.1:$PG_PORT"; ok=3; fi
  if [ -n "$PGBIN" ] && pg_running "$REPLICA"; then
    line db-replica running "127.0.0.1:$REPLICA_PORT (in recovery: $(psql_replica -c 'SELECT pg_is_in_recovery()' 2>/dev/null || echo '?'))"
  else line db-replica stopped "127.0.0.1:$REPLICA_PORT (reads fall back to the primary)"; ok=3; fi
  for i in $(seq 1 "${#APPS[@]}"); do
    if app_running "$i" && healthy "http://127.0.0.1:${APPS[$((i - 1))]}/_stcore/health"; then
      line "app-$i" running "127.0.0.1:${APPS[$((i - 1))]} (pid $(cat "$(app_pidfile "$i")"))"
    else line "app-$i" stopped "127.0.0.1:${APPS[$((i - 1))]}"; ok=3; fi
  done
  if [ -n "$NGINX" ] && nginx_running; then line nginx running "http://127.0.0.1:$HTTP_PORT"
  else line nginx stopped "http://127.0.0.1:$HTTP_PORT"; ok=3; fi
  return "$ok"
}

stop_one() {
  load_settings
  find_pgbin; find_nginx
  case "${1:-}" in
    app-[0-9]*) app_stop "${1#app-}" ;;
    db-replica) pg_stop "$REPLICA" replica ;;
    db-primary) pg_stop "$PRIMARY" primary ;;
    nginx) nginx_stop ;;
    *) die "stop what? app-1, app-2, db-replica, db-primary or nginx" ;;
  esac
}

start_one() {
  load_settings
  [ -f "$ENVFILE" ] || die "no stack in $STATE (scripts/stack.sh up)"
  find_pgbin; find_nginx; ensure_venv
  case "${1:-}" in
    app-[0-9]*) app_start "${1#app-}" ;;
    db-replica) pg_start "$REPLICA" replica ;;
    db-primary) pg_start "$PRIMARY" primary ;;
    nginx) nginx_up ;;
    *) die "start what? app-1, app-2, db-replica, db-primary or nginx" ;;
  esac
}

case "$CMD" in
  up) up ;;
  down) down ;;
  status) status ;;
  stop) stop_one "${2:-}" ;;
  start) start_one "${2:-}" ;;
  *) echo "usage: $0 up|down|status|stop NAME|start NAME" >&2; exit 2 ;;
esac
