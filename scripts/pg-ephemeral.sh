#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster for tests.
#
#   scripts/pg-ephemeral.sh start DIR   prints a DATABASE_URL on stdout
#   scripts/pg-ephemeral.sh stop DIR
#   scripts/pg-ephemeral.sh crash-restart DIR   immediate stop (a crash: no
#                                               checkpoint, recovery from the WAL
#                                               on start), then start again
#
# The cluster listens on 127.0.0.1 on a free port, with trust auth, and keeps
# everything (data, socket, log) under DIR. As root the server runs as the
# `postgres` user, because PostgreSQL refuses to run as root.
set -euo pipefail

die() { echo "pg-ephemeral: $*" >&2; exit 1; }

find_pg_bin() {
  if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return
  fi
  local candidate
  for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) \
                   $(ls -d /opt/homebrew/opt/postgresql*/bin /usr/local/opt/postgresql*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$candidate/pg_ctl" ] && [ -x "$candidate/initdb" ]; then
      echo "$candidate"
      return
    fi
  done
  return 1
}

free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$(( 20000 + RANDOM % 20000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return
    fi
  done
  return 1
}

as_pg() {
  if [ "$(id -u)" = "0" ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cmd=${1:-}
dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: $0 start|stop|crash-restart DIR"

case "$cmd" in
  start)
    bin=$(find_pg_bin) || die "no PostgreSQL server binaries (initdb, pg_ctl) found on PATH or in /usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql@16) or set DATABASE_URL to an existing database."
    rm -rf "$dir"
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" = "0" ]; then
      id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user to run the server as"
      chown -R postgres "$dir"
      if ! runuser -u postgres -- test -w "$dir"; then
        # The postgres user cannot reach this path (a parent is not traversable).
        rm -rf "$dir"
        dir=$(mktemp -d /tmp/tasker-pg.XXXXXX)
        chown -R postgres "$dir"
      fi
    fi
    port=$(free_port) || die "no free TCP port found"
    as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || as_pg "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
      || die "initdb failed; see $dir/initdb.log"
    # Durability is pointless for a throwaway test cluster; speed is not. Benchmarks
    # pass TASKER_PG_DURABLE=1 to measure with PostgreSQL's defaults.
    # TASKER_PG_EXTRA_OPTS adds server options, for example
    # "-c shared_preload_libraries=pg_stat_statements" to profile queries.
    if [ "${TASKER_PG_DURABLE:-}" = "1" ]; then
      tuning="-c shared_buffers=256MB"
    else
      tuning="-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=128MB"
    fi
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=300 $tuning ${TASKER_PG_EXTRA_OPTS:-}" \
      start >/dev/null || die "pg_ctl start failed; see $dir/server.log"
    echo "$dir" > "${2%/}.location" 2>/dev/null || true
    echo "postgres://postgres@127.0.0.1:$port/postgres"
    ;;
  crash-restart)
    bin=$(find_pg_bin) || die "no PostgreSQL server binaries found"
    real="$dir"
    if [ -f "${dir%/}.location" ]; then real=$(cat "${dir%/}.location"); fi
    [ -d "$real/data" ] || die "no cluster in $real"
    # restart reuses the options the server was started with (postmaster.opts).
    as_pg "$bin/pg_ctl" -D "$real/data" -l "$real/server.log" -m immediate -w -t 60 restart >/dev/null \
      || die "pg_ctl restart failed; see $real/server.log"
    ;;
  stop)
    bin=$(find_pg_bin) || exit 0
    real="$dir"
    if [ -f "${dir%/}.location" ]; then real=$(cat "${dir%/}.location"); fi
    if [ -d "$real/data" ]; then
      as_pg "$bin/pg_ctl" -D "$real/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$real" "$dir" "${dir%/}.location"
    ;;
  *)
    die "unknown command $cmd"
    ;;
esac
