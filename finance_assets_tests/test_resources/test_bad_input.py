"""Bad input never crashes the cleaning step, never loads as a clean bar, and a bad landing file
never blocks good data: non-finite and out-of-range values in every provider's format, and
files rejected as a whole (volume 1e20, negative prices, duplicated rows)."""

import dataclasses
import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from finance_assets.lib import landing, quality, transforms
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import RawPayload
from finance_assets.lib.schema import MAX_PRICE, MAX_VOLUME
from finance_assets.providers.simulated_market.client import SimulatedMarket

FETCHED = dt.datetime(2026, 11, 21, 12, tzinfo=dt.UTC)


def _early(market: Market) -> Market:
    # The samples are old: a calendar from 1995.
    return dataclasses.replace(market, daily_start="1995-01-03")


def _payload(
    provider: str, fmt: str, symbols: tuple[str, ...], start: dt.datetime, end: dt.datetime, body
) -> RawPayload:
    return RawPayload(
        provider=provider,
        format=fmt,
        interval="1day",
        symbols=symbols,
        window_start=start,
        window_end=end,
        fetched_at=FETCHED,
        body=body,
    )


def _days(market: Market, first: str, last: str) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(dt.date.fromisoformat(first), dt.time(), market.tz)
    end = dt.datetime.combine(dt.date.fromisoformat(last) + dt.timedelta(1), dt.time(), market.tz)
    return start, end


# --- every provider's format: non-finite and out-of-range values -----------------------------


def _twelve_data(samples: Path, market: Market) -> RawPayload:
    body = json.loads(
        (samples / "twelvedata" / "td_batch_time_series_AAPL_MSFT_1day.json").read_text()
    )
    for symbol in ("AAPL", "MSFT"):  # a second, good session beside the tampered one
        values = body[symbol]["values"]
        values.append({**values[0], "datetime": "2024-11-21"})
    body["AAPL"]["values"][0]["high"] = "inf"
    # A JSON number beyond 64 bits (the provider sends text, but a proxy may not).
    body["MSFT"]["values"][0]["volume"] = 2**64 - 1
    start, end = _days(market, "2024-11-21", "2024-11-22")
    return _payload("twelve_data", "twelve_data", ("AAPL", "MSFT"), start, end, json.dumps(body))


def _alpha_vantage(samples: Path, market: Market) -> RawPayload:
    body = json.loads((samples / "alphavantage" / "av_daily_MSFT_2017-08-11.json").read_text())
    series = body["Time Series (Daily)"]
    good = dict(series["2017-08-11"])
    series["2017-08-10"] = {**good, "2. high": "1e308"}
    series["2017-08-09"] = {**good, "5. volume": "1e20"}
    series["2017-08-08"] = {**good, "4. close": "-inf"}
    start, end = _days(market, "2017-08-08", "2017-08-11")
    return _payload("alpha_vantage", "alpha_vantage", ("MSFT",), start, end, json.dumps(body))


def _yahoo_chart(samples: Path, market: Market) -> RawPayload:
    name = "yahoo_chart_AAPL_1d_2020-08-31_to_2020-11-07.json"
    body = json.loads((samples / "yahoo" / name).read_text())
    quote = body["chart"]["result"][0]["indicators"]["quote"][0]
    quote["high"][0] = 1e308
    quote["volume"][1] = 2**70
    quote["volume"][2] = 1e20
    start, end = _days(market, "2020-08-31", "2020-11-06")
    return _payload("yfinance", "yahoo_chart", ("AAPL",), start, end, json.dumps(body))


