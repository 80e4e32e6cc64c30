"""Corporate actions as data, without Dagster: the splits and dividends read from recorded
provider bodies, deduplicated across providers, the adjusted prices, and the comparison with the
provider's own adj_close.

Expectations come from outside the project's code: Apple's published dividend history and
splits (investor.apple.com: $2.65 a quarter from August 2012, $3.05 from May 2013, $3.29 in
May 2014, then $0.47, $0.52, $0.57, $0.63 after the 7-for-1 split of 9 June 2014; a 4-for-1
split on 31 August 2020, $0.205 in November 2020), SPY's distributions ($1.339224 in September
2020, $1.580116 in December 2020), and Yahoo's own `Adj Close` / `adjclose` in the recorded
files (../shared/samples), which Yahoo computed, not this code.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from finance_assets.lib.providers.base import PayloadFormatError, RawPayload
from finance_assets.lib.schema import CORPORATE_ACTION_SCHEMA
from finance_assets.lib.transforms import corporate_actions as ca
from finance_assets.providers.alpha_vantage.client import parse_alpha_vantage_actions
from finance_assets.providers.twelve_data.parser import parse_twelve_data_actions
from finance_assets.providers.yfinance.parser import parse_yahoo_events

NY = "America/New_York"
AAPL_CHART = "yahoo/yahoo_chart_AAPL_1d_2020-08-31_to_2020-11-07.json"

# Apple's dividends, 2012-2017, on the 2018 basis of Yahoo's CSV export (before the 2020 split):
# the amounts paid before the 2014 7-for-1 split divided by 7.
AAPL_DIVIDENDS = [
    *[(d, 2.65 / 7) for d in ("2012-08-09", "2012-11-07", "2013-02-07")],
    *[(d, 3.05 / 7) for d in ("2013-05-09", "2013-08-08", "2013-11-06", "2014-02-06")],
    ("2014-05-08", 3.29 / 7),
    *[(d, 0.47) for d in ("2014-08-07", "2014-11-06", "2015-02-05")],
    *[(d, 0.52) for d in ("2015-05-07", "2015-08-06", "2015-11-05", "2016-02-04")],
    *[(d, 0.57) for d in ("2016-05-05", "2016-08-04", "2016-11-03", "2017-02-09")],
    *[(d, 0.63) for d in ("2017-05-11", "2017-08-10", "2017-11-10")],
]
AAPL_SPLIT_2014 = ("2014-06-09", 7.0)


def _actions(rows: list[tuple[str, str, str, float]], source: str = "test") -> pl.DataFrame:
    """(symbol, ex_date, kind, value) -> CORPORATE_ACTION_SCHEMA rows."""
    return pl.DataFrame(
        [
            {
                "ex_date": dt.date.fromisoformat(day),
                "symbol": symbol,
                "kind": kind,
                "ratio": value if kind == "split" else None,
                "amount": value if kind == "dividend" else None,
                "source": source,
            }
            for symbol, day, kind, value in rows
        ],
        schema=CORPORATE_ACTION_SCHEMA,
    )


def _csv_bars(path: Path, symbol: str, fetched: dt.datetime, source: str) -> pl.DataFrame:
    """A Yahoo CSV export as stored daily bars (BAR_SCHEMA), with its Adj Close as the
    provider's adj_close, loaded at `fetched`."""
    frame = pl.read_csv(path, try_parse_dates=True)
    return frame.select(
        symbol=pl.lit(symbol),
        ts=pl.col("Date")
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone(NY)
        .dt.offset_by("9h30m")
        .dt.convert_time_zone("UTC"),
        open="Open",
        high="High",
        low="Low",
        close="Close",
        adj_close="Adj Close",
        volume=pl.col("Volume").cast(pl.Int64),
        currency=pl.lit("USD"),
        source=pl.lit(source),
        ingested_at=pl.lit(fetched).cast(pl.Datetime("us", "UTC")),
    )


