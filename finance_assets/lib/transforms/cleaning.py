"""Cleaning: raw records to canonical bars, every invalid record quarantined with its reasons;
whole-file rejection and the grouped clean step over a window's payloads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from finance_assets.lib.markets import BAR_MINUTES, Market
from finance_assets.lib.providers.base import RawPayload
from finance_assets.lib.schema import (
    BAR_SCHEMA,
    MAX_PRICE,
    MAX_VOLUME,
    PRICE_COLUMNS,
    QUARANTINE_SCHEMA,
    RAW_RECORD_FIELDS,
    UTC_TS,
    conform,
    empty,
)
from finance_assets.lib.transforms.parsing import (
    as_utc,
    parse_payloads,
    payload_groups,
    supersede,
    window_records,
)
from finance_assets.providers.yfinance.csv_export import PROVIDER as LANDING_PROVIDER

# --- cleaning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedPayload:
    """A dropped file whose records are too often invalid to load any of them."""

    payload_id: str
    file: str  # the landing file's name
    sha256: str
    records: int  # the file's records
    invalid: int  # of which invalid on their own (bad values, duplicates within the file)
    reason: str  # what every record of it is quarantined with


@dataclass
class CleanResult:
    bars: pl.DataFrame  # BAR_SCHEMA, sorted by (symbol, ts), unique per (symbol, ts)
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA
    received: int
    # Files rejected as a whole, and how many of `received` (all quarantined) were theirs.
    rejected: list[RejectedPayload] = field(default_factory=list)
    rejected_records: int = 0
    # Payloads whose body could not be read at all: payload_id -> the parser's message.
    unreadable: dict[str, str] = field(default_factory=dict)

    @property
    def quarantine_rate(self) -> float:
        return self.quarantine.height / self.received if self.received else 0.0

    @property
    def accepted_quarantine_rate(self) -> float:
        """The quarantined share of the records of payloads that were not rejected as a whole:
        what the blocking check judges (a rejected file is judged, and named, on its own)."""
        received = self.received - self.rejected_records
        quarantined = self.quarantine.height - self.rejected_records
        return quarantined / received if received else 0.0


def with_bar_times(records: pl.DataFrame, market: Market, interval: str) -> pl.DataFrame:
    """Add `ts` (UTC bar start) from the exchange-local `datetime` text; null if unparseable.

    Intraday datetimes are exchange-local wall times. A daily bar's start is its session's open
    (early closes and holidays from the exchange calendar); a date that is no session gets null.
    """
    text = pl.col("datetime").str.strip_chars()
    if interval == "1day":
        day = text.str.to_date("%Y-%m-%d", strict=False)
        dates = records.select(day.alias("d")).get_column("d").drop_nulls().unique().to_list()
        # Sessions of the calendar's range only: a date outside it (1990, 9999) is no session
        # (the calendar raises on it) and its record is quarantined.
        sessions = set(market.sessions(min(dates), max(dates))) if dates else set()
        opens = {d: market.session_bounds(d)[0] for d in dates if d in sessions}
        lookup = pl.DataFrame(
            {"_day": list(opens), "ts": list(opens.values())},
            schema={"_day": pl.Date, "ts": UTC_TS},
        )
        return (
            records.with_columns(_day=day)
            .join(lookup, on="_day", how="left", maintain_order="left")
            .drop("_day")
        )
    # A batch repeats the same few thousand stamps for every symbol: convert each once.
    stamps = records.select(pl.col("datetime").unique()).with_columns(
        ts=text.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
        .dt.replace_time_zone(market.timezone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    return records.join(stamps, on="datetime", how="left", nulls_equal=True, maintain_order="left")


def typed_fields(records: pl.DataFrame) -> pl.DataFrame:
    """Add the typed fields (`_open` .. `_close`, `_volume_f`, `_adj_close`) to raw records.

    Non-strict casts: text that is no number becomes null, which the checks quarantine.
    """
    # adj_close is optional (yahoo_chart sends it) and nullable in the contract: one that is not
    # a positive, finite price is stored null rather than costing the bar its place.
    adj_close = (
        pl.col("adj_close").str.strip_chars().cast(pl.Float64, strict=False)
        if "adj_close" in records.columns
        else pl.lit(None, dtype=pl.Float64)
    )
    return records.with_columns(
        [
            pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(f"_{c}")
            for c in PRICE_COLUMNS
        ]
        + [
            pl.col("volume").str.strip_chars().cast(pl.Float64, strict=False).alias("_volume_f"),
            pl.when((adj_close > 0) & (adj_close < MAX_PRICE)).then(adj_close).alias("_adj_close"),
        ]
    )


def record_checks() -> list[pl.Expr]:
    """Per-record reasons (null = fine) over `typed_fields`' columns and `ts`: what a record
    must be on its own, whatever its window."""
    checks: list[pl.Expr] = [
        pl.when(pl.col("symbol").is_null() | (pl.col("symbol").str.len_chars() == 0)).then(
            pl.lit("symbol missing")
        ),
        pl.when(pl.col("ts").is_null()).then(
            pl.format("datetime missing or unparseable: {}", pl.col("datetime").fill_null("null"))
        ),
    ]
    for c in PRICE_COLUMNS:
        price = pl.col(f"_{c}")
        checks.append(
            pl.when(price.is_null() | price.is_nan())
            .then(pl.lit(f"{c} missing or not a number"))
            .when(price.is_infinite())
            .then(pl.lit(f"{c} not finite"))
            .when(price <= 0)
            .then(pl.lit(f"{c} not positive"))
            .when(price >= MAX_PRICE)
            .then(pl.lit(f"{c} out of range (>= {MAX_PRICE:g})"))
        )
    volume = pl.col("_volume_f")
    checks += [
        pl.when(volume.is_null() | volume.is_nan())
        .then(pl.lit("volume missing or not a number"))
        .when(volume < 0)
        .then(pl.lit("volume negative"))
        # inf included: no integer to store it as (a strict cast would fail the whole step).
        .when(volume >= MAX_VOLUME)
        .then(pl.lit("volume out of range (>= 2**63)"))
        .when(volume != volume.floor())
        .then(pl.lit("volume not a whole number")),
        pl.when(pl.col("_high") < pl.col("_low")).then(pl.lit("high < low")),
        pl.when((pl.col("_open") < pl.col("_low")) | (pl.col("_open") > pl.col("_high"))).then(
            pl.lit("open outside [low, high]")
        ),
        pl.when((pl.col("_close") < pl.col("_low")) | (pl.col("_close") > pl.col("_high"))).then(
            pl.lit("close outside [low, high]")
        ),
    ]
    return checks


def clean_bars(
    records: pl.DataFrame,
    *,
    asset: str,
    window_start: dt.datetime,
    window_end: dt.datetime,
    source: str,
    ingested_at: dt.datetime,
    valid_starts: pl.Series | None = None,
    rejected: Mapping[str, str] | None = None,
) -> CleanResult:
    """Type, validate and de-duplicate raw records.

    `records` carries the raw text fields plus a typed `ts`. Every record ends up in exactly one
    of the two outputs: clean bars, or the quarantine with every reason it failed.
    `valid_starts` (UTC bar starts) rejects bars off the session's 5-minute marks.
    `rejected` maps payload ids rejected as a whole to the reason: every record of theirs is
    quarantined with it (and its own reasons, if any), and none of them counts as a first
    occurrence that makes another payload's record a duplicate.
    """
    received = records.height
    start = as_utc(window_start)
    end = as_utc(window_end)
    has_adj_close = "adj_close" in records.columns
    typed = typed_fields(records)
    checks = record_checks()
    checks.append(
        pl.when((pl.col("ts") < start) | (pl.col("ts") >= end)).then(
            pl.lit("outside the partition window")
        )
    )
    if valid_starts is not None:
        checks.append(
            pl.when(
                pl.col("ts").is_not_null()
                & ~pl.col("ts").is_in(valid_starts.cast(UTC_TS).implode())
            ).then(pl.lit(f"not a {BAR_MINUTES}-minute bar start of a trading session"))
        )
    # Judge every row with cheap boolean tests; spell out reasons only for the failing few.
    failing = pl.any_horizontal([check.is_not_null() for check in checks])
    judged = typed.with_row_index("_order").with_columns(_failing=failing)
    # Of records that are otherwise valid, the first one received for a (symbol, ts) is kept;
    # later ones with the same key are duplicates, even when their prices differ.
    groups: list[str | pl.Expr] = ["_failing"]
    if rejected:
        reasons = pl.col("payload_id").replace_strict(
            dict(rejected), default=None, return_dtype=pl.String
        )
        judged = judged.with_columns(_rejected=reasons)
        groups.append(pl.col("_rejected").is_null())  # duplicates within each side only
    judged = judged.with_columns(
        _dup=~pl.col("_failing") & ~pl.struct("symbol", "ts").is_first_distinct().over(groups)
    )
    if rejected:
        judged = judged.with_columns(
            _failing=pl.col("_failing") | pl.col("_rejected").is_not_null()
        )
    good = judged.filter(~pl.col("_failing") & ~pl.col("_dup"))
    dup_reason = pl.when(pl.col("_dup")).then(pl.lit("duplicate (symbol, ts)"))
    bad = judged.filter(pl.col("_failing") | pl.col("_dup")).with_columns(
        _reason=pl.concat_str(
            [pl.col("_rejected"), dup_reason, *checks] if rejected else [dup_reason, *checks],
            separator="; ",
            ignore_nulls=True,
        )
    )

    bars = good.select(
        "symbol",
        "ts",
        open="_open",
        high="_high",
        low="_low",
        close="_close",
        adj_close="_adj_close",
        volume=pl.col("_volume_f").cast(pl.Int64),
        currency="currency",
        source=pl.lit(source),
        ingested_at=pl.lit(ingested_at).cast(UTC_TS),
    ).sort("symbol", "ts")
    quarantine = bad.sort("_order").select(
        asset=pl.lit(asset),
        partition_ts=pl.when(
            pl.col("ts").is_not_null() & (pl.col("ts") >= start) & (pl.col("ts") < end)
        )
        .then(pl.col("ts"))
        .otherwise(pl.col("_home") if "_home" in bad.columns else pl.lit(start).cast(UTC_TS)),
        symbol="symbol",
        ts_raw="datetime",
        reason="_reason",
        record=pl.struct(
            RAW_RECORD_FIELDS + (["adj_close"] if has_adj_close else [])
        ).struct.json_encode(),
        source=pl.lit(source),
        quarantined_at=pl.lit(ingested_at).cast(UTC_TS),
    )
    return CleanResult(
        bars=conform(bars, BAR_SCHEMA),
        quarantine=conform(quarantine, QUARANTINE_SCHEMA),
        received=received,
    )


def rejected_files(
    timed: pl.DataFrame, payloads: Sequence[RawPayload], max_invalid_rate: float
) -> list[RejectedPayload]:
    """The landing files among `payloads` whose records are invalid beyond `max_invalid_rate`.

    `timed`: the payloads' records with `ts` (`with_bar_times`). A dropped file is judged on
    its own and on all its records, whatever window a run reads of it and whatever else is
    stored for its dates: a record invalid by itself (`record_checks`) or a repeat of a
    (symbol, ts) within the file counts against it. Provider payloads are not judged here:
    their share is the blocking `quarantine_rate` check's, as a whole.
    """
    files = {p.payload_id: p for p in payloads if p.provider == LANDING_PROVIDER}
    if not files:
        return []
    mine = timed.filter(pl.col("payload_id").is_in(list(files)))
    if mine.is_empty():
        return []
    failing = pl.any_horizontal([check.is_not_null() for check in record_checks()])
    counts = (
        typed_fields(mine)
        .with_columns(_failing=failing)
        .with_columns(
            _dup=~pl.col("_failing")
            & ~pl.struct("symbol", "ts").is_first_distinct().over("payload_id", "_failing")
        )
        .group_by("payload_id")
        .agg(records=pl.len(), invalid=(pl.col("_failing") | pl.col("_dup")).sum())
        .sort("payload_id")
    )
    rejected = []
    for payload_id, records, invalid in counts.iter_rows():
        if invalid <= max_invalid_rate * records:
            continue
        request = files[payload_id].request
        name = str(request.get("file") or payload_id)
        rejected.append(
            RejectedPayload(
                payload_id=payload_id,
                file=name,
                sha256=str(request.get("sha256") or ""),
                records=records,
                invalid=invalid,
                reason=(
                    f"landing file {name} rejected as a whole: {invalid} of {records} records "
                    f"invalid ({invalid / records:.1%}, more than the {max_invalid_rate:.1%} "
                    "allowed)"
                ),
            )
        )
    return rejected


def _with_sources(
    frame: pl.DataFrame, group: list[RawPayload], coverage: pl.DataFrame, left_out: set[str]
) -> pl.DataFrame:
    """`frame`'s `source` per symbol: the providers of the payloads (but `left_out`) that
    answered for it; a row without a symbol keeps the group's."""
    if frame.is_empty():
        return frame
    provider = {p.payload_id: p.provider for p in group}
    by_symbol: dict[str, set[str]] = {}
    for payload_id, symbol in coverage.select("payload_id", "symbol").iter_rows():
        if payload_id not in left_out and symbol is not None:
            by_symbol.setdefault(symbol, set()).add(provider[payload_id])
    sources = {symbol: ",".join(sorted(names)) for symbol, names in by_symbol.items()}
    return frame.with_columns(
        source=pl.col("symbol").replace_strict(
            sources, default=pl.col("source"), return_dtype=pl.String
        )
    )


