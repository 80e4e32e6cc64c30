"""CSV files in Yahoo Finance's export format (format "yahoo_csv"): what users drop into the
landing zone (`lib/landing/`), read as the payloads of provider "landing_zone".

Two readers over one streaming row reader (`_csv_rows`), so that they accept and refuse the
same files with the same messages: `parse_yahoo_csv` builds the raw text records a run cleans,
`summarize_yahoo_csv` validates a file in bounded memory for the landing sensor (only distinct
dates and symbols are kept). No Dagster here.
"""

from __future__ import annotations

import csv
import datetime as dt
import gc
import io
import itertools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import polars as pl

from finance_assets.lib.providers.base import PayloadFormatError
from finance_assets.providers.yfinance import parser as yahoo_chart

# The payloads of a dropped file: its provider name (how the cleaning step tells a landing
# file from a market-data response) and its format (which parser reads it).
PROVIDER = "landing_zone"
FORMAT = "yahoo_csv"


def canonical_symbol(symbol: str) -> str:
    """Yahoo notation -> canonical, upper case (`brk-b` -> `BRK.B`, `BT-A.L` -> `BT.A.L`), by
    the yfinance provider's rule."""
    return yahoo_chart.canonical_symbol(symbol.strip().upper())


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
# The raw-record columns plus adj_close (text), as the yfinance provider's records.
RECORD_SCHEMA = yahoo_chart.YAHOO_RECORD_SCHEMA
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_SLASH_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")


# Rows per polars frame while a file is read: a million-row file is never held as Python
# strings (8 per row, ~60 bytes each), only as polars columns, plus one chunk.
_CHUNK_ROWS = 50_000
_WANTED = ["symbol", "datetime", "open", "high", "low", "close", "volume", "adj_close"]