def _chart_bars(body: dict, fetched: dt.datetime, source: str = "yfinance") -> pl.DataFrame:
    """A chart body's bars read straight from its arrays (not through the project's parser)."""
    result = body["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    return pl.DataFrame(
        {
            "symbol": result["meta"]["symbol"],
            "ts": [dt.datetime.fromtimestamp(t, dt.UTC) for t in result["timestamp"]],
            **{
                name: pl.Series(quote[name], dtype=pl.Float64, strict=False)
                for name in ("open", "high", "low", "close")
            },
            "adj_close": pl.Series(
                result["indicators"]["adjclose"][0]["adjclose"], dtype=pl.Float64, strict=False
            ),
            "volume": pl.Series(quote["volume"], dtype=pl.Int64),
            "currency": "USD",
            "source": source,
            "ingested_at": fetched,
        }
    ).with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC")),
        pl.col("ingested_at").cast(pl.Datetime("us", "UTC")),
    )


# --- reading actions from recorded bodies ----------------------------------------------------


def test_yahoo_chart_events_give_apples_4_for_1_split_and_its_dividend(samples: Path):
    actions = parse_yahoo_events((samples / AAPL_CHART).read_bytes(), "")
    assert actions.sort("ex_date").rows() == [
        (dt.date(2020, 8, 31), "AAPL", "split", 4.0, None),
        (dt.date(2020, 11, 6), "AAPL", "dividend", None, 0.205),
    ]


def test_events_outside_the_payload_window_are_left_out_as_its_bars_are(samples: Path):
    body = (samples / AAPL_CHART).read_bytes()
    payload = RawPayload(
        provider="yfinance",
        format="yahoo_chart",
        interval="1day",
        symbols=("AAPL",),
        window_start=dt.datetime(2020, 9, 1, 4, tzinfo=dt.UTC),
        window_end=dt.datetime(2020, 11, 1, 4, tzinfo=dt.UTC),
        fetched_at=dt.datetime(2025, 2, 19, tzinfo=dt.UTC),
        body=body,
    )
    read = ca.actions_from_payloads([payload])
    assert read.actions.is_empty() and not read.silent and not read.unreadable


def test_a_split_without_a_usable_ratio_is_refused_naming_the_field(samples: Path):
    body = json.loads((samples / AAPL_CHART).read_bytes())
    split = body["chart"]["result"][0]["events"]["splits"]["1598880600"]
    split["denominator"] = 0
    with pytest.raises(PayloadFormatError, match=r"events\.splits\.1598880600: denominator"):
        parse_yahoo_events(json.dumps(body), "")
    with pytest.raises(ValueError, match=r"AAPL 2020-08-31 kind='split': ratio=0.0"):
        ca.check_actions(_actions([("AAPL", "2020-08-31", "split", 0.0)]))


def test_a_series_that_cannot_carry_actions_says_none_not_zero(samples: Path):
    """TIME_SERIES_DAILY (what a free Alpha Vantage key gets) has no split/dividend columns: its
    symbols are named as silent, not reported as having had no corporate action."""
    body = (samples / "alphavantage" / "av_daily_MSFT_2017-08-11.json").read_bytes()
    assert parse_alpha_vantage_actions(body, "") is None
    payload = RawPayload(
        provider="alpha_vantage",
        format="alpha_vantage",
        interval="1day",
        symbols=("MSFT",),
        window_start=dt.datetime(2017, 8, 11, 4, tzinfo=dt.UTC),
        window_end=dt.datetime(2017, 8, 12, 4, tzinfo=dt.UTC),
        fetched_at=dt.datetime(2017, 8, 12, tzinfo=dt.UTC),
        body=body,
    )
    read = ca.actions_from_payloads([payload])
    assert read.silent == {"MSFT"} and read.actions.is_empty()


