"""YahooClient and parse_yahoo_chart against a local server standing in for Yahoo's hosts: the
real sample bodies from ../shared/samples/yahoo (read in place) and bodies built in the same
format.

yfinance itself runs unmocked: its data layer mints a cookie and a crumb, asks for the chart,
re-asks on a 4xx/429 with its other cookie strategy and raises `YFRateLimitError`; the
session's requests are rebased to the local server (`rebase_session`). Nothing may leave
127.0.0.1: every request of either HTTP backend is checked, and one that is not local fails the
test at once (a `pytest.fail`, which no `except Exception` inside yfinance can swallow).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import re
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
import requests
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from finance_assets.lib import transforms
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import RawPayload
from finance_assets.lib.providers.http import (
    InvalidRequest,
    InvalidSymbol,
    MalformedResponse,
    ProviderUnavailable,
    RateLimited,
    RateLimiter,
)
from finance_assets.providers.yfinance.client import (
    FORMAT,
    YAHOO_RECORD_SCHEMA,
    YahooClient,
    canonical_symbol,
    new_session,
    parse_yahoo_chart,
    rebase_url,
    to_yahoo,
)
from finance_assets_tests.test_providers.test_http import FakeTime, configured

# yfinance's history() (run once, to compare readings) uses pandas' deprecated inplace calls.
pytestmark = pytest.mark.filterwarnings("ignore:The inplace keyword:Warning")

CRUMB = "local-crumb"
DAY = dt.date(2026, 2, 2)  # a Monday, a session in New York and London
NOT_FOUND = b'{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found, symbol may be delisted"}}}'  # noqa: E501
NO_DATA = b'{"chart":{"result":null,"error":{"code":"Bad Request","description":"Data doesn\'t exist for startDate = 1769990400, endDate = 1770076800"}}}'  # noqa: E501


# --- no request leaves the machine ---------------------------------------------------------------


def _require_loopback(url: str) -> None:
    host = urllib.parse.urlsplit(url).hostname
    if host != "127.0.0.1":
        pytest.fail(f"a test tried to reach {url!r}: only 127.0.0.1 is allowed", pytrace=False)


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request of curl_cffi (yfinance's backend) and requests (its fallback) is checked
    before it is sent; libcurl must not follow a redirect on its own either."""
    from curl_cffi.requests import Session as CurlSession

    curl_send = CurlSession._request_once

    def curl_guard(self: Any, *args: Any, **kwargs: Any) -> Any:
        _require_loopback(kwargs["url"] if "url" in kwargs else args[1])
        kwargs["allow_redirects"] = False
        return curl_send(self, *args, **kwargs)

    requests_send = requests.adapters.HTTPAdapter.send

    def requests_guard(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        _require_loopback(request.url)
        return requests_send(self, request, *args, **kwargs)

    monkeypatch.setattr(CurlSession, "_request_once", curl_guard)
    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", requests_guard)


@pytest.fixture(scope="module", autouse=True)
def _yfinance_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """yfinance's cookie and time-zone caches in a temporary folder, not ~/.cache."""
    import yfinance

    yfinance.set_tz_cache_location(str(tmp_path_factory.mktemp("yfinance-cache")))


# --- a local Yahoo -------------------------------------------------------------------------------


class FakeYahoo:
    """Yahoo's hosts on one local server: the cookie (fc.yahoo.com is "/"), the crumb, the
    consent page, and the chart API, whose answers are scripted per Yahoo symbol: (status,
    body) pairs served in order, the last one repeated; unknown symbols get Yahoo's 404."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self.scripts: dict[str, list[tuple[int, bytes]]] = {}
        self.chart_requests: list[Request] = []
        server.expect_request("/").respond_with_data("")
        server.expect_request("/v1/test/getcrumb").respond_with_data(
            CRUMB, content_type="text/plain"
        )
        server.expect_request("/consent").respond_with_data(
            "<html><body>no consent form here</body></html>", content_type="text/html"
        )
        server.expect_request(re.compile(r"^/v8/finance/chart/[^/]+$")).respond_with_handler(
            self._chart
        )

    def serve(self, yahoo_symbol: str, *answers: tuple[int, bytes] | bytes) -> None:
        self.scripts[yahoo_symbol] = [
            answer if isinstance(answer, tuple) else (200, answer) for answer in answers
        ]

    def _chart(self, request: Request) -> Response:
        self.chart_requests.append(request)
        script = self.scripts.get(request.path.rsplit("/", 1)[-1])
        if not script:
            return Response(NOT_FOUND, status=404, content_type="application/json")
        status, body = script.pop(0) if len(script) > 1 else script[0]
        kind = "application/json" if body.lstrip().startswith(b"{") else "text/html"
        return Response(body, status=status, content_type=kind)

    def chart_paths(self) -> list[str]:
        return [request.path for request in self.chart_requests]


@pytest.fixture
def yahoo(httpserver: HTTPServer) -> FakeYahoo:
    return FakeYahoo(httpserver)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return FakeTime(dt.datetime(2026, 2, 3, 12, 0, tzinfo=dt.UTC), monkeypatch)  # the day after DAY


@pytest.fixture(scope="module")
def us_2020(us: Market) -> Market:
    """The US market with a calendar reaching back to the samples' dates."""
    return dataclasses.replace(us, daily_start="2020-01-02", intraday_start="2020-01-02")


@pytest.fixture(scope="module")
def uk_2020(uk: Market) -> Market:
    return dataclasses.replace(uk, daily_start="2020-01-02", intraday_start="2020-01-02")


def base_url(server: HTTPServer) -> str:
    """The local server by address: "localhost" could resolve elsewhere than 127.0.0.1."""
    return f"http://127.0.0.1:{server.port}"


def yahoo_client(server: HTTPServer, fake: FakeTime, **kwargs: Any) -> YahooClient:
    from curl_cffi import requests as curl_requests

    # trust_env=False: a proxy variable in the environment must not carry local requests away.
    session = curl_requests.Session(impersonate="chrome", trust_env=False)
    kwargs.setdefault("limiter", RateLimiter("yfinance", 60, clock=fake.clock))
    return YahooClient(
        session,
        base_url=base_url(server),
        timeout=5.0,
        clock=fake.clock,
        sleep=fake.sleep,
        **kwargs,
    )


def chart_body(
    yahoo_symbol: str,
    stamps: list[int],
    *,
    granularity: str = "5m",
    currency: str = "USD",
    timezone: str = "America/New_York",
    quote: dict[str, list[Any]] | None = None,
    adjclose: list[Any] | None = None,
    events: dict[str, Any] | None = None,
) -> bytes:
    """A v8 chart body in Yahoo's format (the samples' layout, values made up)."""
    if quote is None:
        prices = [100.0 + i / 4 for i in range(len(stamps))]
        quote = {
            "open": prices,
            "high": [p + 1 for p in prices],
            "low": [p - 1 for p in prices],
            "close": [p + 0.5 for p in prices],
            "volume": [1000 + i for i in range(len(stamps))],
        }
    result: dict[str, Any] = {
        "meta": {
            "currency": currency,
            "symbol": yahoo_symbol,
            "exchangeName": "NMS",
            "instrumentType": "EQUITY",
            "gmtoffset": -18000 if timezone == "America/New_York" else 0,
            "timezone": "EST" if timezone == "America/New_York" else "GMT",
            "exchangeTimezoneName": timezone,
            "dataGranularity": granularity,
            "range": "",
        },
        "timestamp": stamps,
        "indicators": {"quote": [quote]},
    }
    if adjclose is not None:
        result["indicators"]["adjclose"] = [{"adjclose": adjclose}]
    if events is not None:
        result["events"] = events
    return orjson.dumps({"chart": {"result": [result], "error": None}})


def session_stamps(market: Market, day: dt.date) -> list[int]:
    open_, close = market.session_bounds(day)
    return [int(ts.timestamp()) for ts in market.bar_starts(open_, close)]


def query(request: Request) -> dict[str, str]:
    return dict(request.args.items())


def clean(
    payloads: list[RawPayload],
    market: Market,
    interval: str,
    start: dt.datetime,
    end: dt.datetime,
) -> transforms.CleanResult:
    parsed = transforms.parse_payloads(payloads)
    return transforms.clean_bars(
        transforms.with_bar_times(parsed.records, market, interval),
        asset="bars",
        window_start=start,
        window_end=end,
        source="yfinance",
        ingested_at=dt.datetime(2026, 2, 3, tzinfo=dt.UTC),
        valid_starts=pl.Series("ts", market.bar_starts(start, end)) if interval == "5min" else None,
    )


def yahoo_samples(samples: Path) -> list[Path]:
    files = sorted((samples / "yahoo").glob("*.json"))
    if not files:
        pytest.skip(f"no Yahoo samples in {samples / 'yahoo'}")
    return files


# --- the guard itself ----------------------------------------------------------------------------


def test_a_request_to_yahoo_fails_the_test_before_it_is_sent(us: Market, fake: FakeTime) -> None:
    from curl_cffi import requests as curl_requests

    client = YahooClient(curl_requests.Session(trust_env=False), clock=fake.clock, sleep=fake.sleep)
    start, end = us.session_bounds(DAY)
    with pytest.raises(pytest.fail.Exception, match=r"yahoo\.com.*only 127\.0\.0\.1"):
        client.fetch_bars(us, ["AAPL"], "5min", start, end)


def test_parser_is_registered() -> None:
    assert transforms.PARSERS[FORMAT] is parse_yahoo_chart


# --- daily: events and adjusted close ------------------------------------------------------------


def test_daily_sample_keeps_events_and_adj_close(
    httpserver: HTTPServer,
    yahoo: FakeYahoo,
    us_2020: Market,
    samples: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = (samples / "yahoo" / "yahoo_chart_AAPL_1d_2020-08-31_to_2020-11-07.json").read_bytes()
    yahoo.serve("AAPL", body)
    fake = FakeTime(dt.datetime(2020, 11, 9, 12, tzinfo=dt.UTC))
    start = dt.datetime(2020, 8, 31, tzinfo=us_2020.tz)
    end = dt.datetime(2020, 11, 7, tzinfo=us_2020.tz)

    [payload] = yahoo_client(httpserver, fake).fetch_bars(us_2020, ["AAPL"], "1day", start, end)

    assert payload.body == body  # exactly as received
    assert payload.content_type.startswith("application/json")
    assert (payload.provider, payload.format, payload.symbols) == ("yfinance", FORMAT, ("AAPL",))
    assert (payload.window_start, payload.window_end) == (start, end)
    [request] = yahoo.chart_requests
    assert request.path == "/v8/finance/chart/AAPL"
    assert query(request) == {
        "period1": str(int(start.timestamp())),
        "period2": str(int(end.timestamp())),
        "interval": "1d",
        "includePrePost": "false",
        "events": "div,splits,capitalGains",
        "crumb": CRUMB,  # yfinance's data layer minted it: the call went through yfinance
    }
    assert payload.request == {
        "endpoint": "v8/finance/chart",
        "base_url": base_url(httpserver),
        "symbol": "AAPL",
        **{k: v for k, v in query(request).items() if k != "crumb"},
    }
    # Splits and dividends stay in the raw payload.
    events = orjson.loads(payload.body)["chart"]["result"][0]["events"]
    assert [s["splitRatio"] for s in events["splits"].values()] == ["4:1"]
    assert [d["amount"] for d in events["dividends"].values()] == [0.205]

    records, errors = parse_yahoo_chart(payload.body, payload.payload_id)
    assert errors == {} and records.height == 49
    first = records.row(0, named=True)
    assert first["datetime"] == "2020-08-31" and first["currency"] == "USD"
    assert float(first["close"]) == pytest.approx(129.04, abs=1e-4)
    assert float(first["adj_close"]) == pytest.approx(125.8267, abs=1e-4)

    result = clean([payload], us_2020, "1day", start, end)
    assert result.quarantine.is_empty() and result.bars.height == 49
    bar = result.bars.row(0, named=True)
    assert bar["ts"] == dt.datetime(2020, 8, 31, 13, 30, tzinfo=dt.UTC)  # the session's open
    assert bar["close"] == pytest.approx(129.04, abs=1e-4) and bar["currency"] == "USD"
    assert bar["adj_close"] == pytest.approx(125.8267, abs=1e-4)


def test_yfinance_reads_the_same_body_the_same_way(
    httpserver: HTTPServer, yahoo: FakeYahoo, samples: Path
) -> None:
    """yfinance's own history() over the same local Yahoo: its closes, adjusted closes, split
    and dividend agree with what parse_yahoo_chart reads from the body we keep."""
    import yfinance

    body = (samples / "yahoo" / "yahoo_chart_AAPL_1d_2020-08-31_to_2020-11-07.json").read_bytes()
    yahoo.serve("AAPL", body)
    from curl_cffi import requests as curl_requests

    from finance_assets.providers.yfinance.client import rebase_session

    session = rebase_session(curl_requests.Session(trust_env=False), base_url(httpserver))
    history = yfinance.Ticker("AAPL", session=session).history(
        start="2020-08-31", end="2020-11-07", interval="1d", auto_adjust=False, actions=True
    )
    records, _ = parse_yahoo_chart(body)

    assert [d.date().isoformat() for d in history.index] == records["datetime"].to_list()
    assert history["Close"].tolist() == pytest.approx(records["close"].cast(pl.Float64).to_list())
    assert history["Adj Close"].tolist() == pytest.approx(
        records["adj_close"].cast(pl.Float64).to_list()
    )
    assert history.loc["2020-08-31", "Stock Splits"].item() == 4.0
    assert history.loc["2020-11-06", "Dividends"].item() == pytest.approx(0.205)


# --- London, in pence ----------------------------------------------------------------------------


def test_london_listing_in_pence_keeps_its_currency(
    httpserver: HTTPServer,
    yahoo: FakeYahoo,
    uk_2020: Market,
    samples: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = (samples / "yahoo" / "yahoo_chart_OCDO.L_1d_2020-01-01_to_2020-01-03.json").read_bytes()
    yahoo.serve("OCDO.L", body)
    fake = FakeTime(dt.datetime(2020, 1, 6, 12, tzinfo=dt.UTC))
    start = dt.datetime(2020, 1, 2, tzinfo=uk_2020.tz)
    end = start + dt.timedelta(days=1)

    [payload] = yahoo_client(httpserver, fake).fetch_bars(uk_2020, ["OCDO.L"], "1day", start, end)

    assert payload.body == body and yahoo.chart_paths() == ["/v8/finance/chart/OCDO.L"]
    result = clean([payload], uk_2020, "1day", start, end)
    assert result.quarantine.is_empty()
    assert result.bars.select("symbol", "ts", "close", "currency").rows() == [
        ("OCDO.L", dt.datetime(2020, 1, 2, 8, tzinfo=dt.UTC), 1259.5, "GBp")  # pence, not pounds
    ]


# --- intraday ------------------------------------------------------------------------------------


def test_intraday_window_null_bars_quarantined_and_late_bar_left_out(
    httpserver: HTTPServer,
    yahoo: FakeYahoo,
    us: Market,
    fake: FakeTime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    start, end = us.session_bounds(DAY)
    stamps = session_stamps(us, DAY)
    assert len(stamps) == 78
    # Yahoo appends the latest price after period2 (here: the next day's close).
    stamps = [*stamps, int(us.session_bounds(dt.date(2026, 2, 3))[1].timestamp())]
    prices = [200.0 + i / 10 for i in range(len(stamps))]
    quote: dict[str, list[Any]] = {
        "open": prices,
        "high": [p + 1 for p in prices],
        "low": [p - 1 for p in prices],
        "close": prices,
        "volume": [5000] * len(stamps),
    }
    for field in quote:  # an all-null placeholder at 11:10, like the 1m sample's 11:15
        quote[field][20] = None
    yahoo.serve("AAPL", chart_body("AAPL", stamps, quote=quote))

    [payload] = yahoo_client(httpserver, fake).fetch_bars(us, ["AAPL"], "5min", start, end)

    assert query(yahoo.chart_requests[0])["interval"] == "5m"
    assert query(yahoo.chart_requests[0])["includePrePost"] == "false"
    records, errors = parse_yahoo_chart(payload.body, payload.payload_id)
    assert errors == {} and records.height == 78  # the late bar is not this payload's
    assert records["datetime"][0] == "2026-02-02 09:30:00"
    assert records["adj_close"].is_null().all()  # Yahoo adjusts daily bars only
    result = clean([payload], us, "5min", start, end)
    assert result.bars.height == 77 and result.quarantine.height == 1
    [row] = result.quarantine.rows(named=True)
    assert row["ts_raw"] == "2026-02-02 11:10:00"
    assert "open missing or not a number" in row["reason"]
    assert "volume missing" in row["reason"]
    assert result.bars["ts"][0] == dt.datetime(2026, 2, 2, 14, 30, tzinfo=dt.UTC)


def test_intraday_sample_parses_to_exchange_local_bar_starts(samples: Path) -> None:
    body = (samples / "yahoo" / "yahoo_chart_AAPL_1m_2024-10-02.json").read_bytes()
    # The payload id of a fetch of 2024-10-02 (New York), as the sample's request asked.
    window = "20241002T040000Z_20241003T040000Z_20241004T120744000000Z_b0000"

    records, errors = parse_yahoo_chart(body, window)
    unfiltered, _ = parse_yahoo_chart(body)

    assert errors == {} and unfiltered.height == 391
    assert records.height == 390  # the trailing 2024-10-03 16:00 bar is after the window
    assert records["datetime"][0] == "2024-10-02 09:30:00"
    assert records["datetime"][-1] == "2024-10-02 15:59:00"
    nulls = records.filter(pl.col("close").is_null())
    assert nulls["datetime"].to_list() == ["2024-10-02 11:15:00"]
    assert nulls.select("open", "high", "low", "volume").null_count().row(0) == (1, 1, 1, 1)


def test_empty_weekend_answer_is_kept_and_parses_to_nothing(
    httpserver: HTTPServer,
    yahoo: FakeYahoo,
    us: Market,
    fake: FakeTime,
    samples: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    body = (samples / "yahoo" / "yahoo_chart_AAPL_1m_weekend_empty.json").read_bytes()
    records, errors = parse_yahoo_chart(body, "x")
    assert records.is_empty() and records.schema == pl.Schema(YAHOO_RECORD_SCHEMA)
    assert errors == {}
    yahoo.serve("AAPL", body)
    start, end = us.session_bounds(DAY)

    [payload] = yahoo_client(httpserver, fake).fetch_bars(us, ["AAPL"], "5min", start, end)

    assert payload.body == body
    result = clean([payload], us, "5min", start, end)
    assert result.received == 0 and result.bars.is_empty()


def test_window_without_a_session_makes_no_call(
    httpserver: HTTPServer, yahoo: FakeYahoo, us: Market, fake: FakeTime
) -> None:
    saturday = dt.datetime(2026, 1, 31, tzinfo=us.tz)
    holiday = dt.datetime(2026, 1, 19, 9, 30, tzinfo=us.tz)  # Martin Luther King Jr. Day
    client = yahoo_client(httpserver, fake)
    assert client.fetch_bars(us, ["AAPL"], "1day", saturday, saturday + dt.timedelta(days=1)) == []
    assert client.fetch_bars(us, ["AAPL"], "5min", holiday, holiday + dt.timedelta(hours=1)) == []
    assert httpserver.log == []


# --- rate limiting -------------------------------------------------------------------------------


@pytest.mark.parametrize(("refusals", "our_retries"), [(1, 0), (2, 1)])
def test_429_then_success(
    httpserver: HTTPServer,
    yahoo: FakeYahoo,
    us: Market,
    fake: FakeTime,
    refusals: int,
    our_retries: int,
) -> None:
    """One 429 is absorbed by yfinance (it re-asks once with its other cookie strategy); two
    make it raise YFRateLimitError, which the client backs off from and retries."""
    start, end = us.session_bounds(DAY)
    body = chart_body("AAPL", session_stamps(us, DAY))
    yahoo.serve("AAPL", *[(429, b"Too Many Requests")] * refusals, body)

    [payload] = yahoo_client(httpserver, fake).fetch_bars(us, ["AAPL"], "5min", start, end)

    assert payload.body == body
    assert len(yahoo.chart_requests) == refusals + 1
    assert len(fake.sleeps) == our_retries
    assert all(0 <= s <= 1.0 for s in fake.sleeps)  # full jitter under the first ceiling


def test_429_every_time_is_rate_limited_after_the_retries(
    httpserver: HTTPServer, yahoo: FakeYahoo, us: Market, fake: FakeTime
) -> None:
    yahoo.serve("AAPL", (429, b"Too Many Requests"))
    start, end = us.session_bounds(DAY)

    with pytest.raises(RateLimited, match="gave up after 3 attempts") as info:
        yahoo_client(httpserver, fake).fetch_bars(us, ["AAPL"], "5min", start, end)

    assert info.value.status == 429 and info.value.symbol == "AAPL"
    assert len(yahoo.chart_requests) == 6  # 3 attempts, each asked twice by yfinance
    assert len(fake.sleeps) == 2
    assert fake.sleeps[0] <= 1.0 and fake.sleeps[1] <= 2.0  # exponential ceilings


def test_server_errors_and_html_pages_are_retried_then_typed(
    httpserver: HTTPServer, yahoo: FakeYahoo, us: Market, fake: FakeTime
) -> None:
    start, end = us.session_bounds(DAY)
    body = chart_body("AAPL", session_stamps(us, DAY))
    # yfinance re-asks once after any 4xx/5xx; the second 502 is ours to retry.
    yahoo.serve("AAPL", *[(502, b"<html>Bad Gateway</html>")] * 2, body)
    [payload] = yahoo_client(httpserver, fake).fetch_bars(us, ["AAPL"], "5min", start, end)
    assert payload.body == body and len(fake.sleeps) == 1 and len(yahoo.chart_requests) == 3

    yahoo.serve("MSFT", (200, b"<html>Will be right back...</html>"))
    with pytest.raises(MalformedResponse, match="gave up after 3 attempts"):
        yahoo_client(httpserver, fake).fetch_bars(us, ["MSFT"], "5min", start, end)
    yahoo.serve("TSLA", (503, b'{"error": "unavailable"}'))
    with pytest.raises(ProviderUnavailable, match="HTTP 503"):
        yahoo_client(httpserver, fake).fetch_bars(us, ["TSLA"], "5min", start, end)


# --- the 60-day limit ----------------------------------------------------------------------------


def test_5min_older_than_60_days_is_refused_before_any_call(
    httpserver: HTTPServer, yahoo: FakeYahoo, us: Market, fake: FakeTime
) -> None:
    client = yahoo_client(httpserver, fake)
    old = dt.datetime(2025, 12, 1, 9, 30, tzinfo=us.tz)  # 64 days before the fake now
    with pytest.raises(InvalidRequest, match="last 60 days"):
        client.fetch_bars(us, ["AAPL", "MSFT"], "5min", old, old + dt.timedelta(minutes=5))
    assert httpserver.log == []  # not even the cookie or the crumb

    # Daily bars that old are fine, and so are 5-minute bars inside the 60 days.
    yahoo.serve("AAPL", chart_body("AAPL", [int(old.timestamp())], granularity="1d"))
    assert len(client.fetch_bars(us, ["AAPL"], "1day", old, old + dt.timedelta(hours=1))) == 1
    recent = dt.datetime(2025, 12, 8, 9, 30, tzinfo=us.tz)  # 57 days before
    assert len(client.fetch_bars(us, ["AAPL"], "5min", recent, recent + dt.timedelta(minutes=5)))


# --- symbols -------------------------------------------------------------------------------------


def test_symbol_notation_both_ways() -> None:
    for canonical, yahoo_symbol in [
        ("BRK.B", "BRK-B"),
        ("BF.B", "BF-B"),
        ("AAPL", "AAPL"),
        ("BT.A.L", "BT-A.L"),
        ("SHEL.L", "SHEL.L"),
        ("RDS.A.L", "RDS-A.L"),
    ]:
        assert to_yahoo(canonical) == yahoo_symbol
        assert canonical_symbol(yahoo_symbol) == canonical
    assert canonical_symbol("AIR.PA") == "AIR.PA"  # another exchange's suffix stays as written


def test_fetch_asks_in_yahoo_notation_and_keeps_the_canonical_symbol(
    httpserver: HTTPServer,
    yahoo: FakeYahoo,
    us: Market,
    uk: Market,
    fake: FakeTime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    yahoo.serve("BRK-B", chart_body("BRK-B", session_stamps(us, DAY)))
    yahoo.serve(
        "BT-A.L",
        chart_body("BT-A.L", session_stamps(uk, DAY), currency="GBp", timezone="Europe/London"),
    )
    client = yahoo_client(httpserver, fake)
    us_start, us_end = us.session_bounds(DAY)
    uk_start, uk_end = uk.session_bounds(DAY)

    [brk] = client.fetch_bars(us, ["BRK.B"], "5min", us_start, us_end)
    [bt] = client.fetch_bars(uk, ["BT.A.L"], "5min", uk_start, uk_end)

    assert yahoo.chart_paths() == ["/v8/finance/chart/BRK-B", "/v8/finance/chart/BT-A.L"]
    assert (brk.symbols, brk.request["symbol"]) == (("BRK.B",), "BRK-B")
    assert (bt.symbols, bt.request["symbol"]) == (("BT.A.L",), "BT-A.L")
    london = clean([bt], uk, "5min", uk_start, uk_end)
    assert london.quarantine.is_empty() and london.bars.height == 102
    assert set(london.bars.select("symbol", "currency").rows()) == {("BT.A.L", "GBp")}
    assert london.bars["ts"][0] == dt.datetime(2026, 2, 2, 8, tzinfo=dt.UTC)
    brk_bars = clean([brk], us, "5min", us_start, us_end).bars
    assert brk_bars["symbol"].unique().to_list() == ["BRK.B"]


def test_one_unknown_symbol_does_not_fail_the_others(
    httpserver: HTTPServer,
    yahoo: FakeYahoo,
    us: Market,
    fake: FakeTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    start, end = us.session_bounds(DAY)
    for symbol in ("AAPL", "MSFT"):
        yahoo.serve(symbol, chart_body(symbol, session_stamps(us, DAY)))
    client = yahoo_client(httpserver, fake)

    with caplog.at_level(logging.WARNING, logger="finance_assets.providers"):
        payloads = client.fetch_bars(us, ["AAPL", "NOPE", "MSFT"], "5min", start, end)

    assert [(p.symbols, p.batch) for p in payloads] == [(("AAPL",), 0), (("MSFT",), 2)]
    assert "skipping NOPE" in caplog.text and "symbol may be delisted" in caplog.text
    with pytest.raises(InvalidSymbol) as info:
        client.fetch_bars(us, ["NOPE"], "5min", start, end)
    assert info.value.symbol == "NOPE" and info.value.status == 404
    strict = yahoo_client(httpserver, fake, on_invalid_symbol="raise")
    with pytest.raises(InvalidSymbol):
        strict.fetch_bars(us, ["NOPE", "AAPL"], "5min", start, end)
    assert fake.sleeps == []  # an unknown symbol is never retried by us


def test_no_data_for_the_window_is_an_answer_not_a_failure(
    httpserver: HTTPServer, yahoo: FakeYahoo, us: Market, fake: FakeTime
) -> None:
    """A window before a listing's first bar: Yahoo says 400 "Data doesn't exist"; the body is
    kept and its parser names the message, the other symbols go on."""
    start, end = us.session_bounds(DAY)
    yahoo.serve("NEWCO", (400, NO_DATA))
    yahoo.serve("AAPL", chart_body("AAPL", session_stamps(us, DAY)))

    payloads = yahoo_client(httpserver, fake).fetch_bars(us, ["NEWCO", "AAPL"], "5min", start, end)

    assert [p.symbols for p in payloads] == [("NEWCO",), ("AAPL",)]
    assert payloads[0].body == NO_DATA
    records, errors = parse_yahoo_chart(payloads[0].body, payloads[0].payload_id)
    assert records.is_empty() and "Data doesn't exist" in errors["?"]


# --- conformance ---------------------------------------------------------------------------------


def test_every_sample_parses_to_records_or_a_typed_error(samples: Path) -> None:
    """And where it has bars, yfinance's own reading of the body agrees with ours."""
    from yfinance import utils as yf_utils

    for path in yahoo_samples(samples):
        body = path.read_bytes()
        try:
            records, errors = parse_yahoo_chart(body, path.stem)
        except transforms.PayloadFormatError:
            continue
        assert records.schema == pl.Schema(YAHOO_RECORD_SCHEMA), path.name
        assert isinstance(errors, dict), path.name
        result = orjson.loads(body)["chart"]["result"][0]
        if not result.get("timestamp"):
            assert records.is_empty(), path.name
            continue
        theirs = yf_utils.parse_quotes(result)
        assert records.height == len(theirs), path.name
        columns = [("open", "Open"), ("close", "Close")]
        if "adjclose" in result["indicators"]:  # yfinance copies close when Yahoo sends none
            columns.append(("adj_close", "Adj Close"))
        for ours, column in columns:
            mine = records[ours].cast(pl.Float64).fill_null(math.nan).to_list()
            assert mine == pytest.approx(theirs[column].tolist(), nan_ok=True), (path.name, ours)


def test_malformed_bodies_are_payload_format_errors() -> None:
    stamps = [1769999400, 1769999700]
    bad = [
        b"<html>not json</html>",
        b"[]",
        b'{"finance": {"error": null}}',
        b'{"chart": {"result": null, "error": null}}',
        orjson.dumps({"chart": {"result": [{"timestamp": stamps}], "error": None}}),
        chart_body("AAPL", stamps, quote={"open": [1.0], "close": [1.0, 2.0]}),
    ]
    for body in bad:
        with pytest.raises(transforms.PayloadFormatError):
            parse_yahoo_chart(body, "p1")
    records, errors = parse_yahoo_chart(NOT_FOUND, "p1")
    assert records.is_empty() and errors == {
        "?": "Not Found: No data found, symbol may be delisted"
    }


def test_odd_values_reach_the_quarantine_as_received(us: Market) -> None:
    start, end = us.session_bounds(DAY)
    stamps: list[Any] = [1770042600, 1770042900, "soon"]  # 2026-02-02 09:30, 09:35 New York
    quote: dict[str, list[Any]] = {
        "open": [10.0, "abc", 10.0],
        "high": [11.0, 11.0, 11.0],
        "low": [9.0, 9.0, 9.0],
        "close": [10.5, 10.5, 10.5],
        "volume": [100, 100, 100],
    }
    records, _ = parse_yahoo_chart(chart_body("AAPL", stamps, quote=quote))
    assert records["datetime"].to_list() == ["2026-02-02 09:30:00", "2026-02-02 09:35:00", "soon"]
    assert records["open"].to_list() == ["10.0", "abc", "10.0"]

    result = transforms.clean_bars(
        transforms.with_bar_times(records, us, "5min"),
        asset="bars",
        window_start=start,
        window_end=end,
        source="yfinance",
        ingested_at=dt.datetime(2026, 2, 3, tzinfo=dt.UTC),
    )
    assert result.bars.height == 1
    assert result.quarantine["reason"].to_list() == [
        "open missing or not a number",
        "datetime missing or unparseable: soon",
    ]


# --- configuration -------------------------------------------------------------------------------


def test_sessions_and_environment(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (
        rebase_url("https://query2.finance.yahoo.com/v8/finance/chart/AAPL?a=1", "http://h:1/m")
        == "http://h:1/m/v8/finance/chart/AAPL?a=1"
    )
    assert rebase_url("https://fc.yahoo.com", "http://h:1") == "http://h:1/"
    session = new_session(proxy="http://proxy.internal:3128")
    assert session.proxies == {
        "http": "http://proxy.internal:3128",
        "https": "http://proxy.internal:3128",
    }
    environ = {
        "MARKET_DATA_PROVIDER": "yfinance",
        "YFINANCE_BASE_URL": base_url(httpserver),
        "YFINANCE_CALLS_PER_MINUTE": "30",
    }
    client = configured(monkeypatch, environ, "market_data")
    assert client.base_url == base_url(httpserver)
    assert client.session.rebase_to == base_url(httpserver)
    assert client.limiter.calls == 30
    assert repr(YahooClient()) == "YahooClient(base_url='https://query2.finance.yahoo.com')"
    with pytest.raises(ValueError, match=r"YFINANCE_CALLS_PER_MINUTE='many'.*whole number"):
        configured(monkeypatch, {**environ, "YFINANCE_CALLS_PER_MINUTE": "many"}, "market_data")
    with pytest.raises(ValueError, match=r"YFINANCE_BASE_URL='ftp://mirror' is not a URL"):
        configured(monkeypatch, {**environ, "YFINANCE_BASE_URL": "ftp://mirror"}, "market_data")
    with pytest.raises(ValueError, match="serves"):
        YahooClient().fetch_bars(
            None,  # type: ignore[arg-type]
            ["AAPL"],
            "1hour",
            dt.datetime(2026, 2, 2, tzinfo=dt.UTC),
            dt.datetime(2026, 2, 3, tzinfo=dt.UTC),
        )


@pytest.fixture(autouse=True)
def _no_leftover_handlers(httpserver: HTTPServer) -> Iterator[None]:
    yield
    httpserver.check_assertions()  # no request the local Yahoo had no answer for
