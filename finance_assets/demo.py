"""`make demo`: materialise the last N trading days of every market, then show what landed.

For each market, the code location's own jobs (those the schedules run) as single-run backfills
over the last N *complete* sessions (`lib/clock.py`: closed, and the hour of posts holding the
close over), so it works at any hour: the 5-minute bars, the hourly posts, then the daily assets.
Runs go to the Dagster instance in `$DAGSTER_HOME`, so `make dev` shows them and can re-execute
them. Then a per-market summary read back from PostgreSQL; a part skipped or failed is named
with its reason, and the exit status is 1.

    python -m finance_assets.demo [--days 5] [--end 2026-11-20] [--markets us,uk]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shlex
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import polars as pl

from finance_assets.defs.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from finance_assets.launch import failure_reasons, run_job
from finance_assets.lib import clock
from finance_assets.lib.analytics import publish, report
from finance_assets.lib.io import postgres
from finance_assets.lib.markets import Market, markets_from_env
from finance_assets.resources import warehouse_from_env


def range_tags(start: str, end: str) -> dict[str, str]:
    return {RANGE_START_TAG: start, RANGE_END_TAG: end}


@dataclass
class MarketRun:
    """The runs of one market and what was left out, with why."""

    outcomes: list[dg.ExecutionResult] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<asset>: <why>"

    @property
    def success(self) -> bool:
        return all(o.success for o in self.outcomes)

    def __iter__(self):  # `for result in run_market(...)`: the run outcomes
        return iter(self.outcomes)

    def __getitem__(self, index: int) -> dg.ExecutionResult:
        return self.outcomes[index]

    def __len__(self) -> int:
        return len(self.outcomes)


def run_market(
    defs: dg.Definitions,
    market: Market,
    sessions: list[dt.date],
    instance: dg.DagsterInstance,
    with_posts: bool = False,
    now: dt.datetime | None = None,
    report: Callable[[str], None] = lambda line: None,
) -> MarketRun:
    """Single-run backfills of the code location's own jobs (those the schedules run): the
    5-minute bars, (the hourly posts,) then the daily assets.

    The daily summary is built from the 5-minute bars, so when their run failed (a provider
    error or a blocking check) it is left out, as Dagster's asset backfills leave out the
    children of a failed step; the daily bars, which do not depend on them, still run.
    """
    key = market.key
    now = now or dt.datetime.now(dt.UTC)
    out = MarketRun()

    def launch(job: str, partition_range: tuple[str, str], leave_out: set[str] = frozenset()):
        selection = None
        if leave_out:
            job_keys = defs.resolve_job_def(job).asset_layer.selected_asset_keys
            selection = {k for k in job_keys if k.path[-1] not in leave_out}
        outcome = run_job(
            defs, job, instance, tags=range_tags(*partition_range), asset_selection=selection
        )
        status = "ok" if outcome.success else "FAILED: " + "; ".join(failure_reasons(outcome))
        report(f"  {job}: {partition_range[0]} .. {partition_range[1]}  {status}")
        out.outcomes.append(outcome)
        return outcome

    intraday = launch(f"{key}_bars_5min_job", clock.intraday_range(market, sessions))
    leave_out: set[str] = set()
    if not intraday.success:
        leave_out |= {"daily_summary", "stock_sentiment_daily", "market_report", "price_forecast"}
        out.skipped.append(
            "skipped daily_summary, stock_sentiment_daily, market_report, price_forecast: "
            "the 5-minute run failed"
        )
    if with_posts:
        posts = launch(f"{key}_posts_job", clock.posts_range(market, sessions, now))
        if not posts.success:
            leave_out |= {"daily_sentiment", "stock_sentiment_daily"}
            out.skipped.append(
                "skipped daily_sentiment, stock_sentiment_daily: the posts run failed"
            )
    else:
        leave_out |= {"daily_sentiment", "stock_sentiment_daily"}
    daily_range = (sessions[0].strftime(clock.DAILY_FMT), sessions[-1].strftime(clock.DAILY_FMT))
    launch(f"{key}_daily_job", daily_range, leave_out)
    return out


def warehouse_summary(
    url: str, market: Market, sessions: list[dt.date] | tuple[dt.date, ...]
) -> tuple[pl.DataFrame, list[str]]:
    """Per symbol over the sessions, read back from PostgreSQL: days, last close, VWAP, the
    period's return, volume, bars, posts, sentiment, price alerts; and what it lacks."""
    start, end = sessions[0], sessions[-1] + dt.timedelta(days=1)
    notes: list[str] = []

    def daily(table: str) -> pl.DataFrame:
        target = postgres.WindowTable(market.key, table, "trading_date")
        return postgres.read_window(url, target, start=start, end=end)

    summary = daily("stock_sentiment_daily")
    if summary.is_empty():
        summary = daily("daily_summary")
        if summary.is_empty():
            return summary, [f"no daily summary in {market.key}.daily_summary for these sessions"]
        notes.append("no sentiment joined: stock_sentiment_daily has no rows for these sessions")
        summary = summary.with_columns(
            post_count=pl.lit(None, pl.Int64), weighted_compound=pl.lit(None, pl.Float64)
        )
    alerts = postgres.read_window(
        url,
        postgres.WindowTable(market.key, "price_alerts"),
        start=market.session_bounds(sessions[0])[0],
        end=market.session_bounds(sessions[-1])[1],
    )
    counts = (
        alerts.group_by("symbol").agg(price_alerts=pl.len())
        if alerts.height
        else pl.DataFrame(schema={"symbol": pl.String, "price_alerts": pl.UInt32})
    )
    table = (
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
    for symbol in sorted(set(market.universe) - set(table.get_column("symbol"))):
        notes.append(f"{symbol}: no rows")
    for symbol, days in table.select("symbol", "days").iter_rows():
        if days < len(sessions):
            notes.append(f"{symbol}: {days} of {len(sessions)} sessions")
    return table, notes


def print_reports(defs: dg.Definitions, last_sessions: dict[str, dt.date]) -> None:
    """The path of each market's report of its last session (or why there is none)."""
    root = publish.reports_root(defs.resources["storage"].lake_root)
    print("\nDaily reports (open in a browser; the charts are on each market_report in the UI):")
    storage = defs.resources["storage"]
    for key, day in last_sessions.items():
        store = publish.report_store(root, key, day, storage.s3)
        page = store.uri(report.PAGE)
        shown = page if publish.is_s3(page) else str(Path(page).resolve())
        print(f"  {key}: {shown}" if store.exists(report.PAGE) else f"  {key}: no report for {day}")


def lake_query_command(lake_root: str, market: str, query: str = "top_movers") -> list[str]:
    """The saved lake query the demo suggests at its end, as a command that runs with what
    `make demo` installed (DuckDB is a core dependency). The interpreter is named as the user
    would type it: relative to the working folder when it is under it (`.venv/bin/python`)."""
    python = Path(sys.executable)
    with suppress(ValueError):
        python = python.relative_to(Path.cwd())
    lake = lake_root
    if "://" not in lake_root:  # a folder (the demo's): shown from the working folder
        with suppress(ValueError):
            lake = str(Path(lake_root).resolve().relative_to(Path.cwd().resolve()))
    module = "finance_assets.lib.analytics.lake_queries"
    return [str(python), "-m", module, query, "--lake", lake, "--market", market]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # String defaults go through `type` too: DEMO_DAYS=abc is a usage error, not a traceback.
    parser.add_argument("--days", type=int, default=os.environ.get("DEMO_DAYS") or "5")
    parser.add_argument(
        "--end", type=dt.date.fromisoformat, default=os.environ.get("DEMO_END") or None
    )
    parser.add_argument(
        "--markets", default=None, help="comma-separated market keys (default: all)"
    )
    return parser


def main(argv: list[str] | None = None, now: dt.datetime | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.days < 1:
        parser.error(f"--days (DEMO_DAYS) must be at least 1, got {args.days}")
    now = now or dt.datetime.now(dt.UTC)

    markets = markets_from_env()
    if args.markets:
        wanted = [m.strip() for m in args.markets.split(",") if m.strip()]
        unknown = [m for m in wanted if m not in markets]
        if unknown:
            parser.error(f"unknown market(s) {unknown}; valid: {sorted(markets)}")
        markets = {k: markets[k] for k in wanted}
    # Every window before any run: a bad DEMO_END fails at once, naming the value.
    try:
        plans = {key: clock.run_windows(m, args.days, now, args.end) for key, m in markets.items()}
    except ValueError as exc:
        parser.error(f"{exc} (--days {args.days}, --end {args.end or 'today'})")

    from finance_assets.definitions import defs  # after argument errors, which need no Dagster

    instance = dg.DagsterInstance.get()
    url = warehouse_from_env().get_url()
    failed: list[str] = []
    started = time.monotonic()
    for key, market in markets.items():
        sessions = list(plans[key].sessions)
        print(
            f"\n{market.name}: {len(sessions)} sessions {sessions[0]} .. {sessions[-1]}, "
            f"{len(market.universe)} symbols ({market.universe_label})"
        )
        began = time.monotonic()
        runs = run_market(defs, market, sessions, instance, with_posts=True, now=now, report=print)
        print(f"  {key}: runs took {time.monotonic() - began:.1f} s")
        if not runs.success:
            failed.append(key)
        table, notes = warehouse_summary(url, market, sessions)
        if not table.is_empty():
            with pl.Config(
                tbl_rows=50, tbl_cols=20, tbl_width_chars=160, tbl_hide_dataframe_shape=True
            ):
                print(table)
        for note in [*runs.skipped, *notes]:
            print(f"  {key}: {note}")
        if notes:
            failed.append(key)
    lake_root = defs.resources["storage"].lake_root
    print(
        "\nOpen the Dagster UI on the same data: make dev  (http://127.0.0.1:3000)"
        f"\nQuery the lake (DuckDB, saved queries in queries/): "
        f"{shlex.join(lake_query_command(lake_root, next(iter(markets))))}"
    )
    print_reports(defs, {key: plans[key].sessions[-1] for key in markets})
    print(f"\nAll markets: {time.monotonic() - started:.1f} s")
    if failed:
        print(f"\nIncomplete: {', '.join(sorted(set(failed)))} (see above)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