def _yahoo_csv(samples: Path, market: Market) -> RawPayload:
    lines = (samples / "ohlcv" / "yahoofinance-SPY-20200901-20210113.csv").read_text().splitlines()
    for i, (column, value) in enumerate([(4, "inf"), (6, "1e20"), (2, "1e308"), (6, "inf")], 1):
        fields = lines[i].split(",")
        fields[column] = value
        lines[i] = ",".join(fields)
    start, end = _days(market, "2020-09-01", "2021-01-13")
    return _payload(landing.PROVIDER, "yahoo_csv", ("SPY",), start, end, "\n".join(lines).encode())


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (_twelve_data, {"high not finite", "volume out of range (>= 2**63)"}),
        (
            _alpha_vantage,
            {
                "high out of range (>= 1e+12)",
                "volume out of range (>= 2**63)",
                "close not finite",
            },
        ),
        (
            _yahoo_chart,
            {"high out of range (>= 1e+12)", "volume out of range (>= 2**63)"},
        ),
        (
            _yahoo_csv,
            {
                "close not finite",
                "volume out of range (>= 2**63)",
                "high out of range (>= 1e+12)",
            },
        ),
    ],
)
def test_non_finite_and_out_of_range_values_are_quarantined_in_every_format(
    samples: Path, us: Market, build, expected: set[str]
) -> None:
    market = _early(us)
    payload = build(samples, market)
    result, _ = transforms.clean_payloads(
        [payload],
        market,
        "1day",
        asset="daily_bars",
        window_start=payload.window_start,
        window_end=payload.window_end,
        ingested_at=FETCHED,
    )
    reasons = {
        part for reason in result.quarantine.get_column("reason") for part in reason.split("; ")
    }
    assert expected <= reasons, reasons
    # Only valid bars load; received = loaded + quarantined.
    assert result.received == result.bars.height + result.quarantine.height
    bars = result.bars
    assert bars.height and bars.filter(pl.col("close") > 0).height == bars.height
    for column in ("open", "high", "low", "close", "adj_close"):
        values = bars.get_column(column).drop_nulls()
        assert values.is_finite().all() and (values < MAX_PRICE).all(), column
    assert quality.null_prices(bars).is_empty()


def test_clean_bars_reasons_for_each_kind_of_bad_number(us: Market) -> None:
    day = dt.date(2026, 11, 17)
    start, end = _days(us, "2026-11-17", "2026-11-17")
    rows = {
        "inf": ("inf", "1", "1e20", "not finite"),
        "-inf": ("-inf", "1", "1", "not finite"),
        "1e308": ("1e308", "1", "1", "out of range (>= 1e+12)"),
        "nan": ("nan", "1", "1", "missing or not a number"),
        "volume 1e20": ("2", "1", "1e20", "volume out of range (>= 2**63)"),
        "volume inf": ("2", "1", "inf", "volume out of range (>= 2**63)"),
        "volume nan": ("2", "1", "nan", "volume missing or not a number"),
        "volume 2**63": ("2", "1", str(2**63), "volume out of range (>= 2**63)"),
    }
    records = pl.DataFrame(
        [
            {
                "payload_id": "p",
                "symbol": f"S{i}",
                "currency": "USD",
                "datetime": day.isoformat(),
                "open": low,
                "high": high,
                "low": low,
                "close": low,
                "volume": volume,
                "adj_close": high,
            }
            for i, (high, low, volume, _) in enumerate(rows.values())
        ]
        + [
            {
                "payload_id": "p",
                "symbol": "OK",
                "currency": "USD",
                "datetime": day.isoformat(),
                "open": "1",
                "high": "2",
                "low": "1",
                "close": "2",
                "volume": str(2**62),
                "adj_close": "inf",  # a bad adjusted close costs the bar nothing: stored null
            }
        ]
    )
    result = transforms.clean_bars(
        transforms.with_bar_times(records, us, "1day"),
        asset="daily_bars",
        window_start=start,
        window_end=end,
        source="test",
        ingested_at=FETCHED,
    )
    assert result.bars.select("symbol", "volume", "adj_close").rows() == [("OK", 2**62, None)]
    got = dict(zip(result.quarantine["symbol"], result.quarantine["reason"], strict=True))
    for i, (name, (*_, reason)) in enumerate(rows.items()):
        assert reason in got[f"S{i}"], (name, got[f"S{i}"])
    assert MAX_VOLUME == 2.0**63


