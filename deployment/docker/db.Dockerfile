# PostgreSQL 15 and PgBouncer from Debian's own packages, on the same BASE_IMAGE as the Python
# services: the stack needs no image but its base, whether or not a registry is reachable.
#   target `postgres`   one server holding Dagster's storage and the warehouse (two databases)
#   target `pgbouncer`  session-mode pooler in front of Dagster's storage
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS postgres
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data \
    POSTGRES_PORT=5432
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p "$PGDATA" /var/run/postgresql \
    && chown -R postgres:postgres "$PGDATA" /var/run/postgresql
COPY deployment/docker/postgres-entrypoint.sh /usr/local/bin/
USER postgres
EXPOSE 5432
HEALTHCHECK --interval=2s --timeout=5s --start-period=60s --retries=10 \
    CMD pg_isready -q -h 127.0.0.1 -p "$POSTGRES_PORT" -d dagster -U dagster
ENTRYPOINT ["postgres-entrypoint.sh"]

FROM ${BASE_IMAGE} AS pgbouncer
ENV PGBOUNCER_PORT=6432
# postgresql-client: pg_isready for the health check.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends pgbouncer postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/run/pgbouncer \
    && chown postgres:postgres /var/run/pgbouncer
COPY deployment/docker/pgbouncer-entrypoint.sh /usr/local/bin/
USER postgres
EXPOSE 6432
HEALTHCHECK --interval=2s --timeout=5s --start-period=30s --retries=10 \
    CMD pg_isready -q -h 127.0.0.1 -p "$PGBOUNCER_PORT" -d dagster -U dagster
ENTRYPOINT ["pgbouncer-entrypoint.sh"]