def _csv_rows(
    body: bytes | str, where: str
) -> tuple[dict[str, int], Iterator[tuple[int, list[str]]]]:
    """The header's column positions and the data rows as (line number, fields).

    Decodes and reads as it goes: memory is one row, whatever the file's size. The iterator
    raises PayloadFormatError when the text is not UTF-8, not CSV, or a row's field count differs
    from the header's; blank lines are skipped.
    """
    if isinstance(body, bytes):
        stream: io.TextIOBase = io.TextIOWrapper(io.BytesIO(body), encoding="utf-8-sig", newline="")
    else:
        stream = io.StringIO(body.removeprefix("\ufeff"), newline="")
    reader = csv.reader(stream, strict=True)

    def failure(exc: Exception) -> PayloadFormatError:
        if isinstance(exc, UnicodeDecodeError):
            return PayloadFormatError(f"{where}: not UTF-8 text ({exc.reason})")
        return PayloadFormatError(f"{where}: not a CSV file (line {reader.line_num}: {exc})")

    try:
        header = next((row for row in reader if any(v.strip() for v in row)), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise failure(exc) from None
    if header is None:
        raise PayloadFormatError(f"{where}: empty file")
    names = [h.strip().lower() for h in header]
    unknown = [h for h, n in zip(header, names, strict=True) if n not in _HEADER]
    missing = [c.title() for c in _REQUIRED if c not in names]
    if unknown or missing or len(set(names)) != len(names):
        raise PayloadFormatError(
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
                        continue  # a blank line (a trailing newline too many)
                    raise PayloadFormatError(
                        f"{where}: line {reader.line_num} has {len(row)} fields, "
                        f"the header has {width}"
                    )
                yield reader.line_num, row
        except (UnicodeDecodeError, csv.Error) as exc:
            raise failure(exc) from None

    return {_HEADER[n]: i for i, n in enumerate(names)}, rows()


def parse_yahoo_csv(body: bytes | str, payload_id: str = "") -> tuple[pl.DataFrame, dict[str, str]]:
    """Read a Yahoo Finance CSV export into raw text records: RAW_RECORD_SCHEMA plus the
    optional `adj_close`, like the yfinance provider's `yahoo_chart` records.

    Columns (any order and case): `Date, Open, High, Low, Close, Volume`, optionally
    `Adj Close` (null when absent) and `Symbol` (canonicalised, `BRK-B` -> `BRK.B`). Without
    a `Symbol` column `symbol` is null: the payload's envelope names it (`RawPayload.symbols`,
    from the file name).
    Dates come out as `YYYY-MM-DD`: ISO dates as they are, `11/29/2019` month-first (or
    day-first when a day above 12 says so; a file whose slashed dates could be either is an
    error). Prices and volumes stay text as received (`null` included): the cleaning step
    quarantines what is not a number. `currency` is null (the export does not state it).

    Raises PayloadFormatError when the file is not such a CSV (encoding, header, a row with a
    different number of fields, a date that is no date). Errors is always empty: a CSV export
    carries no provider messages.

    Rows are read `_CHUNK_ROWS` at a time into polars columns: a 650,000-row file (49 MB)
    peaks at ~160 MB, where one Python string per field took ~700 MB (and as long).
    """
    where = f"payload {payload_id or '?'}"
    index, rows = _csv_rows(body, where)
    schema = {"_line": pl.Int64, **dict.fromkeys(_WANTED, pl.String)}
    frames: list[pl.DataFrame] = []
    # A chunk is 100,000 live row objects: the cyclic garbage collector would walk them again
    # and again (3x the parse time, measured) though rows hold no cycles. Paused while reading.
    collecting = gc.isenabled()
    gc.disable()
    try:
        while chunk := list(itertools.islice(rows, _CHUNK_ROWS)):
            lines, fields = zip(*chunk, strict=True)
            columns = list(zip(*fields, strict=True))
            frames.append(
                pl.DataFrame(
                    [lines]
                    + [
                        [None] * len(lines) if (i := index.get(name)) is None else columns[i]
                        for name in _WANTED
                    ],
                    schema=schema,
                    orient="col",
                )
            )
            del chunk, fields, columns
    finally:
        if collecting:
            gc.enable()
    frame = pl.concat(frames) if frames else pl.DataFrame(schema=schema)
    # Dates and symbols are few and repeat: each distinct text is converted once, then mapped.
    firsts = frame.group_by("datetime").agg(pl.col("_line").min()).sort("_line")
    texts = firsts.get_column("datetime").to_list()
    dates = _iso_dates(texts, firsts.get_column("_line").to_list(), where)
    symbols = frame.get_column("symbol").drop_nulls().unique().to_list()
    return (
        frame.with_columns(
            datetime=pl.col("datetime").replace_strict(
                dict(zip(texts, dates, strict=True)), return_dtype=pl.String
            ),
            symbol=pl.col("symbol").replace_strict(
                {s: canonical_symbol(s) or None for s in symbols},
                default=None,
                return_dtype=pl.String,
            ),
            payload_id=pl.lit(payload_id, dtype=pl.String),
            currency=pl.lit(None, dtype=pl.String),
        ).select(list(RECORD_SCHEMA)),
        {},
    )


@dataclass(frozen=True)
class CsvSummary:
    """What inspecting a file needs of it, read in one streaming pass."""

    rows: int
    symbols: frozenset[str]  # canonical, from the Symbol column (empty ones left out)
    rows_without_symbol: int
    sessions: tuple[dt.date, ...]  # sorted, distinct


def summarize_yahoo_csv(body: bytes | str, where: str) -> CsvSummary:
    """Validate a Yahoo CSV as `parse_yahoo_csv` does, in bounded memory: only the distinct
    dates and symbols are kept, never the rows (a million duplicated rows cost nothing)."""
    index, rows = _csv_rows(body, where)
    date_at, symbol_at = index["datetime"], index.get("symbol")
    first_lines: dict[str, int] = {}
    raw_symbols: dict[str, int] = {}  # symbol text -> rows
    count = 0
    for line, row in rows:
        count += 1
        first_lines.setdefault(row[date_at], line)
        if symbol_at is not None:
            raw = row[symbol_at]
            raw_symbols[raw] = raw_symbols.get(raw, 0) + 1
    dates = _iso_dates(list(first_lines), list(first_lines.values()), where)
    canonical = {raw: canonical_symbol(raw) for raw in raw_symbols}
    return CsvSummary(
        rows=count,
        symbols=frozenset(symbol for symbol in canonical.values() if symbol),
        rows_without_symbol=(
            count
            if symbol_at is None
            else sum(n for raw, n in raw_symbols.items() if not canonical[raw])
        ),
        sessions=tuple(sorted({dt.date.fromisoformat(d) for d in dates})),
    )


def _iso_dates(raw: Sequence[str | None], lines: Sequence[int], where: str) -> list[str]:
    stripped = [(text or "").strip() for text in raw]
    slashed = [m for text in stripped if (m := _SLASH_DATE.fullmatch(text))]
    # Slashed dates are month-first (Yahoo's US export) when a second field above 12 proves
    # it, day-first when a first field does; a file that cannot tell is refused rather than
    # read the wrong way round (unless every date reads the same both ways, like 1/1/2026).
    day_first = any(int(m.group(1)) > 12 for m in slashed)
    month_first = any(int(m.group(2)) > 12 for m in slashed)
    if day_first and month_first:
        raise PayloadFormatError(f"{where}: slashed dates mix day-first and month-first")
    if not day_first and not month_first and any(m.group(1) != m.group(2) for m in slashed):
        raise PayloadFormatError(
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
        raise PayloadFormatError(f"{where}: line {lines[i]}: {raw[i]!r} is not a date")
    return out
