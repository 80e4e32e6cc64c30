"""The local Dagster instance (`make demo`, `make dev`): the pooled PostgreSQL storage in a
`dagster` database of the project's embedded PostgreSQL, under the data folder.

The demo's warehouse already runs on that server when FINANCE_PG_URL is unset; Dagster's own
storage joins it instead of SQLite, which writes each event on its own (~10 ms each, no batch):
`benchmarks/README.md` has the figures. Every Dagster process of `make dev` (webserver, daemon,
code server, runs) joins the same server; it stops when the last of them exits.

    storage:
      custom:
        module: finance_assets.dagster_instance.local_storage
        class: LocalPostgresStorage
        config:
          data_dir:                   # optional: else FINANCE_DATA_DIR, else ./data
            env: FINANCE_DATA_DIR

It imports `dagster._serdes` and `dagster._config` for the reason `pooled_storage.py` gives (a
storage class has no public base).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dagster import Field, StringSource
from dagster._config.config_schema import UserConfigSchema
from dagster._serdes import ConfigurableClassData

from finance_assets.dagster_instance.pooled_storage import PooledPostgresStorage, PoolSettings

DATABASE = "dagster"


def local_storage_url(data_dir: str | os.PathLike[str], database: str = DATABASE) -> str:
    """Start (or join) the embedded server under `data_dir` and make sure `database` exists;
    its SQLAlchemy URL for dagster-postgres (psycopg2)."""
    import psycopg
    from psycopg import sql

    from finance_assets.lib.io.postgres import embedded_server_url

    server = embedded_server_url(data_dir)
    with psycopg.connect(server, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database])
        if exists.fetchone() is None:
            # Another Dagster process of `make dev` may make it first.
            with contextlib.suppress(psycopg.errors.DuplicateDatabase):
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    info = psycopg.conninfo.conninfo_to_dict(server)
    host = str(info.get("host", ""))
    user = info.get("user", "postgres")
    if host.startswith("/"):  # a socket directory
        return f"postgresql+psycopg2://{user}@/{database}?host={host}"
    return f"postgresql+psycopg2://{user}@{host}:{info.get('port', 5432)}/{database}"


class LocalPostgresStorage(PooledPostgresStorage):
    """`PooledPostgresStorage` on the embedded server of the data folder."""

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return {
            "data_dir": Field(StringSource, is_required=False),
            "db_name": Field(StringSource, is_required=False, default_value=DATABASE),
        }

    @classmethod
    def from_config_value(  # type: ignore[override]
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> LocalPostgresStorage:
        data_dir = config_value.get("data_dir") or os.environ.get("FINANCE_DATA_DIR") or "data"
        url = local_storage_url(Path(data_dir).resolve(), config_value.get("db_name", DATABASE))
        return cls(url, True, inst_data=inst_data, pool=PoolSettings())
