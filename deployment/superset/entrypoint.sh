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
# One worker with threads, as `make dashboard` serves it: enough for a dashboard's readers, and
# ~400 MB instead of ~1.5 GB for two. (The bounce back to /login once blamed on two workers was
# the login page's anonymous log beacon racing the login; it happens with one too.)
exec env -u SUPERSET_PG_ADMIN_URI -u BI_READER_PASSWORD -u SUPERSET_PG_PASSWORD \
  -u SUPERSET_ADMIN_PASSWORD -u SUPERSET_WAREHOUSE_URI \
  gunicorn --bind "127.0.0.1:${SUPERSET_PORT:-8088}" --workers 1 \
  --worker-class gthread --threads 8 --timeout 120 "superset.app:create_app()"
