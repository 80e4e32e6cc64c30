"""One clean step: a window's raw payloads to the rows to write and what to keep.

The clean-bars asset and the benchmark's data path both call `clean_window`, so the figures the
benchmark reports are those of the asset's own work (the grouping by payload, the window
filter, whole-file rejection and the kept spans of what a provider did not cover).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import polars as pl

from finance_assets.lib import answers, transforms
from finance_assets.lib.io.spans import Kept
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import Interval, RawPayload


@dataclass
class CleanWindow:
    result: transforms.CleanResult  # without the records of the kept spans
    kept: list[Kept]  # spans whose stored rows stay as they are
    provider_errors: dict[str, str]  # symbol -> the provider's message
    # Payloads whose body could not be read at all (payload_id -> why): they gave nothing and
    # answered no symbol; the caller moves them to the dead-letter place.
    unreadable: dict[str, str] = field(default_factory=dict)


def clean_window(
    raw: Sequence[RawPayload],
    market: Market,
    interval: Interval,
    *,
    asset: str,
    start: dt.datetime,
    end: dt.datetime,
    ingested_at: dt.datetime,
    max_quarantine_rate: float | None = None,
    only_symbols: Collection[str] | None = None,
) -> CleanWindow:
    """Clean the payloads of [start, end) for `market`'s universe (see
    `transforms.clean_payloads` and `answers.kept_spans`). Intraday bars must start on the
    session's 5-minute marks; a bar elsewhere is quarantined.

    `only_symbols`: replace those symbols' rows only (a landing run: `landed_symbols`); every
    other symbol keeps its stored rows over the whole window, byte for byte (values, `source`,
    `ingested_at`), instead of being written again from the provider's older payloads."""
    # A corporate-actions payload says nothing about bars: it neither parses as bars nor
    # covers a window (`answers.bar_payloads`).
    raw = answers.bar_payloads(raw)
    valid_starts = None
    if interval == "5min":
        valid_starts = pl.Series(
            "ts", market.bar_starts(start.astimezone(dt.UTC), end.astimezone(dt.UTC))
        )
    result, provider_errors = transforms.clean_payloads(
        list(raw),
        market,
        interval,
        asset=asset,
        window_start=start,
        window_end=end,
        ingested_at=ingested_at,
        valid_starts=valid_starts,
        max_quarantine_rate=max_quarantine_rate,
    )
    # The window is replaced where the providers covered it, per symbol: a symbol a provider
    # did not answer, or answered for part of a session, keeps its stored rows elsewhere (and
    # its older payloads' records are not written again), the same spans in the quarantine,
    # lake and warehouse. An unreadable payload answered nothing (`kept_spans` leaves it out).
    unreadable = result.unreadable
    result, kept, failures = answers.kept_spans(
        raw, result, market.universe, start, end, market=market, interval=interval
    )
    if only_symbols is not None:
        result, kept = _only(result, kept, set(only_symbols), raw, market, start, end)
    return CleanWindow(result, kept, {**provider_errors, **failures}, unreadable)


def landed_symbols(raw: Sequence[RawPayload], sha256: str | None) -> frozenset[str] | None:
    """The symbols of the landing file of content `sha256` (the landing run's tag) among the
    window's payloads; None outside a landing run, or when the file is not among them."""
    if not sha256:
        return None
    symbols = {s for p in raw if p.request.get("sha256") == sha256 for s in p.symbols}
    return frozenset(symbols) if symbols else None


def _only(
    result: transforms.CleanResult,
    kept: list[Kept],
    only: set[str],
    raw: Sequence[RawPayload],
    market: Market,
    start: dt.datetime,
    end: dt.datetime,
) -> tuple[transforms.CleanResult, list[Kept]]:
    """The result and kept spans of a run that replaces `only`'s rows: every other symbol is
    kept over the whole window."""
    others = sorted((set(market.universe) | {s for p in raw for s in p.symbols}) - only)
    window = (start.astimezone(dt.UTC), end.astimezone(dt.UTC))
    whole = [Kept(symbol, *window) for symbol in others]
    trimmed = answers.without_kept(result, whole)
    # `without_kept` builds a bare result: the rejected files and unreadable payloads stay.
    result = dataclasses.replace(
        result, bars=trimmed.bars, quarantine=trimmed.quarantine, received=trimmed.received
    )
    return result, [k for k in kept if k.symbol in only] + whole