# An Alpha Vantage TIME_SERIES_DAILY_ADJUSTED body (a premium endpoint; none was recorded) in its
# documented shape, around NVDA's 10-for-1 split of 10 June 2024 and its $0.01 dividend of
# 11 June: closes as traded, "5. adjusted close" worked out by hand (1208.88 / 10 x
# (1 - 0.01 / 121.79) = 120.87807).
NVDA_ADJUSTED = {
    "Meta Data": {
        "1. Information": "Daily Time Series with Splits and Dividend Events",
        "2. Symbol": "NVDA",
        "3. Last Refreshed": "2024-06-11",
        "4. Output Size": "Compact",
        "5. Time Zone": "US/Eastern",
    },
    "Time Series (Daily)": {
        "2024-06-11": {
            "1. open": "121.77",
            "2. high": "122.87",
            "3. low": "118.74",
            "4. close": "120.91",
            "5. adjusted close": "120.91",
            "6. volume": "222551168",
            "7. dividend amount": "0.0100",
            "8. split coefficient": "1.0",
        },
        "2024-06-10": {
            "1. open": "120.37",
            "2. high": "123.10",
            "3. low": "117.01",
            "4. close": "121.79",
            "5. adjusted close": "121.7800",
            "6. volume": "314162700",
            "7. dividend amount": "0.0000",
            "8. split coefficient": "10.0",
        },
        "2024-06-07": {
            "1. open": "1197.70",
            "2. high": "1216.92",
            "3. low": "1180.22",
            "4. close": "1208.88",
            "5. adjusted close": "120.8781",
            "6. volume": "41238580",
            "7. dividend amount": "0.0000",
            "8. split coefficient": "1.0",
        },
    },
}


def _av_bars(document: dict, fetched: dt.datetime) -> pl.DataFrame:
    series = document["Time Series (Daily)"]
    return pl.DataFrame(
        [
            {
                "symbol": "NVDA",
                "ts": dt.datetime.fromisoformat(day).replace(hour=13, minute=30, tzinfo=dt.UTC),
                "open": float(v["1. open"]),
                "high": float(v["2. high"]),
                "low": float(v["3. low"]),
                "close": float(v["4. close"]),
                "adj_close": float(v["5. adjusted close"]),
                "volume": int(v["6. volume"]),
                "currency": None,
                "source": "alpha_vantage",
                "ingested_at": fetched,
            }
            for day, v in series.items()
        ]
    ).with_columns(
        pl.col("ts").cast(pl.Datetime("us", "UTC")),
        pl.col("ingested_at").cast(pl.Datetime("us", "UTC")),
        pl.col("currency").cast(pl.String),
    )


def test_alpha_vantage_daily_adjusted_gives_nvidias_10_for_1_split_adjusted_as_traded():
    actions = parse_alpha_vantage_actions(json.dumps(NVDA_ADJUSTED), "")
    assert actions is not None
    assert actions.sort("ex_date").rows() == [
        (dt.date(2024, 6, 10), "NVDA", "split", 10.0, None),
        (dt.date(2024, 6, 11), "NVDA", "dividend", None, 0.01),
    ]
    bars = _av_bars(NVDA_ADJUSTED, dt.datetime(2024, 6, 12, tzinfo=dt.UTC))
    adjusted = ca.adjust_daily_bars(
        bars, actions.with_columns(source=pl.lit("alpha_vantage")), NY
    ).bars
    before = adjusted.filter(pl.col("trading_date") == dt.date(2024, 6, 7)).row(0, named=True)
    # Alpha Vantage's close is as traded: the split divides it by 10, the dividend takes 0.01 of
    # the 10 June close.
    assert before["adj_close"] == pytest.approx(1208.88 / 10 * (1 - 0.01 / 121.79), rel=1e-12)
    assert before["adj_volume"] == pytest.approx(41238580 * 10)
    assert ca.adj_close_disagreements(adjusted).is_empty()


# --- adjusted prices against Yahoo's own -----------------------------------------------------


