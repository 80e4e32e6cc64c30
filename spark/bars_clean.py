"""The clean step in Spark: supersession, the window's records, validation, whole-file
rejection of landing files and de-duplication. Mirrors `lib/transforms/parsing.py`
(supersede, window_records) and `lib/transforms/cleaning.py` (typed_fields, record_checks,
clean_bars, rejected_files, clean_payloads): the same reasons in the same order and words.

The polars path cleans one payload group at a time; here every comparison that the grouping
confines (supersession, duplicates) carries the group key `grp` instead.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from bars_raw import Payload
from bars_rules import (
    BAR_MINUTES,
    LANDING_PROVIDER,
    MAX_PRICE,
    MAX_VOLUME,
    PRICE_COLUMNS,
    RAW_RECORD_FIELDS,
)
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

# polars' text -> Float64 grammar (a strict subset of what Java's parseDouble takes: `1d`,
# `0x1p3` are numbers there and not here).
_NUMBER = r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$"
_INF = r"^(?i)[+]?inf(inity)?$"
_NEG_INF = r"^(?i)-inf(inity)?$"
_NAN = r"^(?i)[+-]?nan$"


@dataclass
class CleanFrames:
    bars: DataFrame
    quarantine: DataFrame
    received: DataFrame  # the window's records after supersession (received = bars + quarantine)
    judged: DataFrame  # persisted: every received record with its verdict

    def unpersist(self) -> None:
        self.judged.unpersist()


@dataclass(frozen=True)
class Rejection:
    """A landing file whose records are too often invalid to load any of them."""

    payload_id: str
    file: str
    records: int
    invalid: int
    reason: str


# --- supersession and the window --------------------------------------------------------------


def with_bar_times(records: DataFrame, opens: DataFrame | None) -> DataFrame:
    """Add `ts` (UTC bar start): the parsed local time (5-minute records), or the session's
    open for a daily record's date (`opens`: day -> ts; a date that is no session gets null)."""
    if opens is None:
        return records.withColumn("ts", F.timestamp_micros("ts_us"))
    return records.join(F.broadcast(opens), "day", "left")


def supersede(records: DataFrame, coverage: DataFrame) -> DataFrame:
    """Drop records that a newer payload of their group for the same symbol also covers (a
    record with no usable `ts`: when the newer payload's window overlaps its payload's at all).
    A payload rejected as a whole supersedes nothing. `records` carry their envelope."""
    newer = coverage.filter(F.col("rejected").isNull()).select(
        F.col("symbol").alias("_n_symbol"),
        F.col("grp").alias("_n_grp"),
        F.col("fetched_at").alias("_new_fetched"),
        F.col("window_start").alias("_new_start"),
        F.col("window_end").alias("_new_end"),
    )
    start, end, ts = F.col("_new_start"), F.col("_new_end"), F.col("ts")
    beaten = (
        (F.col("symbol") == F.col("_n_symbol"))
        & (F.col("grp") == F.col("_n_grp"))
        & (F.col("_new_fetched") > F.col("fetched_at"))
        & F.when(ts.isNotNull(), (start <= ts) & (ts < end)).otherwise(
            (start < F.col("window_end")) & (F.col("window_start") < end)
        )
    )
    return records.join(F.broadcast(newer), beaten, "left_anti")


def window_records(
    records: DataFrame, coverage: DataFrame, start: dt.datetime, end: dt.datetime
) -> DataFrame:
    """The records that belong to [start, end), each with `_home`: the partition a record with
    no usable time (or outside what its payload asked for) is quarantined in."""
    windows = coverage.select(
        "payload_id",
        "symbol",
        F.col("window_start").alias("_p_start"),
        F.col("window_end").alias("_p_end"),
    ).dropDuplicates(["payload_id", "symbol"])
    keyed = records.join(F.broadcast(windows), ["payload_id", "symbol"], "left")
    lo, hi = F.lit(start), F.lit(end)
    home_here = (F.col("_p_start") >= lo) & (F.col("_p_start") < hi)
    in_window = (F.col("ts") >= lo) & (F.col("ts") < hi)
    asked = (F.col("ts") >= F.col("_p_start")) & (F.col("ts") < F.col("_p_end"))
    keep = (
        F.when(F.col("_p_start").isNull(), F.lit(True))
        .when(F.col("ts").isNull(), home_here)
        .otherwise(in_window | (~asked & home_here))
    )
    home = F.coalesce(F.col("_p_start"), lo)
    return (
        keyed.filter(keep)
        .withColumn("_home", F.when(home < lo, lo).otherwise(home))
        .drop("_p_start", "_p_end")
    )