def test_the_blocking_rule_catches_non_finite_prices_past_cleaning() -> None:
    bars = pl.DataFrame(
        {
            "open": [1.0, float("inf"), 1e308, None, float("nan")],
            "high": [2.0] * 5,
            "low": [1.0] * 5,
            "close": [2.0] * 5,
        }
    )
    assert quality.null_prices(bars).height == 4


def test_a_date_outside_the_calendar_is_quarantined_not_a_crash(us: Market) -> None:
    # The calendar raises for dates beyond its range: a provider's stray 1990 or 9999.
    body = {
        "meta": {"symbol": "AAPL", "currency": "USD", "exchange": "NASDAQ"},
        "values": [
            {"datetime": d, "open": "1", "high": "2", "low": "1", "close": "2", "volume": "5"}
            for d in ("1990-01-02", "9999-01-04", "2026-11-17")
        ],
        "status": "ok",
    }
    start, end = _days(us, "2026-11-17", "2026-11-17")
    result, _ = transforms.clean_payloads(
        [_payload("twelve_data", "twelve_data", ("AAPL",), start, end, json.dumps(body))],
        us,
        "1day",
        asset="daily_bars",
        window_start=start,
        window_end=end,
        ingested_at=FETCHED,
    )
    assert result.bars.height == 1
    assert sorted(result.quarantine.get_column("ts_raw")) == ["1990-01-02", "9999-01-04"]


# --- a bad landing file is rejected as a whole and blocks nothing ----------------------------

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"
DAYS = ("2026-11-17", "2026-11-18")


def _row(day: str, close: float = 230.0, volume: str = "41000000") -> str:
    return f"{day},{close - 1},{close + 2},{close - 2},{close},{close},{volume}\n"


BAD_FILES = {
    "volume 1e20": HEADER + _row(DAYS[0]) + _row(DAYS[1], volume="1e20"),
    "negative prices": HEADER + _row(DAYS[0], -5.0) + _row(DAYS[1], -6.0),
    "a duplicated row": HEADER + _row(DAYS[0]) + _row(DAYS[1]) + _row(DAYS[1]),
}


def _provider_payloads(market: Market) -> list[RawPayload]:
    start, end = _days(market, *DAYS)
    sim = SimulatedMarket(seed=3, clock=lambda: FETCHED - dt.timedelta(hours=1))
    return sim.fetch_bars(market, market.universe, "1day", start, end)


def _landing_payload(
    tmp_path: Path, market: Market, name: str, body: str, fetched: dt.datetime = FETCHED
) -> RawPayload:
    folder = tmp_path / "landing" / market.key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(body)
    store = landing.open_store(str(tmp_path / "landing"), market.key)
    start, end = _days(market, *DAYS)
    files = landing.LandingZoneFiles(store, name, clock=lambda: fetched)
    return files.fetch_bars(market, market.universe, "1day", start, end)[0]


