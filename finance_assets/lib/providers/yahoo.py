"""Yahoo Finance through yfinance: the v8 chart JSON per symbol, kept exactly as received, and
the parser of those bodies (format "yahoo_chart").

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

Symbol notation: the universe lists write `BRK.B` and `BT.A.L`, Yahoo writes `BRK-B` and
`BT-A.L`. `to_yahoo` / `canonical_symbol` map both ways; payloads and records hold the canonical
symbol. `.L` (London) is the only exchange suffix known; other suffixes pass as written.

Prices: Yahoo's open/high/low/close are split-adjusted (not dividend-adjusted) as of the fetch;
`adjclose` (daily only) is adjusted for splits and dividends and is carried beside `close` as
`adj_close`. London listings are quoted in pence: every record carries the body's `currency`
(`GBp`), never converted.

Sessions: yfinance 1.x talks through a curl_cffi session impersonating Chrome. Pass your own
(`session=`, a curl_cffi or requests Session, e.g. with proxies), a `proxy=` URL, and/or a
`base_url=` that every yfinance request (chart, cookie, crumb, consent) is rebased to: an
internal mirror, or a local stand-in in tests (`rebase_session`). yfinance keeps one data layer
per process: the client installs its session on it for each call, under a lock.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import threading
import time
import urllib.parse
from collections.abc import Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
import polars as pl

from finance_assets.lib.markets import Market
from finance_assets.lib.providers.bars import BarClient, BarRequest, Call
from finance_assets.lib.providers.base import (
    Interval,
    PayloadFormatError,
    RawPayload,
    check_bar_request,
    load_json_object,
    payload_window,
)
from finance_assets.lib.providers.http import (
    DEFAULT_RETRY,
    AuthenticationFailed,
    Clock,
    InvalidRequest,
    InvalidSymbol,
    MalformedResponse,
    ProviderRequestError,
    ProviderUnavailable,
    RateLimited,
    RateLimiter,
    RequestRetries,
    RetryingClient,
    Sleep,
    check_base_url,
    redact,
    register_secret,
    utc_now,
)
from finance_assets.lib.schema import RAW_RECORD_SCHEMA, empty

LOG = logging.getLogger("finance_assets.providers")

PROVIDER = "yfinance"
FORMAT = "yahoo_chart"
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
_SUFFIXES = (".L",)  # exchange suffixes written the same way in both notations
# Chart errors that are answers, not failures: Yahoo has no bars in the window for the symbol.
_NO_DATA = ("data doesn't exist for startdate",)

# The records `parse_yahoo_chart` returns: the raw-record columns plus adj_close (text).
YAHOO_RECORD_SCHEMA: dict[str, pl.DataType] = {**RAW_RECORD_SCHEMA, "adj_close": pl.String()}

# yfinance's data layer is one object per process (YfData is a singleton holding one session,
# cookie and crumb): one call at a time through it, each on its client's session.
_YF_LOCK = threading.RLock()


# --- symbols ---------------------------------------------------------------------------------


def to_yahoo(symbol: str) -> str:
    """Canonical -> Yahoo notation (`BRK.B` -> `BRK-B`, `BT.A.L` -> `BT-A.L`)."""
    symbol = symbol.strip()
    for suffix in _SUFFIXES:
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return symbol[: -len(suffix)].replace(".", "-") + suffix
    return symbol.replace(".", "-")


def canonical_symbol(yahoo_symbol: str) -> str:
    """Yahoo notation -> canonical (`BRK-B` -> `BRK.B`, `BT-A.L` -> `BT.A.L`)."""
    symbol = yahoo_symbol.strip()
    for suffix in _SUFFIXES:
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return symbol[: -len(suffix)].replace("-", ".") + suffix
    if "." in symbol:  # another exchange's suffix: leave it as Yahoo wrote it
        return symbol
    return symbol.replace("-", ".")


# --- sessions --------------------------------------------------------------------------------


def rebase_url(url: str, base_url: str) -> str:
    """`url` with its scheme and host replaced by `base_url` (path and query kept)."""
    target = urllib.parse.urlsplit(base_url)
    parts = urllib.parse.urlsplit(url)
    path = target.path.rstrip("/") + (parts.path or "/")
    return urllib.parse.urlunsplit((target.scheme, target.netloc, path, parts.query, ""))


def rebase_session(session: Any, base_url: str) -> Any:
    """Make `session` (curl_cffi or requests) send every request to `base_url` instead of
    Yahoo's hosts; returns it.

    yfinance hard-codes its hosts (query1/query2.finance.yahoo.com for data and crumbs,
    fc.yahoo.com for the cookie, guce/consent.yahoo.com for the consent form), so pointing it at
    a mirror or a local stand-in means rewriting at the session, the one thing it lets callers
    choose. Paths and queries are kept: `/v8/finance/chart/AAPL?...`, `/v1/test/getcrumb`.
    Both session types route `get`/`post` through `request`, which is wrapped on the instance
    (not subclassed): yfinance accepts the object unchanged, whichever backend it is.
    """
    target = check_base_url(base_url, "base_url")
    send = session.request

    def request(method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        return send(method, rebase_url(url, target), *args, **kwargs)

    session.request = request
    session.rebase_to = target
    return session


def new_session(base_url: str | None = None, proxy: str | None = None) -> Any:
    """The session yfinance would make (curl_cffi impersonating Chrome), rebased to `base_url`
    when given, through `proxy` when given."""
    from curl_cffi import requests as curl_requests  # here: the parser needs no HTTP stack

    session = curl_requests.Session(impersonate="chrome")
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}  # type: ignore[assignment]
    return rebase_session(session, base_url) if base_url else session


def _data_layer(session: Any) -> Any:
    """yfinance's process-wide data layer, talking through `session`. Call under _YF_LOCK."""
    from yfinance.data import YfData

    data = YfData()
    if getattr(data, "_session", None) is not session:
        data = YfData(session=session)  # the singleton swaps its session (and validates it)
        # Cookie and crumb were minted on the previous session: let yfinance mint new ones on
        # this one rather than send a crumb Yahoo will refuse (costing a 401 and a re-ask).
        data._cookie = None
        data._crumb = None
    return data


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
        with _YF_LOCK:
            try:
                response = _data_layer(self.session).get(
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
                failure = ProviderUnavailable(
                    f"{self.name}: GET {shown} failed: {type(exc).__name__}: {redact(str(exc))}",
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
            message = f"{where}: {_error_text(error)}"
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


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('code', '?')}: {error.get('description', 'error')}"
    return str(error)


# --- the parser ------------------------------------------------------------------------------


def parse_yahoo_chart(
    body: bytes | str, payload_id: str = ""
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Read a Yahoo v8 chart body into raw text records (YAHOO_RECORD_SCHEMA: the columns of
    RAW_RECORD_SCHEMA plus `adj_close`).

    `datetime` is exchange-local (meta `exchangeTimezoneName`, else the fixed `gmtoffset`):
    'YYYY-MM-DD HH:MM:SS' bar starts intraday, 'YYYY-MM-DD' daily, like the other parsers.
    `currency` is the meta's, as stated (`GBp` for pence). `adj_close` is Yahoo's `adjclose`
    (daily bodies; null intraday).

    - Bars outside the window encoded in `payload_id` (`RawPayload.payload_id`) are left out:
      Yahoo appends the latest price after `period2` (the 1m sample ends with the next day's
      close).
    - A null in Yahoo's arrays stays null: all-null rows are Yahoo's placeholders for bars it
      has no data for (the 1m sample has one at 11:15 for AAPL, which trades every minute): a
      gap, not an absence of trading, so the cleaning step quarantines them with the reason
      rather than this parser hiding them.
    - An empty result (a weekend) is zero records, no error. A chart error body returns no
      records and its message under "?" (the body does not name the symbol).
    Bodies of another shape raise `transforms.PayloadFormatError`.
    """
    document = load_json_object(body, payload_id)
    pid = payload_id or "?"
    chart = document.get("chart")
    if not isinstance(chart, dict):
        raise PayloadFormatError(f"payload {pid}: no 'chart' object (keys {sorted(document)[:6]})")
    if chart.get("error"):
        return empty(YAHOO_RECORD_SCHEMA), {"?": _error_text(chart["error"])}
    result = chart.get("result")
    if not isinstance(result, list) or not result:
        raise PayloadFormatError(f"payload {pid}: chart has neither 'result' nor 'error'")
    window = payload_window(payload_id)
    frames = [_records(item, pid, payload_id, window) for item in result]
    frames = [frame for frame in frames if frame.height]
    if not frames:
        return empty(YAHOO_RECORD_SCHEMA), {}
    return pl.concat(frames, how="vertical"), {}


_QUOTE_FIELDS = ("open", "high", "low", "close", "volume")


def _records(
    item: Any, pid: str, payload_id: str, window: tuple[dt.datetime, dt.datetime] | None
) -> pl.DataFrame:
    if not isinstance(item, dict) or not isinstance(item.get("meta"), dict):
        raise PayloadFormatError(f"payload {pid}: chart result without 'meta'")
    meta = item["meta"]
    yahoo_symbol = meta.get("symbol")
    if not isinstance(yahoo_symbol, str) or not yahoo_symbol.strip():
        raise PayloadFormatError(f"payload {pid}: chart meta names no symbol")
    symbol = canonical_symbol(yahoo_symbol)
    granularity = str(meta.get("dataGranularity") or "")
    if not granularity:
        raise PayloadFormatError(f"payload {pid}: {symbol}: chart meta has no dataGranularity")
    daily = granularity.endswith(("d", "wk", "mo"))
    tz = _exchange_tz(meta, pid, symbol)
    timestamps = item.get("timestamp") or []
    if not isinstance(timestamps, list):
        raise PayloadFormatError(f"payload {pid}: {symbol}: 'timestamp' is not a list")
    if not timestamps:
        return empty(YAHOO_RECORD_SCHEMA)  # nothing traded in the window (a weekend, a holiday)
    indicators = item.get("indicators")
    quotes = indicators.get("quote") if isinstance(indicators, dict) else None
    if not isinstance(quotes, list) or not quotes or not isinstance(quotes[0], dict):
        raise PayloadFormatError(f"payload {pid}: {symbol}: no 'indicators.quote' object")
    n = len(timestamps)
    columns = {name: _column(quotes[0].get(name), n, pid, symbol, name) for name in _QUOTE_FIELDS}
    adjusted = indicators.get("adjclose")
    adj_values = (
        adjusted[0].get("adjclose")
        if isinstance(adjusted, list) and adjusted and isinstance(adjusted[0], dict)
        else None
    )
    columns["adj_close"] = _column(adj_values, n, pid, symbol, "adjclose")

    texts: list[str | None] = []
    keep: list[bool] = []
    for stamp in timestamps:
        text, inside = _stamp(stamp, tz, daily, window)
        texts.append(text)
        keep.append(inside)
    frame = pl.DataFrame(
        {"datetime": texts, **columns}, schema=dict.fromkeys(["datetime", *columns], pl.String)
    )
    if not all(keep):
        frame = frame.filter(pl.Series(keep))
    return frame.with_columns(
        payload_id=pl.lit(payload_id),
        symbol=pl.lit(symbol),
        currency=pl.lit(meta.get("currency"), dtype=pl.String),
    ).select(list(YAHOO_RECORD_SCHEMA))


def _column(values: Any, n: int, pid: str, symbol: str, name: str) -> list[str | None]:
    """One of Yahoo's arrays as text; a missing array is all nulls (the fields were not sent)."""
    if values is None:
        return [None] * n
    if not isinstance(values, list) or len(values) != n:
        raise PayloadFormatError(
            f"payload {pid}: {symbol}: '{name}' is not a list of {n} values (one per timestamp)"
        )
    return [_text(value) for value in values]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):  # not a number: kept as received for the quarantine
        return orjson.dumps(value).decode()
    return str(value)  # ints as digits, floats as their shortest round-trip repr


def _stamp(
    stamp: Any,
    tz: dt.tzinfo,
    daily: bool,
    window: tuple[dt.datetime, dt.datetime] | None,
) -> tuple[str | None, bool]:
    """(exchange-local text, inside the payload window). An unreadable stamp passes as received:
    the cleaning step quarantines it with the reason."""
    if stamp is None or isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return (None if stamp is None else _text(stamp)), True
    try:
        moment = dt.datetime.fromtimestamp(stamp, tz)
    except (OverflowError, OSError, ValueError):
        return str(stamp), True
    if daily:
        day = moment.date()
        if window is not None:
            day_start = dt.datetime.combine(day, dt.time(), tz)
            day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
            if not (day_start < window[1] and day_end > window[0]):
                return day.isoformat(), False
        return day.isoformat(), True
    inside = window is None or window[0] <= moment < window[1]
    return moment.strftime("%Y-%m-%d %H:%M:%S"), inside


def _exchange_tz(meta: Mapping[str, Any], pid: str, symbol: str) -> dt.tzinfo:
    name = meta.get("exchangeTimezoneName")
    if isinstance(name, str) and name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    # gmtoffset is the offset now, not on each bar's date: only a fallback (wrong across DST).
    offset = meta.get("gmtoffset")
    if isinstance(offset, int | float) and not isinstance(offset, bool):
        return dt.timezone(dt.timedelta(seconds=offset))
    raise PayloadFormatError(
        f"payload {pid}: {symbol}: chart meta has no usable exchange time zone"
    )
