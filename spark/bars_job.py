"""spark-submit entry point: raw-zone payloads -> bars partitioned by symbol and date, the
quarantine, and the daily summary.

    spark-submit --py-files spark/bars_rules.py,spark/bars_raw.py,... spark/bars_job.py \
        --raw data/raw/us/raw_intraday_quotes --out data/spark/us --market us \
        --start 2026-11-16 --end 2026-11-20

(`--py-files`: every `spark/bars_*.py` but this one; run in-process, the job ships them
itself.) Reads every raw format the polars path parses: twelve_data, alpha_vantage,
yahoo_chart and, with `--interval 1day` over `raw_daily_quotes`, the landing zone's yahoo_csv.

Writes (Parquet, timestamps as TIMESTAMP_MICROS, UTC):
- `<out>/bars_by_symbol/symbol=AAPL/date=2026-11-20/part-*.parquet` (`daily_bars_by_symbol`
  with `--interval 1day`; the canonical bar schema less the partition columns, sorted by ts);
- `<out>/quarantine/asset=bars_by_symbol/date=2026-11-20/` (the quarantine schema; date =
  exchange-local date of `partition_ts`);
- `<out>/daily_summary/date=2026-11-20/` (the daily summary schema; 5-minute bars only).
Each run replaces its window whole: after it, every (symbol, date) of [start, end] holds
exactly what it produced (`bars_output`), and no other date is touched.

Launched by Dagster Pipes (the `bars_by_symbol` asset), it reports the counts, the partitions
written and the Spark application id as the materialisation's metadata; started by hand, it
prints them as JSON.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import posixpath
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # the modules beside this file
import bars_clean
import bars_output
import bars_raw
import bars_rules
import bars_sessions
import bars_summary

ASSETS = {"5min": "bars_by_symbol", "1day": "daily_bars_by_symbol"}
ASSET = ASSETS["5min"]
STEPS = ("raw_to_parquet", "daily_summary")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bars_job.py", description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, help="raw zone folder of the payloads")
    parser.add_argument("--out", required=True, help="output root (bars_by_symbol/ etc. below)")
    parser.add_argument("--market", required=True, choices=sorted(bars_rules.MARKETS))
    parser.add_argument("--start", required=True, type=_date, help="first session, YYYY-MM-DD")
    parser.add_argument("--end", required=True, type=_date, help="last session, YYYY-MM-DD")
    parser.add_argument(
        "--interval",
        default="5min",
        choices=bars_rules.INTERVALS,
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
        default=bars_rules.MAX_QUARANTINE_RATE,
        help="a landing file with more invalid records than this share is rejected as a whole "
        f"(default {bars_rules.MAX_QUARANTINE_RATE}, FINANCE_MAX_QUARANTINE_RATE's)",
    )
    parser.add_argument(
        "--calendar-start",
        default=bars_rules.CALENDAR_START,
        type=_date,
        help="first day of the market calendar a daily record's date is looked up in "
        f"(default {bars_rules.CALENDAR_START}, the default markets')",
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


# The settings the job's output depends on (tests build their session with them too).
SPARK_CONF = {
    "spark.sql.session.timeZone": "UTC",
    # Spark's INT96 default reads back in polars and Arrow as naive nanoseconds.
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    # A re-run replaces the partitions it writes, not the whole table (`bars_output` removes
    # the window's partitions it did not write).
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    """The steps over [start, end]; returns the figures the metadata carries."""
    _ship_modules(spark)
    _, timezone = bars_rules.MARKETS[args.market]
    tz = ZoneInfo(timezone)
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
        figures.update(raw_to_parquet(spark, args, asset, start, end, dates))
    if "daily_summary" in args.steps:
        figures.update(daily_summary(spark, args, bars_path, timezone, dates))
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
    asset: str,
    start: dt.datetime,
    end: dt.datetime,
    dates: list[str],
) -> dict[str, Any]:
    """Raw payloads -> bars and quarantine of the window; the figures of the step."""
    _, timezone = bars_rules.MARKETS[args.market]
    out = args.out.rstrip("/")
    payloads = bars_raw.read_payload_index(spark, args.raw, start, end)
    raw = bars_raw.raw_records(spark, payloads, timezone, args.interval)
    sessions, opens = None, None
    if args.interval == "5min":
        sessions, _ = bars_sessions.session_frame(spark, args.market, args.start, args.end)
    else:
        days = [r["day"] for r in raw.records.select("day").distinct().collect() if r["day"]]
        opens = bars_sessions.daily_opens(spark, args.market, days, args.calendar_start.isoformat())
    timed = bars_clean.with_bar_times(raw.records, opens)
    rejections = bars_clean.rejected_files(timed, payloads, args.max_quarantine_rate)
    envelope = bars_raw.envelopes(spark, payloads, {r.payload_id: r.reason for r in rejections})
    result = bars_clean.clean(
        timed.join(F.broadcast(envelope), "payload_id"),
        bars_raw.coverage(raw.records, envelope),
        sessions,
        timezone=timezone,
        asset=asset,
        start=start,
        end=end,
        ingested_at=dt.datetime.now(dt.UTC),
    )
    bars = result.bars.withColumn("date", _local_date("ts", timezone))
    quarantine = result.quarantine.withColumn("date", _local_date("partition_ts", timezone))
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
    bars_table = bars_output.Table(posixpath.join(out, asset), ("symbol", "date"))
    removed = bars_table.replace_window(
        bars.repartition("symbol", "date").sortWithinPartitions("ts"),
        dates,
        {(r["symbol"], r["date"]) for r in written},
    )
    quarantine_table = bars_output.Table(
        posixpath.join(out, "quarantine"), ("asset", "date"), {"asset": asset}
    )
    removed += quarantine_table.replace_window(
        quarantine.repartition("date"), dates, {(asset, r["date"]) for r in reasons}
    )
    loaded = sum(r["count"] for r in written)
    counts = Counter()
    for r in reasons:
        counts[r["reason"]] += r["count"]
    formats = Counter(p.format for p in payloads)
    figures = {
        "payloads": len(payloads),
        "payload_formats": dict(sorted(formats.items())),
        "records_received": loaded + sum(counts.values()),
        "rows_loaded": loaded,
        "rows_quarantined": sum(counts.values()),
        "quarantine_reasons": dict(counts.most_common()),
        "provider_errors": raw.errors,
        "rejected_files": {r.file: r.reason for r in rejections},
        "partitions_written": len(written),
        "partitions_removed": len(removed),
        "symbols": sorted({r["symbol"] for r in written}),
        "dates": sorted({r["date"] for r in written}),
    }
    result.unpersist()
    raw.unpersist()
    return figures


def daily_summary(
    spark: SparkSession, args: argparse.Namespace, bars_path: str, timezone: str, dates: list[str]
) -> dict[str, Any]:
    """The stored bars of the window -> the daily summary's date partitions. The session before
    the window is read too, for its close only (the first day's return), as the polars
    `daily_summary` asset does."""
    _, previous = bars_sessions.session_frame(spark, args.market, args.start, args.end)
    path = posixpath.join(args.out.rstrip("/"), "daily_summary")
    sessions = sorted(d for d in previous if args.start <= d <= args.end)
    lead = [previous[sessions[0]].isoformat()] if sessions else []
    # The window's folders only: listing a large table's every partition costs more than this.
    table = bars_output.Table(path, ("date",))
    folders = bars_output.Table(bars_path, ("symbol", "date")).partitions(spark, lead + dates)
    if not any(values[-1] in dates for values in folders):
        removed = table.remove_stale(spark, dates, set())
        return {"summary_rows": 0, "summary_partitions_removed": len(removed)}
    stored = spark.read.option("basePath", bars_path).parquet(*folders.values())
    summary = (
        bars_summary.daily_summary(stored, timezone, previous)
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


def library_files() -> list[str]:
    """The job's modules besides this one (what `--py-files` ships): every `bars_*` module
    loaded from this folder."""
    here = os.path.dirname(os.path.abspath(bars_rules.__file__))
    return sorted(
        module.__file__
        for name, module in list(sys.modules.items())
        if name.startswith("bars_")
        and name != "bars_job"
        and getattr(module, "__file__", None)
        and os.path.dirname(os.path.abspath(module.__file__)) == here
    )


def _ship_modules(spark: SparkSession) -> None:
    """The executors unpickle the parsers from these modules: ship the files (once per
    context) unless spark-submit's --py-files did."""
    context = spark.sparkContext
    shipped = context.getConf().get("spark.submit.pyFiles", "")
    done = getattr(context, "_finance_shipped", set())
    for path in library_files():
        name = os.path.basename(path)
        if name not in shipped and name not in done:
            context.addPyFile(path)
            done.add(name)
    context._finance_shipped = done  # type: ignore[attr-defined]


def _local_date(column: str, timezone: str):
    return F.date_format(F.from_utc_timestamp(column, timezone), "yyyy-MM-dd")


# --- Dagster Pipes -----------------------------------------------------------------------------


@contextmanager
def pipes_session() -> Iterator[Any]:
    """The Pipes context when Dagster launched this process, else None.

    Messages go where the launcher's reader looks: S3 on EMR (the reader passes a bucket),
    stdout (EMR Serverless: CloudWatch reads the driver's stdout) or a file (local).
    """
    try:
        from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes
    except ImportError:
        yield None
        return
    loader = PipesEnvVarParamsLoader()
    if not loader.is_dagster_pipes_process():
        yield None
        return
    with open_dagster_pipes(message_writer=_message_writer(), params_loader=loader) as pipes:
        yield pipes


def _message_writer() -> Any:
    from dagster_pipes import PipesDefaultMessageWriter, PipesMessageWriter, PipesS3MessageWriter

    class AnyMessageWriter(PipesMessageWriter):
        @contextmanager
        def open(self, params):  # type: ignore[override]
            if "bucket" in params:
                import boto3

                writer: Any = PipesS3MessageWriter(boto3.client("s3"), interval=1)
            else:
                writer = PipesDefaultMessageWriter()
            with writer.open(params) as channel:
                yield channel

    return AnyMessageWriter()


def main(argv: Sequence[str] | None = None, spark: SparkSession | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    with pipes_session() as pipes:
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
        print(_summary_line(ASSETS[args.interval], figures), file=sys.stderr)
        if pipes is not None:
            pipes.log.info(_summary_line(ASSETS[args.interval], figures))
            pipes.report_asset_materialization(metadata=_metadata(figures))
        else:
            print(json.dumps(figures, indent=1, default=str))
    return figures


def _summary_line(asset: str, figures: dict[str, Any]) -> str:
    return (
        f"{asset} {figures['window']}: {figures.get('rows_loaded', 0)} rows loaded, "
        f"{figures.get('rows_quarantined', 0)} quarantined, "
        f"{figures.get('partitions_written', 0)} partitions written, "
        f"{figures.get('partitions_removed', 0)} removed"
    )


def _metadata(figures: dict[str, Any]) -> dict[str, Any]:
    """Pipes metadata: typed where Dagster would guess wrong."""
    metadata: dict[str, Any] = {}
    for key, value in figures.items():
        if isinstance(value, dict | list):
            metadata[key] = {"raw_value": value, "type": "json"}
        elif isinstance(value, int):
            metadata[key] = {"raw_value": value, "type": "int"}
        else:
            metadata[key] = {"raw_value": str(value), "type": "text"}
    metadata["dagster/row_count"] = {"raw_value": figures.get("rows_loaded", 0), "type": "int"}
    return metadata


if __name__ == "__main__":
    main()