def test_the_recorded_aapl_chart_agrees_with_yahoos_adjclose_and_a_missed_dividend_is_named(
    samples: Path,
):
    body = json.loads((samples / AAPL_CHART).read_bytes())
    bars = _chart_bars(body, fetched=dt.datetime(2025, 2, 19, 21, tzinfo=dt.UTC))
    actions = parse_yahoo_events(json.dumps(body), "").with_columns(source=pl.lit("yfinance"))
    adjusted = ca.adjust_daily_bars(bars, actions, NY).bars
    # Yahoo's adjclose holds every dividend up to 2025 (after this window): compared on its
    # basis, the only one between these days is the 0.205 of 6 November.
    assert ca.adj_close_disagreements(adjusted).is_empty()
    closes = dict(zip(adjusted["trading_date"], adjusted["close"], strict=True))
    nov5 = adjusted.filter(pl.col("trading_date") == dt.date(2020, 11, 5)).row(0, named=True)
    nov5_close = closes[dt.date(2020, 11, 5)]
    assert nov5["adj_close"] == pytest.approx(nov5_close * (1 - 0.205 / nov5_close))
    # The split of 31 August is the window's first day: nothing before it to divide, and Yahoo's
    # closes are split-adjusted anyway.
    assert adjusted.filter(pl.col("trading_date") >= dt.date(2020, 11, 6))["factor"].to_list() == [
        1.0
    ]
    without_dividend = ca.adjust_daily_bars(bars, actions.filter(pl.col("kind") == "split"), NY)
    missed = ca.adj_close_disagreements(without_dividend.bars)
    assert missed["trading_date"].to_list() == [
        d for d in adjusted["trading_date"].to_list() if d < dt.date(2020, 11, 6)
    ]
    assert missed["diff_pct"].to_list() == pytest.approx(
        [-0.205 / nov5_close * 100] * missed.height, rel=1e-2
    )
    assert "AAPL 2020-08-31..2020-11-05 (48 days" in ca.describe_disagreements(missed)


def test_a_yahoo_bar_loaded_before_a_split_is_divided_by_it_one_loaded_after_is_not(
    samples: Path,
):
    """Yahoo rewrites its history at a split: the bar of 28 August 2020 fetched that evening
    came as traded (499.23), fetched later as 124.8075. The chart's `chartPreviousClose` is
    that later figure."""
    body = json.loads((samples / AAPL_CHART).read_bytes())
    previous_close = body["chart"]["result"][0]["meta"]["chartPreviousClose"]
    actions = _actions([("AAPL", "2020-08-31", "split", 4.0)], "yfinance")
    as_traded = pl.DataFrame(
        {
            "symbol": ["AAPL"],
            "ts": [dt.datetime(2020, 8, 28, 13, 30, tzinfo=dt.UTC)],
            "open": [504.05],
            "high": [505.77],
            "low": [498.31],
            "close": [499.23],
            "adj_close": [None],
            "volume": [46907500],
            "currency": ["USD"],
            "source": ["yfinance"],
            "ingested_at": [dt.datetime(2020, 8, 28, 22, tzinfo=dt.UTC)],
        },
        schema_overrides={"adj_close": pl.Float64},
    )
    loaded_before = ca.adjust_daily_bars(as_traded, actions, NY).bars
    assert loaded_before["adj_close"][0] == pytest.approx(previous_close, abs=1e-3)
    refetched = as_traded.with_columns(
        close=pl.lit(499.23 / 4), ingested_at=pl.lit(dt.datetime(2020, 9, 1, tzinfo=dt.UTC))
    )
    loaded_after = ca.adjust_daily_bars(refetched, actions, NY).bars
    assert loaded_after["factor"][0] == 1.0
    assert loaded_after["adj_close"][0] == pytest.approx(previous_close, abs=1e-3)
    # Another provider's close is as traded, whenever it was loaded.
    other = ca.adjust_daily_bars(
        as_traded.with_columns(
            source=pl.lit("twelve_data"), ingested_at=pl.lit(dt.datetime(2021, 1, 1, tzinfo=dt.UTC))
        ),
        actions,
        NY,
    ).bars
    assert other["factor"][0] == 0.25


