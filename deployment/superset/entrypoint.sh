#!/bin/sh
# The stack's Superset: provision (roles and grants as the superuser, then Superset's tables,
# the admin user and the dashboards from dashboards.yaml), then serve. The superuser's URI and
# the roles' passwords are dropped from the environment before gunicorn starts.
set -eu
: "${SUPERSET_PG_ADMIN_URI:?}" "${SUPERSET_DATABASE_URI:?}" "${SUPERSET_SECRET_KEY:?}"
: "${SUPERSET_ADMIN_PASSWORD:?}" "${SUPERSET_WAREHOUSE_URI:?}" "${BI_READER_PASSWORD:?}"
files=/opt/superset-files
python3 "$files/provision.py" prepare
python3 "$files/provision.py" load
exec env -u SUPERSET_PG_ADMIN_URI -u BI_READER_PASSWORD -u SUPERSET_PG_PASSWORD \
  -u SUPERSET_ADMIN_PASSWORD -u SUPERSET_WAREHOUSE_URI \
  gunicorn --bind "127.0.0.1:${SUPERSET_PORT:-8088}" --workers "${SUPERSET_WORKERS:-2}" \
  --worker-class gthread --threads 8 --timeout 120 "superset.app:create_app()"
