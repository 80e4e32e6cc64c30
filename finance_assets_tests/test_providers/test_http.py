"""The shared HTTP layer (retries, Retry-After, rate limiting, redaction, typed errors), and the
cases every real client must handle the same way, against a local HTTP server.

Nothing here waits for real: clocks and sleeps are fakes that record what would have been slept.
The helpers at the top are shared with the per-client test modules.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import orjson
import pyrate_limiter.limiter
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import ProviderError, RawPayload
from finance_assets.lib.providers.http import (
    AuthenticationFailed,
    HttpClient,
    InvalidRequest,
    MalformedResponse,
    ProviderUnavailable,
    RateLimited,
    RateLimiter,
    RequestRetries,
    parse_retry_after,
    redact,
    register_secret,
)
from finance_assets.providers.alpha_vantage.client import AlphaVantageClient
from finance_assets.providers.twelve_data.client import TwelveDataClient
from finance_assets.resources import build_resources

# Distinctive, so that finding it anywhere it should not be is unambiguous.
API_KEY = "tk-9F3a7Q2w-SECRET-51b8"
_NY = ZoneInfo("America/New_York")

# --- shared helpers --------------------------------------------------------------------------


class FakeTime:
    """A clock that only moves when something sleeps; records every sleep."""

    def __init__(self, now: dt.datetime, monkeypatch: pytest.MonkeyPatch | None = None) -> None:
        self.now = now
        self.sleeps: list[float] = []
        if monkeypatch is not None:
            # pyrate-limiter's blocking acquire sleeps with `time.sleep`: on this fake instead.
            monkeypatch.setattr(pyrate_limiter.limiter, "sleep", self.sleep)

    def clock(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


def configured(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], key: str) -> Any:
    """The client a run gets from the environment: the variables set as a user sets them, the
    resources built by `build_resources` and initialised by Dagster (EnvVars resolved)."""
    for name in ("MARKET_DATA_PROVIDER", "POSTS_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with dg.build_resources({key: build_resources()[key]}) as built:
        resource = getattr(built, key)
        return resource.get_source() if key == "posts" else resource.get_provider()


def base_url(server: HTTPServer) -> str:
    return server.url_for("/").rstrip("/")


def td_client(server_url: str, fake: FakeTime, **kwargs: Any) -> TwelveDataClient:
    credits = kwargs.pop("credits_per_minute", 8)
    limiter = RateLimiter("twelve_data", credits, clock=fake.clock)
    kwargs.setdefault("timeout", (2.0, 2.0))
    return TwelveDataClient(
        API_KEY,
        server_url,
        credits_per_minute=credits,
        limiter=limiter,
        clock=fake.clock,
        sleep=fake.sleep,
        **kwargs,
    )


def av_client(server_url: str, fake: FakeTime, **kwargs: Any) -> AlphaVantageClient:
    limiter = RateLimiter("alpha_vantage", 5, clock=fake.clock)
    kwargs.setdefault("timeout", (2.0, 2.0))
    return AlphaVantageClient(
        API_KEY, server_url, limiter=limiter, clock=fake.clock, sleep=fake.sleep, **kwargs
    )


def bar_rows(market: Market, interval: str, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Valid bars for [start, end), oldest first: exchange-local stamps, numbers as text."""
    if interval == "1day":
        days = [
            d
            for d in market.sessions(start.astimezone(market.tz).date(), end.date())
            if start <= market.session_bounds(d)[0] < end
        ]
        stamps = [d.isoformat() for d in days]
    else:
        stamps = [
            t.astimezone(market.tz).strftime("%Y-%m-%d %H:%M:%S")
            for t in market.bar_starts(start, end)
        ]
    rows = []
    for i, stamp in enumerate(stamps):
        price = 100 + i * 0.01
        rows.append(
            {
                "datetime": stamp,
                "open": f"{price:.5f}",
                "high": f"{price + 0.5:.5f}",
                "low": f"{price - 0.5:.5f}",
                "close": f"{price + 0.1:.5f}",
                "volume": str(1000 + i),
            }
        )
    return rows


