"""One clean step: a window's raw payloads to the rows to write and what to keep.

The clean-bars asset and the benchmark's data path both call `clean_window`, so the figures the
benchmark reports are those of the asset's own work (the grouping by payload, the window
filter, whole-file rejection and the kept spans of symbols a provider did not answer).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
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
) -> CleanWindow:
    """Clean the payloads of [start, end) for `market`'s universe (see
    `transforms.clean_payloads` and `answers.kept_spans`). Intraday bars must start on the
    session's 5-minute marks; a bar elsewhere is quarantined."""
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
    # A symbol a provider did not answer keeps its stored rows (and its older payloads'
    # records are not written again): the same spans in the quarantine, lake and warehouse.
    # An unreadable payload answered nothing: judged without it, as the parse step was.
    unreadable = result.unreadable
    readable = [p for p in raw if p.payload_id not in unreadable]
    result, kept, failures = answers.kept_spans(readable, result, market.universe, start, end)
    return CleanWindow(result, kept, {**provider_errors, **failures}, unreadable)
