"""Provision Superset for finance_assets, with no clicks. Runs in Superset's own venv.

    python provision.py prepare   # as a PostgreSQL superuser: roles, grants, metadata database
    python provision.py load      # Superset's tables, roles, admin user, then the dashboards

`prepare` (SUPERSET_PG_ADMIN_URI: a superuser's libpq URI of the server) makes, idempotently:
the read-only warehouse role (BI_READER_ROLE, default `bi_reader`, password BI_READER_PASSWORD)
with CONNECT on the warehouse database (WAREHOUSE_DB), USAGE on each market's schema and SELECT
on its `bi_*` views and nothing else; and Superset's metadata role and database (SUPERSET_PG_USER,
SUPERSET_PG_PASSWORD, SUPERSET_PG_DB). The views made later are granted by the pipeline itself
(finance_assets/lib/analytics/views.py), so a start before the first run is fine.

`load` (SUPERSET_DATABASE_URI, SUPERSET_SECRET_KEY, SUPERSET_ADMIN_PASSWORD, SUPERSET_WAREHOUSE_URI
with bi_reader's password in it, FINANCE_MARKETS) runs `superset db upgrade`, `superset init`,
creates the admin user or resets its password, builds the bundle from dashboards.yaml and
imports it, every object overwritten (import_bundle): the files in git win over any click.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bundle  # noqa: E402  (beside this file)

VIEWS = tuple(bundle.load_spec()["datasets"])


def _markets() -> list[str]:
    listed = os.environ.get("FINANCE_MARKETS") or ",".join(bundle.load_spec()["markets"])
    return [m.strip().lower() for m in listed.split(",") if m.strip()]


def _server_uri(admin_uri: str, dbname: str) -> str:
    """The admin URI with another database name (URI or key=value conninfo)."""
    from psycopg2.extensions import make_dsn, parse_dsn

    return make_dsn(**{**parse_dsn(admin_uri), "dbname": dbname})


def prepare(
    admin_uri: str,
    *,
    warehouse_db: str,
    role: str,
    role_password: str,
    superset_user: str,
    superset_password: str,
    superset_db: str,
    markets: list[str],
) -> list[str]:
    """Roles, grants and the metadata database; returns the views granted to `role`."""
    import psycopg2
    from psycopg2 import sql

    def ensure_role(cur, name: str, password: str) -> None:
        cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,))
        verb = "ALTER" if cur.fetchone() else "CREATE"
        cur.execute(
            sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                sql.SQL(verb), sql.Identifier(name), sql.Literal(password)
            )
        )

    conn = psycopg2.connect(_server_uri(admin_uri, "postgres"))
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cur:
            ensure_role(cur, role, role_password)
            ensure_role(cur, superset_user, superset_password)
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (superset_db,))
            if not cur.fetchone():
                cur.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(superset_db), sql.Identifier(superset_user)
                    )
                )
            cur.execute(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(superset_db))
            )
            cur.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(warehouse_db), sql.Identifier(role)
                )
            )
    finally:
        conn.close()

    granted = []
    conn = psycopg2.connect(_server_uri(admin_uri, warehouse_db))
    try:
        with conn, conn.cursor() as cur:
            for market in markets:
                cur.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (market,))
                if not cur.fetchone():
                    continue  # no run yet: the pipeline grants when it makes the views
                cur.execute(
                    sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(
                        sql.Identifier(market), sql.Identifier(role)
                    )
                )
                for view in VIEWS:
                    cur.execute("SELECT to_regclass(%s)", (f'"{market}"."{view}"',))
                    if cur.fetchone()[0] is None:
                        continue
                    cur.execute(
                        sql.SQL("GRANT SELECT ON {} TO {}").format(
                            sql.Identifier(market, view), sql.Identifier(role)
                        )
                    )
                    granted.append(f"{market}.{view}")
    finally:
        conn.close()
    return granted


def _superset(*args: str) -> None:
    command = [str(Path(sys.executable).with_name("superset")), *args]
    # The subcommand only: the arguments after it may hold a password.
    print("+ superset", " ".join(a for a in args[:2] if not a.startswith("-")), flush=True)
    subprocess.run(command, check=True)


def load(warehouse_uri: str, markets: list[str], admin_user: str, admin_password: str) -> None:
    """Superset's own tables and roles, the admin user, then the dashboards of `markets`."""
    _superset("db", "upgrade")
    _superset("init")
    # create-admin leaves an existing user as it is: the password is set again after it, so
    # the one in the environment is the one that works.
    _superset(
        "fab",
        "create-admin",
        "--username",
        admin_user,
        "--firstname",
        "Finance",
        "--lastname",
        "Admin",
        "--email",
        f"{admin_user}@localhost",
        "--password",
        admin_password,
    )
    _superset("fab", "reset-password", "--username", admin_user, "--password", admin_password)
    import_bundle(warehouse_uri, markets, admin_user)


# Superset's importers, in dependency order, each with the `type` its metadata.yaml must name.
IMPORTERS = (
    ("superset.commands.database.importers.dispatcher", "ImportDatabasesCommand", "Database"),
    ("superset.commands.dataset.importers.dispatcher", "ImportDatasetsCommand", "SqlaTable"),
    ("superset.commands.chart.importers.dispatcher", "ImportChartsCommand", "Slice"),
    ("superset.commands.dashboard.importers.dispatcher", "ImportDashboardsCommand", "Dashboard"),
)


def import_bundle(warehouse_uri: str, markets: list[str], admin_user: str) -> None:
    """Import the bundle with every object overwritten: the database, then the datasets, the
    charts and the dashboards. Not `superset import-dashboards`: it overwrites the dashboards
    only and keeps an existing database, dataset or chart as it was, so a chart changed in
    dashboards.yaml (or a new warehouse address) would never reach Superset."""
    import importlib

    import yaml
    from flask import g
    from superset.app import create_app

    files = bundle.bundle_files(warehouse_uri, markets, bundle.load_spec())
    app = create_app()
    with app.app_context():
        from superset import security_manager

        g.user = security_manager.find_user(username=admin_user)
        for module, name, kind in IMPORTERS:
            metadata = yaml.safe_load(files["metadata.yaml"])
            contents = {**files, "metadata.yaml": yaml.safe_dump({**metadata, "type": kind})}
            command = getattr(importlib.import_module(module), name)
            command(contents, overwrite=True).run()
            print(f"imported ({kind}, overwritten)", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("step", choices=["prepare", "load"])
    args = parser.parse_args(argv)
    env = os.environ
    if args.step == "prepare":
        granted = prepare(
            env["SUPERSET_PG_ADMIN_URI"],
            warehouse_db=env.get("WAREHOUSE_DB", "warehouse"),
            role=env.get("BI_READER_ROLE", "bi_reader"),
            role_password=env["BI_READER_PASSWORD"],
            superset_user=env.get("SUPERSET_PG_USER", "superset"),
            superset_password=env["SUPERSET_PG_PASSWORD"],
            superset_db=env.get("SUPERSET_PG_DB", "superset"),
            markets=_markets(),
        )
        print(f"prepared: SELECT granted on {len(granted)} views", flush=True)
    else:
        load(
            env["SUPERSET_WAREHOUSE_URI"],
            _markets(),
            env.get("SUPERSET_ADMIN_USER", "admin"),
            env["SUPERSET_ADMIN_PASSWORD"],
        )
        print(f"loaded the dashboards of {', '.join(_markets())}", flush=True)


if __name__ == "__main__":
    main()
