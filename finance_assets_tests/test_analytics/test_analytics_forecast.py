"""The forecast: a walk-forward backtest without look-ahead (changing every price after a day
changes no forecast made on or before it), honest scores on a random walk (the naive forecast
beats the historical mean and is not beaten by the model), and the asset's metadata."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import numpy as np
import polars as pl
import psycopg
import pytest

from finance_assets.lib.analytics import forecast
from finance_assets.lib.io import postgres
from finance_assets.lib.schema import DAILY_SUMMARY_SCHEMA, conform


def _random_walk(sessions: list[dt.date], symbols: list[str], seed: int = 7) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for i, symbol in enumerate(symbols):
        closes = (50.0 + 100 * i) * np.exp(np.cumsum(rng.normal(0, 0.015, len(sessions))))
        frames.append(pl.DataFrame({"trading_date": sessions, "symbol": symbol, "close": closes}))
    return pl.concat(frames)


@pytest.fixture(scope="module")
def walk(us) -> pl.DataFrame:
    sessions = us.sessions(dt.date(2025, 6, 2), dt.date(2026, 6, 30))[:200]
    return _random_walk(sessions, list(us.universe[:3]))


def test_no_forecast_sees_its_target_or_anything_after_it(walk):
    made = forecast.walk_forward(walk)
    # Every forecast's target is after its last known session, and it used only those up to it.
    dated = made.drop_nulls("target_date")
    assert (dated.get_column("target_date") > dated.get_column("trading_date")).all()
    position = walk.with_columns(
        n=pl.col("trading_date").rank("ordinal").over("symbol").cast(pl.Int64)
    ).select("trading_date", "symbol", "n")
    checked = made.join(position, on=["trading_date", "symbol"])
    assert (checked.get_column("train_sessions") == checked.get_column("n")).all()

    # Scramble every close after a cut-off: forecasts made up to it do not change.
    dates = walk.get_column("trading_date").unique().sort()
    cut = dates[120]
    rng = np.random.default_rng(99)
    later = pl.col("trading_date") > cut
    scrambled = walk.with_columns(
        close=pl.when(later)
        .then(pl.Series(rng.uniform(1, 1000, walk.height)))
        .otherwise(pl.col("close"))
    )
    again = forecast.walk_forward(scrambled)
    before = pl.col("trading_date") <= cut
    keep = ["trading_date", "symbol", "model", "forecast_close"]
    assert again.filter(before).select(keep).equals(made.filter(before).select(keep))
    # ...and those after it do (the test can fail: the scrambled prices are used).
    assert not again.filter(~before).select(keep).equals(made.filter(~before).select(keep))
    assert made.filter(pl.col("model") == "ridge").height > 100


def test_on_a_random_walk_the_naive_forecast_wins(walk):
    scores = forecast.scores(forecast.walk_forward(walk))
    rows = scores.filter(pl.col("symbol") == "ALL").iter_rows(named=True)
    overall = {r["model"]: r for r in rows}
    assert set(overall) == set(forecast.MODELS)
    # Scored over the same targets: those the model (with the longest warm-up) forecast.
    assert len({r["targets"] for r in overall.values()}) == 1
    naive, mean, ridge = (overall[m]["mae_pct"] for m in ("naive", "historical_mean", "ridge"))
    assert naive < mean / 3
    assert naive <= ridge
    assert overall["naive"]["directional_accuracy"] is None  # it calls no move
    assert 0.35 < overall["ridge"]["directional_accuracy"] < 0.65  # a coin, near enough
    assert 0 <= overall["historical_mean"]["directional_accuracy"] <= 1


def test_too_little_history_forecasts_with_the_baselines_only(walk):
    tenth = walk.get_column("trading_date").unique().sort()[9]
    short = walk.filter(pl.col("trading_date") <= tenth)
    made = forecast.walk_forward(short)
    assert set(made.get_column("model")) == {"naive", "historical_mean"}


@pytest.fixture
def warehouse_with_history(pg_url, us):
    sessions = us.sessions(dt.date(2026, 8, 3), dt.date(2026, 11, 18))[-45:]
    walk = _random_walk(sessions, list(us.universe))
    summary = conform(
        walk.with_columns(
            open=pl.col("close"),
            high=pl.col("close"),
            low=pl.col("close"),
            volume=pl.lit(1000, pl.Int64),
            vwap=pl.col("close"),
            open_to_close_pct=pl.lit(0.0),
            range_pct=pl.lit(0.0),
            return_pct=pl.lit(None, pl.Float64),
            prev_close=pl.lit(None, pl.Float64),
            bar_count=pl.lit(78, pl.Int64),
        ),
        DAILY_SUMMARY_SCHEMA,
    )
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")
    postgres.replace_window(
        pg_url,
        summary,
        postgres.WindowTable("us", "daily_summary", "trading_date"),
        start=sessions[0],
        end=sessions[-1] + dt.timedelta(days=1),
        primary_key=["trading_date", "symbol"],
    )
    return sessions


def _daily_summary_source(us) -> dg.AssetSpec:
    """The daily summary as the code location declares it, read (not run) through the
    warehouse IO manager, as a run of the daily job reads it."""
    from finance_assets.defs.warehouse.assets import build_warehouse_assets

    summary = build_warehouse_assets(us)[0]
    spec = summary.specs_by_key[dg.AssetKey(["us", "daily_summary"])]
    return dg.AssetSpec(
        spec.key, partitions_def=summary.partitions_def, metadata=spec.metadata
    ).with_io_manager_key("warehouse_io_manager")


def test_the_asset_stores_forecasts_and_reports_the_backtest(
    warehouse_with_history, pg_url, us, tmp_path, monkeypatch
):
    from finance_assets.defs.analytics.forecast import price_forecast_asset
    from finance_assets.lib.io.managers import PostgresIOManager, WarehouseResource

    sessions = warehouse_with_history
    day = sessions[-1]
    warehouse = WarehouseResource(url=pg_url)
    result = dg.materialize(
        [_daily_summary_source(us), price_forecast_asset(us)],
        partition_key=day.isoformat(),
        resources={"warehouse_io_manager": PostgresIOManager(warehouse=warehouse)},
        selection=[dg.AssetKey(["us", "price_forecast"])],
    )
    assert result.success
    meta = result.asset_materializations_for_node("us__price_forecast")[0].metadata
    for model in forecast.MODELS:
        assert meta[f"mae_pct_{model}"].value > 0
    assert meta["directional_accuracy_naive"].value == "n/a: forecasts no move"
    assert 0 <= meta["directional_accuracy_ridge"].value <= 1
    # 45 sessions: the model's first forecast is made on the 26th (LAGS + MIN_TRAIN + 1), the
    # last scored one on the 44th: 19 targets per symbol, 5 symbols.
    assert meta["backtest_targets"].value == 19 * len(us.universe)
    [check] = result.get_asset_check_evaluations()
    assert check.passed and check.check_name == "forecasts_after_their_data"

    stored = postgres.read_window(
        pg_url,
        postgres.WindowTable("us", "price_forecast", "trading_date"),
        start=day,
        end=day + dt.timedelta(days=1),
    )
    assert stored.height == 3 * len(us.universe)
    next_session = us.calendar.next_session(day.isoformat()).date()
    assert set(stored.get_column("target_date")) == {next_session}
    assert stored.get_column("actual_close").is_null().all()
    naive = stored.filter(pl.col("model") == "naive")
    assert (naive.get_column("forecast_close") == naive.get_column("last_close")).all()
