import datetime as dt
import json

import polars as pl
import pytest

from finance_assets.lib import transforms
from finance_assets.lib.providers.base import BarRequest
from finance_assets.providers.simulated_market import SimulatedMarket

NY = dt.timezone(dt.timedelta(hours=-5))
START = dt.datetime(2025, 11, 24, tzinfo=NY)
END = dt.datetime(2025, 11, 29, tzinfo=NY)  # Mon..Fri, Thanksgiving closed, Friday early close


def test_same_request_same_bars_and_sub_ranges_agree(us):
    sim = SimulatedMarket(seed=3)
    whole = sim.bars(BarRequest(us, ["AAPL", "MSFT"], "5min", START, END))
    again = SimulatedMarket(seed=3).bars(BarRequest(us, ["MSFT", "AAPL"], "5min", START, END))
    assert whole.equals(again)
    part_start = dt.datetime(2025, 11, 25, 10, 0, tzinfo=NY)
    part_end = dt.datetime(2025, 11, 25, 11, 0, tzinfo=NY)
    part = sim.bars(BarRequest(us, ["AAPL"], "5min", part_start, part_end))
    assert part.height == 12
    sliced = whole.filter(
        (pl.col("symbol") == "AAPL") & pl.col("ts").is_between(part_start, part_end, closed="left")
    )
    assert part.equals(sliced)
    assert (
        not SimulatedMarket(seed=4)
        .bars(BarRequest(us, ["AAPL"], "5min", START, END))
        .equals(whole.filter(pl.col("symbol") == "AAPL"))
    )


def test_bars_sit_on_the_session_marks_including_early_close(us):
    bars = SimulatedMarket().bars(BarRequest(us, ["NVDA"], "5min", START, END))
    expected = us.bar_starts(START.astimezone(dt.UTC), END.astimezone(dt.UTC))
    assert bars.get_column("ts").to_list() == expected
    per_day = bars.group_by(pl.col("ts").dt.convert_time_zone(us.timezone).dt.date()).len()
    assert sorted(per_day.get_column("len").to_list()) == [42, 78, 78, 78]


def test_ohlcv_is_consistent_and_volume_u_shaped(us):
    bars = SimulatedMarket().bars(BarRequest(us, list(us.universe), "5min", START, END))
    assert bars.filter(
        (pl.col("low") > pl.min_horizontal("open", "close"))
        | (pl.col("high") < pl.max_horizontal("open", "close"))
        | (pl.col("volume") <= 0)
    ).is_empty()
    minute = pl.col("ts").dt.convert_time_zone(us.timezone).dt.time()
    edges = bars.filter((minute < dt.time(10, 0)) | (minute >= dt.time(15, 30)))
    midday = bars.filter(minute.is_between(dt.time(12, 0), dt.time(13, 30), closed="left"))
    assert edges.get_column("volume").mean() > 2 * midday.get_column("volume").mean()


def test_daily_bars_aggregate_the_intraday_path(us):
    sim = SimulatedMarket()
    daily = sim.bars(BarRequest(us, ["TSLA"], "1day", START, END))
    intraday = sim.bars(BarRequest(us, ["TSLA"], "5min", START, END))
    by_day = (
        intraday.group_by(pl.col("ts").dt.convert_time_zone(us.timezone).dt.date().alias("d"))
        .agg(
            pl.col("open").first(),
            pl.col("high").max(),
            pl.col("low").min(),
            pl.col("close").last(),
            pl.col("volume").sum(),
        )
        .sort("d")
    )
    assert daily.height == 4
    assert daily.select("open", "high", "low", "close", "volume").equals(
        by_day.select("open", "high", "low", "close", "volume")
    )


def test_payloads_speak_twelve_data(us):
    payloads = SimulatedMarket(batch_size=2).fetch_bars(
        us, ["AAPL", "MSFT", "GOOGL"], "5min", START, END
    )
    assert [p.symbols for p in payloads] == [("AAPL", "MSFT"), ("GOOGL",)]
    batch = json.loads(payloads[0].body)
    assert set(batch) == {"AAPL", "MSFT"}
    series = batch["AAPL"]
    assert series["status"] == "ok" and series["meta"]["interval"] == "5min"
    first, second = series["values"][:2]
    assert first["datetime"] == "2025-11-28 12:55:00"  # newest first, exchange-local
    assert first["datetime"] > second["datetime"]
    assert all(isinstance(first[k], str) for k in ("open", "high", "low", "close", "volume"))
    single = json.loads(payloads[1].body)
    assert single["meta"]["symbol"] == "GOOGL"  # one symbol: not keyed by symbol


@pytest.mark.parametrize("rate", [0.02, 0.2])
def test_fault_rate_corrupts_about_that_fraction(us, rate):
    sim = SimulatedMarket(fault_rate=rate)
    payloads = sim.fetch_bars(us, list(us.universe), "5min", START, END)
    parsed = transforms.parse_payloads(payloads)
    records = transforms.with_bar_times(parsed.records, us, "5min")
    result = transforms.clean_bars(
        records,
        asset="bars_5min",
        window_start=START,
        window_end=END,
        source="simulated",
        ingested_at=dt.datetime.now(dt.UTC),
        valid_starts=pl.Series(us.bar_starts(START, END)),
    )
    truth = sim.bars(BarRequest(us, list(us.universe), "5min", START, END))
    # Duplicates add records; every other fault spoils one. Out-of-order ones are repaired.
    assert result.received >= truth.height
    assert 0.3 * rate < result.quarantine_rate < 1.5 * rate
    reasons = set(result.quarantine.get_column("reason").to_list())
    assert {"duplicate (symbol, ts)"} <= reasons
    assert any("missing or not a number" in r for r in reasons)
    assert any("high < low" in r for r in reasons)


def test_fault_rate_is_validated():
    with pytest.raises(ValueError, match="fault_rate"):
        SimulatedMarket(fault_rate=1.5)
