"""Format "alpha_vantage": Alpha Vantage `TIME_SERIES_INTRADAY` / `TIME_SERIES_DAILY` bodies, one
symbol each. Mirrors `parse_alpha_vantage` in `lib/providers/alpha_vantage.py`: keys become
exchange-local `YYYY-MM-DD HH:MM:SS` bar starts (`YYYY-MM-DD` daily), bars outside the window
in the payload id are left out (Alpha Vantage cannot filter by time), an error body has no
records and its message under "?"."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from bars_rules import (
    RAW_RECORD_FIELDS,
    PayloadError,
    Record,
    load_json_object,
    payload_window,
)

INTRADAY_LABEL = "start"  # what Alpha Vantage's intraday keys label: the bar's start
SUFFIXES = {".L": (".LON", "Europe/London")}
TZ_ALIASES = {"US/Eastern": "America/New_York", "US/Central": "America/Chicago", "UTC": "UTC"}
_INTERVAL_MINUTES = re.compile(r"\((\d+)min\)")


def canonical_symbol(av_symbol: str) -> str:
    """Alpha Vantage notation -> canonical (`BT-A.LON` -> `BT.A.L`, `BRK-B` -> `BRK.B`)."""
    symbol = av_symbol.strip().upper()
    for suffix, (av_suffix, _) in SUFFIXES.items():
        if symbol.endswith(av_suffix) and len(symbol) > len(av_suffix):
            return symbol[: -len(av_suffix)].replace("-", ".") + suffix
    if "." in symbol:
        return symbol
    return symbol.replace("-", ".")


def _exchange_timezone(av_symbol: str, default: str) -> str:
    for av_suffix, tz in SUFFIXES.values():
        if av_symbol.strip().upper().endswith(av_suffix):
            return tz
    return default


def _meta(meta: Mapping[str, Any], name: str) -> Any:
    for key, value in meta.items():
        if str(key).split(". ", 1)[-1].strip().lower() == name.lower():
            return value
    return None


def parse(body: bytes, payload_id: str) -> tuple[list[Record], dict[str, str]]:
    document = load_json_object(body, payload_id)
    pid = payload_id or "?"
    for key in ("Error Message", "Information", "Note"):
        if key in document:
            return [], {"?": f"{key}: {document[key]}"}
    meta = document.get("Meta Data")
    series_keys = [key for key in document if key.startswith("Time Series")]
    if not isinstance(meta, dict) or len(series_keys) != 1:
        raise PayloadError(
            f"payload {pid}: expected 'Meta Data' and one 'Time Series (...)', "
            f"got keys {sorted(document)[:6]}"
        )
    series = document[series_keys[0]]
    if not isinstance(series, dict):
        raise PayloadError(f"payload {pid}: {series_keys[0]!r} is not an object")
    av_symbol = str(_meta(meta, "Symbol") or "")
    symbol = canonical_symbol(av_symbol) if av_symbol else "?"
    zone = str(_meta(meta, "Time Zone") or "US/Eastern")
    source_tz = TZ_ALIASES.get(zone, zone)
    target_tz = _exchange_timezone(av_symbol, source_tz)
    minutes = _INTERVAL_MINUTES.search(series_keys[0])
    shift = (
        dt.timedelta(minutes=int(minutes.group(1))) if minutes and INTRADAY_LABEL == "end" else None
    )
    try:
        restamp = _Restamper(
            source_tz, target_tz, "Daily" in series_keys[0], shift, payload_window(payload_id)
        )
    except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
        raise PayloadError(f"payload {pid}: unknown time zone {zone!r}") from None
    records: list[Record] = []
    for stamp, fields in series.items():
        if not isinstance(fields, dict):
            raise PayloadError(f"payload {pid}: {symbol} at {stamp!r} is not an object")
        text = restamp(str(stamp))
        if text is None:
            continue  # outside the payload's window
        record: dict[str, str | None] = dict.fromkeys(RAW_RECORD_FIELDS)
        record["datetime"] = text
        for key, value in fields.items():
            name = str(key).split(". ", 1)[-1].strip().lower()
            if name in record and name != "datetime":
                record[name] = None if value is None else str(value)
        records.append((symbol, None, *(record[name] for name in RAW_RECORD_FIELDS), None))
    return records, {}


class _Restamper:
    """Alpha Vantage key -> exchange-local text, or None when outside the payload window;
    unreadable keys pass as received (the cleaning step quarantines them)."""

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
