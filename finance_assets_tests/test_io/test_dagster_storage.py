"""The pooled Dagster storage (finance_assets/dagster_instance/pooled_storage.py), loaded from a
dagster.yaml as a deployment loads it, against the real PostgreSQL: runs stored and read back,
connections reused, a killed connection replaced."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import dagster as dg
import psycopg
import pytest
import sqlalchemy
import yaml

from finance_assets.dagster_instance.pooled_storage import (
    PooledPostgresEventLogStorage,
    PooledPostgresRunStorage,
    PooledPostgresStorage,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def storage_db(pg_server_url: str) -> Iterator[str]:
    from finance_assets_tests.conftest import fresh_database

    with fresh_database(pg_server_url, "finance_storage") as url:
        yield url


def _storage_block(url: str, **pool: int) -> dict:
    parts = urlsplit(url)
    return {
        "custom": {
            "module": "finance_assets.dagster_instance.pooled_storage",
            "class": "PooledPostgresStorage",
            "config": {
                "postgres_db": {
                    "scheme": "postgresql+psycopg2",
                    "hostname": parts.hostname,
                    "port": parts.port or 5432,
                    "db_name": parts.path.lstrip("/"),
                    "username": parts.username or "postgres",
                    "password": parts.password or "",
                },
                **pool,
            },
        }
    }


@pytest.fixture
def instance(tmp_path: Path, storage_db: str) -> Iterator[dg.DagsterInstance]:
    home = tmp_path / "home"
    home.mkdir()
    config = {"storage": _storage_block(storage_db), "telemetry": {"enabled": False}}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with dg.DagsterInstance.from_config(str(home)) as inst:
        yield inst


def _backends(url: str) -> set[int]:
    """Backend PIDs connected to this database, other than the asking one."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        ).fetchall()
    return {pid for (pid,) in rows}


@dg.asset
def a_number() -> int:
    return 7


def test_loaded_from_dagster_yaml_stores_a_run_and_reads_it_back(instance, storage_db):
    # What the yaml loaded: the pooled parts of the pooled storage.
    assert type(instance.run_storage) is PooledPostgresRunStorage
    assert type(instance.event_log_storage) is PooledPostgresEventLogStorage
    assert type(instance.get_ref().storage) is PooledPostgresStorage
    result = dg.materialize([a_number], instance=instance)
    assert result.success
    run = instance.get_run_by_id(result.run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
    event = instance.get_latest_materialization_event(dg.AssetKey("a_number"))
    assert event is not None and event.run_id == result.run_id
    # It is PostgreSQL, this database: the run is a row of its `runs` table.
    with psycopg.connect(storage_db) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM runs WHERE run_id = %s", [result.run_id]
        ).fetchone()
    assert n == 1
    # An instance ref (what a run worker or step subprocess loads) names the pooled storage.
    ref = instance.get_ref()
    assert ref.storage_data.class_name == "PooledPostgresStorage"
    with dg.DagsterInstance.from_ref(ref) as again:
        assert type(again.event_log_storage) is PooledPostgresEventLogStorage
        assert again.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS


def test_connections_are_reused_not_opened_per_event(instance, storage_db):
    storage = instance.event_log_storage
    # The same backend answers two checkouts in a row: the pool kept it, idle in between.
    with storage.index_connection() as conn:
        first = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    assert first in _backends(storage_db)
    with storage.index_connection() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() == first
    # Once warm (a first run), a whole run (a dozen events and run updates) opens none.
    assert dg.materialize([a_number], instance=instance).success
    engines = [instance.run_storage._engine, storage._engine]
    opened: list[object] = []
    for engine in engines:
        sqlalchemy.event.listen(engine, "connect", lambda dbapi_conn, _: opened.append(dbapi_conn))
    result = dg.materialize([a_number], instance=instance)
    assert result.success
    written = len(instance.all_logs(result.run_id))
    assert written >= 10 and not opened, (written, len(opened))


