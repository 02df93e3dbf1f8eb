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

init_cluster() {
  mkdir -p "$datadir"
  if [ "$(id -u)" = "0" ]; then chown postgres:postgres "$datadir"; fi
  as_postgres "$1/initdb" -D "$datadir" -U postgres --auth=trust -E UTF8 >/dev/null
}

start_cluster() {
  # fsync stays on: the tests check durability, and the benchmark measures real commits.
  as_postgres "$1/pg_ctl" -D "$datadir" -l "$datadir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=/tmp -c max_connections=300" start >/dev/null
}

start() {
  install_server
  local bin
  bin="$(find_bin)"
  # Ask the port, not the pid file: a killed server's pid can linger as a zombie.
  if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    echo "postgres.sh: already running on port $port" >&2
  else
    start_or_rebuild "$bin"
  fi
  create_test_database "$bin"
  echo "postgres.sh: running on 127.0.0.1:$port" >&2
}

start_or_rebuild() {
  local bin="$1"
  [ -f "$datadir/PG_VERSION" ] || init_cluster "$bin"
  # A cluster left behind by a killed run may not start (a stale lock, another
  # version's files); the data is throwaway, so start once more from scratch.
  if ! start_cluster "$bin"; then
    echo "postgres.sh: the old cluster in $datadir did not start; making a new one" >&2
    rm -rf "$datadir"
    init_cluster "$bin"
    start_cluster "$bin"
  fi
}

create_test_database() {
  local bin="$1"
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
