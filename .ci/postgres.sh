#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests (Debian's packages; PostgreSQL refuses
# to run as root, so the cluster belongs to the `postgres` user), and prints the export
# lines that point the tests at it. Source its output: eval "$(bash .ci/postgres.sh)".
# The cluster lives in a temporary directory and stops when `.ci/postgres.sh stop DIR` runs.
set -euo pipefail
# `crash DIR` stops the cluster as a power cut would (immediate shutdown: no checkpoint,
# recovery from the WAL at the next start); `start DIR` starts it again. The tests use them
# to show that nothing acknowledged is lost when the database server dies.
bin_of() { ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1; }
case "${1:-}" in
  stop)
    su postgres -s /bin/sh -c "$(bin_of)/pg_ctl -D '$2/data' -m fast stop" >/dev/null
    rm -rf "$2"
    exit 0
    ;;
  crash)
    su postgres -s /bin/sh -c "$(bin_of)/pg_ctl -D '$2/data' -m immediate stop" >/dev/null
    exit 0
    ;;
  start)
    su postgres -s /bin/sh -c "$(bin_of)/pg_ctl -D '$2/data' -w -l '$2/log' -o \"$(cat "$2/options")\" start" >/dev/null
    exit 0
    ;;
esac
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d /tmp/datatrust-pg.XXXXXX)
chown postgres "$dir"
port=${DATATRUST_TEST_POSTGRES_PORT:-54329}
su postgres -s /bin/sh -c "$bin/initdb -D '$dir/data' -A trust -U postgres >/dev/null"
echo "-k '$dir' -p $port -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200" > "$dir/options"
su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -w -l '$dir/log' -o \"$(cat "$dir/options")\" start >/dev/null"
echo "export DATATRUST_TEST_POSTGRES='host=127.0.0.1 port=$port user=postgres dbname=postgres'"
echo "export DATATRUST_TEST_POSTGRES_DIR='$dir'"
