#!/bin/sh
# PostgreSQL for the stack: on first start, a cluster with two databases, each with its own
# owner: `dagster` (Dagster's run, event and schedule storage) and `warehouse` (the bars).
# Passwords come from the environment only; they are written to no file of the image.
set -eu
: "${POSTGRES_PASSWORD:?}" "${DAGSTER_PG_PASSWORD:?}" "${WAREHOUSE_PG_PASSWORD:?}"
port="${POSTGRES_PORT:-5432}"
listen="${POSTGRES_LISTEN_ADDRESSES:-127.0.0.1}"

if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile="$(mktemp)"
  printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
  initdb --pgdata="$PGDATA" --username=postgres --pwfile="$pwfile" --encoding=UTF8 \
    --locale=C.UTF-8 --auth-local=peer --auth-host=scram-sha-256 >/dev/null
  rm -f "$pwfile"
  # Set up over the local socket only, before any TCP listener exists.
  pg_ctl --pgdata="$PGDATA" --options="-c listen_addresses='' -p $port" --wait start >/dev/null
  psql --quiet --no-psqlrc --port="$port" --username=postgres --dbname=postgres \
    --set=ON_ERROR_STOP=1 \
    --set=dagster_pw="$DAGSTER_PG_PASSWORD" --set=warehouse_pw="$WAREHOUSE_PG_PASSWORD" <<'SQL'
CREATE ROLE dagster LOGIN PASSWORD :'dagster_pw';
CREATE ROLE warehouse LOGIN PASSWORD :'warehouse_pw';
CREATE DATABASE dagster OWNER dagster;
CREATE DATABASE warehouse OWNER warehouse;
REVOKE ALL ON DATABASE dagster FROM PUBLIC;
REVOKE ALL ON DATABASE warehouse FROM PUBLIC;
SQL
  pg_ctl --pgdata="$PGDATA" --mode=fast --wait stop >/dev/null
fi

# jit=off: the image has no JIT provider (db.Dockerfile).
exec postgres -D "$PGDATA" -c listen_addresses="$listen" -p "$port" \
  -c max_connections="${POSTGRES_MAX_CONNECTIONS:-200}" -c jit=off
