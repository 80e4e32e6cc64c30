"""AlphaVantageClient and parse_alpha_vantage against a local server speaking Alpha Vantage's
`/query`: the real sample bodies from ../shared/samples/alphavantage and bodies built in the
same format."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from pathlib import Path

import orjson
import polars as pl
import pytest
from pytest_httpserver import HTTPServer

from finance_assets.lib import transforms
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import RawPayload
from finance_assets.lib.providers.http import (
    AuthenticationFailed,
    InvalidSymbol,
    QuotaExhausted,
    RateLimited,
)
from finance_assets.lib.schema import RAW_RECORD_SCHEMA
from finance_assets.providers.alpha_vantage.client import (
    AlphaVantageClient,
    canonical_symbol,
    parse_alpha_vantage,
    to_alpha_vantage,
)
from finance_assets_tests.test_providers.test_http import (
    API_KEY,
    FakeTime,
    av_client,
    av_document,
    base_url,
    configured,
    json_bytes,
)

DAY = dt.date(2026, 2, 2)
INTRADAY = {
    "function": "TIME_SERIES_INTRADAY",
    "interval": "5min",
    "outputsize": "full",
    "extended_hours": "false",
    "adjusted": "false",
    "apikey": API_KEY,
}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return FakeTime(dt.datetime(2026, 2, 3, 12, 0, tzinfo=dt.UTC), monkeypatch)  # the day after DAY


@pytest.fixture(scope="module")
def us_2017(us: Market) -> Market:
    """The US market with a calendar reaching back to the samples' dates."""
    return dataclasses.replace(us, daily_start="2017-07-03", intraday_start="2017-07-03")


def _clean(
    payloads: list[RawPayload], market: Market, interval: str, start: dt.datetime, end: dt.datetime
) -> transforms.CleanResult:
    parsed = transforms.parse_payloads(payloads)
    records = transforms.with_bar_times(parsed.records, market, interval)
    return transforms.clean_bars(
        records,
        asset="bars",
        window_start=start,
        window_end=end,
        source="alpha_vantage",
        ingested_at=dt.datetime(2026, 2, 3, tzinfo=dt.UTC),
        valid_starts=pl.Series("ts", market.bar_starts(start, end)) if interval == "5min" else None,
    )


def test_parser_is_registered() -> None:
    assert transforms.PARSERS["alpha_vantage"] is parse_alpha_vantage


# --- success ---------------------------------------------------------------------------------


def test_daily_sample_compact_call_and_parse(
    httpserver: HTTPServer, us_2017: Market, samples: Path
) -> None:
    body = (samples / "alphavantage" / "av_daily_MSFT_2017-08-11.json").read_bytes()
    httpserver.expect_request(
        "/query",
        query_string={
            "function": "TIME_SERIES_DAILY",
            "symbol": "MSFT",
            "outputsize": "compact",
            "apikey": API_KEY,
        },
    ).respond_with_data(body, content_type="application/json")
    fake = FakeTime(dt.datetime(2017, 8, 14, 12, tzinfo=dt.UTC))
    start = dt.datetime(2017, 8, 11, tzinfo=us_2017.tz)
    end = start + dt.timedelta(days=1)

    [payload] = av_client(base_url(httpserver), fake).fetch_bars(
        us_2017, ["MSFT"], "1day", start, end
    )

    assert payload.body == body and payload.format == "alpha_vantage"
    assert payload.symbols == ("MSFT",) and (payload.window_start, payload.window_end) == (
        start,
        end,
    )
    assert payload.request == {
        "endpoint": "query",
        "base_url": base_url(httpserver),
        "function": "TIME_SERIES_DAILY",
        "symbol": "MSFT",
        "outputsize": "compact",
    }
    result = _clean([payload], us_2017, "1day", start, end)
    assert result.quarantine.is_empty()
    assert result.bars.select("symbol", "ts", "close", "volume").rows() == [
        ("MSFT", dt.datetime(2017, 8, 11, 13, 30, tzinfo=dt.UTC), 72.5, 21121250)
    ]


