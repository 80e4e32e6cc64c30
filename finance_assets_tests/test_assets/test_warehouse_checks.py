"""The checks on the warehouse tables and what the UI shows about every table asset."""

import datetime as dt

import dagster as dg
import polars as pl
import psycopg
import pytest

from finance_assets.defs.common.assets import output_unless_failed, rule_check
from finance_assets.lib import quality, social
from finance_assets.lib.schema import DAILY_SUMMARY_KEY, DAILY_SUMMARY_SCHEMA, empty
from finance_assets.lib.transforms import PRICE_ALERT_KEY

D17, D18, SAT = dt.date(2026, 11, 17), dt.date(2026, 11, 18), dt.date(2026, 11, 21)


def _summary(rows):
    names = ["trading_date", "symbol", "low", "high", "vwap"]
    return pl.DataFrame([dict(zip(names, r, strict=True)) for r in rows], orient="row")


def test_duplicate_keys_returns_every_copy_and_nothing_else():
    frame = _summary([(D17, "A", 1, 2, 1.5), (D17, "A", 1, 2, 1.6), (D18, "A", 1, 2, 1.5)])
    assert quality.duplicate_keys(frame, DAILY_SUMMARY_KEY).height == 2
    assert quality.duplicate_keys(frame.head(1), DAILY_SUMMARY_KEY).is_empty()
    moves = pl.DataFrame({"ts": [1, 1], "symbol": ["A", "A"], "kind": ["vs_prev_bar", "x"]})
    assert quality.duplicate_keys(moves, PRICE_ALERT_KEY).is_empty()  # the kind tells them apart


def test_rows_off_session_and_vwap_outside_range():
    frame = _summary(
        [
            (D17, "A", 10.0, 12.0, 10.0),  # at the low: fine
            (D17, "B", 10.0, 12.0, 12.0 + 1e-12),  # float rounding: fine
            (D18, "A", 10.0, 12.0, 12.5),  # above the high
            (D18, "B", 10.0, 12.0, None),  # no volume, no VWAP: nothing to judge
            (SAT, "A", 10.0, 12.0, 9.0),  # a Saturday, below the low
        ]
    )
    assert quality.rows_off_session(frame, [D17, D18]).get_column("trading_date").to_list() == [SAT]
    outside = quality.vwap_outside_range(frame)
    assert outside.select("trading_date", "symbol").rows() == [(D18, "A"), (SAT, "A")]


def test_a_failing_blocking_check_writes_nothing_and_says_why(tmp_path):
    key = dg.AssetKey(["t", "table"])
    frame = pl.DataFrame({"trading_date": [D17, D17], "symbol": ["A", "A"]})

    @dg.asset(key=key, check_specs=[dg.AssetCheckSpec("unique_keys", asset=key, blocking=True)])
    def table():
        duplicates = quality.duplicate_keys(frame, DAILY_SUMMARY_KEY)
        yield from output_unless_failed(
            key, frame, [rule_check("unique_keys", duplicates, frame.height)], {}
        )

    result = dg.materialize([table], raise_on_error=False)
    assert not result.success
    assert not result.get_asset_materialization_events()  # nothing handed to the IO manager
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed and evaluation.metadata["failing_rows"].value == 2
    sample = evaluation.metadata["sample"]
    assert isinstance(sample, dg.TableMetadataValue) and len(sample.records) == 2


def test_stock_sentiment_daily_has_the_schema_its_metadata_declares():
    joined = social.stock_sentiment_daily(
        empty(DAILY_SUMMARY_SCHEMA), empty(social.DAILY_SENTIMENT_SCHEMA)
    )
    assert dict(joined.schema) == social.STOCK_SENTIMENT_SCHEMA


@pytest.fixture
def env(monkeypatch, tmp_path, pg_url):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    monkeypatch.delenv("FINANCE_SIM_FAULT_RATE", raising=False)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")
    return pg_url


def test_a_day_through_the_warehouse_passes_its_checks_and_shows_tables(env, us):
    from finance_assets_tests.test_assets.test_end_to_end import _defs, run_assets

    defs = _defs(us)
    instance = dg.DagsterInstance.ephemeral()

    def run(name, keys, start, end):
        return run_assets(defs, instance, name, keys, start, end)

    bars = run(
        "bars",
        ["raw_intraday_quotes", "bars_5min", "price_moves"],
        "2026-11-18-09:30",
        "2026-11-18-09:30",
    )
    daily = run("daily", ["daily_summary"], "2026-11-18", "2026-11-18")
    checks = {
        (e.asset_key.to_user_string(), e.check_name): e
        for r in (bars, daily)
        for e in r.get_asset_check_evaluations()
    }
    for name in [
        ("us/daily_summary", "one_row_per_symbol_and_session"),
        ("us/daily_summary", "vwap_within_range"),
        ("us/price_moves", "unique_keys"),
    ]:
        assert checks[name].passed, name
    rate = checks[("us/bars_5min", "quarantine_rate")].metadata["max_quarantine_rate"]
    assert isinstance(rate, dg.TextMetadataValue)  # a setting: not plotted

    (summary,) = [
        e.materialization.metadata
        for e in daily.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["us", "daily_summary"])
    ]
    assert summary["dagster/table_name"].value == "us.daily_summary"
    preview = summary["preview"]
    assert isinstance(preview, dg.TableMetadataValue)
    assert len(preview.records) == 5 and preview.records[0].data["symbol"] == "AAPL"
    assert [c.name for c in preview.schema.columns] == list(DAILY_SUMMARY_SCHEMA)
