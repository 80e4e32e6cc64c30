"""Format "yahoo_chart": Yahoo's v8 chart bodies (the yfinance provider's). Mirrors
`parse_yahoo_chart` in `lib/providers/yahoo_chart.py`: epoch stamps become exchange-local text
(meta `exchangeTimezoneName`, else the fixed `gmtoffset`), bars outside the window in the
payload id are left out, nulls stay null (Yahoo's placeholders are quarantined, not hidden),
`adjclose` is kept as `adj_close`, a chart error has no records and its message under "?"."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bars_rules import PayloadError, Record, load_json_object, payload_window, raw_text

SUFFIXES = (".L",)  # exchange suffixes written the same way in both notations
_QUOTE_FIELDS = ("open", "high", "low", "close", "volume")


def canonical_symbol(yahoo_symbol: str) -> str:
    """Yahoo notation -> canonical (`BRK-B` -> `BRK.B`, `BT-A.L` -> `BT.A.L`)."""
    symbol = yahoo_symbol.strip()
    for suffix in SUFFIXES:
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return symbol[: -len(suffix)].replace("-", ".") + suffix
    if "." in symbol:
        return symbol
    return symbol.replace("-", ".")


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return f"{error.get('code', '?')}: {error.get('description', 'error')}"
    return str(error)


def parse(body: bytes, payload_id: str) -> tuple[list[Record], dict[str, str]]:
    document = load_json_object(body, payload_id)
    pid = payload_id or "?"
    chart = document.get("chart")
    if not isinstance(chart, dict):
        raise PayloadError(f"payload {pid}: no 'chart' object (keys {sorted(document)[:6]})")
    if chart.get("error"):
        return [], {"?": _error_text(chart["error"])}
    result = chart.get("result")
    if not isinstance(result, list) or not result:
        raise PayloadError(f"payload {pid}: chart has neither 'result' nor 'error'")
    window = payload_window(payload_id)
    records: list[Record] = []
    for item in result:
        records += _records(item, pid, window)
    return records, {}


def _records(item: Any, pid: str, window: tuple[dt.datetime, dt.datetime] | None) -> list[Record]:
    if not isinstance(item, dict) or not isinstance(item.get("meta"), dict):
        raise PayloadError(f"payload {pid}: chart result without 'meta'")
    meta = item["meta"]
    yahoo_symbol = meta.get("symbol")
    if not isinstance(yahoo_symbol, str) or not yahoo_symbol.strip():
        raise PayloadError(f"payload {pid}: chart meta names no symbol")
    symbol = canonical_symbol(yahoo_symbol)
    granularity = str(meta.get("dataGranularity") or "")
    if not granularity:
        raise PayloadError(f"payload {pid}: {symbol}: chart meta has no dataGranularity")
    daily = granularity.endswith(("d", "wk", "mo"))
    tz = _exchange_tz(meta, pid, symbol)
    timestamps = item.get("timestamp") or []
    if not isinstance(timestamps, list):
        raise PayloadError(f"payload {pid}: {symbol}: 'timestamp' is not a list")
    if not timestamps:
        return []  # nothing traded in the window (a weekend, a holiday)
    indicators = item.get("indicators")
    quotes = indicators.get("quote") if isinstance(indicators, dict) else None
    if not isinstance(quotes, list) or not quotes or not isinstance(quotes[0], dict):
        raise PayloadError(f"payload {pid}: {symbol}: no 'indicators.quote' object")
    n = len(timestamps)
    columns = [_column(quotes[0].get(name), n, pid, symbol, name) for name in _QUOTE_FIELDS]
    adjusted = indicators.get("adjclose")
    adj_values = (
        adjusted[0].get("adjclose")
        if isinstance(adjusted, list) and adjusted and isinstance(adjusted[0], dict)
        else None
    )
    columns.append(_column(adj_values, n, pid, symbol, "adjclose"))
    currency = raw_text(meta.get("currency"))
    records: list[Record] = []
    for i, stamp in enumerate(timestamps):
        text, inside = _stamp(stamp, tz, daily, window)
        if inside:
            records.append((symbol, currency, text, *(column[i] for column in columns)))
    return records


def _column(values: Any, n: int, pid: str, symbol: str, name: str) -> list[str | None]:
    if values is None:
        return [None] * n
    if not isinstance(values, list) or len(values) != n:
        raise PayloadError(
            f"payload {pid}: {symbol}: '{name}' is not a list of {n} values (one per timestamp)"
        )
    return [raw_text(value) for value in values]


def _stamp(
    stamp: Any, tz: dt.tzinfo, daily: bool, window: tuple[dt.datetime, dt.datetime] | None
) -> tuple[str | None, bool]:
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
    offset = meta.get("gmtoffset")  # the offset now, not on each bar's date: a fallback only
    if isinstance(offset, int | float) and not isinstance(offset, bool):
        return dt.timezone(dt.timedelta(seconds=offset))
    raise PayloadError(f"payload {pid}: {symbol}: chart meta has no usable exchange time zone")
