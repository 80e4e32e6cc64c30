"""Rows a window replacement leaves as they are: (symbol, [start, end)) spans.

Replacing a partition window deletes everything in it and writes the new rows, except where a
provider did not answer for a symbol (an error inside a batch, an empty answer): that symbol's
stored rows in that span are kept, byte for byte, in the lake and the warehouse alike. Both
writers take the same `Kept` spans, so the two stores keep the same rows.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl


@dataclass(frozen=True)
class Kept:
    """Stored rows of `symbol` with start <= time < end stay as they are."""

    symbol: str
    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            if getattr(self, name).tzinfo is None:
                raise ValueError(f"Kept.{name} must be timezone-aware, got {getattr(self, name)}")


@dataclass(frozen=True)
class WindowRows:
    """What a clean asset hands its IO manager: the window's new rows, and the spans whose
    stored rows stay (none: the whole window is replaced)."""

    frame: pl.DataFrame
    kept: tuple[Kept, ...] = ()


def grouped(kept: Sequence[Kept]) -> dict[tuple[dt.datetime, dt.datetime], list[str]]:
    """Spans by (start, end) in UTC: a provider's failures share its request's window, so a
    handful of groups cover any number of symbols."""
    groups: dict[tuple[dt.datetime, dt.datetime], list[str]] = {}
    for span in kept:
        key = (span.start.astimezone(dt.UTC), span.end.astimezone(dt.UTC))
        groups.setdefault(key, [])
        if span.symbol not in groups[key]:
            groups[key].append(span.symbol)
    return groups


def kept_expr(kept: Sequence[Kept], time_column: str, symbol_column: str = "symbol") -> pl.Expr:
    """True for the rows inside a kept span (False for all when there are none)."""
    expr = pl.lit(False)
    t = pl.col(time_column)
    for (start, end), symbols in grouped(kept).items():
        expr = expr | ((t >= start) & (t < end) & pl.col(symbol_column).is_in(symbols))
    return expr


def refuse_kept_rows(
    df: pl.DataFrame, kept: Sequence[Kept], time_column: str, what: str, symbol_column="symbol"
) -> None:
    """New rows inside a kept span would duplicate the rows kept there: refuse them."""
    if not kept or df.is_empty():
        return
    clash = df.filter(kept_expr(kept, time_column, symbol_column))
    if clash.height:
        first = clash.row(0, named=True)
        raise ValueError(
            f"{clash.height} new row(s) of {what} fall in spans whose stored rows are kept "
            f"(first: {first[symbol_column]} at {first[time_column]})"
        )