def clean_payloads(
    payloads: list[RawPayload],
    market: Market,
    interval: str,
    *,
    asset: str,
    window_start: dt.datetime,
    window_end: dt.datetime,
    ingested_at: dt.datetime,
    valid_starts: pl.Series | None = None,
    max_quarantine_rate: float | None = None,
) -> tuple[CleanResult, dict[str, str]]:
    """Parse, supersede, keep the window's records and clean them, group by group.

    Returns the combined result and the per-symbol errors the providers reported. The bars are
    contiguous per symbol and chronological within it (what the checks rely on); symbols are in
    order within a payload group, and groups in order of their first symbol.

    With `max_quarantine_rate`, a landing file whose own records are invalid beyond it is
    rejected as a whole (`rejected_files`): all its records are quarantined with a reason naming
    it, it supersedes nothing, and the other payloads' records of its dates load as if it had
    never been dropped. One bad file thus never blocks the provider's or a later file's data.
    """
    bars, quarantined, received, errors = [], [], 0, {}
    rejected: list[RejectedPayload] = []
    rejected_records = 0
    unreadable: dict[str, str] = {}
    for group in payload_groups(payloads):
        parsed = parse_payloads(group)
        errors.update(parsed.errors)
        unreadable.update(parsed.unreadable)
        timed = with_bar_times(parsed.records, market, interval)
        rejects = (
            rejected_files(timed, group, max_quarantine_rate)
            if max_quarantine_rate is not None
            else []
        )
        ids = [r.payload_id for r in rejects]
        winners = parsed.coverage.filter(~pl.col("payload_id").is_in(ids)) if ids else None
        records = window_records(
            supersede(timed, parsed.coverage, winners),
            parsed.coverage,
            window_start,
            window_end,
        )
        result = clean_bars(
            records,
            asset=asset,
            window_start=window_start,
            window_end=window_end,
            source=",".join(
                sorted({p.provider for p in group if p.payload_id not in parsed.unreadable})
            ),
            ingested_at=ingested_at,
            valid_starts=valid_starts,
            rejected={r.payload_id: r.reason for r in rejects},
        )
        # Lineage per symbol: a landing file for AAPL in a group with the provider's batch
        # names itself on AAPL's rows only. A rejected file is the source of no bar (its
        # quarantined records keep its name).
        result.bars = _with_sources(result.bars, group, parsed.coverage, set(ids))
        result.quarantine = _with_sources(result.quarantine, group, parsed.coverage, set())
        if rejects:
            rejected += rejects
            rejected_records += records.filter(pl.col("payload_id").is_in(ids)).height
        bars.append(result.bars)
        quarantined.append(result.quarantine)
        received += result.received
    # Each symbol is in one group and each group's bars are sorted: ordered by their first
    # symbol, the groups concatenate without a copy. A global re-sort would hold a second copy
    # of a whole backfill (600 MB at 3M bars); the writers sort each day they write anyway.
    bars = [b for b in bars if b.height]
    bars.sort(key=lambda b: str(b.get_column("symbol").min()))
    combined = CleanResult(
        bars=pl.concat(bars, rechunk=False) if bars else empty(BAR_SCHEMA),
        quarantine=pl.concat(quarantined) if quarantined else empty(QUARANTINE_SCHEMA),
        received=received,
        rejected=rejected,
        rejected_records=rejected_records,
        unreadable=unreadable,
    )
    return combined, errors
