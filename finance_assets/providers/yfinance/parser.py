"""Yahoo's symbol notation and the parser of its v8 chart bodies (format "yahoo_chart"), apart
from the client (`client.py`): replays and the cleaning step read bodies without yfinance.

Symbol notation: the universe lists write `BRK.B` and `BT.A.L`, Yahoo writes `BRK-B` and
`BT-A.L`. `to_yahoo` / `canonical_symbol` map both ways; payloads and records hold the canonical
symbol. `.L` (London) is the only exchange suffix known; other suffixes pass as written.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import polars as pl

from finance_assets.lib.providers.base import (
    PayloadFormatError,
    load_json_object,
    payload_window,
    raw_text,
)
from finance_assets.lib.schema import ACTION_RECORD_SCHEMA, RAW_RECORD_SCHEMA, empty

FORMAT = "yahoo_chart"
_SUFFIXES = (".L",)  # exchange suffixes written the same way in both notations

# The records `parse_yahoo_chart` returns: the raw-record columns plus adj_close (text).
YAHOO_RECORD_SCHEMA: dict[str, pl.DataType] = {**RAW_RECORD_SCHEMA, "adj_close": pl.String()}


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


def error_text(error: Any) -> str:
    """A chart error object as `code: description`."""
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
        return empty(YAHOO_RECORD_SCHEMA), {"?": error_text(chart["error"])}
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
    return [raw_text(value) for value in values]


def _stamp(
    stamp: Any,
    tz: dt.tzinfo,
    daily: bool,
    window: tuple[dt.datetime, dt.datetime] | None,
) -> tuple[str | None, bool]:
    """(exchange-local text, inside the payload window). An unreadable stamp passes as received:
    the cleaning step quarantines it with the reason."""
    if stamp is None or isinstance(stamp, bool) or not isinstance(stamp, int | float):
        return (None if stamp is None else raw_text(stamp)), True
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


# --- corporate actions -----------------------------------------------------------------------


def parse_yahoo_events(body: bytes | str, payload_id: str = "") -> pl.DataFrame:
    """The splits and dividends of a chart body's `events` (ACTION_RECORD_SCHEMA), the client
    asks for them (`events=div,splits`). `ex_date` is the exchange-local date of the event's
    `date`. A split's ratio is `numerator / denominator` (4:1 -> 4.0). Yahoo states dividends
    split-adjusted as of the fetch, like its prices. Events outside the payload's window are
    left out, as its bars are. A chart error or a body without events gives none; an event
    without a usable value raises `PayloadFormatError` naming it."""
    document = load_json_object(body, payload_id)
    pid = payload_id or "?"
    chart = document.get("chart")
    if not isinstance(chart, dict):
        raise PayloadFormatError(f"payload {pid}: no 'chart' object (keys {sorted(document)[:6]})")
    result = chart.get("result")
    if chart.get("error") or not isinstance(result, list):
        return empty(ACTION_RECORD_SCHEMA)
    window = payload_window(payload_id)
    rows: list[dict[str, Any]] = []
    for item in result:
        if not isinstance(item, dict) or not isinstance(item.get("meta"), dict):
            raise PayloadFormatError(f"payload {pid}: chart result without 'meta'")
        events = item.get("events")
        if not events:
            continue
        if not isinstance(events, dict):
            raise PayloadFormatError(f"payload {pid}: 'events' is not an object")
        rows += _event_rows(item["meta"], events, pid, window)
    if not rows:
        return empty(ACTION_RECORD_SCHEMA)
    return pl.DataFrame(rows, schema=ACTION_RECORD_SCHEMA)


def _event_rows(
    meta: Mapping[str, Any],
    events: Mapping[str, Any],
    pid: str,
    window: tuple[dt.datetime, dt.datetime] | None,
) -> list[dict[str, Any]]:
    symbol = canonical_symbol(str(meta.get("symbol") or ""))
    tz = _exchange_tz(meta, pid, symbol)
    rows: list[dict[str, Any]] = []
    for kind, key in (("split", "splits"), ("dividend", "dividends")):
        entries = events.get(key) or {}
        if not isinstance(entries, dict):
            raise PayloadFormatError(f"payload {pid}: {symbol}: events.{key} is not an object")
        for name, event in entries.items():
            where = f"payload {pid}: {symbol}: events.{key}.{name}"
            if not isinstance(event, dict):
                raise PayloadFormatError(f"{where} is not an object")
            stamp = event.get("date", name)
            try:
                day = dt.datetime.fromtimestamp(float(stamp), tz).date()
            except (TypeError, ValueError, OverflowError, OSError):
                raise PayloadFormatError(f"{where}: date {stamp!r} is not a time") from None
            day_start = dt.datetime.combine(day, dt.time(), tz)
            if window is not None and not (
                day_start < window[1] and day_start + dt.timedelta(days=1) > window[0]
            ):
                continue  # outside what was asked for, as the bars
            row: dict[str, Any] = {"ex_date": day, "symbol": symbol, "kind": kind}
            if kind == "split":
                row["ratio"] = _split_ratio(event, where)
            else:
                row["amount"] = _positive(event.get("amount"), f"{where}: amount", zero=True)
            rows.append(row)
    return rows


def _split_ratio(event: Mapping[str, Any], where: str) -> float:
    numerator = _positive(event.get("numerator"), f"{where}: numerator")
    denominator = _positive(event.get("denominator"), f"{where}: denominator")
    return numerator / denominator


def _positive(value: Any, what: str, *, zero: bool = False) -> float:
    """A number > 0 (>= 0 with `zero`), or `PayloadFormatError` naming `what`."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PayloadFormatError(f"{what} is {value!r}, not a number")
    try:
        number = float(value)
    except ValueError:
        raise PayloadFormatError(f"{what} is {value!r}, not a number") from None
    if not (number >= 0 if zero else number > 0) or number == float("inf"):
        raise PayloadFormatError(f"{what} is {value!r}: must be {'>=' if zero else '>'} 0")
    return number
