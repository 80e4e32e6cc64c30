# PostgreSQL 15 and PgBouncer from Debian's own packages, on the same BASE_IMAGE as the Python
# services: the stack needs no image but its base, whether or not a registry is reachable.
#   target `postgres`   one server holding Dagster's storage and the warehouse (two databases)
#   target `pgbouncer`  session-mode pooler in front of Dagster's storage
ARG BASE_IMAGE=python:3.11-slim-bookworm
# checkov:skip=CKV_DOCKER_7: the base image's tag is in ARG BASE_IMAGE (python:3.11-slim-bookworm)

FROM ${BASE_IMAGE} AS postgres
ENV PATH=/usr/lib/postgresql/15/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PGDATA=/var/lib/postgresql/data \
    POSTGRES_PORT=5432
# The `postgres` user with a fixed uid, made before the package (whose scripts then reuse it).
# No JIT: postgresql-15 depends on LLVM for it (libLLVM, its solver libz3 and the server's
# bitcode: 160 MB, half the image); the warehouse's queries are short, so dpkg leaves those
# files out and the server runs with jit=off (postgres-entrypoint.sh).
# hadolint ignore=DL3008
RUN printf '%s\n' 'path-exclude=/usr/lib/*/libLLVM-14.so*' 'path-exclude=/usr/lib/llvm-14/*' \
       'path-exclude=/usr/lib/*/libz3.so*' 'path-exclude=/usr/lib/postgresql/15/lib/llvmjit*' \
       'path-exclude=/usr/lib/postgresql/15/lib/bitcode/*' \
       > /etc/dpkg/dpkg.cfg.d/02-finance-assets-no-jit \
    && groupadd --system --gid 10002 postgres \
    && useradd --system --uid 10002 --gid postgres --home-dir /var/lib/postgresql --shell /bin/sh postgres \
    && apt-get update \
    && apt-get install -y --no-install-recommends postgresql-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p "$PGDATA" /var/run/postgresql \
    && chown -R postgres:postgres "$PGDATA" /var/run/postgresql
COPY deployment/docker/postgres-entrypoint.sh /usr/local/bin/
USER 10002:10002
EXPOSE 5432
HEALTHCHECK --interval=2s --timeout=5s --start-period=60s --retries=10 \
    CMD ["sh", "-c", "exec pg_isready -q -h 127.0.0.1 -p \"$POSTGRES_PORT\" -d dagster -U dagster"]
ENTRYPOINT ["postgres-entrypoint.sh"]

FROM ${BASE_IMAGE} AS pgbouncer
ENV PGBOUNCER_PORT=6432
# postgresql-client: pg_isready for the health check.
# hadolint ignore=DL3008
RUN groupadd --system --gid 10002 postgres \
    && useradd --system --uid 10002 --gid postgres --home-dir /var/lib/postgresql --shell /bin/sh postgres \
    && apt-get update \
    && apt-get install -y --no-install-recommends pgbouncer postgresql-client-15 \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/run/pgbouncer \
    && chown postgres:postgres /var/run/pgbouncer
COPY deployment/docker/pgbouncer-entrypoint.sh /usr/local/bin/
USER 10002:10002
EXPOSE 6432
HEALTHCHECK --interval=2s --timeout=5s --start-period=30s --retries=10 \
    CMD ["sh", "-c", "exec pg_isready -q -h 127.0.0.1 -p \"$PGBOUNCER_PORT\" -d dagster -U dagster"]
ENTRYPOINT ["pgbouncer-entrypoint.sh"]
