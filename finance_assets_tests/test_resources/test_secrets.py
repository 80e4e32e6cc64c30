"""No secret in what Dagster keeps: a malformed FINANCE_PG_URL (libpq quotes the whole string it
cannot parse) materialised on real instances, SQLite storage in a temp folder and PostgreSQL
storage, whose files, tables, compute logs and captured output are searched for the password;
and the MongoDB and S3 drivers' errors, which go through the same redaction."""

from __future__ import annotations

import datetime as dt
import traceback
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest
from psycopg import sql

from finance_assets.defs.market.assets import build_market_assets
from finance_assets.defs.ops.notifications import Notifier
from finance_assets.defs.warehouse.alerts import notify_new_alerts
from finance_assets.lib.io.managers import (
    LakeWarehouseIOManager,
    PostgresIOManager,
    WarehouseResource,
)
from finance_assets.lib.io.mongo import MongoRawStore
from finance_assets.lib.markets import Market
from finance_assets.resources import build_resources

PASSWORD = "pg-Pw-3f9c1e7a-distinctive"
# A colon missing after the scheme: libpq reads the string as `key=value` pairs and quotes it.
BAD_URL = f"postgresql//finance:{PASSWORD}@127.0.0.1:5432/warehouse"
DAY = "2026-11-18"


def _leaks(text: str | bytes) -> bool:
    data = text.encode() if isinstance(text, str) else text
    return PASSWORD.encode() in data


def _resources(tmp_path: Path) -> dict:
    """The local environment's resources, with the malformed URL given to the warehouse as a
    run would resolve it (the load-time check is `test_settings.py`'s)."""
    resources = build_resources({"FINANCE_DATA_DIR": str(tmp_path / "data")})
    warehouse = WarehouseResource(url=BAD_URL, data_dir=str(tmp_path / "data"))
    resources["warehouse"] = warehouse
    resources["warehouse_io_manager"] = PostgresIOManager(warehouse=warehouse)
    resources["lake_warehouse_io_manager"] = LakeWarehouseIOManager(
        lake_root=str(tmp_path / "data" / "lake"), warehouse=warehouse
    )
    return resources


def _materialize(market: Market, tmp_path: Path, instance: dg.DagsterInstance) -> str:
    assets = [
        a
        for a in build_market_assets(market)
        if a.key.path[-1] in ("raw_daily_quotes", "daily_bars")
    ]
    result = dg.materialize(
        assets,
        partition_key=DAY,
        resources=_resources(tmp_path),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    (failure,) = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    return failure.step_failure_data.error.to_string()


def _assert_useful(error: str) -> None:
    assert "FINANCE_PG_URL=" in error
    assert "postgresql//finance:***@127.0.0.1:5432/warehouse" in error
    assert "postgresql://" in error  # what it should look like


def test_a_malformed_url_leaves_no_password_in_sqlite_storage_or_output(
    tmp_path, us, capfd, caplog
):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        error = _materialize(us, tmp_path, instance)
    _assert_useful(error)
    assert not _leaks(error)

    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    databases = [p for p in files if p.suffix == ".db"]
    compute_logs = [p for p in files if p.suffix in (".out", ".err") and p.stat().st_size]
    # The search looks where the error went: the run's event log and the compute logs.
    assert any(b"FINANCE_PG_URL" in p.read_bytes() for p in databases)
    assert any(b"FINANCE_PG_URL" in p.read_bytes() for p in compute_logs)
    assert [p for p in files if _leaks(p.read_bytes())] == []

    captured = capfd.readouterr()
    assert not _leaks(captured.out) and not _leaks(captured.err)
    assert not _leaks(caplog.text)


def test_a_malformed_url_leaves_no_password_in_postgres_storage(tmp_path, us, pg_server_url, capfd):
    info = psycopg.conninfo.conninfo_to_dict(pg_server_url)
    if str(info.get("host", "")).startswith("/"):
        pytest.skip("dagster-postgres needs a TCP host; the test server is a socket")
    name = f"dagster_secrets_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    storage_url = psycopg.conninfo.make_conninfo(pg_server_url, dbname=name)
    try:
        home = tmp_path / "dagster_home"
        home.mkdir()
        overrides = {"storage": {"postgres": {"postgres_db": _postgres_db(storage_url)}}}
        with dg.instance_for_test(overrides=overrides, temp_dir=str(home)) as instance:
            assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
            error = _materialize(us, tmp_path, instance)
        _assert_useful(error)
        with psycopg.connect(storage_url) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
                )
            ]

            def rows_with(text: str) -> int:
                return sum(
                    conn.execute(
                        sql.SQL("SELECT count(*) FROM {} t WHERE t::text LIKE %s").format(
                            sql.Identifier(table)
                        ),
                        [f"%{text}%"],
                    ).fetchone()[0]
                    for table in tables
                )

            assert "event_logs" in tables and rows_with("FINANCE_PG_URL") > 0
            assert rows_with(PASSWORD) == 0
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert [p for p in files if _leaks(p.read_bytes())] == []
        captured = capfd.readouterr()
        assert not _leaks(captured.out) and not _leaks(captured.err)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


def _postgres_db(conninfo: str) -> dict:
    """dagster-postgres settings, as the repository's dagster.yaml gives them (psycopg2)."""
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    return {
        "scheme": "postgresql+psycopg2",
        "hostname": str(info.get("host", "127.0.0.1")),
        "port": int(info.get("port", 5432)),
        "db_name": str(info["dbname"]),
        "username": str(info.get("user", "postgres")),
        "password": str(info.get("password", "unused")),
    }


def test_the_psycopg_path_redacts_too(us, tmp_path):
    """The price-alert sensor's connection (psycopg, not ADBC)."""
    notifier = Notifier(notifications_file=str(tmp_path / "notifications.jsonl"))
    with pytest.raises(ValueError) as caught:
        notify_new_alerts(BAD_URL, us, notifier, dt.datetime.now(dt.UTC))
    text = "".join(traceback.format_exception(caught.value))
    assert not _leaks(text)
    assert "FINANCE_PG_URL=" in text and "finance:***@" in text


def test_mongodb_errors_name_the_variable_and_star_the_password():
    with pytest.raises(ValueError) as caught:
        MongoRawStore(f"mongodb//raw:{PASSWORD}@127.0.0.1:27017/")
    text = "".join(traceback.format_exception(caught.value))
    assert not _leaks(text)
    assert "MONGODB_URI='mongodb//raw:***@127.0.0.1:27017/'" in text


def test_s3_errors_leave_the_endpoint_password_out():
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    from finance_assets.lib.landing import S3LandingStore

    # An endpoint with credentials in it (a MinIO behind a proxy), on a port nothing listens on.
    client = boto3.session.Session(
        aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="unused", region_name="us-east-1"
    ).client(
        "s3",
        endpoint_url=f"http://minio:{PASSWORD}@127.0.0.1:9",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    store = S3LandingStore("landing-bucket", "us", client=client)
    with pytest.raises(OSError) as caught:
        store.list_files()
    text = "".join(traceback.format_exception(caught.value))
    assert not _leaks(text)
    assert "minio:***@127.0.0.1:9" in text
