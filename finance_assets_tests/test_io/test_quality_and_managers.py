import datetime as dt

import dagster as dg
import polars as pl
import psycopg
import pytest

from finance_assets.defs.common.partitions import daily_partitions
from finance_assets.defs.market.checks import bar_check_results
from finance_assets.lib import quality
from finance_assets.lib.io.managers import (
    LakeWarehouseIOManager,
    PostgresIOManager,
    RawZoneIOManager,
    WarehouseResource,
)
from finance_assets.lib.providers.base import BarRequest
from finance_assets.providers.simulated_market import SimulatedMarket

KEY = dg.AssetKey(["us", "bars_5min"])


def _bars(rows):
    ts0 = dt.datetime(2026, 11, 18, 14, 30, tzinfo=dt.UTC)
    return pl.DataFrame(
        [
            {
                "symbol": s,
                "ts": ts0 + dt.timedelta(minutes=5 * i),
                "open": o,
                "high": h,
                "low": lo,
                "close": c,
                "volume": v,
            }
            for s, i, o, h, lo, c, v in rows
        ]
    )


GOOD = [("A", 0, 10.0, 11.0, 9.0, 10.5, 5), ("A", 1, 10.5, 11.0, 10.0, 10.0, 0)]


@pytest.mark.parametrize(
    ("rows", "check"),
    [
        ([*GOOD, ("B", 0, None, 11.0, 9.0, 10.0, 1)], "prices_not_null"),
        ([*GOOD, ("A", 1, 10.5, 11.0, 10.0, 10.0, 0)], "timestamps_strictly_increasing"),
        (
            [("A", 1, 10.0, 11.0, 9.0, 10.0, 1), ("A", 0, 10.0, 11.0, 9.0, 10.0, 1)],
            "timestamps_strictly_increasing",
        ),
        ([*GOOD, ("B", 0, 12.0, 11.0, 9.0, 10.0, 1)], "ohlc_consistent"),
        ([*GOOD, ("B", 0, 10.0, 11.0, 9.0, 8.0, 1)], "ohlc_consistent"),
        ([*GOOD, ("B", 0, 10.0, 11.0, 9.0, 10.0, -1)], "volume_non_negative"),
    ],
)
def test_each_rule_catches_its_violation_and_only_that(rows, check):
    results = {r.check_name: r for r in bar_check_results(_bars(rows), KEY, 0.0, 0.05)}
    failed = [name for name, r in results.items() if not r.passed]
    assert failed == [check]
    assert results[check].metadata["failing_rows"].value == 1
    assert "sample" in results[check].metadata


def test_clean_bars_pass_every_rule_and_the_rate_check_has_a_threshold():
    results = bar_check_results(_bars(GOOD), KEY, 0.05, 0.05)
    assert all(r.passed for r in results)
    rate = {r.check_name: r for r in bar_check_results(_bars(GOOD), KEY, 0.051, 0.05)}
    assert not rate["quarantine_rate"].passed
    assert rate["quarantine_rate"].metadata["quarantine_rate"].value == 0.051
    assert set(quality.BAR_RULES) | {"quarantine_rate"} == set(rate)


def test_io_managers_round_trip_a_partition_range(tmp_path, pg_url, us):
    """Raw zone, lake + warehouse and warehouse-only managers, through Dagster, over 3 days."""
    partitions = daily_partitions(us)
    sim = SimulatedMarket()

    @dg.asset(
        key=["t_io", "raw"],
        partitions_def=partitions,
        io_manager_key="raw",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    def raw(context: dg.AssetExecutionContext):
        w = context.partition_time_window
        return sim.fetch_bars(us, ["AAPL", "MSFT"], "1day", w.start, w.end)

    @dg.asset(
        key=["t_io", "bars"],
        partitions_def=partitions,
        io_manager_key="both",
        metadata={"partition_expr": "ts", "primary_key": ["ts", "symbol"]},
        backfill_policy=dg.BackfillPolicy.single_run(),
        ins={"raw": dg.AssetIn(["t_io", "raw"])},
    )
    def bars(context: dg.AssetExecutionContext, raw):
        assert len(raw) == 1 and raw[0].body  # the payload came back from the raw zone
        w = context.partition_time_window
        return sim.bars(BarRequest(us, ["AAPL", "MSFT"], "1day", w.start, w.end))

    @dg.asset(
        key=["t_io", "table"],
        partitions_def=partitions,
        io_manager_key="pg",
        metadata={"partition_expr": "ts"},
        backfill_policy=dg.BackfillPolicy.single_run(),
        ins={"bars": dg.AssetIn(["t_io", "bars"])},
    )
    def table(bars: pl.DataFrame):
        return bars.with_columns(pl.col("close").alias("copy"))

    @dg.asset(
        partitions_def=partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        ins={"table": dg.AssetIn(["t_io", "table"], input_manager_key="pg")},
        io_manager_key="mem",
    )
    def check_back(context: dg.AssetExecutionContext, table: pl.DataFrame):
        assert table.height == 6  # 3 sessions x 2 symbols, read back from PostgreSQL
        assert table.get_column("copy").equals(table.get_column("close"), check_names=False)

    warehouse = WarehouseResource(url=pg_url)
    result = dg.materialize(
        [raw, bars, table, check_back],
        resources={
            "raw": RawZoneIOManager(root=str(tmp_path / "raw")),
            "both": LakeWarehouseIOManager(lake_root=str(tmp_path / "lake"), warehouse=warehouse),
            "pg": PostgresIOManager(warehouse=warehouse),
            "mem": dg.InMemoryIOManager(),
        },
        tags={
            "dagster/asset_partition_range_start": "2026-11-17",
            "dagster/asset_partition_range_end": "2026-11-19",
        },
    )
    assert result.success
    assert sorted(p.name for p in (tmp_path / "lake" / "t_io" / "bars").iterdir()) == [
        "dt=2026-11-17",
        "dt=2026-11-18",
        "dt=2026-11-19",
    ]
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM t_io.bars").fetchone()[0] == 6
        assert conn.execute("SELECT count(*) FROM t_io.table").fetchone()[0] == 6
