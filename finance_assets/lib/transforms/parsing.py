"""Parsing: payloads as received to raw records (every field text), the newest payload
winning for each (symbol, time), the records of one window, and the rows of each window of a
range."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from finance_assets.lib.providers.base import PayloadFormatError, RawPayload
from finance_assets.lib.schema import (
    RAW_RECORD_SCHEMA,
    UTC_TS,
    empty,
)
from finance_assets.providers import registry
from finance_assets.providers.spec import Parser


def as_utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {value!r}")
    return value.astimezone(dt.UTC)


@dataclass
class ParsedPayloads:
    """Raw records (all fields still text) plus per-symbol errors the provider reported."""

    records: pl.DataFrame
    errors: dict[str, str] = field(default_factory=dict)
    # (payload_id, symbol) pairs a payload answered for, with its window and fetch time.
    coverage: pl.DataFrame = field(default_factory=lambda: pl.DataFrame())
    # payload_id -> why its body could not be read at all (it gave no record, covers nothing).
    unreadable: dict[str, str] = field(default_factory=dict)


# --- parsing ---------------------------------------------------------------------------------


def failed_symbols(payloads: Iterable[RawPayload]) -> dict[str, str]:
    """Symbols the providers answered with an error, for the formats that report them inline
    (a 200 response whose batch holds an error per symbol). Other formats' clients raise."""
    scanners = registry.error_scanners()
    errors: dict[str, str] = {}
    for payload in payloads:
        scan = scanners.get(payload.format)
        if scan:
            errors.update(scan(payload.body))
    return errors


class _Parsers(Mapping[str, Parser]):
    """Payload format -> its parser, as the provider registry has it now (a provider registered
    in-process is found too): each provider's spec names the formats it parses."""

    def __getitem__(self, fmt: str) -> Parser:
        return registry.parsers()[fmt]

    def __iter__(self) -> Iterator[str]:
        return iter(registry.parsers())

    def __len__(self) -> int:
        return len(registry.parsers())


PARSERS: Mapping[str, Parser] = _Parsers()


def parse_payloads(payloads: Iterable[RawPayload]) -> ParsedPayloads:
    """Parse every payload with its format's parser and keep, for each (symbol, time), only the
    newest payload that covers it: re-fetching a window supersedes what an earlier, wider fetch
    said about it, so re-running a partition never duplicates.

    A body its parser cannot read at all (`PayloadFormatError`: a truncated download, an HTML
    error page) is left out and named in `unreadable`: it supersedes nothing, so the older
    payloads of its symbols load as if it had never come, and the caller moves it out of the
    raw zone (`lib.io.dead_letters`). A format no provider parses still raises: that is the
    deployment's fault, not the payload's."""
    record_frames: list[pl.DataFrame] = []
    coverage_rows: list[dict[str, object]] = []
    errors: dict[str, str] = {}
    unreadable: dict[str, str] = {}
    for payload in payloads:
        parser = PARSERS.get(payload.format)
        if parser is None:
            raise PayloadFormatError(
                f"payload {payload.payload_id} has unknown format {payload.format!r}; "
                f"known: {sorted(PARSERS)}"
            )
        try:
            records, payload_errors = parser(payload.body, payload.payload_id)
        except PayloadFormatError as exc:
            unreadable[payload.payload_id] = str(exc)
            continue
        if len(payload.symbols) == 1:
            # A body that does not name its symbol (a Yahoo CSV export) is for the one symbol
            # its envelope names.
            records = records.with_columns(pl.col("symbol").fill_null(payload.symbols[0]))
        errors.update(payload_errors)
        record_frames.append(records)
        for symbol in records.get_column("symbol").unique().to_list():
            coverage_rows.append(
                {
                    "payload_id": payload.payload_id,
                    "symbol": symbol,
                    "fetched_at": payload.fetched_at,
                    "window_start": payload.window_start,
                    "window_end": payload.window_end,
                }
            )
    coverage = pl.DataFrame(
        coverage_rows,
        schema={
            "payload_id": pl.String,
            "symbol": pl.String,
            "fetched_at": UTC_TS,
            "window_start": UTC_TS,
            "window_end": UTC_TS,
        },
    )
    # Diagonal: a parser may add optional columns (yahoo_chart's adj_close); others get nulls.
    records = (
        pl.concat(record_frames, how="diagonal") if record_frames else empty(RAW_RECORD_SCHEMA)
    )
    return ParsedPayloads(records=records, errors=errors, coverage=coverage, unreadable=unreadable)


