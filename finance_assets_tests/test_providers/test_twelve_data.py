"""TwelveDataClient against a local server speaking Twelve Data's `/time_series`: the real
sample bodies from ../shared/samples/twelvedata and bodies built in the same format."""

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
from finance_assets.lib.providers.http import (
    InvalidSymbol,
    QuotaExhausted,
    RateLimited,
)
from finance_assets.providers.twelve_data.client import (
    TwelveDataClient,
    canonical_symbol,
    to_twelve_data,
)
from finance_assets_tests.test_providers.test_http import (
    API_KEY,
    FakeTime,
    base_url,
    configured,
    json_bytes,
    td_client,
    td_document,
)

AUTH = {"Authorization": f"apikey {API_KEY}"}
NOW = dt.datetime(2026, 3, 2, 15, 0, 20, 500000, tzinfo=dt.UTC)


def _query(symbol: str, interval: str, start_date: str, end_date: str, **extra: str) -> dict:
    return {
        "symbol": symbol,
        "interval": interval,
        "start_date": start_date,
        "end_date": end_date,
        "timezone": "Exchange",
        "outputsize": "5000",
        **extra,
    }


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return FakeTime(NOW, monkeypatch)


@pytest.fixture(scope="module")
def us_2024(us: Market) -> Market:
    """The US market with a calendar reaching back to the samples' dates."""
    return dataclasses.replace(us, daily_start="2024-06-03", intraday_start="2024-06-03")


def _day_window(market: Market, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), market.tz)
    return start, start + dt.timedelta(days=1)


# --- success ---------------------------------------------------------------------------------


