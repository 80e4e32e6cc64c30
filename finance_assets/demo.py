"""`make demo`: materialise the last N trading days of every market, then show what landed.

For each market: the 5-minute assets as one single-run backfill over the whole range, then the
daily assets likewise, on the Dagster instance in `$DAGSTER_HOME` (so `make dev` shows the runs),
then a per-market summary read back from PostgreSQL.

    python -m finance_assets.demo [--days 5] [--end 2026-11-20] [--markets us,uk]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import time

import dagster as dg
import polars as pl

from finance_assets.defs.market.freshness import assets_for_run
from finance_assets.defs.market.partitions import DAILY_FMT, INTRADAY_FMT
from finance_assets.lib.io import postgres
from finance_assets.lib.markets import Market, markets_from_env
from finance_assets.resources import warehouse_from_env

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def range_tags(start: str, end: str) -> dict[str, str]:
    return {RANGE_START: start, RANGE_END: end}


def intraday_range(market: Market, sessions: list[dt.date]) -> tuple[str, str]:
    """First and last 5-minute partition keys of a run of sessions (early closes included)."""
    first_open, _ = market.session_bounds(sessions[0])
    _, last_close = market.session_bounds(sessions[-1])
    last_bar = last_close - dt.timedelta(minutes=5)
    return (
        first_open.astimezone(market.tz).strftime(INTRADAY_FMT),
        last_bar.astimezone(market.tz).strftime(INTRADAY_FMT),
    )


def run_market(
    defs: dg.Definitions,
    market: Market,
    sessions: list[dt.date],
    instance: dg.DagsterInstance,
    with_posts: bool = False,
) -> list[dg.ExecuteInProcessResult]:
    """Single-run backfills: the 5-minute assets, (the hourly posts,) then the daily ones.

    The daily summary is built from the 5-minute bars, so when their run failed (a provider
    error or a blocking check) it is left out, as Dagster's asset backfills leave out the
    children of a failed step; the daily bars, which do not depend on them, still run.
    """
    key = market.key

    intraday = _run(
        defs,
        f"{key}_intraday",
        assets_for_run(market, "raw_intraday_quotes", "bars_5min", "price_moves"),
        intraday_range(market, sessions),
        instance,
    )
    results = [intraday]
    daily = ["raw_daily_quotes", "daily_bars"]
    if intraday.success:
        daily.append("daily_summary")
    else:
        print(f"  {key}: daily_summary skipped: the 5-minute run failed")
    if with_posts:
        # Posts from the session before the first one: its close starts the first day's count.
        first = market.previous_session(sessions[0])
        posts = _run(
            defs,
            f"{key}_posts",
            assets_for_run(market, "raw_posts", "post_sentiment"),
            (f"{first:%Y-%m-%d}-00:00", f"{sessions[-1]:%Y-%m-%d}-23:00"),
            instance,
        )
        results.append(posts)
        if posts.success:
            daily.append("daily_sentiment")
            if intraday.success:
                daily.append("stock_sentiment_daily")
    daily_range = (sessions[0].strftime(DAILY_FMT), sessions[-1].strftime(DAILY_FMT))
    results.append(
        _run(defs, f"{key}_daily", assets_for_run(market, *daily), daily_range, instance)
    )
    return results


def _run(
    defs: dg.Definitions,
    name: str,
    selection: dg.AssetSelection,
    partition_range: tuple[str, str],
    instance: dg.DagsterInstance,
) -> dg.ExecuteInProcessResult:
    job = dg.define_asset_job(name, selection=selection)
    job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(job.name)
    began = time.perf_counter()
    result = job_def.execute_in_process(
        instance=instance,
        tags=range_tags(*partition_range),
        raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
    )
    status = "ok" if result.success else "FAILED"
    took = time.perf_counter() - began
    print(f"  {name}: {partition_range[0]} .. {partition_range[1]}  {status}  ({took:.1f}s)")
    return result


def warehouse_summary(url: str, market: Market, sessions: list[dt.date]) -> pl.DataFrame:
    start, end = sessions[0], sessions[-1] + dt.timedelta(days=1)
    summary = postgres.read_window(
        url,
        schema=market.key,
        table="stock_sentiment_daily",
        time_column="trading_date",
        start=start,
        end=end,
    )
    if summary.is_empty():
        return summary
    alerts = postgres.read_window(
        url,
        schema=market.key,
        table="price_alerts",
        time_column="ts",
        start=market.session_bounds(sessions[0])[0],
        end=market.session_bounds(sessions[-1])[1],
    )
    counts = (
        alerts.group_by("symbol").agg(price_alerts=pl.len())
        if alerts.height
        else pl.DataFrame(schema={"symbol": pl.String, "price_alerts": pl.UInt32})
    )
    return (
        summary.group_by("symbol")
        .agg(
            days=pl.len(),
            last_close=pl.col("close").sort_by("trading_date").last(),
            avg_vwap=pl.col("vwap").mean().round(2),
            period_return_pct=(
                (
                    pl.col("close").sort_by("trading_date").last()
                    / pl.col("open").sort_by("trading_date").first()
                    - 1
                )
                * 100
            ).round(2),
            volume=pl.col("volume").sum(),
            bars=pl.col("bar_count").sum(),
            posts=pl.col("post_count").sum(),
            sentiment=pl.col("weighted_compound").mean().round(3),
        )
        .join(counts, on="symbol", how="left")
        .with_columns(pl.col("price_alerts").fill_null(0))
        .sort("symbol")
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--days", type=int, default=int(os.environ.get("DEMO_DAYS", "5")))
    parser.add_argument(
        "--end", type=dt.date.fromisoformat, default=os.environ.get("DEMO_END") or None
    )
    parser.add_argument(
        "--markets", default=None, help="comma-separated market keys (default: all)"
    )
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error("--days must be at least 1")

    from finance_assets.definitions import defs  # after argument errors, which need no Dagster

    markets = markets_from_env()
    if args.markets:
        wanted = [m.strip() for m in args.markets.split(",") if m.strip()]
        unknown = [m for m in wanted if m not in markets]
        if unknown:
            parser.error(f"unknown market(s) {unknown}; valid: {sorted(markets)}")
        markets = {k: markets[k] for k in wanted}

    instance = dg.DagsterInstance.get()
    url = warehouse_from_env().get_url()
    failed = False
    for market in markets.values():
        sessions = market.last_sessions(args.days, args.end)
        print(f"\n{market.name}: {len(sessions)} sessions {sessions[0]} .. {sessions[-1]}")
        results = run_market(defs, market, sessions, instance, with_posts=True)
        failed |= not all(r.success for r in results)
        with pl.Config(
            tbl_rows=50, tbl_cols=20, tbl_width_chars=160, tbl_hide_dataframe_shape=True
        ):
            print(warehouse_summary(url, market, sessions))
    print(
        "\nOpen the Dagster UI on the same data: make dev  (http://127.0.0.1:3000)"
        "\nQuery the lake with DuckDB: select * from read_parquet("
        "'data/lake/us/bars_5min/*/*.parquet', hive_partitioning=true) limit 5"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
