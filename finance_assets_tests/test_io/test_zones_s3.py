"""The raw zone and the lake on S3 (moto's server on loopback) through the same code as on a
local folder: the IO managers' round trips with their exact keys, one market day end to end,
S3 refusing writes (a proxy answering 500 / 503 SlowDown), a missing bucket, retention, and
the prod settings."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import dagster as dg
import polars as pl
import psycopg
import pytest

from finance_assets.lib.io.objects.s3_resource import S3Resource

pytest.importorskip("moto.server")

from finance_assets.definitions import build_domain_defs
from finance_assets.defs.common.partitions import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    daily_partitions,
)
from finance_assets.defs.ops.retention import retention_job
from finance_assets.demo import run_market
from finance_assets.lib.io import lake
from finance_assets.lib.io.managers import (
    LakeWarehouseIOManager,
    RawZoneIOManager,
    WarehouseResource,
)
from finance_assets.lib.io.objects import open_location
from finance_assets.lib.schema import BAR_KEY
from finance_assets.lib.settings import SettingsError
from finance_assets.providers.simulated_market import SimulatedMarket
from finance_assets.resources import build_resources
from finance_assets.resources.zones import StorageResource
from finance_assets_tests.conftest import DUMMY_KEY_ID, DUMMY_SECRET
from finance_assets_tests.test_io.day_bars import day_bars

FETCHED = dt.datetime(2026, 11, 19, 1, tzinfo=dt.UTC)


def listing(root: str) -> list[str]:
    """Every object under `root` (a folder or an S3 prefix), relative to it, sorted."""
    return [o.name for o in open_location(root).list_tree()]


@pytest.fixture(params=["local", "s3"])
def roots(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(raw root, lake root): two folders, or two prefixes of a fresh bucket."""
    if request.param == "local":
        return str(tmp_path / "raw"), str(tmp_path / "lake")
    bucket = request.getfixturevalue("bucket")
    return f"s3://{bucket}/raw", f"s3://{bucket}/lake"


