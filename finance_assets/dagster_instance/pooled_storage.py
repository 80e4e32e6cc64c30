"""Dagster's PostgreSQL instance storage with a connection pool in every process.

dagster-postgres opens a fresh connection for every statement outside the webserver (its engines
use `NullPool`; only `optimize_for_webserver` pools). A single-run backfill of 1,560 five-minute
partitions writes ~3,100 planned events before the run starts, each on its own connection
(~15 ms of connect and authentication each). These subclasses keep a small SQLAlchemy
`QueuePool` per storage instead, so the daemon, code servers and run workers reuse their
connections as the webserver does (`benchmarks/README.md` has the figures).

Loaded from `dagster.yaml`, Dagster's supported extension point for storage:

    storage:
      custom:
        module: finance_assets.dagster_instance.pooled_storage
        class: PooledPostgresStorage
        config:
          postgres_db: {...}            # as dagster-postgres's `storage: postgres:` block
          pool_size: 2                  # optional: connections kept per storage and process
          pool_max_overflow: 10         # optional: extra connections under load, closed after
          pool_recycle_seconds: 3600    # optional: replace a connection older than this
          batch_planned_events: true    # optional: a run's planned events in one batch

A pooled connection is checked before use (`pool_pre_ping`), so one the server or a proxy closed
(a restart, `pg_terminate_backend`, an idle timeout) is replaced instead of failing a write, and a
forked child drops its parent's connections (they must not be shared across processes).

Dagster internals (`dagster._core.storage`, `dagster._serdes`, `dagster._config`) are imported
because a storage class is one: Dagster exports no public base for it, and dagster-postgres's
own storages are built on the same names. `test_io/test_dagster_storage.py` runs a real
instance on these classes, so an upgrade that moves them fails there first.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy
import sqlalchemy.pool as db_pool
from dagster import (
    DagsterEventType,
    DagsterInvariantViolationError,
    EventLogEntry,
    Field,
    IntSource,
)
from dagster._config.config_schema import UserConfigSchema
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.base_storage import DagsterStorage
from dagster._core.storage.config import pg_config
from dagster._core.storage.event_log.schema import (
    AssetCheckExecutionsTable,
    SqlEventLogStorageTable,
)
from dagster._serdes import ConfigurableClassData, serialize_value
from dagster_postgres import (
    DagsterPostgresStorage,
    PostgresEventLogStorage,
    PostgresRunStorage,
    PostgresScheduleStorage,
)
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

MODULE = __name__
PLANNED = {
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED,
}


@dataclass(frozen=True)
class PoolSettings:
    # Two: the event log storage nests a checkout inside `store_event` (its `has_table`).
    size: int = 2
    max_overflow: int = 10
    recycle_seconds: int = 3600
    # Not a pool setting, but this storage's other one: see PooledPostgresEventLogStorage.
    batch_planned: bool = True

    def __post_init__(self) -> None:
        for name, value, least in (
            ("pool_size", self.size, 1),
            ("pool_max_overflow", self.max_overflow, 0),
            ("pool_recycle_seconds", self.recycle_seconds, 1),
        ):
            if value < least:
                raise ValueError(f"storage config {name} must be at least {least}, got {value}")

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> PoolSettings:
        return cls(
            size=config.get("pool_size", cls.size),
            max_overflow=config.get("pool_max_overflow", cls.max_overflow),
            recycle_seconds=config.get("pool_recycle_seconds", cls.recycle_seconds),
            batch_planned=config.get("batch_planned_events", cls.batch_planned),
        )


def pooled_pg_config() -> UserConfigSchema:
    """dagster-postgres's storage config plus the pool's settings."""
    return {
        **pg_config(),  # type: ignore[dict-item]
        "pool_size": Field(IntSource, is_required=False, default_value=PoolSettings.size),
        "pool_max_overflow": Field(
            IntSource, is_required=False, default_value=PoolSettings.max_overflow
        ),
        "pool_recycle_seconds": Field(
            IntSource, is_required=False, default_value=PoolSettings.recycle_seconds
        ),
        "batch_planned_events": Field(
            bool, is_required=False, default_value=PoolSettings.batch_planned
        ),
    }


def pooled_engine(url: str, token_provider: Any, pool: PoolSettings) -> sqlalchemy.engine.Engine:
    engine = create_pg_engine(
        url,
        token_provider,
        isolation_level="AUTOCOMMIT",  # as dagster-postgres's own engines
        poolclass=db_pool.QueuePool,
        pool_size=pool.size,
        max_overflow=pool.max_overflow,
        pool_recycle=pool.recycle_seconds,
        pool_pre_ping=True,
    )
    # A forked child must not use its parent's sockets: it starts with an empty pool
    # (SQLAlchemy's recipe; close=False leaves the parent's connections alone).
    ref = weakref.ref(engine)
    os.register_at_fork(after_in_child=lambda: (e := ref()) is not None and e.dispose(close=False))
    return engine


class _PooledConfig:
    """The config (`pooled_pg_config`) and the constructor of every storage class here."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data: ConfigurableClassData | None = None,
        token_provider: Any = None,
        pool: PoolSettings | None = None,
    ) -> None:
        self.pool = pool or PoolSettings()
        self._open(postgres_url, should_autocreate_tables, inst_data, token_provider)

    def _open(
        self, url: str, autocreate: bool, inst_data: ConfigurableClassData | None, token: Any
    ) -> None:
        raise NotImplementedError

    @classmethod
    def config_type(cls) -> UserConfigSchema:
        return pooled_pg_config()

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData | None, config_value: Any) -> Any:
        return cls(
            pg_url_from_config(config_value),
            config_value.get("should_autocreate_tables", True),
            inst_data=inst_data,
            token_provider=get_token_provider_from_config(config_value),
            pool=PoolSettings.from_config(config_value),
        )