def supersede(
    records: pl.DataFrame, coverage: pl.DataFrame, winners: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Drop records that a newer payload for the same symbol also covers.

    `records` must carry `payload_id`, `symbol` and a typed `ts` (null when unparseable). A record
    with no usable `ts` is dropped when a newer payload for its symbol overlaps its payload's
    window at all. `winners` (rows of `coverage`, default all) are the payloads that may
    supersede: a file rejected as a whole must not take the place of the data it would replace.
    """
    if coverage.is_empty() or coverage.get_column("symbol").is_unique().all():
        return records  # every symbol came in one payload: nothing to supersede
    winners = coverage if winners is None else winners
    mine = coverage.select(
        "payload_id",
        "symbol",
        pl.col("fetched_at").alias("_mine_fetched"),
        pl.col("window_start").alias("_mine_start"),
        pl.col("window_end").alias("_mine_end"),
    )
    newer = winners.select(
        "symbol",
        pl.col("fetched_at").alias("_new_fetched"),
        pl.col("window_start").alias("_new_start"),
        pl.col("window_end").alias("_new_end"),
    )
    keyed = records.with_row_index("_row").join(mine, on=["payload_id", "symbol"], how="left")
    pairs = keyed.select("_row", "ts", "symbol", "_mine_fetched", "_mine_start", "_mine_end").join(
        newer, on="symbol", how="inner"
    )
    beaten = (
        pairs.filter(
            (pl.col("_new_fetched") > pl.col("_mine_fetched"))
            & pl.when(pl.col("ts").is_not_null())
            .then((pl.col("_new_start") <= pl.col("ts")) & (pl.col("ts") < pl.col("_new_end")))
            .otherwise(
                (pl.col("_new_start") < pl.col("_mine_end"))
                & (pl.col("_mine_start") < pl.col("_new_end"))
            )
        )
        .select("_row")
        .unique()
    )
    return keyed.join(beaten, on="_row", how="anti").sort("_row").select(records.columns)


def window_records(
    records: pl.DataFrame, coverage: pl.DataFrame, start: dt.datetime, end: dt.datetime
) -> pl.DataFrame:
    """The records that belong to the partition window [start, end).

    Payloads overlapping the window may cover other partitions too (a wider backfill): their
    bars outside the window belong to those partitions and are left out. A record that has no
    usable time, or lies outside what its own payload asked for, belongs to the partition its
    payload's window starts in (column `_home`), so it is quarantined exactly once.
    """
    start, end = as_utc(start), as_utc(end)
    windows = coverage.select(
        "payload_id", "symbol", _p_start="window_start", _p_end="window_end"
    ).unique(["payload_id", "symbol"])
    keyed = records.join(windows, on=["payload_id", "symbol"], how="left", maintain_order="left")
    home_here = (pl.col("_p_start") >= start) & (pl.col("_p_start") < end)
    in_window = (pl.col("ts") >= start) & (pl.col("ts") < end)
    asked = (pl.col("ts") >= pl.col("_p_start")) & (pl.col("ts") < pl.col("_p_end"))
    keep = (
        pl.when(pl.col("_p_start").is_null())
        .then(True)  # no coverage known: judge it here
        .when(pl.col("ts").is_null())
        .then(home_here)
        .otherwise(in_window | (~asked & home_here))
    )
    return (
        keyed.filter(keep)
        .with_columns(
            _home=pl.coalesce(pl.col("_p_start"), pl.lit(start)).clip(start, None).cast(UTC_TS)
        )
        .drop("_p_start", "_p_end")
    )


def payload_groups(payloads: list[RawPayload]) -> list[list[RawPayload]]:
    """Payloads that share a symbol, directly or through others: one group is cleaned at a
    time (supersession only ever compares payloads of the same symbol), so a large backfill
    never holds every batch's intermediate frames at once."""
    parent: dict[str, str] = {}

    def find(symbol: str) -> str:
        while parent.setdefault(symbol, symbol) != symbol:
            parent[symbol] = parent[parent[symbol]]
            symbol = parent[symbol]
        return symbol

    for payload in payloads:
        roots = [find(s) for s in payload.symbols]
        for root in roots[1:]:
            parent[root] = roots[0]
    groups: dict[str, list[RawPayload]] = {}
    for payload in payloads:
        key = find(payload.symbols[0]) if payload.symbols else f"#{payload.payload_id}"
        groups.setdefault(key, []).append(payload)
    return list(groups.values())


def rows_per_window(times: pl.Series, starts: Sequence[dt.datetime]) -> list[int]:
    """How many of `times` fall in each window: window i runs from `starts[i]` (ascending) to
    the next start, the last one open-ended. Times before the first start count for none.

    A single-run backfill materialises many partitions from one frame: this gives each
    partition its own row count.
    """
    if not starts:
        return []
    if times.dtype.time_zone is None:  # type: ignore[attr-defined]
        raise ValueError(f"{times.name!r} must be timezone-aware, got {times.dtype}")
    bounds = pl.Series("start", [as_utc(s) for s in starts]).cast(pl.Datetime("us", "UTC"))
    if not bounds.is_sorted():
        raise ValueError("window starts must be ascending")
    index = bounds.search_sorted(times.cast(pl.Datetime("us", "UTC")), side="right") - 1
    counts = index.filter(index >= 0).value_counts()
    found = dict(zip(counts[:, 0].to_list(), counts[:, 1].to_list(), strict=True))
    return [found.get(i, 0) for i in range(len(starts))]