def test_fourteen_years_of_aapl_match_yahoos_adj_close_with_apples_published_dividends(
    samples: Path,
):
    bars = _csv_bars(
        samples / "ohlcv" / "yahoofinance-AAPL-20040819-20180120.csv",
        "AAPL",
        dt.datetime(2018, 1, 20, 12, tzinfo=dt.UTC),
        "yfinance",
    )
    rows = [("AAPL", day, "dividend", amount) for day, amount in AAPL_DIVIDENDS]
    actions = _actions([*rows, ("AAPL", AAPL_SPLIT_2014[0], "split", AAPL_SPLIT_2014[1])])
    adjusted = ca.adjust_daily_bars(bars, actions, NY)
    assert adjusted.skipped.is_empty()
    # No dividend between the last bar and the export (the next was 9 February 2018): our
    # adjusted close is Yahoo's Adj Close itself, every one of the 3,379 days.
    worst = (adjusted.bars["adj_close"] / adjusted.bars["provider_adj_close"] - 1).abs().max()
    assert adjusted.bars.height == 3379 and worst < 1e-5
    assert ca.adj_close_disagreements(adjusted.bars).is_empty()

    # One dividend missed: every day before its ex-date disagrees, none after.
    missing = [r for r in rows if r[1] != "2015-05-07"]
    partial = ca.adjust_daily_bars(
        bars, _actions([*missing, ("AAPL", *AAPL_SPLIT_2014[:1], "split", 7.0)]), NY
    ).bars
    named = ca.adj_close_disagreements(partial)
    assert named["trading_date"].max() == dt.date(2015, 5, 6)
    assert named.height == bars.filter(pl.col("ts") < dt.datetime(2015, 5, 7, tzinfo=dt.UTC)).height

    # Yahoo's closes already hold the 2014 split; a source sending them as traded would not:
    # dividing them again is 7 times off before 9 June 2014, and named so.
    as_if_traded = ca.adjust_daily_bars(
        bars.with_columns(source=pl.lit("twelve_data")), actions, NY
    ).bars
    off = ca.adj_close_disagreements(as_if_traded)
    assert off["trading_date"].max() == dt.date(2014, 6, 6)
    assert off["diff_pct"].to_list() == pytest.approx([600.0] * off.height, rel=1e-4)


def test_spy_distributions_match_yahoos_adj_close(samples: Path):
    bars = _csv_bars(
        samples / "ohlcv" / "yahoofinance-SPY-20200901-20210113.csv",
        "SPY",
        dt.datetime(2021, 1, 14, tzinfo=dt.UTC),
        "yfinance",
    )
    actions = _actions(
        [("SPY", "2020-09-18", "dividend", 1.339224), ("SPY", "2020-12-18", "dividend", 1.580116)]
    )
    adjusted = ca.adjust_daily_bars(bars, actions, NY).bars
    worst = (adjusted["adj_close"] / adjusted["provider_adj_close"] - 1).abs().max()
    assert worst < 1e-5
    assert ca.adj_close_disagreements(adjusted).is_empty()


# --- deduplication ---------------------------------------------------------------------------


def test_the_same_action_from_two_providers_is_one_row_and_a_disagreement_is_named():
    yahoo = _actions(
        [("AAPL", "2020-08-31", "split", 4.0), ("AAPL", "2020-11-06", "dividend", 0.205)],
        "yfinance",
    )
    av = _actions(
        [("AAPL", "2020-08-31", "split", 4.0), ("AAPL", "2020-11-06", "dividend", 0.2050)],
        "alpha_vantage",
    )
    deduplicated, conflicts = ca.deduplicate(pl.concat([yahoo, av, yahoo]))
    assert deduplicated.rows() == [
        (dt.date(2020, 8, 31), "AAPL", "split", 4.0, None, "alpha_vantage,yfinance"),
        (dt.date(2020, 11, 6), "AAPL", "dividend", None, 0.205, "alpha_vantage,yfinance"),
    ]
    assert conflicts.is_empty()

    restated = _actions([("AAPL", "2020-11-06", "dividend", 0.82)], "alpha_vantage")
    deduplicated, conflicts = ca.deduplicate(pl.concat([yahoo, restated]))
    assert deduplicated.height == 2
    assert sorted(conflicts.select("source", "amount").rows()) == [
        ("alpha_vantage", 0.82),
        ("yfinance", 0.205),
    ]


def test_a_tolerance_that_is_not_positive_is_refused():
    with pytest.raises(ValueError, match="tolerance_pct must be > 0, got 0"):
        ca.adj_close_disagreements(pl.DataFrame(), 0)


# --- the simulated market --------------------------------------------------------------------


