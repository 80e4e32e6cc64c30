"""The Spark job: raw-zone payloads -> bars partitioned by symbol and date, the quarantine, and
the daily summary, over [start, end].

    spark-submit spark/bars_job.py --raw data/raw/us/raw_intraday_quotes --out data/spark/us \\
        --market us --start 2026-11-16 --end 2026-11-20

Reads every raw format the polars path parses (`--interval 1day` over `raw_daily_quotes`: the
landing zone's files too). The executors run the polars path's rules (`work`): Spark reads,
spreads the payload groups over the executors and writes.

Writes (Parquet, timestamps as TIMESTAMP_MICROS, UTC):
- `<out>/bars_by_symbol/symbol=AAPL/date=2026-11-20/part-*.parquet` (`daily_bars_by_symbol`
  with `--interval 1day`; the canonical bar schema less the partition columns, sorted by ts);
- `<out>/quarantine/asset=bars_by_symbol/date=2026-11-20/` (the quarantine schema; date =
  exchange-local date of `partition_ts`);
- `<out>/daily_summary/date=2026-11-20/` (the daily summary schema; 5-minute bars only).
Each run replaces its window whole (`output`), except the stored rows of a symbol a provider did
not answer (`lib.answers.kept_spans`), and no other date is touched.

Launched by Dagster Pipes (the `bars_by_symbol` asset), it reports the counts, the partitions
written and the Spark application id as the materialisation's metadata; started by hand, it
prints them as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import posixpath
import sys
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from finance_assets.lib.io.spans import Kept
from finance_assets.lib.markets import Market, markets_from_env
from finance_assets.spark import output, pipes, raw, work

# The executors run the package's polars rules: unless told otherwise (spark-submit's
# spark.pyspark.python sets the variable), PySpark starts them with this Python, which has the
# package, rather than its default `python3` from the PATH. Read when a SparkContext starts.
os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

ASSETS = {"5min": "bars_by_symbol", "1day": "daily_bars_by_symbol"}
ASSET = ASSETS["5min"]
INTERVALS = tuple(ASSETS)
STEPS = ("raw_to_parquet", "daily_summary")
# The data-quality default (FINANCE_MAX_QUARANTINE_RATE, `DataQualityResource`): a landing
# file whose own records are invalid beyond it is rejected as a whole.
MAX_QUARANTINE_RATE = 0.05


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bars_job.py", description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, help="raw zone folder of the payloads")
    parser.add_argument("--out", required=True, help="output root (bars_by_symbol/ etc. below)")
    parser.add_argument("--market", required=True, choices=sorted(markets_from_env()))
    parser.add_argument("--start", required=True, type=_date, help="first session, YYYY-MM-DD")
    parser.add_argument("--end", required=True, type=_date, help="last session, YYYY-MM-DD")
    parser.add_argument(
        "--interval",
        default="5min",
        choices=INTERVALS,
        help="the raw zone's bars: 5min (raw_intraday_quotes, default) or 1day "
        "(raw_daily_quotes, landing-zone files included)",
    )
    parser.add_argument(
        "--steps",
        default=None,
        help="comma-separated: raw_to_parquet, daily_summary (default both; 1day: raw_to_parquet)",
    )
    parser.add_argument(
        "--max-quarantine-rate",
        type=float,
        default=MAX_QUARANTINE_RATE,
        help="a landing file with more invalid records than this share is rejected as a whole "
        f"(default {MAX_QUARANTINE_RATE}, FINANCE_MAX_QUARANTINE_RATE's)",
    )
    parser.add_argument(
        "--calendar-start",
        default=None,
        type=_date,
        help="first partition date of the market (its calendar starts 30 days before; a daily "
        "record dated earlier is no session); default: the market's (FINANCE_DAILY_START)",
    )
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error(f"--end {args.end} is before --start {args.start}")
    if not 0 <= args.max_quarantine_rate <= 1:
        parser.error(f"--max-quarantine-rate {args.max_quarantine_rate} is not within [0, 1]")
    default = "raw_to_parquet,daily_summary" if args.interval == "5min" else "raw_to_parquet"
    text = default if args.steps is None else args.steps
    steps = [s.strip() for s in text.split(",") if s.strip()]
    unknown = sorted(set(steps) - set(STEPS))
    if unknown or not steps:
        parser.error(f"--steps {text!r}: valid steps are raw_to_parquet, daily_summary")
    if args.interval == "1day" and "daily_summary" in steps:
        parser.error("--steps daily_summary aggregates 5-minute bars: not with --interval 1day")
    args.steps = steps
    return args


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def market_of(args: argparse.Namespace) -> Market:
    """The market as the polars path configures it (`markets_from_env`), with the job's
    calendar start if given."""
    market = markets_from_env()[args.market]
    if args.calendar_start is not None:
        first = args.calendar_start.isoformat()
        market = dataclasses.replace(market, daily_start=first, intraday_start=first)
    return market


# The settings the job's output depends on (tests build their session with them too).
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # Spark's INT96 default reads back in polars and Arrow as naive nanoseconds.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # A re-run replaces the partitions it writes, not the whole table (`output` removes the
    # window's partitions it did not write).
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    """The steps over [start, end]; returns the figures the metadata carries."""
    market = market_of(args)
    tz = market.tz
    start = dt.datetime.combine(args.start, dt.time(), tz)
    end = dt.datetime.combine(args.end + dt.timedelta(days=1), dt.time(), tz)
    dates = [
        (args.start + dt.timedelta(days=i)).isoformat()
        for i in range((args.end - args.start).days + 1)
    ]
    asset = ASSETS[args.interval]
    out = args.out.rstrip("/")
    figures: dict[str, Any] = {
        "spark_application_id": spark.sparkContext.applicationId,
        "spark_master": spark.sparkContext.master,
        "interval": args.interval,
        "window": f"{start.isoformat()} .. {end.isoformat()}",
    }
    bars_path = posixpath.join(out, asset)
    if "raw_to_parquet" in args.steps:
        figures.update(raw_to_parquet(spark, args, market, asset, start, end, dates))
    if "daily_summary" in args.steps:
        figures.update(daily_summary(spark, args, market, bars_path, dates))
    figures["outputs"] = {
        asset: bars_path,
        "quarantine": posixpath.join(out, "quarantine", f"asset={asset}"),
    }
    if args.interval == "5min":
        figures["outputs"]["daily_summary"] = posixpath.join(out, "daily_summary")
    return figures


def raw_to_parquet(
    spark: SparkSession,
    args: argparse.Namespace,
    market: Market,
    asset: str,
    start: dt.datetime,
    end: dt.datetime,
    dates: list[str],
) -> dict[str, Any]:
    """Raw payloads -> bars and quarantine of the window; the figures of the step."""
    out = args.out.rstrip("/")
    run_id = spark.sparkContext.applicationId
    envelopes = raw.read_envelopes(spark, args.raw, start, end, run_id=run_id)
    payloads = [e.payload() for e in envelopes]
    clean = work.clean_groups(
        market,
        args.interval,
        asset=asset,
        start=start,
        end=end,
        ingested_at=dt.datetime.now(dt.UTC),
        max_quarantine_rate=args.max_quarantine_rate,
    )
    judged = _per_group(
        raw.payload_frame(spark, envelopes), "grp", clean, work.OUTPUT_ARROW
    ).persist()
    groups = work.notes(judged.filter(F.col("kind") == "group").select("note").collect())
    # Bodies the executors could not parse leave the raw zone, as on the polars path; they
    # answered nothing, so the driver's share of the kept spans is judged without them.
    unreadable = {i: why for note in groups for i, why in note["unreadable"].items()}
    dead = envelopes.dead_letters + raw.dead_letter_bodies(
        spark, args.raw, envelopes, unreadable, run_id
    )
    readable = [p for p in payloads if p.payload_id not in unreadable]
    kept = _kept(groups, readable, market, start, end)
    bars = judged.filter(F.col("kind") == "bar").select(*work.BAR_COLUMNS)
    bars = bars.withColumn("date", _local_date("ts", market.timezone))
    quarantine = judged.filter(F.col("kind") == "quarantine").select(*work.QUARANTINE_COLUMNS)
    quarantine = quarantine.withColumn("date", _local_date("partition_ts", market.timezone))
    # The figures in one Spark job over the judgement: (symbol, date) written, reasons counted.
    tallies = (
        bars.groupBy("symbol", "date", F.lit(None).cast("string").alias("reason"))
        .count()
        .unionByName(
            quarantine.groupBy(F.lit(None).cast("string").alias("symbol"), "date", "reason").count()
        )
        .collect()
    )
    written = [r for r in tallies if r["reason"] is None]
    reasons = [r for r in tallies if r["reason"] is not None]
    bars_table = output.Table(posixpath.join(out, asset), ("symbol", "date"))
    quarantine_table = output.Table(
        posixpath.join(out, "quarantine"), ("asset", "date"), {"asset": asset}
    )
    kept_days = sorted({d for _, d in _kept_partitions(kept, market, dates)})
    written_bars = {(r["symbol"], r["date"]) for r in written}
    written_days = {r["date"] for r in reasons}
    # The stored rows of kept spans go back in with the new rows (their partitions are written
    # whole again); a partition of the window with neither is removed.
    kept_bars = bars_table.kept_rows(spark, kept_days, kept, "ts", [*work.BAR_COLUMNS, "date"])
    kept_bar_parts: set[tuple[str, str]] = set()
    if kept_bars is not None:
        found = kept_bars.select("symbol", "date").distinct().collect()
        kept_bar_parts = {(r["symbol"], r["date"]) for r in found}
        bars = bars.unionByName(kept_bars)
    kept_quarantine = quarantine_table.kept_rows(
        spark, kept_days, kept, "partition_ts", [*work.QUARANTINE_COLUMNS, "date"]
    )
    kept_quarantine_days: set[str] = set()
    if kept_quarantine is not None:
        kept_quarantine_days = {
            r["date"] for r in kept_quarantine.select("date").distinct().collect()
        }
        quarantine = quarantine.unionByName(kept_quarantine)
    removed = bars_table.replace_window(
        bars.repartition("symbol", "date").sortWithinPartitions("ts"),
        dates,
        written_bars | kept_bar_parts,
    )
    removed += quarantine_table.replace_window(
        quarantine.repartition("date"),
        dates,
        {(asset, d) for d in written_days | kept_quarantine_days},
    )
    judged.unpersist()
    loaded = sum(r["count"] for r in written)
    counts: Counter[str] = Counter()
    for r in reasons:
        counts[r["reason"]] += r["count"]
    errors: dict[str, str] = {}
    unanswered: dict[str, str] = {}
    rejected: dict[str, str] = {}
    for note in groups:
        errors.update(note["errors"])
        unanswered.update(note["unanswered"])
        rejected.update({r["file"]: r["reason"] for r in note["rejected"]})
    formats = Counter(p.format for p in payloads)
    return {
        "payloads": len(payloads),
        "payload_groups": len(groups),
        "payload_formats": dict(sorted(formats.items())),
        "records_received": sum(n["received"] for n in groups),
        "rows_loaded": loaded,
        "rows_quarantined": sum(counts.values()),
        "quarantine_reasons": dict(counts.most_common()),
        "provider_errors": errors,
        "unanswered_symbols": unanswered,
        "kept_spans": len(kept),
        "partitions_kept": len(kept_bar_parts - written_bars),
        "rejected_files": rejected,
        "dead_lettered": {d.file: d.reason for d in dead},
        "partitions_written": len(written),
        "partitions_removed": len(removed),
        "symbols": sorted({r["symbol"] for r in written}),
        "dates": sorted({r["date"] for r in written}),
    }


def _kept(
    groups: list[dict[str, Any]],
    payloads: Sequence[Any],
    market: Market,
    start: dt.datetime,
    end: dt.datetime,
) -> list[Kept]:
    """The groups' kept spans, and the whole window of each universe symbol no payload asked
    for (`lib.answers.kept_spans` over the whole universe, split between executors and driver)."""
    spans = {
        Kept(s, dt.datetime.fromisoformat(a), dt.datetime.fromisoformat(b))
        for note in groups
        for s, a, b in note["kept"]
    }
    asked = {s for p in payloads for s in p.symbols}
    window = (start.astimezone(dt.UTC), end.astimezone(dt.UTC))
    spans |= {Kept(s, *window) for s in market.universe if s not in asked}
    return sorted(spans, key=lambda k: (k.symbol, k.start, k.end))


def _kept_partitions(
    kept: Sequence[Kept], market: Market, dates: list[str]
) -> set[tuple[str, str]]:
    """(symbol, local date) of the window that a kept span touches."""
    days = set(dates)
    found = set()
    for span in kept:
        day = span.start.astimezone(market.tz).date()
        last = (span.end - dt.timedelta(microseconds=1)).astimezone(market.tz).date()
        while day <= last:
            if day.isoformat() in days:
                found.add((span.symbol, day.isoformat()))
            day += dt.timedelta(days=1)
    return found


def daily_summary(
    spark: SparkSession, args: argparse.Namespace, market: Market, bars_path: str, dates: list[str]
) -> dict[str, Any]:
    """The stored bars of the window -> the daily summary's date partitions, one symbol per
    task (`transforms.daily_summary`). The session before the window is read too, for its close
    only (the first day's return), as the polars `daily_summary` asset does."""
    path = posixpath.join(args.out.rstrip("/"), "daily_summary")
    sessions = market.sessions(args.start, args.end)
    lead = [market.previous_session(sessions[0]).isoformat()] if sessions else []
    # The window's folders only: listing a large table's every partition costs more than this.
    table = output.Table(path, ("date",))
    folders = output.Table(bars_path, ("symbol", "date")).partitions(spark, lead + dates)
    if not any(values[-1] in dates for values in folders):
        removed = table.remove_stale(spark, dates, set())
        return {"summary_rows": 0, "summary_partitions_removed": len(removed)}
    stored = spark.read.option("basePath", bars_path).parquet(*folders.values())
    summary = (
        _per_group(
            stored.select(*work.BAR_COLUMNS),
            "symbol",
            work.summarise_symbols(market),
            work.SUMMARY_ARROW,
        )
        .withColumn("date", F.col("trading_date").cast("string"))
        .filter(F.col("date").isin(dates))
    )
    summary = summary.persist()
    rows = summary.groupBy("date").count().collect()
    written = {(r["date"],) for r in rows}
    removed = table.replace_window(summary.repartition("date"), dates, written)
    summary.unpersist()
    return {
        "summary_rows": sum(r["count"] for r in rows),
        "summary_partitions_removed": len(removed),
    }


def _per_group(frame: DataFrame, key: str, function: Any, schema: Any) -> DataFrame:
    """`function` (pyarrow Table -> Table of `schema`) over each `key`'s rows on the executors."""
    spread = frame.repartition(key).sortWithinPartitions(key)
    return spread.mapInArrow(work.by_group(key, function), work.spark_ddl(schema))


def _local_date(column: str, timezone: str):
    return F.date_format(F.from_utc_timestamp(column, timezone), "yyyy-MM-dd")


def main(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    with pipes.session() as context:
        own = spark is None
        if own:
            builder = SparkSession.builder.appName(f"finance_assets {ASSETS[args.interval]}")
            for key, value in SPARK_CONF.items():
                builder = builder.config(key, value)
            spark = builder.getOrCreate()
        else:
            for key, value in SPARK_CONF.items():
                spark.conf.set(key, value)
        try:
            figures = run(spark, args)
        finally:
            if own:
                spark.stop()
        # One line for the driver's log (stderr, where Spark logs too), however it was started.
        print(pipes.summary_line(ASSETS[args.interval], figures), file=sys.stderr)
        if context is not None:
            context.log.info(pipes.summary_line(ASSETS[args.interval], figures))
            context.report_asset_materialization(metadata=pipes.metadata(figures))
        else:
            print(json.dumps(figures, indent=1, default=str))
    return figures
