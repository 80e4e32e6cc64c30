"""Alpha Vantage `TIME_SERIES_DAILY` / `TIME_SERIES_INTRADAY`, one call per symbol, and the
parser of its bodies (format "alpha_vantage").

Calls:
- daily: `TIME_SERIES_DAILY` (as traded, unadjusted), `outputsize=compact` (the latest 100
  sessions) when the range starts within the last ~95 sessions, else `full` (20+ years).
- 5-minute: `TIME_SERIES_INTRADAY&interval=5min&outputsize=full&extended_hours=false
  &adjusted=false`. Without `month`, `full` is the trailing 30 days; a range that starts more
  than `recent_days` (25) calendar days ago is fetched month by month with `month=YYYY-MM`
  (months on US/Eastern time, Alpha Vantage's), one call per symbol and month touched.
  `extended_hours=false` because the pipeline keeps regular-session bars only (pre/post-market
  bars would all be quarantined); `adjusted=false` so intraday agrees with the unadjusted daily
  series and with Twelve Data.
  Alpha Vantage cannot filter by time, so a body may hold more than the window asked for;
  `parse_alpha_vantage` keeps only the bars of the payload's window (read from its payload id).

A fetch planned to need more calls than `calls_per_day` (ALPHAVANTAGE_CALLS_PER_DAY, 25 on the
free plan) is refused before any call (`lib/providers/budget.py`).

Errors arrive with HTTP 200 in the body: `Error Message` -> `InvalidSymbol` (Alpha Vantage
answers an unknown symbol with "Invalid API call"; an apikey message -> `AuthenticationFailed`),
`Note` (call frequency) -> `RateLimited`, retried once the limiter's window has passed,
`Information` (daily limit, premium-only) -> `QuotaExhausted` (its per-second burst wording ->
`RateLimited`).

Timestamps: intraday keys are exchange wall times in the Meta Data's "Time Zone" (US/Eastern)
and label the bar's *start*: today's responses end the extended session at 19:55 (5min) and
19:45 (15min) with trading to 20:00, and begin at 04:00. (The 2017 sample in
`shared/samples/alphavantage` cannot tell: its 100 one-minute bars run 13:17..14:56, touching
neither the open nor the close. Older regular-hours captures, e.g. 2020 ones with a 16:00:00
one-minute bar, labelled the bar's end; should that return, the 16:00 bar is quarantined as "not
a 5-minute bar start" rather than silently shifted. `INTRADAY_LABEL` switches the convention.)

Symbol notation: `BRK.B` -> `BRK-B`, London `BT.A.L` -> `BT-A.LON`, `SHEL.L` -> `SHEL.LON`;
the parser maps Meta Data symbols back to the canonical ones.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Mapping
from typing import Any, Literal
from zoneinfo import ZoneInfo

import polars as pl

from finance_assets.lib.markets import Market
from finance_assets.lib.providers.bars import BarClient, Call
from finance_assets.lib.providers.base import (
    BarRequest,
    Interval,
    PayloadFormatError,
    RawPayload,
    load_json_object,
    payload_window,
)
from finance_assets.lib.providers.budget import CallBudget
from finance_assets.lib.providers.http import (
    AuthenticationFailed,
    InvalidSymbol,
    MalformedResponse,
    QuotaExhausted,
    RateLimited,
)
from finance_assets.lib.providers.keyed import KeyedClient
from finance_assets.lib.schema import (
    ACTION_RECORD_SCHEMA,
    RAW_RECORD_FIELDS,
    RAW_RECORD_SCHEMA,
    empty,
)

DEFAULT_BASE_URL = "https://www.alphavantage.co"
FORMAT = "alpha_vantage"
FREE_CALLS_PER_MINUTE = 5
FREE_CALLS_PER_DAY = 25
PER_MINUTE_VARIABLE = "ALPHAVANTAGE_CALLS_PER_MINUTE"
PER_DAY_VARIABLE = "ALPHAVANTAGE_CALLS_PER_DAY"
COMPACT_SESSIONS = 100  # what outputsize=compact returns
TRAILING_DAYS = 30  # what intraday outputsize=full returns without `month`
# Intraday labels: "start" (what Alpha Vantage sends today) or "end" (shifted back one bar).
INTRADAY_LABEL: Literal["start", "end"] = "start"

# Canonical suffix <-> Alpha Vantage suffix, and the exchange's timezone.
_SUFFIXES = {".L": (".LON", "Europe/London")}
_TZ_ALIASES = {"US/Eastern": "America/New_York", "US/Central": "America/Chicago", "UTC": "UTC"}
_INTERVAL_MINUTES = re.compile(r"\((\d+)min\)")


# --- symbols -------------------------------------------------------------------------------


def to_alpha_vantage(symbol: str) -> str:
    """Canonical -> Alpha Vantage notation (`BRK.B` -> `BRK-B`, `BT.A.L` -> `BT-A.LON`)."""
    for suffix, (av_suffix, _) in _SUFFIXES.items():
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return symbol[: -len(suffix)].replace(".", "-") + av_suffix
    return symbol.replace(".", "-")


def canonical_symbol(av_symbol: str) -> str:
    """Alpha Vantage notation -> canonical (`BT-A.LON` -> `BT.A.L`, `BRK-B` -> `BRK.B`)."""
    symbol = av_symbol.strip().upper()
    for suffix, (av_suffix, _) in _SUFFIXES.items():
        if symbol.endswith(av_suffix) and len(symbol) > len(av_suffix):
            return symbol[: -len(av_suffix)].replace("-", ".") + suffix
    if "." in symbol:  # another exchange's suffix: leave it as Alpha Vantage wrote it
        return symbol
    return symbol.replace("-", ".")


def _exchange_timezone(av_symbol: str, default: str) -> str:
    for av_suffix, tz in _SUFFIXES.values():
        if av_symbol.strip().upper().endswith(av_suffix):
            return tz
    return default


# --- the client ----------------------------------------------------------------------------


class AlphaVantageClient(KeyedClient, BarClient):
    """`BarProvider` over Alpha Vantage's time series (format "alpha_vantage")."""

    name = "alpha_vantage"
    skip_known_invalid = True  # a symbol's other months would fail the same way

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        calls_per_minute: int = FREE_CALLS_PER_MINUTE,
        calls_per_day: int | None = FREE_CALLS_PER_DAY,
        recent_days: int = 25,
        on_invalid_symbol: Literal["skip", "raise"] = "skip",
        **client: Any,
    ) -> None:
        """`client`: `KeyedClient`'s session, timeout, retry, limiter, clock and sleep.
        `calls_per_day`: the plan's daily calls (None: a plan without a daily cap); a fetch
        needing more is refused before any call."""
        if not 1 <= recent_days <= TRAILING_DAYS:
            raise ValueError(f"recent_days must be within [1, {TRAILING_DAYS}], got {recent_days}")
        super().__init__(api_key, base_url, calls=calls_per_minute, **client)
        self.recent_days = recent_days
        self.on_invalid_symbol = on_invalid_symbol
        self.budget = CallBudget(
            self.name,
            "calls",
            calls_per_minute,
            PER_MINUTE_VARIABLE,
            calls_per_day,
            PER_DAY_VARIABLE,
        )

    # --- the provider interface -----------------------------------------------------------

    def _plan(self, request: BarRequest) -> list[Call]:
        """One call per symbol (per month for old ranges)."""
        market, symbols, interval, start, end = request
        calls = self._calls(market, interval, start, end)
        return [
            (symbol, functools.partial(self._fetch, symbol, interval, w_start, w_end, params))
            for symbol in symbols
            for w_start, w_end, params in calls
        ]

    # --- internals ------------------------------------------------------------------------

    def _calls(
        self, market: Market, interval: Interval, start: dt.datetime, end: dt.datetime
    ) -> list[tuple[dt.datetime, dt.datetime, dict[str, str]]]:
        """(window start, window end, parameters) of each call a symbol needs; none without
        bars in the range."""
        now = self._clock()
        if interval == "1day":
            tz = market.tz
            sessions = [
                day
                for day in market.sessions(start.astimezone(tz).date(), end.astimezone(tz).date())
                if start <= market.session_bounds(day)[0] < end
            ]
            if not sessions:
                return []
            since = len(market.sessions(sessions[0], now.astimezone(tz).date()))
            # A margin of 5 sessions for Alpha Vantage's refresh lag and calendar differences.
            size = "compact" if since <= COMPACT_SESSIONS - 5 else "full"
            return [(start, end, {"function": "TIME_SERIES_DAILY", "outputsize": size})]
        bars = market.bar_starts(start, end)
        if not bars:
            return []
        base = {
            "function": "TIME_SERIES_INTRADAY",
            "interval": "5min",
            "outputsize": "full",
            "extended_hours": "false",
            "adjusted": "false",
        }
        if start >= now - dt.timedelta(days=self.recent_days):
            return [(start, end, base)]
        eastern = ZoneInfo("America/New_York")  # Alpha Vantage's months are US/Eastern
        calls = []
        first, last = bars[0].astimezone(eastern), bars[-1].astimezone(eastern)
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            month_start = dt.datetime(year, month, 1, tzinfo=eastern)
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            month_end = dt.datetime(year, month, 1, tzinfo=eastern)
            w_start, w_end = max(start, month_start), min(end, month_end)
            if any(w_start <= bar < w_end for bar in bars):
                calls.append((w_start, w_end, {**base, "month": month_start.strftime("%Y-%m")}))
        return calls

    def _fetch(
        self,
        symbol: str,
        interval: Interval,
        w_start: dt.datetime,
        w_end: dt.datetime,
        params: dict[str, str],
        batch: int,
    ) -> RawPayload:
        query = {"function": params["function"], "symbol": to_alpha_vantage(symbol)}
        query.update({k: v for k, v in params.items() if k != "function"})
        response = self.http.get_json(
            f"{self.base_url}/query",
            {**query, "apikey": self._api_key},  # Alpha Vantage takes the key in the URL only
            classify=lambda status, doc: self._classify(status, doc, symbol),
        )
        return RawPayload(
            provider=self.name,
            format=FORMAT,
            interval=interval,
            symbols=(symbol,),
            window_start=w_start,
            window_end=w_end,
            fetched_at=response.fetched_at,
            body=response.body,
            batch=batch,
            request=self.http.redact({"endpoint": "query", "base_url": self.base_url, **query}),
            content_type=response.content_type,
        )

    def _classify(self, status: int, document: Any, symbol: str) -> None:
        """Alpha Vantage answers failures with HTTP 200 and one telling key."""
        document = self._json_object(status, document)
        if "Error Message" in document:
            message = f"{self.name}: {symbol}: Error Message: {document['Error Message']}"
            if "apikey" in str(document["Error Message"]).lower():
                raise AuthenticationFailed(message, provider=self.name, status=status)
            raise InvalidSymbol(message, provider=self.name, symbol=symbol, status=status)
        if "Note" in document:
            # Over the call frequency although our limiter let the call through (another
            # process on the key?): treat this window as used up and retry after it.
            self.http.limiter.saturate()
            raise RateLimited(
                f"{self.name}: Note: {document['Note']}",
                provider=self.name,
                retry_after=0.0,  # the limiter's wait is the wait
                status=status,
            )
        if "Information" in document:
            text = str(document["Information"])
            if "per second" in text.lower() or "sparingly" in text.lower():
                raise RateLimited(
                    f"{self.name}: Information: {text}",
                    provider=self.name,
                    retry_after=2.0,
                    status=status,
                )
            raise QuotaExhausted(
                f"{self.name}: Information: {text}", provider=self.name, status=status
            )
        if status >= 300:
            return
        series = [key for key in document if key.startswith("Time Series")]
        if not isinstance(document.get("Meta Data"), dict) or not series:
            raise MalformedResponse(
                f"{self.name}: {symbol}: no 'Meta Data' / 'Time Series' in the answer "
                f"(keys: {sorted(document)[:5]})",
                provider=self.name,
                status=status,
            )


