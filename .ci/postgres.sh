#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster for the tests (Debian's packages; PostgreSQL refuses
# to run as root, so the cluster belongs to the `postgres` user), and prints the export
# lines that point the tests at it. Source its output: eval "$(bash .ci/postgres.sh)".
# The cluster lives in a temporary directory and stops when `.ci/postgres.sh stop DIR` runs.
set -euo pipefail
if [ "${1:-}" = stop ]; then
  su postgres -s /bin/sh -c "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/pg_ctl -D '$2/data' -m fast stop" >/dev/null
  rm -rf "$2"
  exit 0
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
dir=$(mktemp -d /tmp/datatrust-pg.XXXXXX)
chown postgres "$dir"
port=${DATATRUST_TEST_POSTGRES_PORT:-54329}
su postgres -s /bin/sh -c "$bin/initdb -D '$dir/data' -A trust -U postgres >/dev/null"
su postgres -s /bin/sh -c "$bin/pg_ctl -D '$dir/data' -w -l '$dir/log' -o \"-k '$dir' -p $port -c listen_addresses=127.0.0.1 -c fsync=on -c max_connections=200\" start >/dev/null"
echo "export DATATRUST_TEST_POSTGRES='host=127.0.0.1 port=$port user=postgres dbname=postgres'"
echo "export DATATRUST_TEST_POSTGRES_DIR='$dir'"