# --- validation ------------------------------------------------------------------------------


def _number(column: str) -> Column:
    """Text -> double as polars casts it (strip, then the grammar above); null otherwise."""
    text = F.regexp_replace(F.col(column), r"(?U)^\s+|\s+$", "")
    return (
        F.when(text.rlike(_NUMBER), text.try_cast("double"))
        .when(text.rlike(_INF), F.lit(float("inf")))
        .when(text.rlike(_NEG_INF), F.lit(float("-inf")))
        .when(text.rlike(_NAN), F.lit(float("nan")))
    )


def typed_fields(records: DataFrame) -> DataFrame:
    """`_open` .. `_close`, `_volume_f` and `_adj_close` (a positive, finite price or null: the
    contract's adj_close is nullable, so a bad one costs the bar nothing)."""
    adj = _number("adj_close")
    return records.select(
        "*",
        *(_number(c).alias(f"_{c}") for c in PRICE_COLUMNS),
        _number("volume").alias("_volume_f"),
        F.when((adj > 0) & (adj < MAX_PRICE), adj).alias("_adj_close"),
    )


def record_checks() -> list[Column]:
    """Per-record reasons (null = fine) a record has on its own, whatever its window."""
    checks = [
        F.when(F.col("symbol").isNull() | (F.length("symbol") == 0), F.lit("symbol missing")),
        F.when(
            F.col("ts").isNull(),
            F.concat(
                F.lit("datetime missing or unparseable: "), F.coalesce("datetime", F.lit("null"))
            ),
        ),
    ]
    for c in PRICE_COLUMNS:
        price = F.col(f"_{c}")
        checks.append(
            F.when(price.isNull() | F.isnan(price), F.lit(f"{c} missing or not a number"))
            .when(F.abs(price) == float("inf"), F.lit(f"{c} not finite"))
            .when(price <= 0, F.lit(f"{c} not positive"))
            .when(price >= MAX_PRICE, F.lit(f"{c} out of range (>= {MAX_PRICE:g})"))
        )
    volume = F.col("_volume_f")
    checks += [
        F.when(volume.isNull() | F.isnan(volume), F.lit("volume missing or not a number"))
        .when(volume < 0, F.lit("volume negative"))
        .when(volume >= MAX_VOLUME, F.lit("volume out of range (>= 2**63)"))
        .when(volume != F.floor(volume).cast("double"), F.lit("volume not a whole number")),
        F.when(F.col("_high") < F.col("_low"), F.lit("high < low")),
        F.when(
            (F.col("_open") < F.col("_low")) | (F.col("_open") > F.col("_high")),
            F.lit("open outside [low, high]"),
        ),
        F.when(
            (F.col("_close") < F.col("_low")) | (F.col("_close") > F.col("_high")),
            F.lit("close outside [low, high]"),
        ),
    ]
    return checks


def window_checks(start: dt.datetime, end: dt.datetime, bar_starts: bool) -> list[Column]:
    """The window's reasons: outside it, and (5-minute bars) off the sessions' 5-minute marks."""
    checks = [
        F.when(
            (F.col("ts") < F.lit(start)) | (F.col("ts") >= F.lit(end)),
            F.lit("outside the partition window"),
        )
    ]
    if bar_starts:
        checks.append(
            F.when(
                F.col("ts").isNotNull() & ~F.col("_bar_start"),
                F.lit(f"not a {BAR_MINUTES}-minute bar start of a trading session"),
            )
        )
    return checks


def _failing(checks: Sequence[Column]) -> Column:
    return F.greatest(*(c.isNotNull() for c in checks))