def _frame(market, days: list[dt.date]) -> pl.DataFrame:
    """Two symbols, one row per day at the session's open."""
    rows = [
        {"symbol": s, "ts": market.session_bounds(d)[0].astimezone(dt.UTC), "close": 100.0 + i}
        for i, d in enumerate(days)
        for s in ("AAPL", "MSFT")
    ]
    return pl.DataFrame(rows).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def _round_trip_assets(market, days: list[dt.date]) -> list[dg.AssetsDefinition]:
    partitions = daily_partitions(market)
    start = dt.datetime.combine(days[0], dt.time(), market.tz)
    end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(), market.tz)

    @dg.asset(
        key=["us", "raw_daily_quotes"],
        partitions_def=partitions,
        io_manager_key="raw",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def raw() -> list:
        sim = SimulatedMarket(clock=lambda: FETCHED)
        return sim.fetch_bars(market, ["AAPL", "MSFT"], "1day", start, end)

    @dg.asset(
        key=["us", "closes"],
        partitions_def=partitions,
        io_manager_key="lake",
        metadata={"partition_expr": "ts"},
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def closes() -> pl.DataFrame:
        return _frame(market, days)

    @dg.asset(
        key=["us", "read_back"],
        partitions_def=partitions,
        ins={
            "raw": dg.AssetIn(key=["us", "raw_daily_quotes"]),
            "closes": dg.AssetIn(key=["us", "closes"]),
        },
        io_manager_key="mem",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def read_back(raw: list, closes: pl.DataFrame) -> dict:
        return {"bodies": [p.body for p in raw], "closes": closes}

    return [raw, closes, read_back]


@pytest.mark.parametrize(
    "days",
    [[dt.date(2026, 11, 18)], [dt.date(2026, 11, 17), dt.date(2026, 11, 18)]],
    ids=["one_partition", "range"],
)
def test_io_managers_round_trip_with_exact_keys(roots, days, us, pg_url) -> None:
    raw_root, lake_root = roots
    assets = _round_trip_assets(us, days)
    keys = [d.isoformat() for d in days]
    tags = {RANGE_START_TAG: keys[0], RANGE_END_TAG: keys[-1]} if len(keys) > 1 else {}
    result = dg.materialize(
        assets,
        partition_key=keys[0] if len(keys) == 1 else None,
        tags=tags,
        resources={
            "raw": RawZoneIOManager(root=raw_root),
            # The clean bars' IO manager: the lake and the warehouse (the lake is read back).
            "lake": LakeWarehouseIOManager(
                lake_root=lake_root, warehouse=WarehouseResource(url=pg_url)
            ),
            "mem": dg.InMemoryIOManager(),
        },
    )
    assert result.success
    start = dt.datetime.combine(days[0], dt.time(), us.tz)
    end = dt.datetime.combine(days[-1] + dt.timedelta(days=1), dt.time(), us.tz)
    payloads = SimulatedMarket(clock=lambda: FETCHED).fetch_bars(
        us, ["AAPL", "MSFT"], "1day", start, end
    )
    expected_raw = sorted(
        f"us/raw_daily_quotes/dt={p.window_start.astimezone(us.tz).date()}/{p.payload_id}{suffix}"
        for p in payloads
        for suffix in (".json", ".meta.json")
    )
    assert listing(raw_root) == expected_raw
    assert listing(lake_root) == [f"us/closes/dt={d}/{lake.LAKE_FILE}" for d in days]
    back = result.output_for_node("us__read_back")
    assert back["bodies"] == [p.body for p in payloads]
    assert back["closes"].sort("symbol", "ts").equals(_frame(us, days).sort("symbol", "ts"))
    # Lineage: where each asset's objects are, the same form on both.
    uri = next(
        m.metadata["dagster/uri"].value
        for m in result.asset_materializations_for_node("us__closes")
    )
    assert uri == open_location(lake_root).child("us", "closes").uri()


# --- one market day, raw -> lake -> warehouse -> daily summary -------------------------------


def _tables(url: str) -> dict[str, list[tuple]]:
    out = {}
    with psycopg.connect(url) as conn:
        for table in ("bars_5min", "daily_bars", "daily_summary"):
            out[table] = conn.execute(f"SELECT * FROM us.{table} ORDER BY 1, 2, 3").fetchall()
    return out


def _without_ids(keys: list[str]) -> list[str]:
    """A listing with the payload ids (which carry the fetch time) masked."""
    return [re.sub(r"/[^/]+(\.meta)?\.json$", r"/<payload>\1.json", k) for k in keys]


def _run_day(monkeypatch, raw_root: str, lake_root: str, pg_url: str, us) -> Any:
    monkeypatch.setenv("FINANCE_RAW_URI", raw_root)
    monkeypatch.setenv("FINANCE_LAKE_URI", lake_root)
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    defs = dg.Definitions.merge(
        build_domain_defs([us]), dg.Definitions(resources=build_resources())
    )
    instance = dg.DagsterInstance.ephemeral()
    outcome = run_market(defs, us, [dt.date(2026, 11, 18)], instance)
    assert all(r.success for r in outcome.outcomes), [r for r in outcome.outcomes]
    return instance


def _lake_rows(root: str) -> pl.DataFrame:
    store = open_location(root)
    keys = [k for k in listing(root) if k.endswith(".parquet")]
    return store.read_parquet(keys).sort(BAR_KEY) if keys else pl.DataFrame()


def test_one_day_end_to_end_on_s3_matches_the_local_layout(
    s3, bucket, tmp_path, pg_url, us, monkeypatch, capfd
) -> None:
    for name in ("FINANCE_ENV", "FINANCE_SIM_FAULT_RATE", "MONGODB_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))

    def fresh() -> None:
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute("DROP SCHEMA IF EXISTS us CASCADE")

    fresh()
    local_raw, local_lake = str(tmp_path / "raw"), str(tmp_path / "lake")
    _run_day(monkeypatch, local_raw, local_lake, pg_url, us)
    local_tables = _tables(pg_url)
    local_layout = (_without_ids(listing(local_raw)), listing(local_lake))

    fresh()
    raw_root, lake_root = f"s3://{bucket}/raw", f"s3://{bucket}/lake"
    instance = _run_day(monkeypatch, raw_root, lake_root, pg_url, us)
    first = _tables(pg_url)
    assert {t: len(rows) for t, rows in first.items()} == {
        "bars_5min": 5 * 78,
        "daily_bars": 5,
        "daily_summary": 5,
    }
    # The same rows as the local run (the ingestion time aside), the same layout.
    for table in ("bars_5min", "daily_summary"):
        assert len(first[table]) == len(local_tables[table])
    assert (_without_ids(listing(raw_root)), listing(lake_root)) == local_layout
    assert listing(lake_root) == [
        "us/bars_5min/dt=2026-11-18/part-0.parquet",
        "us/daily_bars/dt=2026-11-18/part-0.parquet",
    ]
    lake_before = _lake_rows(lake_root)
    assert lake_before.height == 5 * 78 + 5
    # The day's report follows the lake to S3 (beside it, under reports/), never to a local
    # folder named after the URI.
    assert listing(f"s3://{bucket}/reports") == [
        "us/dt=2026-11-18/overview.png",
        "us/dt=2026-11-18/report.html",
    ]
    assert not Path("s3:").exists()

    # A re-run changes nothing: the same rows in the warehouse and the lake, the same keys
    # (and the first run's raw payloads set aside as history).
    raw_before = _without_ids(listing(raw_root))
    _run_day(monkeypatch, raw_root, lake_root, pg_url, us)
    again = _tables(pg_url)
    drop_ingested = lambda rows: [r[:-1] for r in rows]  # noqa: E731  (ingested_at is last)
    assert drop_ingested(again["bars_5min"]) == drop_ingested(first["bars_5min"])
    assert again["daily_summary"] == first["daily_summary"]
    raw_after = _without_ids(listing(raw_root))
    assert [k for k in raw_after if "/_superseded/" not in k] == raw_before
    # The first run's payloads are set aside ("as known then"), each where it was filed.
    set_aside = [k.replace("/_superseded/", "/") for k in raw_after if "/_superseded/" in k]
    assert set_aside == raw_before
    after = _lake_rows(lake_root)
    assert after.drop("ingested_at").equals(lake_before.drop("ingested_at"))

    # moto's dummy credentials appear in no event, metadata or log line.
    text = ""
    for run in instance.get_runs():
        text += "".join(str(r) for r in instance.all_logs(run.run_id))
    captured = capfd.readouterr()
    for secret in (DUMMY_SECRET, DUMMY_KEY_ID):
        assert secret not in text
        assert secret not in captured.out + captured.err
    assert f"s3://{bucket}/lake/us/bars_5min/" in text  # the lineage URI is there


# --- faults ----------------------------------------------------------------------------------


SCHEMA = "t_s3_faults"
DAY = "2026-11-18"


def _write_bars(market, frame: pl.DataFrame, lake_root: str, url: str, s3: S3Resource | None):
    @dg.asset(
        key=[SCHEMA, "bars"],
        partitions_def=daily_partitions(market),
        io_manager_key="both",
        metadata={"partition_expr": "ts", "primary_key": BAR_KEY},
    )
    def bars() -> pl.DataFrame:
        return frame

    manager = LakeWarehouseIOManager(
        lake_root=lake_root, warehouse=WarehouseResource(url=url), s3=s3
    )
    return dg.materialize(
        [bars], partition_key=DAY, resources={"both": manager}, raise_on_error=False
    )


def _warehouse(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT * FROM {SCHEMA}.bars ORDER BY ts, symbol").fetchall()


def _failure(result: dg.ExecuteInProcessResult) -> str:
    event = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return str(event.event_specific_data)


@pytest.mark.parametrize(("status", "code"), [(500, "InternalError"), (503, "SlowDown")])
def test_s3_refusing_the_lake_put_fails_the_step_and_keeps_the_warehouse(
    proxy, bucket, pg_url, us, status, code
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    lake_root = f"s3://{bucket}/lake"
    # Two attempts beyond the first, for boto3 and for polars alike (S3Resource's budget).
    s3 = S3Resource(max_attempts=2)
    old, new = day_bars(us, ["AAPL", "MSFT"], 0), day_bars(us, ["AAPL", "MSFT", "NVDA"], 30)
    assert _write_bars(us, old, lake_root, pg_url, s3).success
    before_wh, before_lake = _warehouse(pg_url), _lake_rows(lake_root)
    keys_before = listing(lake_root)

    proxy.fail("PUT", f"/{bucket}/lake/", status, code)
    result = _write_bars(us, new, lake_root, pg_url, s3)
    assert not result.success
    text = _failure(result)
    assert code in text and "rolled back" in text
    # Retried (polars' object store: twice, as S3Resource says), then given up.
    assert proxy.answered("PUT", f"/{bucket}/lake/", status) >= 3
    assert _warehouse(pg_url) == before_wh
    assert _lake_rows(lake_root).equals(before_lake)
    assert listing(lake_root) == keys_before  # no staged object left behind

    proxy.clear()
    assert _write_bars(us, new, lake_root, pg_url, s3).success  # a re-run converges
    assert len(_warehouse(pg_url)) == new.height
    assert _lake_rows(lake_root).equals(new.sort(BAR_KEY))


def test_s3_refusing_a_raw_put_leaves_no_partial_payloads(proxy, bucket, us) -> None:
    store = open_location(f"s3://{bucket}/raw", S3Resource(max_attempts=1)).child("us", "raw")
    start = dt.datetime(2026, 11, 18, tzinfo=us.tz)
    end = start + dt.timedelta(days=1)
    sim = SimulatedMarket(clock=lambda: FETCHED)
    first = sim.fetch_bars(us, ["AAPL"], "5min", start, end)
    lake.write_payloads(store, first, start, end, us.tz)
    before = listing(f"s3://{bucket}/raw")
    later = SimulatedMarket(clock=lambda: FETCHED + dt.timedelta(hours=1))
    second = later.fetch_bars(us, ["AAPL"], "5min", start, end)
    # The body goes through, its metadata is refused: the body is removed again.
    proxy.fail("PUT", ".meta.json", 503, "SlowDown")
    with pytest.raises(OSError, match="SlowDown"):
        lake.write_payloads(store, second, start, end, us.tz)
    assert listing(f"s3://{bucket}/raw") == before
    assert [p.body for p in lake.read_payloads(store, start, end)] == [first[0].body]


def test_a_missing_bucket_is_named(aws_env, pg_url, us) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    result = _write_bars(
        us, day_bars(us, ["AAPL"], 0), "s3://no-such-finance-bucket/lake", pg_url, None
    )
    assert not result.success
    text = _failure(result)
    assert "'no-such-finance-bucket' does not exist" in text and "rolled back" in text
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass(%s)", [f"{SCHEMA}.bars"]).fetchone()[0] is None or (
            conn.execute(f"SELECT count(*) FROM {SCHEMA}.bars").fetchone()[0] == 0
        )
    store = open_location("s3://no-such-finance-raw/raw")
    with pytest.raises(FileNotFoundError, match="'no-such-finance-raw' does not exist"):
        lake.write_payloads(
            store,
            SimulatedMarket().fetch_bars(
                us, ["AAPL"], "1day", *(dt.datetime(2026, 11, d, tzinfo=us.tz) for d in (18, 19))
            ),
            dt.datetime(2026, 11, 18, tzinfo=us.tz),
            dt.datetime(2026, 11, 19, tzinfo=us.tz),
            us.tz,
        )


# --- retention -------------------------------------------------------------------------------


def test_retention_on_s3_deletes_exactly_the_old_dt_prefixes(s3, bucket) -> None:
    today = dt.datetime.now(dt.UTC).date()
    kept_keys, old_keys = [], []
    for market, asset in (("us", "raw_intraday_quotes"), ("uk", "raw_daily_quotes")):
        for age in (1, 29, 31, 90):
            day = today - dt.timedelta(days=age)
            for name in ("a.json", "a.meta.json"):
                key = f"raw/{market}/{asset}/dt={day}/{name}"
                s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
                (old_keys if age > 30 else kept_keys).append(key)
    # Not partitions: a neighbour sharing the prefix's first characters, a stray object.
    old_day = today - dt.timedelta(days=90)
    for key in (f"raw/us/raw_intraday_quotes/dt={old_day}x/a.json", "raw/us/README.txt"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
        kept_keys.append(key)
    s3.put_object(Bucket=bucket, Key=f"lake/us/bars_5min/dt={old_day}/part-0.parquet", Body=b"p")
    kept_keys.append(f"lake/us/bars_5min/dt={old_day}/part-0.parquet")
    storage = StorageResource(raw_root=f"s3://{bucket}/raw", lake_root=f"s3://{bucket}/lake")

    def run(**config: Any) -> list[str]:
        result = retention_job.execute_in_process(
            run_config={"ops": {"purge_expired_partitions": {"config": config}}},
            resources={"storage": storage},
        )
        assert result.success
        return sorted(result.output_for_node("purge_expired_partitions"))

    expected = sorted({f"s3://{bucket}/{k.rsplit('/', 1)[0]}" for k in old_keys}, key=str)
    everything = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert run(dry_run=True) == expected
    assert sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]) == everything
    assert run() == expected
    left = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    assert left == sorted(kept_keys)


# --- settings --------------------------------------------------------------------------------


def test_prod_needs_s3_locations_and_the_warehouse_local_needs_nothing(tmp_path) -> None:
    with pytest.raises(SettingsError) as raised:
        build_resources({"FINANCE_ENV": "prod"})
    text = str(raised.value)
    assert "FINANCE_PG_URL" in text
    assert "FINANCE_RAW_URI is not set" in text and "FINANCE_LAKE_URI is not set" in text
    with pytest.raises(SettingsError, match=r"FINANCE_LAKE_URI='/srv/lake' is a local path"):
        build_resources(
            {
                "FINANCE_ENV": "prod",
                "FINANCE_PG_URL": "postgresql://u@db/x",
                "FINANCE_RAW_URI": "s3://finance-raw/raw",
                "FINANCE_LAKE_URI": "/srv/lake",
            }
        )
    prod = build_resources(
        {
            "FINANCE_ENV": "prod",
            "FINANCE_PG_URL": "postgresql://u@db/x",
            "FINANCE_RAW_URI": "s3://finance-raw/raw",
            "FINANCE_LAKE_URI": "s3://finance-lake/lake",
        }
    )
    assert prod["raw_zone_io_manager"].root == "s3://finance-raw/raw"
    assert prod["lake_warehouse_io_manager"].lake_root == "s3://finance-lake/lake"
    assert (prod["storage"].raw_root, prod["storage"].lake_root) == (
        "s3://finance-raw/raw",
        "s3://finance-lake/lake",
    )
    local = build_resources({"FINANCE_DATA_DIR": str(tmp_path)})
    assert local["storage"].lake_root == str(tmp_path / "lake")
    assert local["raw_zone_io_manager"].root == str(tmp_path / "raw")
    for value, problem in (
        ("s3://Bad_Bucket/raw", "not an S3 bucket name"),
        ("s3://finance-raw", "give a prefix"),
        ("gs://finance-raw/raw", "only local folders"),
        ("s3://finance-raw/a/../b", "unsafe prefix"),
    ):
        with pytest.raises(SettingsError, match=re.escape(f"FINANCE_RAW_URI={value!r}")) as err:
            build_resources({"FINANCE_RAW_URI": value})
        assert problem in str(err.value)