class _Pooled(_PooledConfig):
    """Swaps the parent's `NullPool` engine for a pooled one once it has created its tables."""

    _engine: sqlalchemy.engine.Engine

    def _open(
        self, url: str, autocreate: bool, inst_data: ConfigurableClassData | None, token: Any
    ) -> None:
        # The dagster-postgres storage after _PooledConfig in the MRO (PostgresRunStorage, ...).
        super(_PooledConfig, self).__init__(  # type: ignore[call-arg]
            url, autocreate, inst_data=inst_data, token_provider=token
        )
        self._engine.dispose()
        self._engine = pooled_engine(url, token, self.pool)

    def dispose(self) -> None:
        self._engine.dispose()
        super().dispose()  # type: ignore[misc]


class PooledPostgresRunStorage(_Pooled, PostgresRunStorage):  # type: ignore[misc]
    """dagster-postgres's run storage on a pooled engine."""


class PooledPostgresEventLogStorage(_Pooled, PostgresEventLogStorage):  # type: ignore[misc]
    """dagster-postgres's event log storage on a pooled engine, writing a run's planned events
    in one batch.

    Dagster hands the planned events of a new run (one per partition and asset, one per check)
    to `store_event_batch`; dagster-postgres batches materializations there but stores planned
    events one by one (five statements each). Here they get the same rows in the same tables,
    in three statements: the `event_logs` rows (what Dagster reads to mark a failed run's
    partitions as failed), the asset keys' last run (from each asset's last event, as
    dagster-postgres does for a batch of materializations), and the checks' planned rows.
    """

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        kinds = {event.get_dagster_event().event_type for event in events}
        if not events or not kinds <= PLANNED or not self.pool.batch_planned:
            return super().store_event_batch(events)
        with self._connect() as conn:
            result = conn.execute(
                self.prepare_insert_event_batch(events).returning(SqlEventLogStorageTable.c.id)
            )
            ids = [int(row[0]) for row in result.fetchall()]
        if len(ids) != len(events):
            raise DagsterInvariantViolationError(
                f"stored {len(ids)} of {len(events)} planned events"
            )
        last: dict[str, tuple[EventLogEntry, int]] = {}
        checks: list[dict[str, Any]] = []
        for event, event_id in zip(events, ids, strict=True):
            dagster_event = event.get_dagster_event()
            if dagster_event.event_type == DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
                if dagster_event.asset_key:
                    last[dagster_event.asset_key.to_string()] = (event, event_id)
            else:
                checks.extend(self._planned_check_rows(event, event_id))
        with self.index_transaction() as conn:
            for event, event_id in last.values():
                self._store_asset_event(conn, event, event_id)
            if checks:
                conn.execute(AssetCheckExecutionsTable.insert(), checks)

    def _planned_check_rows(self, event: EventLogEntry, event_id: int) -> list[dict[str, Any]]:
        # As SqlEventLogStorage._store_asset_check_evaluation_planned writes them.
        planned = event.get_dagster_event().event_specific_data
        subset = planned.partitions_subset  # type: ignore[union-attr]
        keys = subset.get_partition_keys() if subset else [None]
        common = {
            "asset_key": planned.asset_key.to_string(),  # type: ignore[union-attr]
            "check_name": planned.check_name,  # type: ignore[union-attr]
            "run_id": event.run_id,
            "execution_status": AssetCheckExecutionRecordStatus.PLANNED.value,
            "evaluation_event": serialize_value(event),
            "evaluation_event_timestamp": self._event_insert_timestamp(event),
            "evaluation_event_storage_id": event_id,
        }
        return [{**common, "partition": key} for key in keys]


class PooledPostgresScheduleStorage(_Pooled, PostgresScheduleStorage):  # type: ignore[misc]
    """dagster-postgres's schedule storage on a pooled engine."""


class PooledPostgresStorage(_PooledConfig, DagsterPostgresStorage):  # type: ignore[misc]
    """dagster-postgres's storage (runs, event log, schedules), each on a pooled engine."""

    def _open(
        self, url: str, autocreate: bool, inst_data: ConfigurableClassData | None, token: Any
    ) -> None:
        # Not DagsterPostgresStorage.__init__: it would build (and inspect tables with) a
        # second, unpooled set of storages.
        self.postgres_url = url
        self.should_autocreate_tables = autocreate
        self._inst_data = inst_data
        args = (url, autocreate)
        kwargs = {"token_provider": token, "pool": self.pool}
        self._run_storage = PooledPostgresRunStorage(*args, **kwargs)
        self._event_log_storage = PooledPostgresEventLogStorage(*args, **kwargs)
        self._schedule_storage = PooledPostgresScheduleStorage(*args, **kwargs)
        DagsterStorage.__init__(self)

    # What an instance ref records for each part (older readers load the parts one by one):
    # the pooled classes, with the same config.
    def _part(self, name: str) -> ConfigurableClassData | None:
        return (
            ConfigurableClassData(MODULE, name, self.inst_data.config_yaml)
            if self.inst_data
            else None
        )

    @property
    def event_storage_data(self) -> ConfigurableClassData | None:
        return self._part(PooledPostgresEventLogStorage.__name__)

    @property
    def run_storage_data(self) -> ConfigurableClassData | None:
        return self._part(PooledPostgresRunStorage.__name__)

    @property
    def schedule_storage_data(self) -> ConfigurableClassData | None:
        return self._part(PooledPostgresScheduleStorage.__name__)