def test_simulated_daily_bodies_carry_seeded_actions_and_unchanged_prices(us):
    import dataclasses

    from finance_assets.lib.providers.base import BarRequest
    from finance_assets.providers.simulated_market import SimulatedMarket

    market = dataclasses.replace(us, daily_start="2020-01-02")
    start = dt.datetime(2024, 1, 24, 5, tzinfo=dt.UTC)
    end = dt.datetime(2024, 2, 7, 5, tzinfo=dt.UTC)
    sim = SimulatedMarket(seed=7)
    (payload,) = sim.fetch_bars(market, ["NVDA", "TSLA"], "1day", start, end)
    body = json.loads(payload.body)
    # NVDA splits 5-for-1 on 31 January and 4-for-1 on 2 February 2024 (seed 7).
    assert [(s["date"], s["from_factor"], s["to_factor"]) for s in body["NVDA"]["splits"]] == [
        ("2024-01-31", 5, 1),
        ("2024-02-02", 4, 1),
    ]
    read = parse_twelve_data_actions(payload.body, payload.payload_id)
    assert read is not None
    nvda_splits = read.filter((pl.col("symbol") == "NVDA") & (pl.col("kind") == "split"))
    assert nvda_splits["ratio"].to_list() == [5.0, 4.0]
    # Asked one day at a time, the same actions: they depend on (seed, symbol, day) only.
    by_day = []
    for day in range(14):
        lo = start + dt.timedelta(days=day)
        by_day += sim.actions(market, "NVDA", lo, lo + dt.timedelta(days=1))[0]
    assert by_day == body["NVDA"]["splits"]
    # The prices are the market's as traded: the bars stay what they were without actions.
    closes = [float(v["close"]) for v in reversed(body["NVDA"]["values"])]
    truth = sim.bars(BarRequest(market, ["NVDA"], "1day", start, end))
    assert closes == pytest.approx(truth["close"].to_list(), abs=5e-6)
    # Intraday bodies carry none.
    (intraday,) = SimulatedMarket().fetch_bars(
        us,
        ["NVDA"],
        "5min",
        dt.datetime(2025, 11, 24, 15, tzinfo=dt.UTC),
        dt.datetime(2025, 11, 24, 16, tzinfo=dt.UTC),
    )
    assert parse_twelve_data_actions(intraday.body, intraday.payload_id) is None


def test_yahoo_and_alpha_vantage_payloads_of_one_window_give_one_row_per_action(samples: Path):
    """Through the registry's readers and the payload envelopes: Yahoo's recorded chart and an
    Alpha Vantage daily-adjusted body (constructed in its documented shape) for the same days."""
    window = (
        dt.datetime(2020, 8, 31, 4, tzinfo=dt.UTC),
        dt.datetime(2020, 11, 7, 5, tzinfo=dt.UTC),
    )
    yahoo = RawPayload(
        provider="yfinance",
        format="yahoo_chart",
        interval="1day",
        symbols=("AAPL",),
        window_start=window[0],
        window_end=window[1],
        fetched_at=dt.datetime(2025, 2, 19, tzinfo=dt.UTC),
        body=(samples / AAPL_CHART).read_bytes(),
    )
    day = {
        "1. open": "1",
        "2. high": "1",
        "3. low": "1",
        "4. close": "1",
        "5. adjusted close": "1",
        "6. volume": "1",
        "7. dividend amount": "0.0000",
        "8. split coefficient": "1.0",
    }
    av_body = {
        "Meta Data": {"2. Symbol": "AAPL", "5. Time Zone": "US/Eastern"},
        "Time Series (Daily)": {
            "2020-11-06": {**day, "7. dividend amount": "0.2050"},
            "2020-11-05": day,
            "2020-08-31": {**day, "8. split coefficient": "4.0"},
            "2020-08-28": day,
        },
    }
    av = RawPayload(
        provider="alpha_vantage",
        format="alpha_vantage",
        interval="1day",
        symbols=("AAPL",),
        window_start=window[0],
        window_end=window[1],
        fetched_at=dt.datetime(2020, 11, 9, tzinfo=dt.UTC),
        body=json.dumps(av_body).encode(),
    )
    read = ca.actions_from_payloads([yahoo, av])
    assert read.actions.height == 4 and not read.silent and not read.unreadable
    deduplicated, conflicts = ca.deduplicate(read.actions)
    assert conflicts.is_empty()
    assert deduplicated.select("ex_date", "kind", "source").rows() == [
        (dt.date(2020, 8, 31), "split", "alpha_vantage,yfinance"),
        (dt.date(2020, 11, 6), "dividend", "alpha_vantage,yfinance"),
    ]
