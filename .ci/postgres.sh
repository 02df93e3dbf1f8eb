#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback for the test suite.
#   start  install Debian's postgresql if missing, init a cluster in /tmp/polytrial-pgdata-PORT, start it
#   stop   stop it
#   url    print the SQLAlchemy URL of its test database
# Debian runs the server as the postgres user, so this works as root too.
set -euo pipefail

port="${POLYTRIAL_PGPORT:-54329}"
# Outside the checkout: the postgres user may not be able to enter a root-owned clone.
datadir="${POLYTRIAL_PGDATA:-/tmp/polytrial-pgdata-${port}}"

url="postgresql+psycopg://polytrial:polytrial@127.0.0.1:${port}/polytrial"

find_bin() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/pg_ctl" ]; then echo "$dir"; return 0; fi
  done
  return 1
}

as_postgres() {
  if [ "$(id -u)" = "0" ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

install_server() {
  if ! find_bin >/dev/null; then
    echo "postgres.sh: installing Debian's postgresql package" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  fi
}

start() {
  install_server
  local bin
  bin="$(find_bin)"
  if [ -f "$datadir/postmaster.pid" ] && as_postgres "$bin/pg_ctl" -D "$datadir" status >/dev/null 2>&1; then
    echo "postgres.sh: already running on port $port" >&2
    return 0
  fi
  if [ ! -f "$datadir/PG_VERSION" ]; then
    mkdir -p "$datadir"
    [ "$(id -u)" = "0" ] && chown postgres:postgres "$datadir"
    as_postgres "$bin/initdb" -D "$datadir" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  # fsync stays on: the tests check durability, and the benchmark measures real commits.
  as_postgres "$bin/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=/tmp -c max_connections=300" start >/dev/null
  as_postgres "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'polytrial') THEN
    CREATE ROLE polytrial LOGIN PASSWORD 'polytrial' CREATEDB;
  END IF;
END \$\$;
SQL
  if ! as_postgres "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='polytrial'" | grep -q 1; then
    as_postgres "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres -O polytrial polytrial
  fi
  echo "postgres.sh: running on 127.0.0.1:$port" >&2
}

stop() {
  local bin
  bin="$(find_bin)" || return 0
  [ -d "$datadir" ] || return 0
  as_postgres "$bin/pg_ctl" -D "$datadir" -m fast stop >/dev/null 2>&1 || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) echo "$url" ;;
  *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