def td_document(
    market: Market, symbol: str, interval: str, start: dt.datetime, end: dt.datetime, **meta: str
) -> dict[str, Any]:
    """A `/time_series` answer for one symbol, newest first, as Twelve Data writes it."""
    return {
        "meta": {
            "symbol": symbol,
            "interval": interval,
            "currency": market.currency,
            "exchange_timezone": market.timezone,
            "exchange": "NASDAQ",
            "mic_code": "XNGS",
            "type": "Common Stock",
            **meta,
        },
        "values": list(reversed(bar_rows(market, interval, start, end))),
        "status": "ok",
    }


def av_document(
    market: Market, av_symbol: str, interval: str, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    """An Alpha Vantage time-series answer, newest first (stamps in US/Eastern for intraday)."""
    rows = list(reversed(bar_rows(market, interval, start, end)))
    series: dict[str, dict[str, str]] = {}
    for row in rows:
        stamp = row["datetime"]
        if interval != "1day" and market.timezone != "America/New_York":
            local = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S").replace(tzinfo=market.tz)
            stamp = local.astimezone(_NY).strftime("%Y-%m-%d %H:%M:%S")
        series[stamp] = {
            "1. open": row["open"],
            "2. high": row["high"],
            "3. low": row["low"],
            "4. close": row["close"],
            "5. volume": row["volume"],
        }
    if interval == "1day":
        meta = {
            "1. Information": "Daily Prices (open, high, low, close) and Volumes",
            "2. Symbol": av_symbol,
            "3. Last Refreshed": next(iter(series), ""),
            "4. Output Size": "Full size",
            "5. Time Zone": "US/Eastern",
        }
        return {"Meta Data": meta, "Time Series (Daily)": series}
    meta = {
        "1. Information": "Intraday (5min) open, high, low, close prices and volume",
        "2. Symbol": av_symbol,
        "3. Last Refreshed": next(iter(series), ""),
        "4. Interval": "5min",
        "5. Output Size": "Full size",
        "6. Time Zone": "US/Eastern",
    }
    return {"Meta Data": meta, "Time Series (5min)": series}


def json_bytes(document: Any) -> bytes:
    return orjson.dumps(document)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def payload_metadata(payload: RawPayload) -> str:
    """Everything a payload carries besides its body, as text."""
    fields = {f.name: getattr(payload, f.name) for f in dataclasses.fields(payload)}
    fields.pop("body")
    return repr(fields) + payload.payload_id


# --- redaction -------------------------------------------------------------------------------


def test_redact_removes_query_keys_configured_secrets_and_secret_named_fields() -> None:
    url = f"https://www.alphavantage.co/query?function=TIME_SERIES_DAILY&apikey={API_KEY}&x=1"
    assert (
        redact(url) == "https://www.alphavantage.co/query?function=TIME_SERIES_DAILY&apikey=***&x=1"
    )
    assert redact("GET /v2?token=abc123&next_token=keep") == "GET /v2?token=***&next_token=keep"
    assert API_KEY not in redact(f"failed with key {API_KEY}", [API_KEY])
    # A configured secret is found raw and percent-encoded (as a query string carries it).
    odd = "k/y+z=="
    assert redact("a k/y+z== b k%2Fy%2Bz%3D%3D c", [odd]) == "a *** b *** c"
    nested = {
        "apikey": API_KEY,
        "Authorization": f"apikey {API_KEY}",
        "url": f"https://h/q?apikey={API_KEY}",
        "symbols": ["AAPL", {"token": "t0k"}],
        "note": f"key={API_KEY}",
    }
    cleaned = redact(nested, [API_KEY])
    assert cleaned == {
        "apikey": "***",
        "Authorization": "***",
        "url": "https://h/q?apikey=***",
        "symbols": ["AAPL", {"token": "***"}],
        "note": "key=***",
    }
    assert API_KEY not in repr(cleaned)


def test_registered_secrets_are_scrubbed_from_log_records(caplog: pytest.LogCaptureFixture) -> None:
    secret = "rEgIsTeReD-7781"
    register_secret(secret)
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("urllib3.connectionpool").debug("GET /query?apikey=%s&s=1", secret)
        logging.getLogger("finance_assets.providers").warning("token %s leaked?", secret)
    assert secret not in caplog.text
    assert "apikey=***" in caplog.text


# --- Retry-After and the rate limiter -----------------------------------------------------------


def test_parse_retry_after_seconds_and_http_dates() -> None:
    now = dt.datetime(2026, 3, 2, 15, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("7", now) == 7.0
    assert parse_retry_after(" 2.5 ", now) == 2.5
    assert parse_retry_after("Mon, 02 Mar 2026 15:00:30 GMT", now) == 30.0
    assert parse_retry_after("Mon, 02 Mar 2026 14:00:00 GMT", now) == 0.0  # in the past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


def test_rate_limiter_waits_exactly_for_the_next_slot(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTime(dt.datetime(2026, 3, 2, 15, 0, 0, tzinfo=dt.UTC), monkeypatch)
    limiter = RateLimiter("test", 5, 60, clock=fake.clock, buffer=0.0)
    for _ in range(5):
        assert limiter.acquire() == 0.0
        fake.now += dt.timedelta(seconds=1)
    # The 6th call fits once the first leaves the 60-second window: 60 - 5 seconds from now.
    assert limiter.acquire() == pytest.approx(55.0, abs=0.01)
    assert fake.sleeps == [pytest.approx(55.0, abs=0.01)]
    with pytest.raises(ValueError, match="can never fit"):
        limiter.acquire(weight=6)


def test_rate_limiter_weights_and_saturate(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = FakeTime(dt.datetime(2026, 3, 2, 15, 0, 0, tzinfo=dt.UTC), monkeypatch)
    limiter = RateLimiter("credits", 8, 60, clock=fake.clock, buffer=0.0)
    assert limiter.acquire(weight=5) == 0.0
    assert limiter.acquire(weight=4) == pytest.approx(60.0, abs=0.01)  # 5 + 4 > 8: wait a window
    fake.sleeps.clear()
    fake.now += dt.timedelta(seconds=61)
    limiter.saturate()  # the provider says we are over: the window counts as full
    assert limiter.acquire() == pytest.approx(60.0, abs=0.01)


# --- HttpClient against a local server ---------------------------------------------------------


def _http(server: HTTPServer, fake: FakeTime, **kwargs: Any) -> HttpClient:
    limiter = RateLimiter("http_test", 100, clock=fake.clock)
    return HttpClient(
        "http_test",
        limiter=limiter,
        timeout=(2.0, 2.0),
        secrets=[API_KEY],
        clock=fake.clock,
        sleep=fake.sleep,
        **kwargs,
    )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return FakeTime(dt.datetime(2026, 3, 2, 15, 0, 20, 500000, tzinfo=dt.UTC), monkeypatch)


def test_429_with_retry_after_seconds_is_retried_then_succeeds(
    httpserver: HTTPServer, fake: FakeTime
) -> None:
    httpserver.expect_ordered_request("/q", query_string={"a": "1"}).respond_with_data(
        "slow down", status=429, headers={"Retry-After": "7"}
    )
    httpserver.expect_ordered_request("/q", query_string={"a": "1"}).respond_with_json({"ok": 1})
    response = _http(httpserver, fake).get_json(httpserver.url_for("/q"), {"a": "1"})
    assert response.document == {"ok": 1}
    assert fake.sleeps == [7.0]
    assert len(httpserver.log) == 2
    httpserver.check_assertions()


def test_503_with_retry_after_http_date_is_honoured(httpserver: HTTPServer, fake: FakeTime) -> None:
    when = fake.now + dt.timedelta(seconds=12)
    httpserver.expect_ordered_request("/q").respond_with_data(
        "", status=503, headers={"Retry-After": when.strftime("%a, %d %b %Y %H:%M:%S GMT")}
    )
    httpserver.expect_ordered_request("/q").respond_with_json({"ok": 1})
    _http(httpserver, fake).get_json(httpserver.url_for("/q"), {})
    # The HTTP date has whole seconds: 12 s minus the fake clock's half second.
    assert fake.sleeps == [pytest.approx(11.5)]


def test_429_exhausted_raises_rate_limited(httpserver: HTTPServer, fake: FakeTime) -> None:
    httpserver.expect_request("/q").respond_with_data("", status=429, headers={"Retry-After": "2"})
    with pytest.raises(RateLimited, match=r"HTTP 429.*gave up after 3 attempts") as info:
        _http(httpserver, fake).get_json(httpserver.url_for("/q"), {})
    assert info.value.retry_after == 2.0
    assert len(httpserver.log) == 3
    assert fake.sleeps == [2.0, 2.0]


def test_retry_after_longer_than_the_cap_fails_at_once(
    httpserver: HTTPServer, fake: FakeTime
) -> None:
    httpserver.expect_request("/q").respond_with_data(
        "", status=429, headers={"Retry-After": "3600"}
    )
    client = _http(httpserver, fake, retry=RequestRetries(max_retry_after=120))
    with pytest.raises(RateLimited) as info:
        client.get_json(httpserver.url_for("/q"), {})
    assert info.value.retry_after == 3600
    assert len(httpserver.log) == 1 and fake.sleeps == []


def test_backoff_is_exponential_with_full_jitter(httpserver: HTTPServer, fake: FakeTime) -> None:
    httpserver.expect_request("/q").respond_with_json({"code": 500}, status=500)
    client = _http(
        httpserver, fake, retry=RequestRetries(attempts=4, backoff_initial=1, backoff_max=3)
    )
    with pytest.raises(ProviderUnavailable) as info:
        client.get_json(httpserver.url_for("/q"), {})
    assert not isinstance(info.value, MalformedResponse)  # a JSON 500 is no malformed body
    assert len(fake.sleeps) == 3
    for sleep, ceiling in zip(fake.sleeps, [1, 2, 3], strict=True):
        assert 0 <= sleep <= ceiling


@pytest.mark.parametrize(
    ("status", "error"),
    [(401, AuthenticationFailed), (403, AuthenticationFailed), (404, InvalidRequest)],
)
def test_client_errors_are_not_retried(
    httpserver: HTTPServer, fake: FakeTime, status: int, error: type[Exception]
) -> None:
    httpserver.expect_request("/q").respond_with_data("no", status=status)
    with pytest.raises(error, match=f"HTTP {status}"):
        _http(httpserver, fake).get_json(httpserver.url_for("/q"), {})
    assert len(httpserver.log) == 1


# --- every client, the same failure modes ------------------------------------------------------

_DAY = dt.date(2026, 2, 2)


def _fetch_one(client: Any, us: Market) -> list[RawPayload]:
    """Two 5-minute bars of AAPL at the open of _DAY: one call for either client."""
    start, _ = us.session_bounds(_DAY)
    return client.fetch_bars(us, ["AAPL"], "5min", start, start + dt.timedelta(minutes=10))


def _make(kind: str, url: str, fake: FakeTime, **kwargs: Any) -> Any:
    return (td_client if kind == "twelve_data" else av_client)(url, fake, **kwargs)


_PATH = {"twelve_data": "/time_series", "alpha_vantage": "/query"}
CLIENTS = pytest.mark.parametrize("kind", ["twelve_data", "alpha_vantage"])


@pytest.fixture
def fake_recent(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    # The day after _DAY: Alpha Vantage serves it without `month`.
    return FakeTime(dt.datetime(2026, 2, 3, 12, 0, 0, tzinfo=dt.UTC), monkeypatch)


@pytest.fixture(scope="module")
def threaded_server() -> Iterator[HTTPServer]:
    """A server that answers each request in its own thread, so stuck handlers do not queue
    the retries behind them (one per module: stopping a server costs half a second)."""
    server = HTTPServer(threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@CLIENTS
def test_timeout_is_retried_then_provider_unavailable(
    kind: str, threaded_server: HTTPServer, us: Market, fake_recent: FakeTime
) -> None:
    release = threading.Event()
    calls: list[str] = []

    def slow(request: Request) -> Response:
        calls.append(request.path)
        release.wait(5)  # far past the client's 0.1 s read timeout
        return Response("{}", content_type="application/json")

    threaded_server.expect_request(_PATH[kind]).respond_with_handler(slow)
    try:
        client = _make(kind, base_url(threaded_server), fake_recent, timeout=(1.0, 0.1))
        with pytest.raises(ProviderUnavailable, match=r"timed out.*gave up after 3 attempts"):
            _fetch_one(client, us)
        assert len(fake_recent.sleeps) == 2  # backoff between the attempts, not real waits
        # The server's threads may log the last request a moment after the client gave up.
        deadline = time.monotonic() + 2
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(calls) == 3
    finally:
        release.set()
        threaded_server.clear()


@CLIENTS
def test_html_502_page_is_malformed_after_retries(
    kind: str, httpserver: HTTPServer, us: Market, fake_recent: FakeTime
) -> None:
    page = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    httpserver.expect_request(_PATH[kind]).respond_with_data(
        page, status=502, content_type="text/html"
    )
    client = _make(kind, base_url(httpserver), fake_recent)
    with pytest.raises(MalformedResponse, match=r"HTTP 502.*not JSON.*502 Bad Gateway") as info:
        _fetch_one(client, us)
    assert isinstance(info.value, ProviderUnavailable)  # a gateway page: the provider is down
    assert len(httpserver.log) == 3


@CLIENTS
def test_html_page_with_status_200_is_malformed(
    kind: str, httpserver: HTTPServer, us: Market, fake_recent: FakeTime
) -> None:
    httpserver.expect_request(_PATH[kind]).respond_with_data(
        "<html>maintenance</html>", content_type="text/html"
    )
    client = _make(kind, base_url(httpserver), fake_recent, retry=RequestRetries(attempts=1))
    with pytest.raises(MalformedResponse, match=r"HTTP 200.*not JSON"):
        _fetch_one(client, us)


@CLIENTS
def test_json_of_the_wrong_shape_is_malformed_and_not_retried(
    kind: str, httpserver: HTTPServer, us: Market, fake_recent: FakeTime
) -> None:
    httpserver.expect_request(_PATH[kind]).respond_with_json(["not", "an", "object"])
    client = _make(kind, base_url(httpserver), fake_recent)
    with pytest.raises(MalformedResponse, match="expected a JSON object"):
        _fetch_one(client, us)
    assert len(httpserver.log) == 1


@CLIENTS
def test_429_retry_after_then_success(
    kind: str, httpserver: HTTPServer, us: Market, fake_recent: FakeTime
) -> None:
    start, _ = us.session_bounds(_DAY)
    end = start + dt.timedelta(minutes=10)
    if kind == "twelve_data":
        body = td_document(us, "AAPL", "5min", start, end)
    else:
        body = av_document(us, "AAPL", "5min", start, end)
    httpserver.expect_ordered_request(_PATH[kind]).respond_with_data(
        "Too Many Requests", status=429, headers={"Retry-After": "3"}
    )
    httpserver.expect_ordered_request(_PATH[kind]).respond_with_json(body)
    payloads = _fetch_one(_make(kind, base_url(httpserver), fake_recent), us)
    assert [p.symbols for p in payloads] == [("AAPL",)]
    assert orjson.loads(payloads[0].body) == body
    assert 3.0 in fake_recent.sleeps
    httpserver.check_assertions()


@CLIENTS
def test_connection_refused_is_unavailable_and_names_no_key(
    kind: str, us: Market, fake_recent: FakeTime
) -> None:
    client = _make(kind, f"http://127.0.0.1:{free_port()}", fake_recent, timeout=(0.5, 0.5))
    with pytest.raises(ProviderUnavailable, match="failed to connect") as info:
        _fetch_one(client, us)
    assert API_KEY not in str(info.value)
    # requests' own message names the URL (and Alpha Vantage's key): it must not ride along.
    assert info.value.__cause__ is None and info.value.__context__ is None


# --- no secret anywhere ----------------------------------------------------------------------


def test_no_api_key_in_logs_errors_or_payloads(
    httpserver: HTTPServer, us: Market, fake_recent: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    start, _ = us.session_bounds(_DAY)
    end = start + dt.timedelta(minutes=10)
    av_body = av_document(us, "AAPL", "5min", start, end)
    td_body = td_document(us, "AAPL", "5min", start, end)
    note = {
        "Note": "Thank you for using Alpha Vantage! "
        "Our standard API call frequency is 5 calls per minute."
    }
    credits = {
        "code": 429,
        "message": "You have run out of API credits for the current minute.",
        "status": "error",
    }
    httpserver.expect_ordered_request("/query").respond_with_json(note)
    httpserver.expect_ordered_request("/query").respond_with_json(av_body)
    httpserver.expect_ordered_request("/time_series").respond_with_json(credits)
    httpserver.expect_ordered_request("/time_series").respond_with_json(td_body)
    httpserver.expect_ordered_request("/query").respond_with_data(
        f"<html>upstream said apikey={API_KEY}</html>", status=502
    )
    errors: list[ProviderError] = []
    with caplog.at_level(logging.DEBUG):
        payloads = _fetch_one(av_client(base_url(httpserver), fake_recent), us)
        payloads += _fetch_one(td_client(base_url(httpserver), fake_recent), us)
        one_try = RequestRetries(attempts=1)
        for client in (
            av_client(base_url(httpserver), fake_recent, retry=one_try),
            av_client(f"http://127.0.0.1:{free_port()}", fake_recent, retry=one_try),
            td_client(f"http://127.0.0.1:{free_port()}", fake_recent, retry=one_try),
        ):
            with pytest.raises(ProviderError) as info:
                _fetch_one(client, us)
            errors.append(info.value)
    # The test means something only if the key did travel to the server.
    sent = [r for r, _ in httpserver.log]
    assert sent[0].args["apikey"] == API_KEY
    assert sent[2].headers["Authorization"] == f"apikey {API_KEY}"
    assert "apikey" not in sent[2].args  # Twelve Data: the key stays out of the URL
    assert len(payloads) == 2 and len(errors) == 3
    assert any("attempt 1/3" in r.getMessage() for r in caplog.records)  # retries were logged
    # Everything the client side logged; werkzeug's access log is the stand-in provider's own.
    ours = [r for r in caplog.records if not r.name.startswith("werkzeug")]
    assert any(r.name.startswith("urllib3") for r in ours)
    for record in ours:
        assert API_KEY not in record.getMessage()
        assert API_KEY not in logging.Formatter().format(record)
    assert any("apikey=***" in r.getMessage() for r in ours)  # urllib3's request line, scrubbed
    for error in errors:
        assert API_KEY not in str(error) and API_KEY not in repr(error.args)
    for payload in payloads:
        assert API_KEY not in payload_metadata(payload)
        assert "apikey" not in payload.request and "Authorization" not in payload.request
    for client in (av_client("http://x", fake_recent), td_client("http://x", fake_recent)):
        assert API_KEY not in repr(client)


START = dt.datetime(2026, 11, 16, 14, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("provider", ["twelve_data", "alpha_vantage", "yahoo"])
@pytest.mark.parametrize(
    ("interval", "start", "end", "match"),
    [
        ("2min", START, START + dt.timedelta(days=1), "interval must be one of"),
        ("1day", START.replace(tzinfo=None), START + dt.timedelta(days=1), "start must be tim"),
        ("1day", START, (START + dt.timedelta(days=1)).replace(tzinfo=None), "end must be tim"),
        ("1day", START, START, "empty range"),
    ],
)
def test_every_bar_provider_refuses_a_bad_request_before_calling(
    us: Market, provider: str, interval: str, start: dt.datetime, end: dt.datetime, match: str
) -> None:
    from finance_assets.providers.yfinance.client import YahooClient

    # Port 9 on loopback answers nothing: a request that got as far as the network would hang
    # or fail with a connection error, not the ValueError asked for.
    url = "http://127.0.0.1:9"
    client = {
        "twelve_data": lambda: TwelveDataClient("refusal-test-key-td", url),
        "alpha_vantage": lambda: AlphaVantageClient("refusal-test-key-av", url),
        "yahoo": lambda: YahooClient(base_url=url),
    }[provider]()
    with pytest.raises(ValueError, match=match):
        client.fetch_bars(us, ["AAPL"], interval, start, end)  # type: ignore[arg-type]
