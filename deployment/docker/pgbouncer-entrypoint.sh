#!/bin/sh
# PgBouncer in session mode in front of Dagster's storage: every Dagster process (webserver,
# daemon, code server, each run and step process) keeps its own small pool of connections
# (finance_assets/dagster_instance/pooled_storage.py), so the pooler caps what PostgreSQL sees and queues the rest instead
# of refusing them at max_connections; session mode keeps LISTEN/NOTIFY working. An idle pooled
# client holds its server connection in session mode: raise PGBOUNCER_POOL_SIZE with the runs. The config and its password file are written at start, in a private
# directory, from the environment: no password is in the image.
set -eu
: "${DAGSTER_PG_PASSWORD:?}" "${POSTGRES_PORT:?}"
conf="$(mktemp -d)"
chmod 700 "$conf"
printf '"dagster" "%s"\n' "$DAGSTER_PG_PASSWORD" > "$conf/userlist.txt"
cat > "$conf/pgbouncer.ini" <<INI
[databases]
dagster = host=${POSTGRES_HOST:-127.0.0.1} port=${POSTGRES_PORT} dbname=dagster
[pgbouncer]
listen_addr = ${PGBOUNCER_LISTEN_ADDRESS:-127.0.0.1}
listen_port = ${PGBOUNCER_PORT:-6432}
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $conf/userlist.txt
pool_mode = session
max_client_conn = ${PGBOUNCER_MAX_CLIENT_CONN:-500}
default_pool_size = ${PGBOUNCER_POOL_SIZE:-40}
server_idle_timeout = 60
ignore_startup_parameters = extra_float_digits,options
INI
exec pgbouncer "$conf/pgbouncer.ini"
