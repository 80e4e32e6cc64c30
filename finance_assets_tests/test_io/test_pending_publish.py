"""The lake lagging the warehouse after a failed publish (issue 24, item 7), injected for real:
moto's S3 behind a proxy answering the publish's CopyObject with 500 InternalError, PostgreSQL
committing the window. The window stays staged and marked pending: readers refuse its days, the
reconciliation names them, and the next write of the asset publishes them without anyone
re-running the failed partition."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import polars as pl
import psycopg
import pytest

from finance_assets.lib.io.objects.s3_resource import S3Resource

pytest.importorskip("moto.server")

from finance_assets.defs.common.partitions import daily_partitions
from finance_assets.lib.io import lake
from finance_assets.lib.io.lake_warehouse import Stores
from finance_assets.lib.io.managers import LakeWarehouseIOManager, WarehouseResource
from finance_assets.lib.io.objects import open_location
from finance_assets.lib.io.postgres import WindowTable
from finance_assets.lib.schema import BAR_KEY
from finance_assets_tests.test_io.day_bars import day_bars

SCHEMA = "t_pending"
DAY, NEXT = dt.date(2026, 11, 18), dt.date(2026, 11, 19)


def _assets(market, frame: pl.DataFrame) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=[SCHEMA, "bars"],
        partitions_def=daily_partitions(market),
        io_manager_key="both",
        metadata={"partition_expr": "ts", "primary_key": BAR_KEY},
    )
    def bars() -> pl.DataFrame:
        return frame

    @dg.asset(
        key=[SCHEMA, "reader"],
        partitions_def=daily_partitions(market),
        ins={"bars": dg.AssetIn(key=[SCHEMA, "bars"])},
        io_manager_key="mem",
    )
    def reader(bars: pl.DataFrame) -> int:
        return bars.height

    return [bars, reader]


def _materialize(market, frame, day: dt.date, lake_root: str, url: str, *, read: bool = False):
    bars, reader = _assets(market, frame)
    manager = LakeWarehouseIOManager(
        lake_root=lake_root, warehouse=WarehouseResource(url=url), s3=S3Resource(max_attempts=2)
    )
    return dg.materialize(
        [bars, reader] if read else [bars],
        selection=[reader.key] if read else None,
        partition_key=day.isoformat(),
        resources={"both": manager, "mem": dg.InMemoryIOManager()},
        raise_on_error=False,
    )


def _failure(result: dg.ExecuteInProcessResult) -> str:
    event = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    return str(event.event_specific_data)


def _window(market, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), market.tz)
    return start, start + dt.timedelta(days=1)


def test_a_failed_publish_is_marked_refused_by_readers_and_published_by_the_next_write(
    proxy, bucket, pg_url, us
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    lake_root = f"s3://{bucket}/lake"
    store = open_location(lake_root).child(SCHEMA, "bars")
    old, new = day_bars(us, ["AAPL", "MSFT"], 0), day_bars(us, ["AAPL", "MSFT", "NVDA"], 30)
    assert _materialize(us, old, DAY, lake_root, pg_url).success

    # CopyObject into the day file answers 500 (the staging PUTs go to hidden names).
    # boto3 sends the key's "=" escaped.
    target = f"/{bucket}/lake/{SCHEMA}/bars/dt%3D{DAY}/part-0.parquet"
    proxy.fail("PUT", target, 500, "InternalError")
    result = _materialize(us, new, DAY, lake_root, pg_url)
    assert not result.success
    text = _failure(result)
    assert "StoresOutOfStep" in text and "InternalError" in text and "CopyObject" in text
    assert "marked pending" in text and f"dt={DAY}" in text
    # Retried from the staged object (4 publishes, each with boto3's own 2 attempts).
    assert proxy.answered("PUT", target, 500) >= 4

    # The warehouse committed the new rows; the lake still has the old day file, and says so.
    both = Stores(store, pg_url, WindowTable(SCHEMA, "bars"), us.tz)
    start, end = _window(us, DAY)
    in_lake, in_warehouse = both.read(start, end)
    assert in_warehouse.height == new.height and in_lake.height == old.height
    assert sorted(in_warehouse.get_column("symbol").unique()) == ["AAPL", "MSFT", "NVDA"]
    assert sorted(in_lake.get_column("symbol").unique()) == ["AAPL", "MSFT"]
    [pending] = lake.pending_publishes(store)
    assert pending.days == [f"dt={DAY}"]
    with pytest.raises(lake.PendingPublish, match=f"dt={DAY} wait to be published"):
        lake.read_window(store, start=start, end=end, tz=us.tz)
    reading = _materialize(us, new, DAY, lake_root, pg_url, read=True)
    assert not reading.success and "PendingPublish" in _failure(reading)
    # The reconciliation names the partition and the marker.
    compared = both.compare(start, end, starts=[start], keys=[DAY.isoformat()])
    assert compared.differing[DAY.isoformat()]["pending_publish"] == 1
    assert compared.pending == [store.uri(pending.key)]

    # S3 recovers; the platform's next run of the asset (the next day) publishes the lag first.
    proxy.clear()
    assert _materialize(us, day_bars(us, ["AAPL"], 0, NEXT), NEXT, lake_root, pg_url).success
    assert lake.pending_publishes(store) == []
    in_lake, in_warehouse = both.read(start, end)
    assert in_lake.height == in_warehouse.height == new.height
    assert both.compare(start, end, starts=[start], keys=[DAY.isoformat()]).differing == {}
    # No staged object is left behind.
    assert [o.name for o in store.list_tree() if "tmp-" in o.name] == []
    assert _materialize(us, new, DAY, lake_root, pg_url, read=True).success


def test_publish_pending_finishes_a_window_whose_first_days_were_already_moved(
    tmp_path, us
) -> None:
    """A publish that stopped half-way (a copy done, the next refused) resumes where it
    stopped: moved days count as published, the rest are moved, the marker goes."""
    store = open_location(str(tmp_path / "lake"))
    frame = pl.concat([day_bars(us, ["AAPL"], 0, d) for d in (DAY, NEXT)])
    start, _ = _window(us, DAY)
    _, end = _window(us, NEXT)
    staged = lake.stage_window(store, frame, start=start, end=end, tz=us.tz)
    staged.mark()
    first_tmp, first_key = staged.moves[0]
    store.move(first_tmp, first_key)  # the first copy went through before the fault
    with pytest.raises(lake.PendingPublish):
        lake.read_window(store, start=start, end=end, tz=us.tz)
    assert lake.publish_pending(store) == [staged.moves[1][1]]
    assert lake.pending_publishes(store) == []
    back = lake.read_window(store, start=start, end=end, tz=us.tz)
    assert back is not None and back.sort("symbol", "ts").equals(frame.sort("symbol", "ts"))


def test_lake_queries_refuse_a_table_with_days_waiting_to_be_published(tmp_path, us) -> None:
    pytest.importorskip("duckdb")
    from finance_assets.lib.analytics.lake_queries import run_query

    table = tmp_path / "us" / "bars_5min"
    start, end = _window(us, DAY)
    lake.stage_window(table, day_bars(us, ["AAPL"], 0), start=start, end=end, tz=us.tz).publish()
    sql = "SELECT count(*) AS n FROM bars_5min"
    assert run_query(sql, tmp_path, "us")["n"].to_list() == [78]
    lake.stage_window(
        table, day_bars(us, ["AAPL", "MSFT"], 30), start=start, end=end, tz=us.tz
    ).mark()  # staged and marked, as a commit would leave it when the publish then fails
    with pytest.raises(lake.PendingPublish, match=f"us.bars_5min: dt={DAY} wait to be published"):
        run_query(sql, tmp_path, "us")
    assert lake.publish_pending(table) == [f"dt={DAY}/{lake.LAKE_FILE}"]
    assert run_query(sql, tmp_path, "us")["n"].to_list() == [156]


def test_the_hourly_job_publishes_pending_windows_its_writers_left(tmp_path, us) -> None:
    """Nobody writes the asset again (a backfill's last partition, a retired market): the
    platform's hourly `lake_publish_job` publishes what is pending, leaving markers younger
    than an hour to the writers that may still be committing them."""
    from finance_assets.defs.ops.retention import lake_publish_job
    from finance_assets.resources.zones import StorageResource

    root = tmp_path / "lake"
    start, end = _window(us, DAY)
    stale = open_location(str(root)).child("us", "bars_5min")
    lake.stage_window(stale, day_bars(us, ["AAPL"], 0), start=start, end=end, tz=us.tz).mark()
    [marker] = lake.pending_publishes(stale)
    # Staged two hours ago: its writer is long gone.
    document = json.loads(stale.read(marker.key))
    document["staged_at"] = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)).isoformat()
    stale.write(marker.key, json.dumps(document).encode())
    young = open_location(str(root)).child("uk", "bars_5min")
    lake.stage_window(young, day_bars(us, ["MSFT"], 0), start=start, end=end, tz=us.tz).mark()

    storage = StorageResource(raw_root=str(tmp_path / "raw"), lake_root=str(root))
    result = lake_publish_job.execute_in_process(resources={"storage": storage})
    assert result.success
    published = result.output_for_node("publish_pending_windows")
    assert published == [stale.uri(f"dt={DAY}/{lake.LAKE_FILE}")]
    assert lake.pending_publishes(stale) == []
    back = lake.read_window(stale, start=start, end=end, tz=us.tz)
    assert back is not None and back.height == 78
    assert len(lake.pending_publishes(young)) == 1  # its writer's, for now


def test_a_pending_window_whose_staged_file_is_lost_waits_for_a_rewrite_of_its_day(
    tmp_path, us
) -> None:
    """Someone deleted the staged file: nothing can publish it, readers keep refusing the
    day, and only a write that rewrites the day whole clears the marker (once published)."""
    store = open_location(str(tmp_path / "lake"))
    start, end = _window(us, DAY)
    staged = lake.stage_window(store, day_bars(us, ["AAPL"], 0), start=start, end=end, tz=us.tz)
    staged.mark()
    store.delete(staged.moves[0][0])
    with pytest.raises(lake.PendingPublish, match=f"staged files of dt={DAY}/part-0.parquet"):
        lake.publish_pending(store)
    with pytest.raises(lake.PendingPublish):
        lake.read_window(store, start=start, end=end, tz=us.tz)
    # A window that reads the day back (half of it) cannot stand in for the lost file.
    half = start + dt.timedelta(hours=12)
    with pytest.raises(lake.PendingPublish, match="are gone"):
        lake.stage_window(store, day_bars(us, ["AAPL"], 0).clear(), start=half, end=end, tz=us.tz)
    rewrite = lake.stage_window(
        store, day_bars(us, ["AAPL", "MSFT"], 30), start=start, end=end, tz=us.tz
    )
    assert len(lake.pending_publishes(store)) == 1  # until the rewrite is published
    rewrite.publish()
    assert lake.pending_publishes(store) == []
    back = lake.read_window(store, start=start, end=end, tz=us.tz)
    assert back is not None and sorted(back.get_column("symbol").unique()) == ["AAPL", "MSFT"]
