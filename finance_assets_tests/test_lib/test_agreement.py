"""The second opinion's comparison (`lib/transforms/agreement.py`), without Dagster: each
outcome on bars written here, the expected sizes worked out by hand in the comments."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from finance_assets.lib.schema import BAR_SCHEMA
from finance_assets.lib.transforms import agreement as ag

NY = ZoneInfo("America/New_York")
TOL = ag.Tolerance(close_bp=25, volume_share=0.05)


def _ts(day: str) -> dt.datetime:
    # A daily bar's ts is its session's open (09:30 New York = 14:30 UTC in November).
    return dt.datetime.fromisoformat(f"{day}T14:30:00+00:00")


def _bars(rows: list[tuple], source: str, currency: str | None = "USD") -> pl.DataFrame:
    """(symbol, day, close, volume) -> canonical bars."""
    return pl.DataFrame(
        [
            {
                "symbol": s,
                "ts": _ts(d),
                "open": c,
                "high": c,
                "low": c,
                "close": c,
                "adj_close": None,
                "volume": v,
                "currency": currency,
                "source": source,
                "ingested_at": dt.datetime(2024, 11, 23, tzinfo=dt.UTC),
            }
            for s, d, c, v in rows
        ],
        schema=BAR_SCHEMA,
    )


def _status(pairs: pl.DataFrame) -> dict[tuple[str, str], str]:
    return {
        (r["symbol"], r["trading_date"].isoformat()): r["status"]
        for r in pairs.iter_rows(named=True)
    }


def test_each_outcome_is_named_with_its_size():
    primary = _bars(
        [
            ("AAPL", "2024-11-22", 200.0, 1_000_000),  # agrees exactly
            ("MSFT", "2024-11-22", 400.0, 1_000_000),  # close 401.2: +30 bp
            ("NVDA", "2024-11-22", 100.0, 1_000_000),  # volume 900,000: 10 % of the larger
            ("AMZN", "2024-11-22", 50.0, 2_000_000),  # both off
            ("TSLA", "2024-11-22", 300.0, 500),  # no reference bar
            ("AAPL", "2024-11-25", 200.0, 1_000_000),  # +20 bp and 4 %: within both limits
        ],
        "twelve_data",
    )
    reference = _bars(
        [
            ("AAPL", "2024-11-22", 200.0, 1_000_000),
            ("MSFT", "2024-11-22", 401.2, 1_000_000),
            ("NVDA", "2024-11-22", 100.0, 900_000),
            ("AMZN", "2024-11-22", 49.5, 1_000_000),  # -100 bp, 50 % apart
            ("GOOG", "2024-11-22", 170.0, 10),  # no primary bar
            ("AAPL", "2024-11-25", 200.4, 960_000),
        ],
        "yfinance",
    )
    symbols = ["AAPL", "AMZN", "GOOG", "MSFT", "NVDA", "TSLA"]
    pairs = ag.compare_bars(primary, reference, symbols, TOL, NY)
    assert _status(pairs) == {
        ("AAPL", "2024-11-22"): ag.AGREE,
        ("MSFT", "2024-11-22"): ag.CLOSE,
        ("NVDA", "2024-11-22"): ag.VOLUME,
        ("AMZN", "2024-11-22"): ag.BOTH,
        ("TSLA", "2024-11-22"): ag.NO_REFERENCE,
        ("GOOG", "2024-11-22"): ag.NO_PRIMARY,
        ("AAPL", "2024-11-25"): ag.AGREE,
    }
    by = {(r["symbol"], r["trading_date"].day): r for r in pairs.iter_rows(named=True)}
    assert by["MSFT", 22]["close_diff_bp"] == pytest.approx(30.0)
    assert by["NVDA", 22]["volume_diff_share"] == pytest.approx(0.10)
    assert by["AMZN", 22]["close_diff_bp"] == pytest.approx(-100.0)
    assert by["AMZN", 22]["volume_diff_share"] == pytest.approx(0.5)
    assert by["AAPL", 25]["close_diff_bp"] == pytest.approx(20.0)
    assert by["AAPL", 25]["volume_diff_share"] == pytest.approx(0.04)
    assert by["TSLA", 22]["close_diff_bp"] is None
    assert by["MSFT", 22]["primary_source"] == "twelve_data"
    assert by["MSFT", 22]["reference_source"] == "yfinance"
    assert pairs.schema == pl.Schema(ag.AGREEMENT_SCHEMA)

    lines = ag.disagreements(pairs, NY)
    # Largest close difference first; each line names the bar and the size.
    assert lines[0] == (
        "AMZN 2024-11-22 09:30: close 50 vs 49.5 (-100.0 bp, limit 25 bp); "
        "volume 2,000,000 vs 1,000,000 (50.0% apart, limit 5.0%)"
    )
    assert "MSFT 2024-11-22 09:30: close 400 vs 401.2 (+30.0 bp, limit 25 bp)" in lines
    assert "NVDA 2024-11-22 09:30: volume 1,000,000 vs 900,000 (10.0% apart, limit 5.0%)" in lines
    assert "TSLA 2024-11-22 09:30: no reference bar (twelve_data has one)" in lines
    assert "GOOG 2024-11-22 09:30: no primary bar (yfinance has one)" in lines
    assert len(lines) == 5

    daily = ag.daily_agreement(pairs)
    assert daily.to_dicts() == [
        {
            "trading_date": dt.date(2024, 11, 22),
            "pairs": 6,
            "compared": 4,
            "agreed": 1,
            "close_disagreements": 2,
            "volume_disagreements": 2,
            "missing_reference": 1,
            "missing_primary": 1,
            "agreement_rate": 0.25,
            "max_close_diff_bp": pytest.approx(100.0),
        },
        {
            "trading_date": dt.date(2024, 11, 25),
            "pairs": 1,
            "compared": 1,
            "agreed": 1,
            "close_disagreements": 0,
            "volume_disagreements": 0,
            "missing_reference": 0,
            "missing_primary": 0,
            "agreement_rate": 1.0,
            "max_close_diff_bp": pytest.approx(20.0),
        },
    ]


def test_only_the_sample_is_compared_and_limits_are_inclusive():
    primary = _bars([("AAPL", "2024-11-22", 100.0, 100), ("MSFT", "2024-11-22", 1.0, 1)], "a")
    # +25 bp exactly and 5 % exactly: at the limit, still agreeing.
    reference = _bars([("AAPL", "2024-11-22", 100.25, 95), ("MSFT", "2024-11-22", 9.0, 9)], "b")
    pairs = ag.compare_bars(primary, reference, ["AAPL"], TOL, NY)
    assert pairs["symbol"].to_list() == ["AAPL"]
    assert pairs["status"].to_list() == [ag.AGREE]


def test_pence_and_pounds_are_one_price_and_missing_volume_is_not_judged():
    primary = _bars([("SHEL.L", "2024-11-22", 2612.5, None)], "yfinance", currency="GBp")
    reference = _bars([("SHEL.L", "2024-11-22", 26.125, 123)], "twelve_data", currency="GBP")
    pairs = ag.compare_bars(primary, reference, ["SHEL.L"], TOL, ZoneInfo("Europe/London"))
    row = pairs.row(0, named=True)
    assert row["close_diff_bp"] == pytest.approx(0.0)
    assert row["volume_diff_share"] is None
    assert row["status"] == ag.AGREE
    other = _bars([("SHEL.L", "2024-11-22", 26.125, None)], "x", currency="USD")
    assert ag.compare_bars(primary, other, ["SHEL.L"], TOL, NY)["status"].to_list() == [ag.CURRENCY]


def test_a_day_nothing_could_be_compared_has_no_rate():
    primary = _bars([("AAPL", "2024-11-22", 100.0, 100)], "a")
    pairs = ag.compare_bars(primary, primary.clear(), ["AAPL"], TOL, NY)
    daily = ag.daily_agreement(pairs)
    assert daily["compared"].to_list() == [0]
    assert daily["agreement_rate"].to_list() == [None]
    empty = ag.compare_bars(primary.clear(), primary.clear(), ["AAPL"], TOL, NY)
    assert empty.is_empty() and ag.daily_agreement(empty).is_empty()


def test_the_sample_is_stable_and_spread():
    universe = [f"S{i:03d}" for i in range(500)]
    sample = ag.reference_sample(universe, 20)
    assert len(sample) == 20 and sample == sorted(sample)
    assert ag.reference_sample(list(reversed(universe)), 20) == sample
    # Not simply the first 20 of the universe.
    assert sample != universe[:20]
    # A new symbol moves at most one in.
    assert len(set(ag.reference_sample([*universe, "NEW"], 20)) - set(sample)) <= 1
    # Larger than the universe: the whole universe.
    assert ag.reference_sample(["B", "A"], 5) == ["A", "B"]
    with pytest.raises(ValueError, match="at least 1"):
        ag.reference_sample(universe, 0)


def test_tolerances_are_checked():
    with pytest.raises(ValueError, match="close_bp"):
        ag.Tolerance(close_bp=0, volume_share=0.1)
    with pytest.raises(ValueError, match="volume_share"):
        ag.Tolerance(close_bp=1, volume_share=1.5)
