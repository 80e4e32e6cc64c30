"""A slow server must not hang a run (issue 24, item 4): a stand-in on loopback sends its
headers and then one byte of the body every 0.25 s, which no per-read timeout ever trips. Every
HTTP client of the project (requests through `HttpClient`: Twelve Data, Alpha Vantage, X; curl_cffi
through yfinance: Yahoo) gives up at its total deadline (2 s here), names the provider, the URL
(without the key) and the deadline, and the retry engine retries it."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import pytest

from finance_assets.lib.markets import Market
from finance_assets.lib.providers.http import (
    DeadlineExceeded,
    HttpClient,
    RateLimiter,
    RequestRetries,
    request_deadline,
)
from finance_assets.lib.settings import SettingsError
from finance_assets.providers.x_api.client import XSearchClient
from finance_assets.providers.yfinance.client import YahooClient
from finance_assets_tests.test_providers.test_http import (
    API_KEY,
    FakeTime,
    _fetch_one,
    _make,
)
from finance_assets_tests.test_providers.trickle import Trickle

DEADLINE = 2.0
INTERVAL = 0.25
# 40 bytes at 0.25 s: 10 s for the whole body, five times the deadline.
SLOW_BODY = b'{"values": [], "status": "ok", "x": "aaa"}'[:40]


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime(dt.datetime(2026, 2, 3, 12, 0, 0, tzinfo=dt.UTC))


def _trickle(prefix: str, **quick: tuple[str, bytes]) -> Iterator[Trickle]:
    server = Trickle(prefix, SLOW_BODY, INTERVAL, quick=dict(quick)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def slow() -> Iterator[Trickle]:
    yield from _trickle("/")


def _timed(call: Any) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        call()
    return info.value, time.monotonic() - started


def test_http_client_gives_up_at_the_deadline_and_retries(slow: Trickle, fake: FakeTime) -> None:
    client = HttpClient(
        "twelve_data",
        limiter=RateLimiter("deadline-test", 100, clock=fake.clock),
        retry=RequestRetries(attempts=2, deadline=DEADLINE),
        secrets=[API_KEY],
        clock=fake.clock,
        sleep=fake.sleep,
    )
    error, took = _timed(lambda: client.get_json(f"{slow.url}/time_series", {"apikey": API_KEY}))
    text = str(error)
    assert text.startswith(f"twelve_data: GET {slow.url}/time_series?apikey=")
    assert API_KEY not in text
    assert "exceeded its 2s deadline" in text and "HTTP 200" in text
    assert "FINANCE_HTTP_DEADLINE_SECONDS" in text and "gave up after 2 attempts" in text
    assert error.retryable
    # Two attempts of ~2 s each (the watchdog cuts the read), not 2 x 10 s of trickle.
    assert 2 * DEADLINE <= took < 2 * DEADLINE + 1.5
    assert len(slow.requests) == 2 and len(fake.sleeps) == 1


def test_an_answer_inside_the_deadline_is_read_whole(fake: FakeTime) -> None:
    server = Trickle("/", b'{"ok": 1}', 0.05).start()
    try:
        client = HttpClient(
            "twelve_data",
            limiter=RateLimiter("deadline-test", 100, clock=fake.clock),
            retry=RequestRetries(attempts=1, deadline=DEADLINE),
            clock=fake.clock,
        )
        assert client.get_json(f"{server.url}/q", {}).document == {"ok": 1}
    finally:
        server.stop()


@pytest.mark.parametrize("kind", ["twelve_data", "alpha_vantage"])
def test_keyed_clients_give_up_at_the_deadline(
    kind: str, slow: Trickle, fake: FakeTime, us: Market
) -> None:
    client = _make(kind, slow.url, fake, retry=RequestRetries(attempts=1, deadline=DEADLINE))
    error, took = _timed(lambda: _fetch_one(client, us))
    assert str(error).startswith(f"{kind}: GET {slow.url}/") and API_KEY not in str(error)
    assert DEADLINE <= took < DEADLINE + 1.5


def test_x_client_gives_up_at_the_deadline(slow: Trickle, fake: FakeTime, us: Market) -> None:
    client = XSearchClient(
        "x-bearer-token-SECRET",
        slow.url,
        retry=RequestRetries(attempts=1, deadline=DEADLINE),
        clock=fake.clock,
        sleep=fake.sleep,
    )
    end = fake.clock() - dt.timedelta(minutes=1)
    error, took = _timed(lambda: client.fetch_posts(us, ["AAPL"], end - dt.timedelta(hours=1), end))
    assert str(error).startswith(f"x_api: GET {slow.url}/") and "SECRET" not in str(error)
    assert DEADLINE <= took < DEADLINE + 1.5


def test_yahoo_over_curl_cffi_gives_up_at_the_deadline(fake: FakeTime, us: Market) -> None:
    from curl_cffi import requests as curl_requests

    for server in _trickle(
        "/v8/finance/chart/",
        **{"/": ("text/html", b""), "/v1/test/getcrumb": ("text/plain", b"crumb-123")},
    ):
        client = YahooClient(
            curl_requests.Session(impersonate="chrome", trust_env=False),
            base_url=server.url,
            timeout=30.0,  # the call's own timeout: the deadline is shorter and wins
            retry=RequestRetries(attempts=2, deadline=DEADLINE),
            limiter=RateLimiter("yfinance", 60, clock=fake.clock),
            clock=fake.clock,
            sleep=fake.sleep,
        )
        start, _ = us.session_bounds(dt.date(2026, 2, 2))
        error, took = _timed(
            lambda client=client, start=start: client.fetch_bars(
                us, ["AAPL"], "5min", start, start + dt.timedelta(minutes=10)
            )
        )
        text = str(error)
        assert text.startswith(f"yfinance: GET {server.url}/v8/finance/chart/AAPL")
        assert "exceeded its 2s deadline" in text and "gave up after 2 attempts" in text
        assert 2 * DEADLINE <= took < 2 * DEADLINE + 2.0
        assert sum("/v8/finance/chart/AAPL" in r for r in server.requests) >= 2


def test_the_deadline_setting_is_checked() -> None:
    assert request_deadline({}) == 120.0
    assert request_deadline({"FINANCE_HTTP_DEADLINE_SECONDS": "45"}) == 45.0
    for bad in ("0", "soon", "86400"):
        with pytest.raises(SettingsError, match=f"FINANCE_HTTP_DEADLINE_SECONDS='{bad}'"):
            request_deadline({"FINANCE_HTTP_DEADLINE_SECONDS": bad})
    with pytest.raises(ValueError, match="deadline=0"):
        RequestRetries(deadline=0)


def test_a_bad_deadline_fails_the_definitions_at_load(tmp_path) -> None:
    from finance_assets.resources import build_resources

    with pytest.raises(SettingsError, match="FINANCE_HTTP_DEADLINE_SECONDS='-5' is out of range"):
        build_resources({"FINANCE_HTTP_DEADLINE_SECONDS": "-5", "FINANCE_DATA_DIR": str(tmp_path)})


def test_the_watchdog_cuts_a_read_waiting_for_its_next_byte(fake: FakeTime) -> None:
    """A byte every 1.5 s: the read waiting for the second one is cut at the deadline (2 s),
    not when that byte arrives (3 s)."""
    server = Trickle("/", SLOW_BODY, 1.5).start()
    try:
        client = HttpClient(
            "alpha_vantage",
            limiter=RateLimiter("deadline-test", 100, clock=fake.clock),
            retry=RequestRetries(attempts=1, deadline=DEADLINE),
            clock=fake.clock,
        )
        error, took = _timed(lambda: client.get_json(f"{server.url}/query", {}))
        assert "1 bytes of the body" in str(error)
        assert DEADLINE <= took < DEADLINE + 0.5
    finally:
        server.stop()