def test_daily_far_back_asks_for_the_full_history(httpserver: HTTPServer, us: Market) -> None:
    start = dt.datetime(2025, 1, 2, tzinfo=us.tz)
    end = dt.datetime(2025, 1, 3, tzinfo=us.tz)
    httpserver.expect_request(
        "/query",
        query_string={
            "function": "TIME_SERIES_DAILY",
            "symbol": "BRK-B",
            "outputsize": "full",
            "apikey": API_KEY,
        },
    ).respond_with_json(av_document(us, "BRK-B", "1day", start, end))
    fake = FakeTime(dt.datetime(2026, 2, 3, tzinfo=dt.UTC))
    [payload] = av_client(base_url(httpserver), fake).fetch_bars(us, ["BRK.B"], "1day", start, end)
    assert payload.symbols == ("BRK.B",)
    result = _clean([payload], us, "1day", start, end)
    assert result.bars.get_column("symbol").to_list() == ["BRK.B"]


def test_intraday_recent_is_one_call_and_keeps_only_the_window(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    start, end = us.session_bounds(DAY)
    # Alpha Vantage answers with the trailing month: the window's day and the days around it.
    wide = av_document(
        us,
        "MSFT",
        "5min",
        us.session_bounds(dt.date(2026, 1, 29))[0],
        us.session_bounds(dt.date(2026, 2, 3))[1],
    )
    body = json_bytes(wide)
    httpserver.expect_request(
        "/query", query_string={**INTRADAY, "symbol": "MSFT"}
    ).respond_with_data(body)

    [payload] = av_client(base_url(httpserver), fake).fetch_bars(us, ["MSFT"], "5min", start, end)

    assert payload.body == body and (payload.window_start, payload.window_end) == (start, end)
    result = _clean([payload], us, "5min", start, end)
    assert result.quarantine.is_empty()
    assert result.bars.height == 78
    assert result.bars.get_column("ts").min() == start


def test_intraday_older_than_the_trailing_month_is_fetched_by_month(
    httpserver: HTTPServer, us: Market
) -> None:
    start = us.session_bounds(dt.date(2026, 1, 29))[0]
    end = us.session_bounds(dt.date(2026, 2, 3))[1]
    feb = dt.datetime(2026, 2, 1, tzinfo=us.tz)
    for av_symbol in ("AAPL", "BRK-B"):
        # Each answer holds more than its window (a real one holds the whole month).
        for month, (m_start, m_end) in (
            ("2026-01", (us.session_bounds(dt.date(2026, 1, 27))[0], feb)),
            ("2026-02", (feb, us.session_bounds(dt.date(2026, 2, 5))[1])),
        ):
            httpserver.expect_ordered_request(
                "/query", query_string={**INTRADAY, "symbol": av_symbol, "month": month}
            ).respond_with_json(av_document(us, av_symbol, "5min", m_start, m_end))
    fake = FakeTime(dt.datetime(2026, 6, 1, tzinfo=dt.UTC))

    payloads = av_client(base_url(httpserver), fake).fetch_bars(
        us, ["AAPL", "BRK.B"], "5min", start, end
    )

    assert [(p.symbols, p.window_start, p.window_end) for p in payloads] == [
        (("AAPL",), start, feb),
        (("AAPL",), feb, end),
        (("BRK.B",), start, feb),
        (("BRK.B",), feb, end),
    ]
    assert [p.batch for p in payloads] == [0, 1, 2, 3]
    # 4 calls at 5 a minute: no wait.
    assert fake.sleeps == []
    result = _clean(payloads, us, "5min", start, end)
    assert result.quarantine.is_empty()
    assert result.bars.group_by("symbol").len().sort("symbol").rows() == [
        ("AAPL", 4 * 78),
        ("BRK.B", 4 * 78),
    ]
    httpserver.check_assertions()


# --- error bodies (all HTTP 200) ---------------------------------------------------------------


def test_invalid_api_call_is_invalid_symbol_skipped_or_raised(
    httpserver: HTTPServer,
    us: Market,
    fake: FakeTime,
    samples: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = (samples / "alphavantage" / "av_error_invalid_api_call.json").read_bytes()
    start, end = us.session_bounds(DAY)
    httpserver.expect_request(
        "/query", query_string={**INTRADAY, "symbol": "NOPE"}
    ).respond_with_data(error)
    httpserver.expect_request(
        "/query", query_string={**INTRADAY, "symbol": "MSFT"}
    ).respond_with_json(av_document(us, "MSFT", "5min", start, end))
    client = av_client(base_url(httpserver), fake)

    with caplog.at_level(logging.WARNING):
        payloads = client.fetch_bars(us, ["NOPE", "MSFT"], "5min", start, end)
    assert [p.symbols for p in payloads] == [("MSFT",)]
    assert "skipping NOPE" in caplog.text and "Invalid API call" in caplog.text
    with pytest.raises(InvalidSymbol, match="Invalid API call") as info:
        client.fetch_bars(us, ["NOPE"], "5min", start, end)
    assert info.value.symbol == "NOPE"
    strict = av_client(base_url(httpserver), fake, on_invalid_symbol="raise")
    with pytest.raises(InvalidSymbol):
        strict.fetch_bars(us, ["NOPE", "MSFT"], "5min", start, end)
    assert len(httpserver.log) == 4  # never retried


def test_missing_apikey_is_an_authentication_error(
    httpserver: HTTPServer, us: Market, fake: FakeTime, samples: Path
) -> None:
    body = (samples / "alphavantage" / "av_error_apikey_missing.json").read_bytes()
    httpserver.expect_request("/query").respond_with_data(body)
    start, end = us.session_bounds(DAY)
    with pytest.raises(AuthenticationFailed, match="apikey is invalid or missing"):
        av_client(base_url(httpserver), fake).fetch_bars(us, ["MSFT"], "5min", start, end)
    assert len(httpserver.log) == 1


def test_note_waits_for_the_limiter_then_retries(
    httpserver: HTTPServer, us: Market, fake: FakeTime, samples: Path
) -> None:
    note = (samples / "alphavantage" / "av_note_call_frequency.json").read_bytes()
    start, end = us.session_bounds(DAY)
    good = json_bytes(av_document(us, "MSFT", "5min", start, end))
    httpserver.expect_ordered_request("/query").respond_with_data(note)
    httpserver.expect_ordered_request("/query").respond_with_data(good)

    [payload] = av_client(base_url(httpserver), fake).fetch_bars(us, ["MSFT"], "5min", start, end)

    assert payload.body == good
    # The Note fills the limiter's window: the retry waits one full minute for a slot.
    assert sum(fake.sleeps) == pytest.approx(60.05, abs=0.01)
    httpserver.check_assertions()


def test_note_every_time_raises_rate_limited(
    httpserver: HTTPServer, us: Market, fake: FakeTime, samples: Path
) -> None:
    note = (samples / "alphavantage" / "av_note_call_frequency.json").read_bytes()
    httpserver.expect_request("/query").respond_with_data(note)
    start, end = us.session_bounds(DAY)
    with pytest.raises(RateLimited, match=r"call frequency.*gave up after 3 attempts"):
        av_client(base_url(httpserver), fake).fetch_bars(us, ["MSFT"], "5min", start, end)
    assert len(httpserver.log) == 3


def test_information_daily_limit_is_quota_exhausted(
    httpserver: HTTPServer, us: Market, fake: FakeTime, samples: Path
) -> None:
    body = (samples / "alphavantage" / "av_information_daily_limit.json").read_bytes()
    httpserver.expect_request("/query").respond_with_data(body)
    start, end = us.session_bounds(DAY)
    with pytest.raises(QuotaExhausted, match="25 requests per day"):
        av_client(base_url(httpserver), fake).fetch_bars(us, ["MSFT"], "5min", start, end)
    assert len(httpserver.log) == 1


def test_information_burst_limit_is_rate_limited_and_retried(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    burst = {
        "Information": "Please consider spreading out your free API requests more sparingly "
        "(1 request per second)."
    }
    start, end = us.session_bounds(DAY)
    httpserver.expect_ordered_request("/query").respond_with_json(burst)
    httpserver.expect_ordered_request("/query").respond_with_json(
        av_document(us, "MSFT", "5min", start, end)
    )
    av_client(base_url(httpserver), fake).fetch_bars(us, ["MSFT"], "5min", start, end)
    assert fake.sleeps == [2.0]


# --- the parser ------------------------------------------------------------------------------


def test_parse_intraday_sample(samples: Path, us: Market) -> None:
    body = (samples / "alphavantage" / "av_intraday_1min_MSFT_2017-12-18.json").read_bytes()
    records, errors = parse_alpha_vantage(body, "p1")
    assert errors == {}
    assert records.schema == pl.Schema(RAW_RECORD_SCHEMA)
    assert records.height == 100
    assert records.row(0) == (
        "p1",
        "MSFT",
        None,
        "2017-12-18 14:56:00",
        "86.4900",
        "86.5000",
        "86.4750",
        "86.5000",
        "10494",
    )
    # Keys are bar starts on US/Eastern wall time: 14:56 EST is 19:56 UTC.
    us_2017 = dataclasses.replace(us, daily_start="2017-07-03", intraday_start="2017-07-03")
    timed = transforms.with_bar_times(records.head(1), us_2017, "1min")
    assert timed.get_column("ts").to_list() == [dt.datetime(2017, 12, 18, 19, 56, tzinfo=dt.UTC)]


def test_parse_keeps_only_the_payload_window(samples: Path) -> None:
    body = (samples / "alphavantage" / "av_intraday_1min_MSFT_2017-12-18.json").read_bytes()
    payload = RawPayload(
        provider="alpha_vantage",
        format="alpha_vantage",
        interval="5min",
        symbols=("MSFT",),
        window_start=dt.datetime(2017, 12, 18, 19, 0, tzinfo=dt.UTC),
        window_end=dt.datetime(2017, 12, 18, 19, 10, tzinfo=dt.UTC),
        fetched_at=dt.datetime(2017, 12, 18, 20, 0, tzinfo=dt.UTC),
        body=body,
    )
    records, _ = parse_alpha_vantage(payload.body, payload.payload_id)
    assert records.get_column("datetime").to_list() == [
        f"2017-12-18 14:{m:02d}:00" for m in range(9, -1, -1)
    ]


def test_parse_london_symbols_to_canonical_and_london_time() -> None:
    body = {
        "Meta Data": {"2. Symbol": "BT-A.LON", "6. Time Zone": "US/Eastern"},
        "Time Series (5min)": {
            "2026-02-02 03:00:00": {
                "1. open": "1",
                "2. high": "2",
                "3. low": "0.5",
                "4. close": "1.5",
                "5. volume": "10",
            }
        },
    }
    records, _ = parse_alpha_vantage(orjson.dumps(body), "")
    assert records.select("symbol", "datetime").row(0) == ("BT.A.L", "2026-02-02 08:00:00")


def test_parse_error_bodies_and_malformed(samples: Path) -> None:
    for name, key in (
        ("av_error_invalid_api_call", "Error Message"),
        ("av_note_call_frequency", "Note"),
        ("av_information_daily_limit", "Information"),
    ):
        records, errors = parse_alpha_vantage(
            (samples / "alphavantage" / f"{name}.json").read_bytes()
        )
        assert records.is_empty() and list(errors) == ["?"] and errors["?"].startswith(key)
    with pytest.raises(transforms.PayloadFormatError, match="not JSON"):
        parse_alpha_vantage(b"<html>", "p")
    with pytest.raises(transforms.PayloadFormatError, match="Time Series"):
        parse_alpha_vantage(b'{"Meta Data": {}}', "p")


def test_symbol_notation() -> None:
    assert to_alpha_vantage("BRK.B") == "BRK-B"
    assert to_alpha_vantage("BT.A.L") == "BT-A.LON"
    assert to_alpha_vantage("SHEL.L") == "SHEL.LON"
    assert to_alpha_vantage("MSFT") == "MSFT"
    for symbol in ("BRK.B", "BT.A.L", "SHEL.L", "MSFT"):
        assert canonical_symbol(to_alpha_vantage(symbol)) == symbol


def test_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    def from_env(environ: dict[str, str]) -> AlphaVantageClient:
        environ = {"MARKET_DATA_PROVIDER": "alpha_vantage", **environ}
        return configured(monkeypatch, environ, "market_data")

    with pytest.raises(ValueError, match="ALPHAVANTAGE_API_KEY is not set"):
        from_env({"ALPHAVANTAGE_API_KEY": "  "})
    client = from_env(
        {"ALPHAVANTAGE_API_KEY": API_KEY, "ALPHAVANTAGE_BASE_URL": "http://127.0.0.1:9"}
    )
    assert client.base_url == "http://127.0.0.1:9" and API_KEY not in repr(client)
    monkeypatch.delenv("ALPHAVANTAGE_BASE_URL")
    assert from_env({"ALPHAVANTAGE_API_KEY": API_KEY}).base_url == "https://www.alphavantage.co"
