"""Format "yahoo_csv": the CSV files users drop into the landing zone, in Yahoo Finance's export
format (provider "landing_zone", daily bars). Mirrors `parse_yahoo_csv` in
`lib/providers/csv_files.py`: the same header rule, the same refusals with the same messages,
dates as `YYYY-MM-DD` (slashed dates month-first or day-first as the file proves), prices and
volumes as received, the `Symbol` column canonicalised (null without one: the envelope names
the symbol).

Two passes over the body: the distinct dates first (a file whose dates cannot be read is
refused before any record), then the records, one at a time (an executor never holds a large
file's rows, only its bytes).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator, Sequence

from bars_format_yahoo_chart import canonical_symbol as yahoo_symbol
from bars_rules import PayloadError, Record

_HEADER = {
    "date": "datetime",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adj close": "adj_close",
    "volume": "volume",
    "symbol": "symbol",
}
_REQUIRED = ("date", "open", "high", "low", "close", "volume")
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SLASH_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
_FIELDS = ["datetime", "open", "high", "low", "close", "volume", "adj_close"]


def canonical_symbol(symbol: str) -> str:
    return yahoo_symbol(symbol.strip().upper())


def _csv_rows(body: bytes, where: str) -> tuple[dict[str, int], Iterator[tuple[int, list[str]]]]:
    """The header's column positions and the data rows as (line number, fields)."""
    stream = io.TextIOWrapper(io.BytesIO(body), encoding="utf-8-sig", newline="")
    reader = csv.reader(stream, strict=True)

    def failure(exc: Exception) -> PayloadError:
        if isinstance(exc, UnicodeDecodeError):
            return PayloadError(f"{where}: not UTF-8 text ({exc.reason})")
        return PayloadError(f"{where}: not a CSV file (line {reader.line_num}: {exc})")

    try:
        header = next((row for row in reader if any(v.strip() for v in row)), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise failure(exc) from None
    if header is None:
        raise PayloadError(f"{where}: empty file")
    names = [h.strip().lower() for h in header]
    unknown = [h for h, n in zip(header, names, strict=True) if n not in _HEADER]
    missing = [c.title() for c in _REQUIRED if c not in names]
    if unknown or missing or len(set(names)) != len(names):
        raise PayloadError(
            f"{where}: expected the columns Date,Open,High,Low,Close[,Adj Close],Volume"
            f"[,Symbol]; got {','.join(header)}"
            + (f" (missing {', '.join(missing)})" if missing else "")
            + (f" (unexpected {', '.join(unknown)})" if unknown else "")
        )
    width = len(header)

    def rows() -> Iterator[tuple[int, list[str]]]:
        try:
            for row in reader:
                if len(row) != width:
                    if not any(v.strip() for v in row):
                        continue  # a blank line
                    raise PayloadError(
                        f"{where}: line {reader.line_num} has {len(row)} fields, "
                        f"the header has {width}"
                    )
                yield reader.line_num, row
        except (UnicodeDecodeError, csv.Error) as exc:
            raise failure(exc) from None

    return {_HEADER[n]: i for i, n in enumerate(names)}, rows()


def parse(body: bytes, payload_id: str) -> tuple[Iterator[Record], dict[str, str]]:
    """(records, no errors: a CSV export carries no provider messages). Raises PayloadError on
    a file that is not such a CSV, before the first record."""
    where = f"payload {payload_id or '?'}"
    index, rows = _csv_rows(body, where)
    first_lines: dict[str, int] = {}
    at = index["datetime"]
    for line, row in rows:
        first_lines.setdefault(row[at], line)
    texts = list(first_lines)
    dates = dict(zip(texts, _iso_dates(texts, list(first_lines.values()), where), strict=True))
    return _records(body, where, dates), {}


def _records(body: bytes, where: str, dates: dict[str, str]) -> Iterator[Record]:
    index, rows = _csv_rows(body, where)
    positions = [index.get(name) for name in _FIELDS]
    symbol_at = index.get("symbol")
    symbols: dict[str, str | None] = {}
    for _, row in rows:
        fields = [None if i is None else row[i] for i in positions]
        fields[0] = dates[fields[0]]  # type: ignore[index]
        symbol = None
        if symbol_at is not None:
            raw = row[symbol_at]
            if raw not in symbols:
                symbols[raw] = canonical_symbol(raw) or None
            symbol = symbols[raw]
        yield (symbol, None, *fields)


def _iso_dates(raw: Sequence[str | None], lines: Sequence[int], where: str) -> list[str]:
    stripped = [(text or "").strip() for text in raw]
    slashed = [m for text in stripped if (m := _SLASH_DATE.fullmatch(text))]
    # Month-first (Yahoo's US export) when a second field above 12 proves it, day-first when a
    # first field does; a file that cannot tell is refused rather than read the wrong way round.
    day_first = any(int(m.group(1)) > 12 for m in slashed)
    month_first = any(int(m.group(2)) > 12 for m in slashed)
    if day_first and month_first:
        raise PayloadError(f"{where}: slashed dates mix day-first and month-first")
    if not day_first and not month_first and any(m.group(1) != m.group(2) for m in slashed):
        raise PayloadError(
            f"{where}: slashed dates could be month-first or day-first; write them as YYYY-MM-DD"
        )
    out: list[str] = []
    for i, value in enumerate(stripped):
        try:
            if _ISO_DATE.fullmatch(value):
                out.append(dt.date.fromisoformat(value).isoformat())
                continue
            if m := _SLASH_DATE.fullmatch(value):
                a, b, year = int(m.group(1)), int(m.group(2)), int(m.group(3))
                month, day = (b, a) if day_first else (a, b)
                out.append(dt.date(year, month, day).isoformat())
                continue
        except ValueError:
            pass
        raise PayloadError(f"{where}: line {lines[i]}: {raw[i]!r} is not a date")
    return out
