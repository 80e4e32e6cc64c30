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


# --- recorded bodies: a real Yahoo chart against the same bars in Twelve Data's format --------


def _yahoo_payload(body: bytes, market, start, end):
    from finance_assets.lib.providers.base import RawPayload
    from finance_assets.providers.yfinance.parser import FORMAT

    return RawPayload(
        provider="yfinance",
        format=FORMAT,
        interval="1day",
        symbols=("AAPL",),
        window_start=start,
        window_end=end,
        fetched_at=dt.datetime(2020, 11, 9, tzinfo=dt.UTC),
        body=body,
    )


def test_a_recorded_yahoo_chart_against_twelve_data_made_to_differ(samples, us):
    """Yahoo's recorded AAPL daily chart (49 sessions, Aug-Nov 2020) is the primary; the
    reference is the same sessions written in Twelve Data's /time_series format (dates, not
    epoch seconds; newest first) with three differences made here. The two providers' bars
    must meet on the same session open, and only the differences made may disagree."""
    import dataclasses
    import json

    from finance_assets.lib import transforms
    from finance_assets.lib.providers.base import RawPayload
    from finance_assets.providers.twelve_data.parser import FORMAT as TD_FORMAT

    market = dataclasses.replace(us, daily_start="2020-01-02")
    body = (samples / "yahoo" / "yahoo_chart_AAPL_1d_2020-08-31_to_2020-11-07.json").read_bytes()
    chart = json.loads(body)["chart"]["result"][0]
    quote = chart["indicators"]["quote"][0]
    days = [dt.datetime.fromtimestamp(t, NY).date().isoformat() for t in chart["timestamp"]]
    close = dict(zip(days, quote["close"], strict=True))
    volume = dict(zip(days, quote["volume"], strict=True))
    assert len(days) == 49
    lower_close, higher_volume, dropped = "2020-09-01", "2020-10-15", "2020-11-06"
    values = []
    for i, day in enumerate(days):
        if day == dropped:
            continue
        c = close[day] * (0.997 if day == lower_close else 1.0)
        v = int(volume[day] * (1.25 if day == higher_volume else 1))
        values.append(
            {
                "datetime": day,
                "open": f"{quote['open'][i]:.5f}",
                "high": f"{max(quote['high'][i], c):.5f}",
                "low": f"{min(quote['low'][i], c):.5f}",
                "close": f"{c:.5f}",
                "volume": str(v),
            }
        )
    td_body = {
        "AAPL": {
            "meta": {"symbol": "AAPL", "interval": "1day", "currency": "USD"},
            "values": list(reversed(values)),
            "status": "ok",
        }
    }
    start = dt.datetime(2020, 8, 31, tzinfo=NY)
    end = dt.datetime(2020, 11, 7, tzinfo=NY)
    reference = RawPayload(
        provider="twelve_data",
        format=TD_FORMAT,
        interval="1day",
        symbols=("AAPL",),
        window_start=start,
        window_end=end,
        fetched_at=dt.datetime(2020, 11, 9, tzinfo=dt.UTC),
        body=json.dumps(td_body).encode(),
    )

    def clean(payload):
        result, errors = transforms.clean_payloads(
            [payload],
            market,
            "1day",
            asset="test",
            window_start=start,
            window_end=end,
            ingested_at=dt.datetime(2020, 11, 9, tzinfo=dt.UTC),
        )
        assert not errors and result.quarantine.is_empty()
        return result.bars

    primary = clean(_yahoo_payload(body, market, start, end))
    pairs = ag.compare_bars(primary, clean(reference), ["AAPL"], TOL, NY)

    statuses = _status(pairs)
    assert len(statuses) == 49
    assert {d for (_, d), s in statuses.items() if s != ag.AGREE} == {
        lower_close,
        higher_volume,
        dropped,
    }
    assert statuses["AAPL", lower_close] == ag.CLOSE
    assert statuses["AAPL", higher_volume] == ag.VOLUME
    assert statuses["AAPL", dropped] == ag.NO_REFERENCE
    row = {r["trading_date"].isoformat(): r for r in pairs.iter_rows(named=True)}
    # Twelve Data's five decimals against Yahoo's float: -30 bp, to within that rounding.
    expected_bp = (float(f"{close[lower_close] * 0.997:.5f}") / close[lower_close] - 1) * 1e4
    assert row[lower_close]["close_diff_bp"] == pytest.approx(expected_bp, abs=1e-6)
    assert row[lower_close]["close_diff_bp"] == pytest.approx(-30, abs=0.01)
    # 1.25 x volume: 0.25 / 1.25 = 20 % of the larger.
    v = volume[higher_volume]
    assert row[higher_volume]["volume_diff_share"] == pytest.approx(
        (int(v * 1.25) - v) / int(v * 1.25)
    )
    # Everything else: within the five decimals Twelve Data writes.
    others = pairs.filter(pl.col("status") == ag.AGREE)
    assert others.height == 46
    assert others["close_diff_bp"].abs().max() < 0.01
    daily = ag.daily_agreement(pairs)
    assert daily.height == 49
    assert daily["agreement_rate"].sum() == pytest.approx(46)