# --- the parser ----------------------------------------------------------------------------


def parse_alpha_vantage(
    body: bytes | str, payload_id: str = ""
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Read an Alpha Vantage time-series body into raw text records (RAW_RECORD_SCHEMA).

    Intraday datetimes come out as exchange-local 'YYYY-MM-DD HH:MM:SS' bar starts, daily ones as
    'YYYY-MM-DD', like Twelve Data's, so `transforms.with_bar_times` reads both. Bars outside the
    window encoded in `payload_id` (`RawPayload.payload_id`) are left out: Alpha Vantage cannot
    filter by time, so its bodies hold more than was asked for. Error bodies return no records
    and the message under the symbol ("?" when the body does not name it). `currency` is null:
    Alpha Vantage does not state it.
    """
    document = load_json_object(body, payload_id)
    for key in ("Error Message", "Information", "Note"):
        if key in document:
            return empty(RAW_RECORD_SCHEMA), {"?": f"{key}: {document[key]}"}
    meta = document.get("Meta Data")
    series_keys = [key for key in document if key.startswith("Time Series")]
    if not isinstance(meta, dict) or len(series_keys) != 1:
        raise PayloadFormatError(
            f"payload {payload_id or '?'}: expected 'Meta Data' and one 'Time Series (...)', "
            f"got keys {sorted(document)[:6]}"
        )
    series = document[series_keys[0]]
    if not isinstance(series, dict):
        raise PayloadFormatError(
            f"payload {payload_id or '?'}: {series_keys[0]!r} is not an object"
        )
    av_symbol = str(_meta(meta, "Symbol") or "")
    symbol = canonical_symbol(av_symbol) if av_symbol else "?"
    zone = str(_meta(meta, "Time Zone") or "US/Eastern")
    source_tz = _TZ_ALIASES.get(zone, zone)
    target_tz = _exchange_timezone(av_symbol, source_tz)
    daily = "Daily" in series_keys[0]
    minutes = _INTERVAL_MINUTES.search(series_keys[0])
    shift = (
        dt.timedelta(minutes=int(minutes.group(1))) if minutes and INTRADAY_LABEL == "end" else None
    )
    window = payload_window(payload_id)
    try:
        restamp = _Restamper(source_tz, target_tz, daily, shift, window)
    except (ValueError, KeyError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise PayloadFormatError(
            f"payload {payload_id or '?'}: unknown time zone {zone!r}"
        ) from exc

    # TIME_SERIES_DAILY_ADJUSTED (a premium endpoint) also sends "5. adjusted close": carried
    # as adj_close, as Yahoo's is; the other series have no such column.
    fields_kept = (
        [*RAW_RECORD_FIELDS, "adj_close"]
        if daily and _sends_adjusted(series)
        else RAW_RECORD_FIELDS
    )
    rows: list[dict[str, str | None]] = []
    for stamp, fields in series.items():
        if not isinstance(fields, dict):
            raise PayloadFormatError(
                f"payload {payload_id or '?'}: {symbol} at {stamp!r} is not an object"
            )
        text = restamp(str(stamp))
        if text is None:
            continue  # outside the payload's window
        record: dict[str, str | None] = dict.fromkeys(fields_kept)
        record["datetime"] = text
        for key, value in fields.items():
            name = str(key).split(". ", 1)[-1].strip().lower()
            name = "adj_close" if name == "adjusted close" else name
            if name in record and name != "datetime":
                record[name] = None if value is None else str(value)
        rows.append(record)
    if not rows:
        return empty(RAW_RECORD_SCHEMA), {}
    frame = pl.DataFrame(rows, schema=dict.fromkeys(fields_kept, pl.String))
    return (
        frame.with_columns(
            payload_id=pl.lit(payload_id),
            symbol=pl.lit(symbol),
            currency=pl.lit(None, dtype=pl.String),
        ).select([*RAW_RECORD_SCHEMA, *fields_kept[len(RAW_RECORD_FIELDS) :]]),
        {},
    )


def _sends_adjusted(series: Mapping[str, Any]) -> bool:
    """Whether a daily series has the adjusted close column (TIME_SERIES_DAILY_ADJUSTED)."""
    return any(
        isinstance(fields, dict)
        and any(str(key).split(". ", 1)[-1].strip().lower() == "adjusted close" for key in fields)
        for fields in series.values()
    )


def parse_alpha_vantage_actions(body: bytes | str, payload_id: str = "") -> pl.DataFrame | None:
    """The splits and dividends of a TIME_SERIES_DAILY_ADJUSTED body (ACTION_RECORD_SCHEMA):
    a day's "8. split coefficient" other than 1 is a split of that ratio on that day (its
    ex-date), a "7. dividend amount" above 0 a dividend (Alpha Vantage states it as paid, not
    split-adjusted, like its unadjusted close). Other series (TIME_SERIES_DAILY, which the
    client asks for on a free key) carry neither column: None, they say nothing; error bodies
    give none (the bars' parser reports them). Days outside the payload's window are left
    out, as its bars are. A value that is not a number raises
    `PayloadFormatError` naming the day and the field."""
    document = load_json_object(body, payload_id)
    if any(key in document for key in ("Error Message", "Information", "Note")):
        return empty(ACTION_RECORD_SCHEMA)
    meta = document.get("Meta Data")
    series_keys = [key for key in document if key.startswith("Time Series")]
    if not isinstance(meta, dict) or len(series_keys) != 1 or "Daily" not in series_keys[0]:
        return None
    series = document[series_keys[0]]
    if not isinstance(series, dict):
        raise PayloadFormatError(
            f"payload {payload_id or '?'}: {series_keys[0]!r} is not an object"
        )
    if not _sends_adjusted(series):
        return None
    av_symbol = str(_meta(meta, "Symbol") or "")
    symbol = canonical_symbol(av_symbol) if av_symbol else None
    zone = str(_meta(meta, "Time Zone") or "US/Eastern")
    zone = _TZ_ALIASES.get(zone, zone)
    restamp = _Restamper(
        zone, _exchange_timezone(av_symbol, zone), True, None, payload_window(payload_id)
    )
    rows: list[dict[str, Any]] = []
    for stamp, fields in series.items():
        if isinstance(fields, dict) and restamp(str(stamp)) is not None:
            rows += _day_actions(str(stamp), fields, symbol, f"payload {payload_id or '?'}")
    if not rows:
        return empty(ACTION_RECORD_SCHEMA)
    return pl.DataFrame(rows, schema=ACTION_RECORD_SCHEMA)


def _day_actions(
    stamp: str, fields: Mapping[str, Any], symbol: str | None, pid: str
) -> list[dict[str, Any]]:
    """A day's split (coefficient other than 1) and dividend (amount above 0), if any."""
    named = {str(k).split(". ", 1)[-1].strip().lower(): v for k, v in fields.items()}
    where = f"{pid}: {symbol} at {stamp}"
    try:
        day = dt.date.fromisoformat(stamp[:10])
    except ValueError:
        raise PayloadFormatError(f"{where}: {stamp!r} is not a date") from None
    ratio = _number(named.get("split coefficient"), f"{where}: split coefficient", 1.0)
    amount = _number(named.get("dividend amount"), f"{where}: dividend amount", 0.0)
    if ratio <= 0:
        raise PayloadFormatError(f"{where}: split coefficient {ratio!r} must be > 0")
    if amount < 0:
        raise PayloadFormatError(f"{where}: dividend amount {amount!r} must be >= 0")
    rows: list[dict[str, Any]] = []
    if ratio != 1.0:
        rows.append({"ex_date": day, "symbol": symbol, "kind": "split", "ratio": ratio})
    if amount > 0:
        rows.append({"ex_date": day, "symbol": symbol, "kind": "dividend", "amount": amount})
    return rows


def _number(value: Any, what: str, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PayloadFormatError(f"{what} is {value!r}, not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise PayloadFormatError(f"{what} is {value!r}, not a finite number")
    return number


class _Restamper:
    """Alpha Vantage key -> exchange-local text, or None when outside the payload window.
    Unreadable keys pass as received (the cleaning step quarantines them with the reason)."""

    def __init__(
        self,
        source_tz: str,
        target_tz: str,
        daily: bool,
        shift: dt.timedelta | None,
        window: tuple[dt.datetime, dt.datetime] | None,
    ) -> None:
        self.source = ZoneInfo(source_tz)
        self.target = ZoneInfo(target_tz)
        self.same_zone = source_tz == target_tz
        self.daily = daily
        self.shift = shift
        self.window = window

    def __call__(self, stamp: str) -> str | None:
        text = stamp.strip()
        if self.daily:
            if self.window is None:
                return text
            try:
                day = dt.date.fromisoformat(text[:10])
            except ValueError:
                return text
            day_start = dt.datetime.combine(day, dt.time(), self.target)
            day_end = day_start + dt.timedelta(days=1)
            return text if day_start < self.window[1] and day_end > self.window[0] else None
        if self.same_zone and self.window is None and self.shift is None:
            return text
        try:
            local = dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=self.source)
        except ValueError:
            return text
        if self.shift is not None:
            local -= self.shift
        if self.window is not None and not self.window[0] <= local < self.window[1]:
            return None
        return local.astimezone(self.target).strftime("%Y-%m-%d %H:%M:%S")


def _meta(meta: Mapping[str, Any], name: str) -> Any:
    """A Meta Data value by name, whatever its number ("2. Symbol", "6. Time Zone")."""
    for key, value in meta.items():
        if str(key).split(". ", 1)[-1].strip().lower() == name.lower():
            return value
    return None
