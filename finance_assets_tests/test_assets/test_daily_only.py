"""Analytics from daily bars: a market with daily bars and no 5-minute bars (the S&P 500 and
FTSE 100 pipelines, or any date before the 5-minute partitions start) gets its daily summary,
its forecast and its BI views from the daily bars; a traded session with no bars at all fails
with the reason, never as a green run of 0 rows."""

from __future__ import annotations

import warnings

import dagster as dg
import polars as pl
import psycopg
import pytest

from finance_assets.demo import range_tags
from finance_assets_tests.test_assets.test_end_to_end import _defs, env, fresh_schema  # noqa: F401

START, END = "2020-03-02", "2020-03-06"  # a week long before the 5-minute partitions start


@pytest.fixture
def old_us(us, monkeypatch):
    """The us market with daily partitions from 2020 (the 5-minute ones stay recent)."""
    monkeypatch.setenv("FINANCE_DAILY_START", "2020-01-02")
    import dataclasses

    return dataclasses.replace(us, daily_start="2020-01-02")


def _run(defs: dg.Definitions, names: list[str], start: str, end: str, *, expect: bool = True):
    job = dg.define_asset_job("daily_only", selection=[dg.AssetKey(["us", name]) for name in names])
    job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("daily_only")
    result = job_def.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags=range_tags(start, end),
        raise_on_error=False,
    )
    assert result.success is expect, [e.message for e in result.all_events if e.is_failure]
    return result


def test_the_daily_summary_of_a_daily_only_week_comes_from_the_daily_bars(
    env,  # noqa: F811
    fresh_schema,  # noqa: F811
    old_us,
):
    defs = _defs(old_us)
    _run(defs, ["raw_daily_quotes", "daily_bars"], START, END)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _run(defs, ["daily_summary"], START, END)
    # No intraday row: the summary's checks warned "Comparisons with None" (polars) before.
    assert not [w for w in caught if "None" in str(w.message)], [str(w.message) for w in caught]
    with psycopg.connect(fresh_schema) as conn:
        bars = pl.DataFrame(
            conn.execute(
                "SELECT (ts AT TIME ZONE 'America/New_York')::date AS trading_date, symbol, "
                "open, high, low, close, volume FROM us.daily_bars ORDER BY 1, 2"
            ).fetchall(),
            schema=["trading_date", "symbol", "open", "high", "low", "close", "volume"],
            orient="row",
        )
        summary = pl.DataFrame(
            conn.execute(
                "SELECT trading_date, symbol, open, high, low, close, volume, vwap, bar_count, "
                "return_pct, prev_close FROM us.daily_summary ORDER BY 1, 2"
            ).fetchall(),
            schema=[
                "trading_date",
                "symbol",
                "open",
                "high",
                "low",
                "close",
                "volume",
                "vwap",
                "bar_count",
                "return_pct",
                "prev_close",
            ],
            orient="row",
        )
    assert bars.height == 5 * len(old_us.universe)
    # Every session and symbol summarised, with the daily bar's own prices and volume.
    assert summary.select(bars.columns).equals(bars)
    # No VWAP is invented from a daily bar, and the row says it has no 5-minute bars.
    assert summary["vwap"].null_count() == summary.height
    assert set(summary["bar_count"]) == {0}
    # Returns against the previous session's daily close, computed here independently.
    by_symbol = bars.sort("symbol", "trading_date").with_columns(
        prev=pl.col("close").shift(1).over("symbol")
    )
    expected = by_symbol.filter(pl.col("prev").is_not_null()).with_columns(
        ret=(pl.col("close") / pl.col("prev") - 1) * 100
    )
    joined = expected.join(summary, on=["trading_date", "symbol"])
    assert joined.height == 4 * len(old_us.universe)
    assert (joined["ret"] - joined["return_pct"]).abs().max() < 1e-9
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["every_session_summarised"].passed
    materialization = result.asset_materializations_for_node("us__daily_summary")[-1]
    assert materialization.metadata["rows_from_daily_bars"].value == 5 * len(old_us.universe)


def test_a_traded_session_without_any_bars_fails_with_the_reason(
    env,  # noqa: F811
    fresh_schema,  # noqa: F811
    old_us,
):
    defs = _defs(old_us)
    result = _run(defs, ["daily_summary"], START, END, expect=False)
    check = next(
        c
        for c in result.get_asset_check_evaluations()
        if c.check_name == "every_session_summarised"
    )
    assert not check.passed
    assert check.metadata["sessions_without_rows"].value == 5
    assert "materialise us/daily_bars" in check.metadata["missing"].value
    with psycopg.connect(fresh_schema) as conn:
        exists = conn.execute("SELECT to_regclass('us.daily_summary')").fetchone()[0]
        rows = conn.execute("SELECT count(*) FROM us.daily_summary").fetchone()[0] if exists else 0
    assert rows == 0


def test_the_whole_daily_job_runs_on_daily_bars_alone(env, fresh_schema, old_us):  # noqa: F811
    """The daily job (daily bars, summary, sentiment, report, forecast, BI views) over a week
    with no 5-minute bars and no posts: every step succeeds, on the daily bars."""
    defs = _defs(old_us)
    job = defs.resolve_job_def("us_daily_job")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=range_tags(START, END), raise_on_error=False
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    with psycopg.connect(fresh_schema) as conn:
        summary = conn.execute("SELECT count(*) FROM us.daily_summary").fetchone()[0]
        forecast = conn.execute("SELECT count(*) FROM us.price_forecast").fetchone()[0]
        view = conn.execute("SELECT count(*) FROM us.bi_daily_performance").fetchone()[0]
    assert summary == 5 * len(old_us.universe)
    assert forecast > 0
    assert view == summary
