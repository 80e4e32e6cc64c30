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
# One worker with threads, as `make dashboard` serves it: with two workers, a browser that had
# just logged in was sent back to the login page by the welcome page's own requests (measured
# 2026-12-07 in the container test; one worker passes), and one worker is ~400 MB, not ~1.5 GB.
exec env -u SUPERSET_PG_ADMIN_URI -u BI_READER_PASSWORD -u SUPERSET_PG_PASSWORD \
  -u SUPERSET_ADMIN_PASSWORD -u SUPERSET_WAREHOUSE_URI \
  gunicorn --bind "127.0.0.1:${SUPERSET_PORT:-8088}" --workers 1 \
  --worker-class gthread --threads 8 --timeout 120 "superset.app:create_app()"