def _clean(market: Market, payloads: list[RawPayload]) -> transforms.CleanResult:
    start, end = _days(market, *DAYS)
    result, _ = transforms.clean_payloads(
        payloads,
        market,
        "1day",
        asset="daily_bars",
        window_start=start,
        window_end=end,
        ingested_at=FETCHED,
        max_quarantine_rate=0.05,
    )
    assert result.received == result.bars.height + result.quarantine.height
    return result


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_a_bad_file_is_rejected_whole_and_the_providers_bars_load(
    tmp_path: Path, us: Market, kind: str
) -> None:
    provider = _provider_payloads(us)
    alone = _clean(us, provider)
    assert alone.bars.height == 2 * len(us.universe) == 10
    bad = _landing_payload(tmp_path, us, "AAPL.csv", BAD_FILES[kind])

    result = _clean(us, [*provider, bad])
    # The provider's bars, every one of them, as if the file had never been dropped: the
    # rejected file superseded nothing (AAPL's provider bars too).
    assert result.bars.drop("ingested_at").equals(alone.bars.drop("ingested_at"))
    (rejected,) = result.rejected
    assert (rejected.file, rejected.sha256) == ("AAPL.csv", bad.request["sha256"])
    assert rejected.reason.startswith("landing file AAPL.csv rejected as a whole: ")
    # Every record of the file is quarantined, with the file named and its own reason if any.
    reasons = result.quarantine.get_column("reason").to_list()
    assert len(reasons) == rejected.records == result.rejected_records
    assert all(r.startswith(rejected.reason) for r in reasons)
    assert set(result.quarantine.get_column("source")) == {"landing_zone,simulated"}
    own = {"volume 1e20": "volume out of range", "negative prices": "not positive"}
    own["a duplicated row"] = "duplicate (symbol, ts)"
    assert any(own[kind] in r for r in reasons), reasons
    # The blocking rate judges the accepted payloads: the provider's, all clean.
    assert result.accepted_quarantine_rate == 0.0
    assert result.quarantine_rate > 0.05


def test_a_file_within_the_rate_loads_and_quarantines_its_bad_row(
    tmp_path: Path, us: Market
) -> None:
    # 1 bad row of 40 (2.5 %): the file is accepted, the bad row alone is quarantined.
    symbols = "ABCDEFGHIJKLMNOPQRST"
    body = "Symbol," + HEADER + "".join(f"X{s},{_row(d, 300.0)}" for s in symbols for d in DAYS)
    body = body.replace(f"XA,{_row(DAYS[1], 300.0)}", f"XA,{_row(DAYS[1], 300.0, '1e20')}")
    payload = _landing_payload(tmp_path, us, "prices.csv", body)
    result = _clean(us, [*_provider_payloads(us), payload])
    assert result.rejected == []
    assert result.bars.height == 10 + 39
    assert result.quarantine.get_column("reason").to_list() == ["volume out of range (>= 2**63)"]


def test_a_later_good_file_loads_beside_a_rejected_one(tmp_path: Path, us: Market) -> None:
    provider = _provider_payloads(us)
    bad = _landing_payload(tmp_path, us, "AAPL.csv", BAD_FILES["volume 1e20"])
    fixed = HEADER + _row(DAYS[0], 250.0) + _row(DAYS[1], 251.0)
    later = _landing_payload(
        tmp_path, us, "AAPL (1).csv", fixed, fetched=FETCHED + dt.timedelta(hours=1)
    )
    result = _clean(us, [*provider, bad, later])
    assert [r.file for r in result.rejected] == ["AAPL.csv"]
    aapl = result.bars.filter(pl.col("symbol") == "AAPL")
    assert aapl.get_column("close").to_list() == [250.0, 251.0]
    assert result.bars.height == 10


def test_rejected_files_judges_a_file_on_all_its_records(tmp_path: Path, us: Market) -> None:
    bad = _landing_payload(tmp_path, us, "AAPL.csv", BAD_FILES["a duplicated row"])
    parsed = transforms.parse_payloads([bad])
    timed = transforms.with_bar_times(parsed.records, us, "1day")
    (rejected,) = transforms.rejected_files(timed, [bad], 0.05)
    assert (rejected.records, rejected.invalid) == (3, 1)
    assert "1 of 3 records invalid (33.3%, more than the 5.0% allowed)" in rejected.reason
    assert transforms.rejected_files(timed, [bad], 0.5) == []
    # Provider payloads are judged by the blocking check as a whole, not here.
    provider = _provider_payloads(us)
    parsed = transforms.parse_payloads(provider)
    timed = transforms.with_bar_times(parsed.records, us, "1day")
    assert transforms.rejected_files(timed, provider, 0.0) == []
