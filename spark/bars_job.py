"""spark-submit entry point: raw-zone payloads -> bars partitioned by symbol and date, the
quarantine, and the daily summary.

    spark-submit --py-files spark/bars_spark.py spark/bars_job.py \
        --raw data/raw/us/raw_intraday_quotes --out data/spark/us --market us \
        --start 2026-11-16 --end 2026-11-20

Writes (Parquet, timestamps as TIMESTAMP_MICROS, UTC):
- `<out>/bars_by_symbol/symbol=AAPL/date=2026-11-20/part-*.parquet` (the canonical bar schema
  less the partition columns, sorted by ts);
- `<out>/quarantine/date=2026-11-20/` (the quarantine schema; date = exchange-local date of
  `partition_ts`);
- `<out>/daily_summary/date=2026-11-20/` (the daily summary schema).
Each run replaces the date partitions it writes and leaves the others.

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # bars_spark beside this file
import bars_spark

ASSET = "bars_by_symbol"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bars_job.py", description=__doc__.splitlines()[0])
    parser.add_argument("--raw", required=True, help="raw zone folder of the 5-minute payloads")
    parser.add_argument("--out", required=True, help="output root (bars_by_symbol/ etc. below)")
    parser.add_argument("--market", required=True, choices=sorted(bars_spark.MARKETS))
    parser.add_argument("--start", required=True, type=_date, help="first session, YYYY-MM-DD")
    parser.add_argument("--end", required=True, type=_date, help="last session, YYYY-MM-DD")
    parser.add_argument(
        "--steps",
        default="raw_to_parquet,daily_summary",
        help="comma-separated: raw_to_parquet, daily_summary (default both)",
    )
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error(f"--end {args.end} is before --start {args.start}")
    steps = [s.strip() for s in args.steps.split(",") if s.strip()]
    unknown = sorted(set(steps) - {"raw_to_parquet", "daily_summary"})
    if unknown or not steps:
        parser.error(f"--steps {args.steps!r}: valid steps are raw_to_parquet, daily_summary")
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
    # A re-run replaces the date partitions it writes, not the whole table.
    "spark.sql.sources.partitionOverwriteMode": "dynamic",
}


def run(spark: SparkSession, args: argparse.Namespace) -> dict[str, Any]:
    """Both steps over [start, end]; returns the figures the metadata carries."""
    _ship_rules(spark)
    _, timezone = bars_spark.MARKETS[args.market]
    tz = ZoneInfo(timezone)
    start = dt.datetime.combine(args.start, dt.time(), tz)
    end = dt.datetime.combine(args.end + dt.timedelta(days=1), dt.time(), tz)
    sessions, previous = bars_spark.session_frame(spark, args.market, args.start, args.end)
    out = args.out.rstrip("/")
    figures: dict[str, Any] = {
        "spark_application_id": spark.sparkContext.applicationId,
        "spark_master": spark.sparkContext.master,
        "window": f"{start.isoformat()} .. {end.isoformat()}",
    }
    bars_path = posixpath.join(out, ASSET)
    if "raw_to_parquet" in args.steps:
        payloads = bars_spark.read_payload_index(spark, args.raw, start, end)
        records, coverage = bars_spark.raw_records(spark, payloads, timezone)
        records = records.cache()
        result = bars_spark.clean(
            records,
            coverage,
            sessions,
            timezone=timezone,
            asset=ASSET,
            start=start,
            end=end,
            ingested_at=dt.datetime.now(dt.UTC),
        )
        bars = result.bars.withColumn("date", _local_date("ts", timezone))
        quarantine = result.quarantine.withColumn("date", _local_date("partition_ts", timezone))
        _write(
            bars.repartition("symbol", "date").sortWithinPartitions("ts"),
            bars_path,
            ["symbol", "date"],
        )
        _write(quarantine.repartition("date"), posixpath.join(out, "quarantine"), ["date"])
        # The figures in one pass over the judgement: (symbol, date) written, reasons counted.
        written = bars.groupBy("symbol", "date").count().collect()
        reasons = quarantine.groupBy("reason").count().collect()
        loaded = sum(r["count"] for r in written)
        quarantined = sum(r["count"] for r in reasons)
        figures.update(
            {
                "payloads": len(payloads),
                "records_received": loaded + quarantined,
                "rows_loaded": loaded,
                "rows_quarantined": quarantined,
                "quarantine_reasons": dict(
                    sorted(((r["reason"], r["count"]) for r in reasons), key=lambda i: -i[1])
                ),
                "partitions_written": len(written),
                "symbols": sorted({r["symbol"] for r in written}),
                "dates": sorted({r["date"] for r in written}),
            }
        )
        result.unpersist()
        records.unpersist()
    if "daily_summary" in args.steps:
        stored = spark.read.parquet(bars_path) if _exists(spark, bars_path) else None
        if stored is not None:
            day = F.col("date").cast("string")
            stored = stored.filter((day >= args.start.isoformat()) & (day <= args.end.isoformat()))
            summary = bars_spark.daily_summary(stored, timezone, previous).withColumn(
                "date", F.col("trading_date").cast("string")
            )
            summary = summary.persist()
            _write(summary.repartition("date"), posixpath.join(out, "daily_summary"), ["date"])
            figures["summary_rows"] = summary.count()
            summary.unpersist()
        else:
            figures["summary_rows"] = 0
    figures["outputs"] = {
        "bars_by_symbol": bars_path,
        "quarantine": posixpath.join(out, "quarantine"),
        "daily_summary": posixpath.join(out, "daily_summary"),
    }
    return figures


def _ship_rules(spark: SparkSession) -> None:
    """The executors unpickle the parser from `bars_spark`: ship the file (once per context),
    so the job needs no --py-files."""
    context = spark.sparkContext
    shipped = context.getConf().get("spark.submit.pyFiles", "") + ",".join(
        getattr(context, "_finance_shipped", [])
    )
    if "bars_spark.py" not in shipped:
        context.addPyFile(bars_spark.__file__)
        context._finance_shipped = [bars_spark.__file__]  # type: ignore[attr-defined]


def _local_date(column: str, timezone: str):
    return F.date_format(F.from_utc_timestamp(column, timezone), "yyyy-MM-dd")


def _write(frame: DataFrame, path: str, partition_by: list[str]) -> None:
    frame.write.mode("overwrite").partitionBy(*partition_by).parquet(path)


def _exists(spark: SparkSession, path: str) -> bool:
    jvm = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    return bool(fs.exists(hadoop_path))


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
            builder = SparkSession.builder.appName(f"finance_assets {ASSET}")
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
        if pipes is not None:
            pipes.log.info(f"{ASSET}: {figures.get('rows_loaded')} rows loaded")
            pipes.report_asset_materialization(metadata=_metadata(figures))
        else:
            print(json.dumps(figures, indent=1, default=str))
    return figures


def _metadata(figures: dict[str, Any]) -> dict[str, Any]:
    """Pipes metadata: typed where Dagster would guess wrong."""
    metadata: dict[str, Any] = {}
    for key, value in figures.items():
        if key == "outputs" or key in ("quarantine_reasons", "symbols", "dates"):
            metadata[key] = {"raw_value": value, "type": "json"}
        elif isinstance(value, int):
            metadata[key] = {"raw_value": value, "type": "int"}
        else:
            metadata[key] = {"raw_value": str(value), "type": "text"}
    metadata["dagster/row_count"] = {"raw_value": figures.get("rows_loaded", 0), "type": "int"}
    return metadata


if __name__ == "__main__":
    main()
