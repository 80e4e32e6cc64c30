"""The validation that decides between a run and a rejection: one dropped file, read once.

Over the Yahoo CSV readers (`providers/yfinance/csv_export.py`); no storage and no Dagster here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from finance_assets.lib.landing.names import symbol_from_name
from finance_assets.lib.markets import Market, is_symbol
from finance_assets.providers.yfinance.csv_export import summarize_yahoo_csv

# A daily history of one symbol over 30 years is ~1 MB, 500 symbols over a year ~8 MB. The
# sensor holds a file's bytes while it inspects them (the rows it reads one at a time), so this
# bounds its memory: FINANCE_LANDING_MAX_BYTES sets another limit.
MAX_FILE_BYTES = 16 * 1024 * 1024


def too_large(size: int, limit: int) -> str:
    """The rejection reason for a file above the size limit."""
    return (
        f"{size:,} bytes: larger than the landing zone's limit of {limit:,} bytes "
        "(FINANCE_LANDING_MAX_BYTES); split the file, or raise the limit"
    )


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class LandingFileRejected(ValueError):
    """A file that cannot be ingested; the message is the reason written beside it."""


@dataclass(frozen=True)
class Inspection:
    """What a valid file holds."""

    symbols: tuple[str, ...]
    sessions: tuple[dt.date, ...]  # sorted, distinct
    rows: int

    @property
    def first(self) -> dt.date:
        return self.sessions[0]

    @property
    def last(self) -> dt.date:
        return self.sessions[-1]


def _dates_text(days: Sequence[dt.date], limit: int = 5) -> str:
    shown = ", ".join(d.isoformat() for d in days[:limit])
    return shown + (f" and {len(days) - limit} more" if len(days) > limit else "")


def inspect_file(
    name: str,
    body: bytes,
    market: Market,
    *,
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> Inspection:
    """Validate a dropped file for `market`; raise LandingFileRejected with the reason.

    Reads the file in one streaming pass (`summarize_yahoo_csv`): memory grows with its distinct
    dates and symbols, not its rows. A file above `max_bytes` is refused unread.

    A file is refused as a whole when it cannot be read as a Yahoo CSV, holds no rows, names
    no symbol, or has a date that is not a trading session of the market (or lies outside
    [first_day, last_day], the daily partitions). Bad values in a row (a `null` price, high <
    low) are left to the run: it quarantines those rows with their reasons and loads the rest.
    """
    if not body:
        raise LandingFileRejected("empty file (0 bytes)")
    if len(body) > max_bytes:
        raise LandingFileRejected(too_large(len(body), max_bytes))
    try:
        summary = summarize_yahoo_csv(body, f"payload {name}")
    except ValueError as exc:  # PayloadFormatError
        raise LandingFileRejected(str(exc).replace(f"payload {name}: ", "")) from None
    if not summary.rows:
        raise LandingFileRejected("no data rows (a header only)")
    if summary.rows_without_symbol == summary.rows:
        symbol = symbol_from_name(name)
        if symbol is None:
            raise LandingFileRejected(
                "no Symbol column and the file name states no symbol (name files like "
                "AAPL.csv or yahoofinance-AAPL-20040819-20180120.csv, or add a Symbol column)"
            )
        symbols: tuple[str, ...] = (symbol,)
    else:
        if summary.rows_without_symbol:
            raise LandingFileRejected(f"{summary.rows_without_symbol} row(s) have an empty Symbol")
        symbols = tuple(sorted(summary.symbols))
        bad = [s for s in symbols if not is_symbol(s)]
        if bad:
            raise LandingFileRejected(f"not symbol(s): {', '.join(repr(s) for s in bad[:5])}")
    days = list(summary.sessions)
    if first_day is not None and (early := [d for d in days if d < first_day]):
        raise LandingFileRejected(
            f"{len(early)} date(s) before the first daily partition {first_day} "
            f"({_dates_text(early)}); trim the file or move FINANCE_DAILY_START"
        )
    if last_day is not None and (late := [d for d in days if d > last_day]):
        raise LandingFileRejected(
            f"{len(late)} date(s) after the last daily partition {last_day} ({_dates_text(late)})"
        )
    sessions = set(market.sessions(days[0], days[-1]))
    closed = [d for d in days if d not in sessions]
    if closed:
        raise LandingFileRejected(
            f"{len(closed)} date(s) are not trading sessions of {market.calendar_name} "
            f"({_dates_text(closed)})"
        )
    return Inspection(symbols=symbols, sessions=summary.sessions, rows=summary.rows)