def test_the_default_storage_would_connect_per_event(tmp_path, storage_db):
    # The baseline this module exists for: dagster-postgres outside the webserver.
    from dagster_postgres import PostgresEventLogStorage

    url = storage_db.replace("postgresql://", "postgresql+psycopg2://", 1)
    storage = PostgresEventLogStorage(url)
    pids = set()
    for _ in range(2):
        with storage.index_connection() as conn:
            pids.add(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
    assert len(pids) == 2


def test_a_killed_pooled_connection_is_replaced_and_the_write_succeeds(instance, storage_db):
    storage = instance.event_log_storage
    with storage.index_connection() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar()
    with psycopg.connect(storage_db, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
    # The next writes (a run's events) go through: the dead connection is pinged and replaced.
    result = dg.materialize([a_number], instance=instance)
    assert result.success
    assert instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
    with storage.index_connection() as conn:
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid


def test_pool_settings_are_checked_with_the_field_named(tmp_path, storage_db):
    home = tmp_path / "bad"
    home.mkdir()
    config = {"storage": _storage_block(storage_db, pool_size=0)}
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(ValueError, match="pool_size must be at least 1, got 0"):
        dg.DagsterInstance.from_config(str(home))


@pytest.mark.parametrize("path", ["deployment/aws/dagster.yaml", "deployment/docker/dagster.yaml"])
def test_the_deployed_instances_use_the_pooled_storage(path, storage_db, tmp_path, monkeypatch):
    # The AWS instance is an Fn::Sub template (`${Cluster}`...): its names stand in for them.
    config = yaml.safe_load(re.sub(r"\$\{(\w+)\}", r"\1", (REPO / path).read_text()))
    storage = config["storage"]["custom"]
    assert (storage["module"], storage["class"]) == (
        "finance_assets.dagster_instance.pooled_storage",
        "PooledPostgresStorage",
    )
    # And the file loads: its storage block with its env vars pointed at the test database.
    parts = urlsplit(storage_db)
    for name, value in {
        "DAGSTER_PG_HOST": parts.hostname,
        "DAGSTER_PG_PORT": str(parts.port or 5432),
        "DAGSTER_PG_DB": parts.path.lstrip("/"),
        "DAGSTER_PG_USERNAME": parts.username or "postgres",
        "DAGSTER_PG_PASSWORD": parts.password or "",
    }.items():
        monkeypatch.setenv(name, value)
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        yaml.safe_dump({"storage": config["storage"], "telemetry": {"enabled": False}})
    )
    with dg.DagsterInstance.from_config(str(home)) as inst:
        assert type(inst.event_log_storage) is PooledPostgresEventLogStorage
        assert inst.get_runs() == []


DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-05")
RANGE = {
    "dagster/asset_partition_range_start": "2026-01-01",
    "dagster/asset_partition_range_end": "2026-01-04",
}


def _range_assets(fail: bool) -> list[dg.AssetsDefinition]:
    @dg.asset(partitions_def=DAYS, backfill_policy=dg.BackfillPolicy.single_run())
    def upstream() -> None:
        return None

    @dg.asset(
        deps=[upstream],
        partitions_def=DAYS,
        backfill_policy=dg.BackfillPolicy.single_run(),
        check_specs=[
            dg.AssetCheckSpec("rows_ok", asset="ranged", blocking=True),
            dg.AssetCheckSpec("keys_ok", asset="ranged"),
        ],
    )
    def ranged():
        if fail:
            raise RuntimeError("provider down")
        return dg.MaterializeResult(
            check_results=[
                dg.AssetCheckResult(check_name="rows_ok", passed=True),
                dg.AssetCheckResult(check_name="keys_ok", passed=True),
            ]
        )

    return [upstream, ranged]


def _planned_rows(url: str, run_id: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        events = conn.execute(
            "SELECT dagster_event_type, asset_key, partition, step_key FROM event_logs "
            "WHERE run_id = %s AND dagster_event_type LIKE '%%PLANNED' ORDER BY 1, 2, 3",
            [run_id],
        ).fetchall()
        checks = conn.execute(
            "SELECT asset_key, check_name, partition, execution_status FROM "
            "asset_check_executions WHERE run_id = %s ORDER BY 1, 2, 3",
            [run_id],
        ).fetchall()
        keys = conn.execute(
            "SELECT asset_key, last_run_id = %s FROM asset_keys ORDER BY 1", [run_id]
        ).fetchall()
    return {"events": events, "checks": checks, "asset_keys": keys}


@pytest.mark.parametrize("fail", [False, True], ids=["succeeded", "failed"])
def test_planned_events_are_batched_into_the_rows_dagster_postgres_writes(
    tmp_path, pg_server_url, fail
):
    """The same planned rows as dagster-postgres's one-by-one writes, so a failed run's
    partitions are marked failed exactly as before (issue 15: failure marking kept)."""

    from finance_assets_tests.conftest import fresh_database

    seen = {}
    for name in ("pooled", "dagster-postgres"):
        with fresh_database(pg_server_url, "finance_storage") as url:
            home = tmp_path / name
            home.mkdir()
            block = (
                _storage_block(url)
                if name == "pooled"
                else {
                    "postgres": {
                        "postgres_url": url.replace("postgresql://", "postgresql+psycopg2://")
                    }
                }
            )
            (home / "dagster.yaml").write_text(yaml.safe_dump({"storage": block}))
            with dg.DagsterInstance.from_config(str(home)) as inst:
                storage_type = type(inst.event_log_storage)
                assert (storage_type is PooledPostgresEventLogStorage) == (name == "pooled")
                result = dg.materialize(
                    _range_assets(fail), instance=inst, tags=RANGE, raise_on_error=False
                )
                assert result.success is not fail
                rows = _planned_rows(url, result.run_id)
                # What the UI and a re-run of the failed partitions read: planned, never
                # materialized, in a failed run.
                storage = inst.event_log_storage
                attempts = storage.get_latest_asset_partition_materialization_attempts_without_materializations(  # noqa: E501
                    dg.AssetKey("ranged")
                )
                rows["failed"] = sorted(
                    (partition, run_id == result.run_id)
                    for partition, (run_id, _) in attempts.items()
                )
            seen[name] = rows
    assert seen["pooled"] == seen["dagster-postgres"]
    pooled = seen["pooled"]
    # A planned event per asset and partition (not one subset per asset), one per check, and a
    # check row per check and partition.
    assert len(pooled["events"]) == 2 * 4 + 2
    assert len([row for row in pooled["checks"] if row[2] is not None]) == 2 * 4
    if fail:
        assert pooled["failed"] == [
            (day, True) for day in ("2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04")
        ]
    else:
        assert pooled["failed"] == []


def test_the_local_instance_keeps_dagsters_storage_on_the_embedded_server(tmp_path, monkeypatch):
    """deployment/local/dagster.yaml (what `make demo` / `make dev` use): the pooled storage in a
    `dagster` database of the embedded PostgreSQL under FINANCE_DATA_DIR."""
    from finance_assets.dagster_instance.local_storage import LocalPostgresStorage
    from finance_assets.lib.io.postgres import embedded_server_url

    data = tmp_path / "data"
    monkeypatch.setenv("FINANCE_DATA_DIR", str(data))
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text((REPO / "deployment/local/dagster.yaml").read_text())
    with dg.DagsterInstance.from_config(str(home)) as inst:
        assert type(inst.get_ref().storage) is LocalPostgresStorage
        assert type(inst.event_log_storage) is PooledPostgresEventLogStorage
        # Queued runs start within a second (issue 23), not Dagster's 5 s poll.
        assert inst.run_coordinator.dequeue_interval_seconds == 1
        result = dg.materialize([a_number], instance=inst)
        assert result.success
        # Read back through a second instance, as `make dev` reads the demo's runs.
        with dg.DagsterInstance.from_config(str(home)) as again:
            assert again.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
    assert (data / "postgres" / "pgdata" / "PG_VERSION").exists()
    server = embedded_server_url(data)  # joins the running server
    dagster_db = psycopg.conninfo.make_conninfo(server, dbname="dagster")
    with psycopg.connect(dagster_db) as conn:
        row = conn.execute("SELECT count(*) FROM runs WHERE run_id = %s", [result.run_id])
        assert row.fetchone()[0] == 1
