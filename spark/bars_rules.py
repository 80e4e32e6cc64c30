"""The project's rules the Spark job mirrors, and the helpers every format's parser shares.

Standard library only: the executors import this with the parsers, and a cluster runs it
without the finance_assets package. `finance_assets_tests/test_spark/` compares each constant
with the package's (`lib/schema.py`, `lib/markets.py`, the resources' defaults) and each helper
with the polars path's, so a change on one side fails there.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from typing import Any
from zoneinfo import ZoneInfo

MAX_PRICE = 1e12
MAX_VOLUME = 2.0**63
BAR_MINUTES = 5
PRICE_COLUMNS = ["open", "high", "low", "close"]
RAW_RECORD_FIELDS = ["datetime", "open", "high", "low", "close", "volume"]
# market key -> (exchange calendar, timezone), as lib/markets.py defines them.
MARKETS = {"us": ("XNYS", "America/New_York"), "uk": ("XLON", "Europe/London")}
# The default markets' calendar starts here (lib/markets.py: the earliest partition start less
# 30 days); a daily record dated before it is no session there, so it is none here either.
CALENDAR_START = "2024-12-03"
# The data-quality default (FINANCE_MAX_QUARANTINE_RATE): a landing file whose own records are
# invalid beyond it is rejected as a whole.
MAX_QUARANTINE_RATE = 0.05
LANDING_PROVIDER = "landing_zone"  # lib/providers/csv_files.PROVIDER
INTERVALS = ("5min", "1day")

# A record as the parsers give it: the raw text fields (adj_close null where a format has none).
RECORD_FIELDS = ["symbol", "currency", *RAW_RECORD_FIELDS, "adj_close"]
Record = tuple[str | None, ...]

_ID_STAMP = "%Y%m%dT%H%M%SZ"
# polars' `str.to_date("%Y-%m-%d", strict=False)`: 1-4 digit years, 1-2 digit months and days.
_DAY = re.compile(r"\+?([0-9]{1,4})-([0-9]{1,2})-([0-9]{1,2})")


class PayloadError(ValueError):
    """A payload the job cannot read (not JSON, not the format's shape, an unknown format):
    where the polars path raises `PayloadFormatError`, the job fails too."""


def _no_constant(name: str) -> float:
    raise ValueError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError("number is infinity when parsed as double")
    return value


def _integer(text: str) -> int | float:
    value = int(text)
    # orjson holds integers in [-2**63, 2**64) and reads larger ones as doubles.
    return value if -(2**63) <= value < 2**64 else _finite(text)


def load_json_object(body: bytes | str, payload_id: str) -> dict[str, Any]:
    """A payload's JSON object, read as strictly as orjson reads it (lib/providers/base.py):
    UTF-8 without a byte-order mark, no NaN or Infinity, no number beyond a double."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
        if text.startswith("\ufeff"):
            raise ValueError("UTF-8 byte order mark (BOM) is not supported")
        document = json.loads(
            text, parse_constant=_no_constant, parse_float=_finite, parse_int=_integer
        )
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise PayloadError(f"payload {payload_id or '?'} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PayloadError(
            f"payload {payload_id or '?'}: expected a JSON object, got {type(document).__name__}"
        )
    return document


def raw_text(value: Any) -> str | None:
    """One JSON value as raw-record text (lib/providers/base.raw_text): strings as sent, numbers
    as Python prints them, an object or list as compact JSON."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def payload_window(payload_id: str) -> tuple[dt.datetime, dt.datetime] | None:
    """The [start, end) a payload id encodes (`<start>_<end>_<fetched>_b<batch>`), or None."""
    parts = (payload_id or "").split("_")
    if len(parts) < 2:
        return None
    try:
        start, end = (dt.datetime.strptime(p, _ID_STAMP).replace(tzinfo=dt.UTC) for p in parts[:2])
    except ValueError:
        return None
    return (start, end) if start < end else None


def local_to_utc_us(text: str | None, tz: ZoneInfo) -> int | None:
    """Exchange-local `YYYY-MM-DD HH:MM:SS` -> UTC epoch microseconds; None when unparseable or
    inside a DST gap; the earlier of two in a DST overlap (polars: ambiguous="earliest",
    non_existent="null")."""
    if text is None:
        return None
    try:
        naive = dt.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    aware = naive.replace(tzinfo=tz, fold=0)
    if aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return None  # a wall time the clocks skipped
    delta = aware.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def local_day(text: str | None) -> dt.date | None:
    """A daily record's `YYYY-MM-DD` as a date, None when it is none (polars' non-strict
    `str.to_date("%Y-%m-%d")` after stripping)."""
    match = _DAY.fullmatch(text.strip()) if text is not None else None
    if match is None:
        return None
    try:
        return dt.date(*(int(part) for part in match.groups()))
    except ValueError:  # 2026-11-31, year 0
        return None
