import datetime as dt

import dagster as dg
import polars as pl
import psycopg
import pytest

from finance_assets.demo import range_tags
from finance_assets.lib import transforms

UTC = dt.UTC


def _bars(closes_by_day: dict[int, list[float]], symbol: str = "AAPL") -> pl.DataFrame:
    rows = []
    for day, closes in closes_by_day.items():
        open_ = dt.datetime(2026, 11, day, 14, 30, tzinfo=UTC)
        for i, close in enumerate(closes):
            rows.append(
                {"symbol": symbol, "ts": open_ + dt.timedelta(minutes=5 * i), "close": close}
            )
    return pl.DataFrame(rows).with_columns(pl.col("ts").dt.cast_time_unit("us"))


def test_crossings_up_and_down_alert_once_each(us):
    bars = _bars({17: [99.9, 100.0], 18: [100.5, 101.0, 101.5, 100.6, 101.3, 98.9]})
    alerts = transforms.detect_price_moves(bars, us, 1.0)
    crossings = alerts.filter(pl.col("kind") == "vs_prev_close")
    day = dt.datetime(2026, 11, 18, 14, 30, tzinfo=UTC)
    at = lambda i: day + dt.timedelta(minutes=5 * i)  # noqa: E731
    assert crossings.select("ts", "direction").rows() == [
        (at(1), "up"),
        (at(4), "up"),
        (at(5), "down"),
    ]
    assert crossings.get_column("reference").to_list() == [100.0] * 3
    assert crossings.get_column("change_pct").to_list() == pytest.approx([1.0, 1.3, -1.1])
    bar_moves = alerts.filter(pl.col("kind") == "vs_prev_bar")
    assert bar_moves.select("ts", "direction").rows() == [(at(5), "down")]
    assert bar_moves.get_column("change_pct")[0] == pytest.approx((98.9 / 101.3 - 1) * 100)


def test_staying_beyond_the_threshold_does_not_repeat(us):
    bars = _bars({17: [100.0], 18: [102.0, 102.5, 103.0, 102.2, 101.9]})
    alerts = transforms.detect_price_moves(bars, us, 1.0)
    assert alerts.filter(pl.col("kind") == "vs_prev_close").height == 1


def test_threshold_is_configurable_and_validated(us):
    bars = _bars({17: [100.0], 18: [100.6]})
    assert transforms.detect_price_moves(bars, us, 1.0).is_empty()
    assert transforms.detect_price_moves(bars, us, 0.5).height == 1
    with pytest.raises(ValueError, match="threshold_pct"):
        transforms.detect_price_moves(bars, us, 0)


def test_no_previous_session_no_close_alerts(us):
    alerts = transforms.detect_price_moves(_bars({18: [100.0, 103.0]}), us, 1.0)
    assert alerts.get_column("kind").to_list() == ["vs_prev_bar"]


def test_price_moves_asset_is_the_same_whether_run_by_range_or_by_bar(
    env, fresh_schema, us, monkeypatch
):
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    monkeypatch.setenv("FINANCE_PRICE_MOVE_PCT", "0.5")
    defs = _defs(us)
    selection = [
        dg.AssetKey(["us", n]) for n in ("raw_intraday_quotes", "bars_5min", "price_moves")
    ]
    job = dg.define_asset_job("moves", selection=selection)
    job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("moves")
    instance = dg.DagsterInstance.ephemeral()
    tags = range_tags("2026-11-17-09:30", "2026-11-18-15:55")
    assert job_def.execute_in_process(instance=instance, tags=tags).success

    def alerts():
        with psycopg.connect(fresh_schema) as conn:
            return conn.execute(
                "SELECT ts, symbol, kind, direction, change_pct FROM us.price_alerts "
                "ORDER BY 1, 2, 3"
            ).fetchall()

    by_range = alerts()
    assert any(kind == "vs_prev_close" for _, _, kind, _, _ in by_range)
    # Each crossing is alerted once per symbol and direction run, never on consecutive bars.
    # Re-running single bars of the day reproduces exactly the same alerts.
    for key in ("2026-11-18-10:00", "2026-11-18-12:35", "2026-11-18-15:55"):
        assert job_def.execute_in_process(instance=instance, partition_key=key).success
    assert alerts() == by_range


@pytest.fixture
def env(monkeypatch, tmp_path, pg_url):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    monkeypatch.delenv("FINANCE_SIM_FAULT_RATE", raising=False)
    return tmp_path / "data"


@pytest.fixture
def fresh_schema(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")
    return pg_url
