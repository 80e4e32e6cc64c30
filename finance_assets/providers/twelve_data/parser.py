"""Twelve Data's symbol notation and the parser of its `/time_series` bodies (format
"twelve_data"), single-symbol or batch; apart from the client (`twelve_data.py`), which
re-exports these names.

Canonical symbols are the constituents lists' (`BRK.B`, `BT.A.L`). US share classes keep the
dot (`BRK.B`, which is Twelve Data's notation too). London listings drop the `.L` suffix and
are asked for with `exchange=LSE`; Twelve Data answers them with meta `symbol=BT.A`,
`exchange=LSE`, `mic_code=XLON`, which `canonical_symbol` maps back.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import polars as pl

from finance_assets.lib.providers.base import (
    PayloadFormatError,
    json_object_or_none,
    load_json_object,
    raw_text,
)
from finance_assets.lib.schema import (
    ACTION_RECORD_SCHEMA,
    RAW_RECORD_FIELDS,
    RAW_RECORD_SCHEMA,
    empty,
)

FORMAT = "twelve_data"
# The answers of `/splits` and `/dividends` (one symbol, one endpoint each): corporate actions
# only, never bars. A format of their own, which no bars parser reads, so the clean step can
# never take such a payload for an answer about bars (`registry.actions_only_formats`).
ACTIONS_FORMAT = "twelve_data_actions"

# Canonical suffix -> Twelve Data exchange code (and the MIC it answers with).
_EXCHANGES = {".L": ("LSE", "XLON")}


def to_twelve_data(symbol: str) -> tuple[str, str | None]:
    """Canonical symbol -> (Twelve Data symbol, exchange parameter or None)."""
    for suffix, (exchange, _) in _EXCHANGES.items():
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return symbol[: -len(suffix)], exchange
    return symbol, None


def canonical_symbol(symbol: str, exchange: str | None = None, mic_code: str | None = None) -> str:
    """Twelve Data (symbol, exchange, mic_code) -> the canonical symbol (`BT.A` on LSE ->
    `BT.A.L`). Symbols already canonical (the simulated provider's) pass unchanged."""
    for suffix, (code, mic) in _EXCHANGES.items():
        if (exchange == code or mic_code == mic) and not symbol.endswith(suffix):
            return symbol + suffix
    return symbol


def error_code(item: Mapping[str, Any]) -> int | None:
    """An error entry's `code` as a number, None when it has none."""
    try:
        return int(item.get("code"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


# --- the parser ----------------------------------------------------------------------------


def parse_twelve_data(
    body: bytes | str, payload_id: str = ""
) -> tuple[pl.DataFrame, dict[str, str]]:
    """Read a Twelve Data `/time_series` body, single-symbol or batch, into raw text records.

    Returns (records, errors): errors maps symbol -> provider message for symbols that failed
    inside a batch (or for the one symbol of a failed single request).
    """
    document = load_json_object(body, payload_id)
    if "values" in document or "meta" in document or document.get("status") == "error":
        series = {str((document.get("meta") or {}).get("symbol", "")): document}
    else:
        series = document
    frames: list[pl.DataFrame] = []
    errors: dict[str, str] = {}
    for symbol, item in series.items():
        if not isinstance(item, dict):
            raise PayloadFormatError(
                f"payload {payload_id or '?'}: entry {symbol!r} is not an object"
            )
        if item.get("status") == "error":
            errors[symbol or "?"] = f"{item.get('code', '?')}: {item.get('message', 'error')}"
            continue
        values = item.get("values")
        if not isinstance(values, list):
            raise PayloadFormatError(
                f"payload {payload_id or '?'}: symbol {symbol!r} has no 'values' list"
            )
        meta = item.get("meta") or {}
        if not values:
            continue
        frame = _text_records(values, payload_id, symbol)
        # London answers `BT.A` with exchange LSE: back to the canonical `BT.A.L`.
        canonical = canonical_symbol(
            str(meta.get("symbol") or symbol), meta.get("exchange"), meta.get("mic_code")
        )
        frames.append(
            frame.with_columns(
                payload_id=pl.lit(payload_id),
                symbol=pl.lit(canonical),
                currency=pl.lit(meta.get("currency"), dtype=pl.String),
            )
        )
    if not frames:
        return empty(RAW_RECORD_SCHEMA), errors
    return pl.concat(frames, how="vertical").select(list(RAW_RECORD_SCHEMA)), errors


def _text_records(values: list[object], payload_id: str, symbol: str) -> pl.DataFrame:
    """Twelve Data's `values` as raw text records.

    The provider sends every field as a string, which polars takes as is (the fast path). A
    field sent as a JSON number polars cannot hold as text (an integer beyond 64 bits, a list)
    is converted here, one value at a time, so that the cleaning step quarantines the record
    with its reason instead of the whole payload failing.
    """
    schema = dict.fromkeys(RAW_RECORD_FIELDS, pl.String)
    try:
        return pl.DataFrame(values, schema=schema, strict=False)
    except (TypeError, ValueError, pl.exceptions.PolarsError):
        pass
    if not all(isinstance(value, dict) for value in values):
        raise PayloadFormatError(
            f"payload {payload_id or '?'}: symbol {symbol!r} values are not records"
        )
    rows = [{name: raw_text(value.get(name)) for name in RAW_RECORD_FIELDS} for value in values]  # type: ignore[union-attr]
    return pl.DataFrame(rows, schema=schema)


def twelve_data_errors(body: bytes | str) -> dict[str, str]:
    """The per-symbol errors of a Twelve Data body, without building any frame."""
    # An error entry carries `"status": "error"`: a body without that string has none, and a
    # 100 MB backfill batch need not be decoded twice to find that out.
    marker = b'"error"' if isinstance(body, bytes) else '"error"'
    if marker not in body:
        return {}
    document = json_object_or_none(body)
    if document is None:
        return {}
    if document.get("status") == "error":
        return {"?": f"{document.get('code', '?')}: {document.get('message', 'error')}"}
    if "values" in document or "meta" in document:
        return {}
    return {
        str(symbol): f"{item.get('code', '?')}: {item.get('message', 'error')}"
        for symbol, item in document.items()
        if isinstance(item, dict) and item.get("status") == "error"
    }


# --- corporate actions -----------------------------------------------------------------------


def parse_twelve_data_actions(body: bytes | str, payload_id: str = "") -> pl.DataFrame | None:
    """The splits and dividends in a Twelve Data body (ACTION_RECORD_SCHEMA), single-symbol or
    batch, in the shapes of its `/splits` (`splits: [{date, from_factor, to_factor}]`, 4-for-1
    as from 4 to 1, or its description "4-for-1 split") and `/dividends` (`dividends:
    [{ex_date, amount}]`) answers: the client's `/splits` and `/dividends` payloads (format
    `ACTIONS_FORMAT`) and the simulated market's daily bodies, which add them beside
    `values`. Real `/time_series` bodies carry neither. Entries with a
    value that is not a positive number raise `PayloadFormatError` naming it. A body with
    neither list says nothing about corporate actions: None."""
    document = load_json_object(body, payload_id)
    pid = payload_id or "?"
    if "values" in document or "meta" in document or "status" in document:
        series = {str((document.get("meta") or {}).get("symbol", "")): document}
    else:
        series = document
    if not any(
        isinstance(item, dict) and ("splits" in item or "dividends" in item)
        for item in series.values()
    ):
        return None
    rows: list[dict[str, object]] = []
    for key, item in series.items():
        if not isinstance(item, dict) or item.get("status") == "error":
            continue
        meta = item.get("meta") or {}
        symbol = canonical_symbol(
            str(meta.get("symbol") or key), meta.get("exchange"), meta.get("mic_code")
        )
        for entry in _entries(item, "splits", pid, symbol):
            where = f"payload {pid}: {symbol}: split {entry.get('date')!r}"
            ratio = _split_ratio(entry, where)
            rows.append(
                {
                    "ex_date": _date(entry.get("date"), where),
                    "symbol": symbol,
                    "kind": "split",
                    "ratio": ratio,
                }
            )
        for entry in _entries(item, "dividends", pid, symbol):
            where = f"payload {pid}: {symbol}: dividend {entry.get('ex_date')!r}"
            amount = _factor(entry.get("amount"), where, zero=True)
            rows.append(
                {
                    "ex_date": _date(entry.get("ex_date"), where),
                    "symbol": symbol,
                    "kind": "dividend",
                    "amount": amount,
                }
            )
    if not rows:
        return empty(ACTION_RECORD_SCHEMA)
    return pl.DataFrame(rows, schema=ACTION_RECORD_SCHEMA)


# "4-for-1 split", "1-for-10 reverse split": new shares for old.
_N_FOR_M = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*-?\s*for\s*-?\s*(\d+(?:\.\d+)?)\b", re.I)


def _split_ratio(entry: Mapping[str, Any], where: str) -> float:
    """New shares per old share. The description ("4-for-1 split") first: Twelve Data's own
    examples of AAPL's 2020 split state the factors both ways round (`from_factor` 4,
    `to_factor` 1, `ratio` 0.25 in one version of its docs; 1, 4 and 4 in another), while the
    description reads "4-for-1" in both. Without a readable description, `from_factor /
    to_factor`, as the first version (and the simulated market) has it."""
    found = _N_FOR_M.match(str(entry.get("description") or ""))
    if found:
        new, old = float(found.group(1)), float(found.group(2))
        if new > 0 and old > 0:
            return new / old
    return _factor(entry.get("from_factor"), where) / _factor(entry.get("to_factor"), where)


def _entries(item: Mapping[str, Any], key: str, pid: str, symbol: str) -> list[dict[str, Any]]:
    entries = item.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise PayloadFormatError(f"payload {pid}: {symbol}: '{key}' is not a list of objects")
    return entries


def _date(value: Any, where: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise PayloadFormatError(f"{where}: date {value!r} is not YYYY-MM-DD") from None


def _factor(value: Any, where: str, *, zero: bool = False) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise PayloadFormatError(f"{where}: {value!r} is not a number") from None
    if not (number >= 0 if zero else number > 0) or number == float("inf"):
        raise PayloadFormatError(f"{where}: {value!r} must be {'>=' if zero else '>'} 0")
    return number
