"""Yahoo Finance through yfinance: the v8 chart JSON per symbol, kept exactly as received
(format "yahoo_chart"; its parser and Yahoo's symbol notation are in `parser.py`, and
re-exported here).

Calls: one `GET /v8/finance/chart/{symbol}` per symbol (Yahoo has no batch chart endpoint; this
is what `yf.download` and `Ticker.history` do under the hood too), with `period1`/`period2` =
the window, `interval` 5m or 1d, `includePrePost=false` (the pipeline keeps regular-session bars)
and `events=div,splits,capitalGains`, so splits and dividends travel in the body's `events`.
The request goes through yfinance's own data layer (`yfinance.data.YfData`): its cookie and
crumb handling, its consent-page handling, its proxy setting and its 429 -> `YFRateLimitError`.
`Ticker.history` / `yf.download` are not used: they hand back a reshaped DataFrame, never the
body, and may cost extra chart calls per symbol (a time-zone lookup, trading periods).

- 5-minute bars exist for the last 60 days only: an older start is refused with
  `InvalidRequest` before any call.
- yfinance itself re-asks once after any 4xx/5xx (with its other cookie strategy) and raises
  `YFRateLimitError` on a second 429; that is retried by the shared `http.RetryingClient`
  (tenacity, full jitter), then raised as `RateLimited`. Transport failures, 5xx and HTML pages
  are retried the same way, then raised as `ProviderUnavailable` / `MalformedResponse`.
- A symbol Yahoo does not know (HTTP 404, chart error "Not Found") is skipped with a warning,
  the others go on. "Data doesn't exist for startDate ..." (a window before the first bar) is an
  honest empty answer: its body is kept and the parser reports it.
- Window without a session (weekends, holidays): no call at all.

Prices: Yahoo's open/high/low/close are split-adjusted (not dividend-adjusted) as of the fetch;
`adjclose` (daily only) is adjusted for splits and dividends and is carried beside `close` as
`adj_close`. London listings are quoted in pence: every record carries the body's `currency`
(`GBp`), never converted.

Sessions: yfinance 1.x talks through a curl_cffi session impersonating Chrome. Pass your own
(`session=`, a curl_cffi or requests Session, e.g. with proxies), a `proxy=` URL, and/or a
`base_url=` that every yfinance request (chart, cookie, crumb, consent) is rebased to: an
internal mirror, or a local stand-in in tests (`session.rebase_session`). yfinance keeps
one data layer per process: the client installs its session on it for each call, under a lock.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import time
import urllib.parse
from typing import Any, Literal

import orjson

from finance_assets.lib.markets import Market
from finance_assets.lib.providers.bars import BarClient, Call
from finance_assets.lib.providers.base import BarRequest, Interval, RawPayload, check_bar_request
from finance_assets.lib.providers.budget import CallBudget
from finance_assets.lib.providers.errors import (
    AuthenticationFailed,
    DeadlineExceeded,
    InvalidRequest,
    InvalidSymbol,
    MalformedResponse,
    ProviderRequestError,
    ProviderUnavailable,
    RateLimited,
)
from finance_assets.lib.providers.http import check_base_url
from finance_assets.lib.providers.rate_limit import Clock, RateLimiter, Sleep, utc_now
from finance_assets.lib.providers.retrying import (
    DEADLINE_VARIABLE,
    DEFAULT_RETRY,
    RequestRetries,
    RetryingClient,
)
from finance_assets.lib.redaction import redact, register_secret
from finance_assets.providers.yfinance.parser import (
    FORMAT,
    YAHOO_RECORD_SCHEMA,
    canonical_symbol,
    error_text,
    parse_yahoo_chart,
    to_yahoo,
)
from finance_assets.providers.yfinance.session import (
    YF_LOCK,
    DeadlinePassed,
    data_layer,
    new_session,
    rebase_session,
    rebase_url,
    within,
)

__all__ = [
    "FORMAT",
    "YAHOO_RECORD_SCHEMA",
    "YahooClient",
    "canonical_symbol",
    "new_session",
    "parse_yahoo_chart",
    "rebase_session",
    "rebase_url",
    "to_yahoo",
]

LOG = logging.getLogger("finance_assets.providers")

PROVIDER = "yfinance"
YAHOO_BASE_URL = "https://query2.finance.yahoo.com"  # yfinance.const._BASE_URL_
CHART_PATH = "/v8/finance/chart/"
# Yahoo answers 5m requests for the last 60 days only ("The requested range must be within the
# last 60 days"); the margin covers the time between our check and Yahoo's.
INTRADAY_MAX_AGE = dt.timedelta(days=60)
_INTRADAY_MARGIN = dt.timedelta(minutes=5)
# Yahoo publishes no limit; a few thousand calls an hour is what users report as safe.
DEFAULT_CALLS_PER_MINUTE = 60
DEFAULT_TIMEOUT = 30.0
_YAHOO_INTERVALS: dict[str, str] = {"5min": "5m", "1day": "1d"}
_EVENTS = "div,splits,capitalGains"  # what yfinance asks for
# Chart errors that are answers, not failures: Yahoo has no bars in the window for the symbol.
_NO_DATA = ("data doesn't exist for startdate",)

# --- the client ------------------------------------------------------------------------------


class YahooClient(BarClient):
    """`BarProvider` over Yahoo's v8 chart API through yfinance (format "yahoo_chart")."""

    name = PROVIDER

    def __init__(
        self,
        session: Any | None = None,
        *,
        base_url: str | None = None,
        proxy: str | None = None,
        calls_per_minute: int = DEFAULT_CALLS_PER_MINUTE,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RequestRetries = DEFAULT_RETRY,
        limiter: RateLimiter | None = None,
        on_invalid_symbol: Literal["skip", "raise"] = "skip",
        cache_dir: str | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        """`session`: a curl_cffi (or requests) Session yfinance accepts, e.g. with proxies
        (default: yfinance's own kind); `proxy`: a proxy URL set on it; `base_url`: a mirror of
        Yahoo's hosts every request of the session is sent to.
        `cache_dir`: where yfinance keeps its cookie cache (process-wide; default
        ~/.cache/py-yfinance), effective only before yfinance first uses it."""
        self.base_url = check_base_url(base_url, "base_url") if base_url else YAHOO_BASE_URL
        if proxy:  # a proxy URL may carry a password: scrubbed from our logs and errors
            register_secret(urllib.parse.urlsplit(proxy).password)
        if session is None:
            session = new_session(base_url, proxy)
        else:
            if proxy:
                session.proxies = {"http": proxy, "https": proxy}
            if base_url:
                rebase_session(session, base_url)
        self.session = session
        self.timeout = timeout
        self.on_invalid_symbol = on_invalid_symbol
        self._clock = clock or utc_now
        self.limiter = limiter or RateLimiter.for_client(self.name, calls_per_minute, clock=clock)
        # Yahoo publishes no daily cap: the plan says how long, never refuses.
        self.budget = CallBudget(self.name, "calls", calls_per_minute, "YFINANCE_CALLS_PER_MINUTE")
        # The shared retry engine (HttpClient's): the limiter per attempt, tenacity's backoff.
        self.calls = RetryingClient(
            self.name,
            limiter=self.limiter,
            retry=retry,
            clock=self._clock,
            sleep=sleep or time.sleep,
        )
        if cache_dir:
            import yfinance

            yfinance.set_tz_cache_location(cache_dir)

    def __repr__(self) -> str:
        return f"YahooClient(base_url={self.base_url!r})"

    # --- the provider interface -----------------------------------------------------------

    def _plan(self, request: BarRequest) -> list[Call]:
        """One chart call per symbol, none for a window without a session."""
        market, symbols, interval, start, end = request
        _check_request(interval, start, end)
        if interval == "5min":
            self._check_intraday_age(start)
        if not _has_bars(market, interval, start, end):
            return []
        return [
            (symbol, functools.partial(self._fetch, symbol, interval, start, end))
            for symbol in symbols
        ]

    # --- internals ------------------------------------------------------------------------

    def _check_intraday_age(self, start: dt.datetime) -> None:
        earliest = self._clock() - INTRADAY_MAX_AGE + _INTRADAY_MARGIN
        if start < earliest:
            raise InvalidRequest(
                f"{self.name}: Yahoo serves 5-minute bars for the last 60 days only; the window "
                f"starts {start.isoformat()}, before {earliest.isoformat(timespec='seconds')}. "
                "Use 1day bars, or another provider for older intraday history.",
                provider=self.name,
            )

    def _fetch(
        self, symbol: str, interval: Interval, start: dt.datetime, end: dt.datetime, batch: int
    ) -> RawPayload:
        yahoo_symbol = to_yahoo(symbol)
        params = {
            "period1": str(math.floor(start.timestamp())),
            "period2": str(math.ceil(end.timestamp())),
            "interval": _YAHOO_INTERVALS[interval],
            "includePrePost": "false",
            "events": _EVENTS,
        }
        # Yahoo's URL, whatever the session rebases it to: yfinance keys its caches on it.
        url = YAHOO_BASE_URL + CHART_PATH + urllib.parse.quote(yahoo_symbol, safe="")
        shown = f"{self.base_url}{CHART_PATH}{yahoo_symbol}"
        body, content_type, fetched_at = self.calls.call(
            lambda: self._attempt(url, params, symbol, shown), shown
        )
        return RawPayload(
            provider=self.name,
            format=FORMAT,
            interval=interval,
            symbols=(symbol,),
            window_start=start,
            window_end=end,
            fetched_at=fetched_at,
            body=body,
            batch=batch,
            request={
                "endpoint": "v8/finance/chart",
                "base_url": self.base_url,
                "symbol": yahoo_symbol,
                **params,
            },
            content_type=content_type,
        )

    def _attempt(
        self, url: str, params: dict[str, str], symbol: str, shown: str
    ) -> tuple[bytes, str, dt.datetime]:
        from yfinance.exceptions import YFException, YFRateLimitError

        started = time.perf_counter()
        failure: ProviderRequestError | None = None
        deadline = self.calls.deadline
        began = time.monotonic()
        with YF_LOCK, within(self.session, deadline):
            try:
                response = data_layer(self.session).get(
                    url=url, params=dict(params), timeout=self.timeout
                )
            except YFRateLimitError as exc:
                failure = RateLimited(
                    f"{self.name}: GET {shown} -> HTTP 429 Too Many Requests ({exc})",
                    provider=self.name,
                    symbol=symbol,
                    status=429,
                )
            # curl_cffi's and requests' errors are OSErrors; YFException covers yfinance's own.
            except (OSError, YFException) as exc:
                if time.monotonic() - began >= deadline or isinstance(exc, DeadlinePassed):
                    # A total deadline, not a refusal: libcurl's (or ours, between requests).
                    failure = DeadlineExceeded(
                        f"{self.name}: GET {shown} exceeded its {deadline:g}s deadline "
                        f"({type(exc).__name__} after {time.monotonic() - began:.1f}s; "
                        f"{DEADLINE_VARIABLE} sets it)",
                        provider=self.name,
                        symbol=symbol,
                    )
                else:
                    failure = ProviderUnavailable(
                        f"{self.name}: GET {shown} failed: {type(exc).__name__}: "
                        f"{redact(str(exc))}",
                        provider=self.name,
                        symbol=symbol,
                    )
        if failure is not None:
            raise failure  # outside the except: no library traceback chained to ours
        status = int(response.status_code)
        body = bytes(response.content)
        content_type = str(response.headers.get("Content-Type") or "application/json")
        LOG.debug(
            "%s: GET %s -> HTTP %d, %d bytes in %.0f ms",
            self.name,
            shown,
            status,
            len(body),
            (time.perf_counter() - started) * 1000,
        )
        self._classify(status, body, content_type, symbol, shown)
        return body, content_type, self._clock()

    def _classify(
        self, status: int, body: bytes, content_type: str, symbol: str, shown: str
    ) -> None:
        """Typed errors for answers that are not a usable chart; returns for those to keep."""
        where = f"{self.name}: GET {shown} -> HTTP {status}"
        if status == 429:  # yfinance raises on a 429 it re-asked; a mirror might not
            raise RateLimited(f"{where}", provider=self.name, symbol=symbol, status=status)
        try:
            document = orjson.loads(body) if body.strip() else None
        except orjson.JSONDecodeError:
            document = None
        if status >= 500 or (status < 300 and not isinstance(document, dict)):
            # 5xx, or a 200 that is no JSON object ("Will be right back" HTML): Yahoo is
            # effectively down; retried.
            error = ProviderUnavailable if status >= 500 else MalformedResponse
            raise error(
                f"{where}: not a chart (content-type {content_type!r}): {_snippet(body)}",
                provider=self.name,
                symbol=symbol,
                status=status,
                retryable=True,
            )
        chart = document.get("chart") if isinstance(document, dict) else None
        if not isinstance(chart, dict):
            if status in (401, 403):  # {"finance": {"error": {"code": "Unauthorized", ...}}}
                raise AuthenticationFailed(
                    f"{where}: Yahoo refused the session's cookie/crumb: {_snippet(body)}",
                    provider=self.name,
                    status=status,
                )
            if status >= 300:
                raise InvalidRequest(
                    f"{where}: {_snippet(body)}", provider=self.name, symbol=symbol, status=status
                )
            raise MalformedResponse(
                f"{where}: no 'chart' object: {_snippet(body)}",
                provider=self.name,
                symbol=symbol,
                status=status,
            )
        error = chart.get("error")
        if error:
            message = f"{where}: {error_text(error)}"
            code = str(error.get("code", "")) if isinstance(error, dict) else ""
            if status == 404 or code == "Not Found":
                raise InvalidSymbol(message, provider=self.name, symbol=symbol, status=status)
            if any(text in message.lower() for text in _NO_DATA):
                return  # no bars in the window for this symbol: keep the answer as received
            raise InvalidRequest(message, provider=self.name, symbol=symbol, status=status)
        if status >= 300:
            raise InvalidRequest(
                f"{where}: {_snippet(body)}", provider=self.name, symbol=symbol, status=status
            )
        result = chart.get("result")
        if (
            not isinstance(result, list)
            or not result
            or not isinstance(result[0], dict)
            or not isinstance(result[0].get("meta"), dict)
        ):
            raise MalformedResponse(
                f"{where}: chart without result/meta: {_snippet(body)}",
                provider=self.name,
                symbol=symbol,
                status=status,
            )


def _check_request(interval: str, start: dt.datetime, end: dt.datetime) -> None:
    check_bar_request(interval, start, end)
    if interval not in _YAHOO_INTERVALS:
        raise ValueError(
            f"the {PROVIDER} provider serves {sorted(_YAHOO_INTERVALS)} bars, not {interval!r}"
        )


def _has_bars(market: Market, interval: str, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether the window holds a bar of `market` at all (5-minute partitions include holidays:
    asking Yahoo for them would cost a call per symbol for nothing)."""
    if interval == "5min":
        return bool(market.bar_starts(start, end))
    tz = market.tz
    return any(
        start <= market.session_bounds(day)[0] < end
        for day in market.sessions(start.astimezone(tz).date(), end.astimezone(tz).date())
    )


def _snippet(body: bytes, limit: int = 160) -> str:
    text = " ".join(body[:limit].decode("utf-8", "replace").split())
    return repr(text + ("…" if len(body) > limit else ""))