def test_twenty_day_5min_backfill_is_one_call_and_cleans_without_quarantine(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    sessions = us.sessions(dt.date(2026, 1, 5), dt.date(2026, 2, 10))[:20]
    start, end = us.session_bounds(sessions[0])[0], us.session_bounds(sessions[-1])[1]
    body = json_bytes(td_document(us, "AAPL", "5min", start, end))
    httpserver.expect_request(
        "/time_series",
        query_string=_query(
            "AAPL", "5min", "2026-01-05 09:30:00", f"{sessions[-1].isoformat()} 15:59:59"
        ),
        headers=AUTH,
    ).respond_with_data(body, content_type="application/json; charset=utf-8")

    payloads = td_client(base_url(httpserver), fake).fetch_bars(us, ["AAPL"], "5min", start, end)

    assert len(httpserver.log) == 1
    [payload] = payloads
    assert payload.body == body  # exactly as received
    assert (payload.provider, payload.format, payload.interval) == (
        "twelve_data",
        "twelve_data",
        "5min",
    )
    assert payload.symbols == ("AAPL",)
    assert (payload.window_start, payload.window_end) == (start, end)
    assert payload.fetched_at == NOW
    assert payload.content_type == "application/json; charset=utf-8"
    assert payload.request["symbol"] == "AAPL" and payload.request["endpoint"] == "time_series"
    parsed = transforms.parse_payloads(payloads)
    records = transforms.with_bar_times(parsed.records, us, "5min")
    result = transforms.clean_bars(
        records,
        asset="bars_5min",
        window_start=start,
        window_end=end,
        source="twelve_data",
        ingested_at=NOW,
        valid_starts=pl.Series("ts", us.bar_starts(start, end)),
    )
    assert result.bars.height == 20 * 78 and result.quarantine.is_empty()


def test_batch_sample_is_one_call_for_both_symbols(
    httpserver: HTTPServer, us_2024: Market, fake: FakeTime, samples: Path
) -> None:
    body = (samples / "twelvedata" / "td_batch_time_series_AAPL_MSFT_1day.json").read_bytes()
    httpserver.expect_request(
        "/time_series",
        query_string=_query("AAPL,MSFT", "1day", "2024-11-22 00:00:00", "2024-11-22 23:59:59"),
        headers=AUTH,
    ).respond_with_data(body, content_type="application/json")
    start, end = _day_window(us_2024, dt.date(2024, 11, 22))

    [payload] = td_client(base_url(httpserver), fake).fetch_bars(
        us_2024, ["AAPL", "MSFT"], "1day", start, end
    )

    assert payload.body == body and payload.symbols == ("AAPL", "MSFT")
    records, errors = transforms.parse_twelve_data(payload.body, payload.payload_id)
    assert errors == {}
    timed = transforms.with_bar_times(records, us_2024, "1day")
    assert timed.select("symbol", "close", "ts").sort("symbol").rows() == [
        ("AAPL", "229.87000", dt.datetime(2024, 11, 22, 14, 30, tzinfo=dt.UTC)),
        ("MSFT", "414.17000", dt.datetime(2024, 11, 22, 14, 30, tzinfo=dt.UTC)),
    ]


def test_one_failing_symbol_in_a_batch_does_not_fail_the_others(
    httpserver: HTTPServer, us_2024: Market, fake: FakeTime, samples: Path
) -> None:
    body = (samples / "twelvedata" / "td_batch_partial_error_invalid_symbol.json").read_bytes()
    httpserver.expect_request(
        "/time_series",
        query_string=_query("AAPL,INVALID", "1day", "2024-11-22 00:00:00", "2024-11-22 23:59:59"),
    ).respond_with_data(body, content_type="application/json")
    start, end = _day_window(us_2024, dt.date(2024, 11, 22))

    [payload] = td_client(base_url(httpserver), fake).fetch_bars(
        us_2024, ["AAPL", "INVALID"], "1day", start, end
    )

    assert payload.body == body and payload.symbols == ("AAPL", "INVALID")
    records, errors = transforms.parse_twelve_data(payload.body, payload.payload_id)
    assert records.get_column("symbol").to_list() == ["AAPL"]
    assert errors == {"INVALID": "400: **symbol** not found: INVALID. Please specify it correctly "
                      "according to API Documentation."}  # fmt: skip


def test_single_invalid_symbol_is_skipped_or_raised(
    httpserver: HTTPServer,
    us_2024: Market,
    fake: FakeTime,
    samples: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    error = (samples / "twelvedata" / "td_error_400_invalid_symbol.json").read_bytes()
    start, end = _day_window(us_2024, dt.date(2024, 11, 22))
    good = json_bytes(td_document(us_2024, "AAPL", "1day", start, end))
    dates = ("2024-11-22 00:00:00", "2024-11-22 23:59:59")
    httpserver.expect_request(
        "/time_series", query_string=_query("AAPL", "1day", *dates)
    ).respond_with_data(good)
    httpserver.expect_request(
        "/time_series", query_string=_query("INVALID", "1day", *dates)
    ).respond_with_data(error)
    client = td_client(base_url(httpserver), fake, batch_size=1)

    with caplog.at_level(logging.WARNING):
        payloads = client.fetch_bars(us_2024, ["AAPL", "INVALID"], "1day", start, end)
    assert [p.symbols for p in payloads] == [("AAPL",)]
    assert "skipping symbol" in caplog.text and "INVALID" in caplog.text
    with pytest.raises(InvalidSymbol, match=r"symbol.*not found") as info:
        client.fetch_bars(us_2024, ["INVALID"], "1day", start, end)  # nothing else to return
    assert info.value.symbol == "INVALID"
    strict = td_client(base_url(httpserver), fake, batch_size=1, on_invalid_symbol="raise")
    with pytest.raises(InvalidSymbol):
        strict.fetch_bars(us_2024, ["INVALID", "AAPL"], "1day", start, end)


def test_no_data_answer_is_kept_as_received(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    body = json_bytes(
        {
            "code": 400,
            "message": "No data is available on the specified dates. Try setting different "
            "start/end dates.",
            "status": "error",
        }
    )
    httpserver.expect_request("/time_series").respond_with_data(body)
    start, end = us.session_bounds(dt.date(2026, 2, 2))
    [payload] = td_client(base_url(httpserver), fake).fetch_bars(us, ["AAPL"], "5min", start, end)
    assert payload.body == body


# --- rate limits -----------------------------------------------------------------------------


def test_429_credits_body_waits_for_the_next_minute_then_retries(
    httpserver: HTTPServer, us: Market, fake: FakeTime, samples: Path
) -> None:
    credits = (samples / "twelvedata" / "td_error_429_credits.json").read_bytes()
    start, end = us.session_bounds(dt.date(2026, 2, 2))
    good = json_bytes(td_document(us, "AAPL", "5min", start, end))
    httpserver.expect_ordered_request("/time_series").respond_with_data(credits)  # HTTP 200
    httpserver.expect_ordered_request("/time_series").respond_with_data(good)

    [payload] = td_client(base_url(httpserver), fake).fetch_bars(us, ["AAPL"], "5min", start, end)

    assert payload.body == good
    # 15:00:20.5 -> the next minute's credits from 15:01:00 (+1 s margin).
    assert fake.sleeps == [pytest.approx(40.5)]
    assert payload.fetched_at == dt.datetime(2026, 3, 2, 15, 1, 1, tzinfo=dt.UTC)
    httpserver.check_assertions()


def test_429_credits_exhausted_raises_rate_limited(
    httpserver: HTTPServer, us: Market, fake: FakeTime, samples: Path
) -> None:
    credits = (samples / "twelvedata" / "td_error_429_credits.json").read_bytes()
    httpserver.expect_request("/time_series").respond_with_data(credits, status=429)
    start, end = us.session_bounds(dt.date(2026, 2, 2))
    with pytest.raises(RateLimited, match=r"credits.*gave up after 3 attempts"):
        td_client(base_url(httpserver), fake).fetch_bars(us, ["AAPL"], "5min", start, end)
    assert len(httpserver.log) == 3


def test_daily_credits_are_quota_exhausted_at_once(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    body = {
        "code": 429,
        "message": "You have run out of API credits for the day. 812 API credits were used, "
        "with the current limit being 800.",
        "status": "error",
    }
    httpserver.expect_request("/time_series").respond_with_json(body)
    start, end = us.session_bounds(dt.date(2026, 2, 2))
    with pytest.raises(QuotaExhausted, match="for the day"):
        td_client(base_url(httpserver), fake).fetch_bars(us, ["AAPL"], "5min", start, end)
    assert len(httpserver.log) == 1


def test_batches_spend_credits_through_the_limiter(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    symbols = [f"S{i:02d}" for i in range(12)]
    start, end = _day_window(us, dt.date(2026, 2, 2))
    httpserver.expect_request("/time_series").respond_with_json({})
    payloads = td_client(base_url(httpserver), fake, batch_size=4).fetch_bars(
        us, symbols, "1day", start, end
    )
    # Three calls of 4 credits against 8 a minute: the third waits a window, and only it.
    assert [p.symbols for p in payloads] == [tuple(symbols[i : i + 4]) for i in (0, 4, 8)]
    assert [r.args["symbol"] for r, _ in httpserver.log] == [
        ",".join(symbols[i : i + 4]) for i in (0, 4, 8)
    ]
    assert fake.sleeps == [pytest.approx(60.05, abs=0.01)]
    with pytest.raises(ValueError, match="batch_size"):
        td_client(base_url(httpserver), fake, batch_size=9)  # 9 credits can never fit 8


# --- symbols, windows, configuration ---------------------------------------------------------


def test_london_symbols_use_exchange_lse_and_stay_canonical(
    httpserver: HTTPServer, uk: Market, fake: FakeTime
) -> None:
    start, end = _day_window(uk, dt.date(2026, 2, 2))
    body = {
        td: td_document(uk, td, "1day", start, end, exchange="LSE", mic_code="XLON")
        for td in ("BT.A", "SHEL")
    }
    httpserver.expect_request(
        "/time_series",
        query_string=_query(
            "BT.A,SHEL", "1day", "2026-02-02 00:00:00", "2026-02-02 23:59:59", exchange="LSE"
        ),
    ).respond_with_json(body)
    httpserver.expect_request(
        "/time_series",
        query_string=_query("BRK.B", "1day", "2026-02-02 00:00:00", "2026-02-02 23:59:59"),
    ).respond_with_json(td_document(uk, "BRK.B", "1day", start, end))

    payloads = td_client(base_url(httpserver), fake).fetch_bars(
        uk, ["BT.A.L", "BRK.B", "SHEL.L"], "1day", start, end
    )

    assert [p.symbols for p in payloads] == [("BT.A.L", "SHEL.L"), ("BRK.B",)]
    assert [p.batch for p in payloads] == [0, 1]
    document = orjson.loads(payloads[0].body)
    assert [
        canonical_symbol(v["meta"]["symbol"], v["meta"]["exchange"], v["meta"]["mic_code"])
        for v in document.values()
    ] == ["BT.A.L", "SHEL.L"]


def test_symbol_notation() -> None:
    assert to_twelve_data("BT.A.L") == ("BT.A", "LSE")
    assert to_twelve_data("SHEL.L") == ("SHEL", "LSE")
    assert to_twelve_data("BRK.B") == ("BRK.B", None)
    assert canonical_symbol("BT.A", "LSE", "XLON") == "BT.A.L"
    assert canonical_symbol("SHEL.L", "XLON") == "SHEL.L"  # the simulated provider's meta
    assert canonical_symbol("BRK.B", "NYSE", "XNYS") == "BRK.B"


def test_a_range_beyond_outputsize_is_split_into_consecutive_calls(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    days = [dt.date(2026, 2, 2), dt.date(2026, 2, 3)]  # 156 bars
    start, end = us.session_bounds(days[0])[0], us.session_bounds(days[1])[1]
    bars = us.bar_starts(start, end)
    cut = bars[100]  # the 23rd bar of 2026-02-03: 11:20 New York
    for w_start, w_end, first, last in (
        (start, cut, "2026-02-02 09:30:00", "2026-02-03 11:19:59"),
        (cut, end, "2026-02-03 11:20:00", "2026-02-03 15:59:59"),
    ):
        query = {**_query("AAPL", "5min", first, last), "outputsize": "100"}
        httpserver.expect_ordered_request("/time_series", query_string=query).respond_with_json(
            td_document(us, "AAPL", "5min", w_start, w_end)
        )

    payloads = td_client(base_url(httpserver), fake, outputsize=100).fetch_bars(
        us, ["AAPL"], "5min", start, end
    )

    assert [(p.window_start, p.window_end) for p in payloads] == [(start, cut), (cut, end)]
    assert len({p.payload_id for p in payloads}) == 2
    parsed = transforms.parse_payloads(payloads)
    assert parsed.records.height == 156
    httpserver.check_assertions()


def test_no_call_for_a_window_without_bars(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    saturday = dt.datetime(2026, 2, 7, tzinfo=us.tz)
    client = td_client(base_url(httpserver), fake)
    assert client.fetch_bars(us, ["AAPL"], "5min", saturday, saturday + dt.timedelta(days=1)) == []
    assert client.fetch_bars(us, ["AAPL"], "1day", saturday, saturday + dt.timedelta(days=1)) == []
    assert httpserver.log == []


def test_configured_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    def from_env(environ: dict[str, str]) -> TwelveDataClient:
        environ = {"MARKET_DATA_PROVIDER": "twelve_data", **environ}
        return configured(monkeypatch, environ, "market_data")

    with pytest.raises(ValueError, match="TWELVEDATA_API_KEY is not set"):
        from_env({})
    client = from_env({"TWELVEDATA_API_KEY": API_KEY, "TWELVEDATA_BASE_URL": "http://127.0.0.1:9/"})
    assert client.base_url == "http://127.0.0.1:9" and client.batch_size == 8
    assert API_KEY not in repr(client)
    monkeypatch.delenv("TWELVEDATA_BASE_URL")
    paid = from_env({"TWELVEDATA_API_KEY": API_KEY, "TWELVEDATA_CREDITS_PER_MINUTE": "610"})
    assert paid.base_url == "https://api.twelvedata.com" and paid.batch_size == 120
    with pytest.raises(ValueError, match="TWELVEDATA_BASE_URL"):
        from_env({"TWELVEDATA_API_KEY": API_KEY, "TWELVEDATA_BASE_URL": "ftp:x"})
    with pytest.raises(ValueError, match="interval"):
        client.fetch_bars(None, ["AAPL"], "1h", NOW, NOW + dt.timedelta(hours=1))  # type: ignore[arg-type]