def rejected_files(
    timed: DataFrame, payloads: Sequence[Payload], max_invalid_rate: float
) -> list[Rejection]:
    """The landing files whose own records (all of them, whatever window this run reads) are
    invalid beyond `max_invalid_rate`: bad on their own, or a repeat of a (symbol, ts) within
    the file. Provider payloads are not judged here."""
    files = {p.payload_id: p for p in payloads if p.provider == LANDING_PROVIDER}
    if not files:
        return []
    mine = typed_fields(timed.filter(F.col("payload_id").isin(list(files))))
    failing = _failing(record_checks())
    first = Window.partitionBy("payload_id", "_failing", "symbol", "ts").orderBy("pos")
    counts = (
        mine.withColumn("_failing", failing)
        .withColumn("_dup", ~F.col("_failing") & (F.row_number().over(first) > 1))
        .groupBy("payload_id")
        .agg(
            F.count(F.lit(1)).alias("records"),
            F.sum((F.col("_failing") | F.col("_dup")).cast("long")).alias("invalid"),
        )
        .orderBy("payload_id")
        .collect()
    )
    rejected = []
    for payload_id, records, invalid in counts:
        if invalid <= max_invalid_rate * records:
            continue
        name = files[payload_id].file or payload_id
        rejected.append(
            Rejection(
                payload_id=payload_id,
                file=name,
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


# --- the step --------------------------------------------------------------------------------


def clean(
    timed: DataFrame,
    coverage: DataFrame,
    sessions: DataFrame | None,
    *,
    timezone: str,
    asset: str,
    start: dt.datetime,
    end: dt.datetime,
    ingested_at: dt.datetime,
) -> CleanFrames:
    """Supersede, keep the window's records, validate and de-duplicate: every record lands in
    exactly one of bars (first valid one per (symbol, ts) of its group) and quarantine (every
    reason). `timed`: the records with `ts` and their envelope (`bars_raw.envelopes`);
    `sessions` (5-minute bars): the window's sessions, for the bar-start check."""
    received = window_records(supersede(timed, coverage), coverage, start, end)
    typed = typed_fields(received)
    if sessions is not None:
        step = BAR_MINUTES * 60 * 1_000_000
        typed = (
            typed.withColumn("_day", F.to_date(F.from_utc_timestamp("ts", timezone)))
            .join(F.broadcast(sessions), "_day", "left")
            .withColumn(
                "_bar_start",
                F.coalesce(
                    (F.col("ts") >= F.col("_s_open"))
                    & (F.col("ts") < F.col("_s_close"))
                    & (((F.unix_micros("ts") - F.unix_micros("_s_open")) % step) == 0),
                    F.lit(False),
                ),
            )
        )
    checks = record_checks() + window_checks(start, end, sessions is not None)
    # Of otherwise valid records, the first received per (symbol, ts) is kept; a rejected
    # file's records are compared among themselves only (they are the first of nothing).
    first = Window.partitionBy(
        "grp", "_failing", F.col("rejected").isNull(), "symbol", "ts"
    ).orderBy("porder", "pos")
    judged = (
        typed.withColumn("_failing", _failing(checks))
        .withColumn("_dup", ~F.col("_failing") & (F.row_number().over(first) > 1))
        .withColumn("_failing", F.col("_failing") | F.col("rejected").isNotNull())
        .persist()  # bars and quarantine are two reads of one judgement
    )
    bars = judged.filter(~F.col("_failing") & ~F.col("_dup")).select(
        "symbol",
        "ts",
        F.col("_open").alias("open"),
        F.col("_high").alias("high"),
        F.col("_low").alias("low"),
        F.col("_close").alias("close"),
        F.col("_adj_close").alias("adj_close"),
        F.col("_volume_f").cast("long").alias("volume"),
        "currency",
        F.col("bar_source").alias("source"),
        F.lit(ingested_at).alias("ingested_at"),
    )
    bad = judged.filter(F.col("_failing") | F.col("_dup"))
    dup_reason = F.when(F.col("_dup"), F.lit("duplicate (symbol, ts)"))
    in_window = F.col("ts").isNotNull() & (F.col("ts") >= F.lit(start)) & (F.col("ts") < F.lit(end))
    options = {"ignoreNullFields": "false"}
    record = F.when(
        F.col("has_adj_close"), F.to_json(F.struct(*RAW_RECORD_FIELDS, "adj_close"), options)
    ).otherwise(F.to_json(F.struct(*RAW_RECORD_FIELDS), options))
    quarantine = bad.select(
        F.lit(asset).alias("asset"),
        F.when(in_window, F.col("ts")).otherwise(F.col("_home")).alias("partition_ts"),
        "symbol",
        F.col("datetime").alias("ts_raw"),
        F.concat_ws("; ", "rejected", dup_reason, *checks).alias("reason"),
        record.alias("record"),
        "source",
        F.lit(ingested_at).alias("quarantined_at"),
    )
    return CleanFrames(bars=bars, quarantine=quarantine, received=received, judged=judged)
