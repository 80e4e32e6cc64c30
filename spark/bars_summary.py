"""The daily summary in Spark: one row per (trading_date, symbol) of the 5-minute bars, as
`lib/transforms/daily.daily_summary` computes it (VWAP over typical prices, open-to-close and
range in %, the return against the previous session's close)."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def daily_summary(bars: DataFrame, timezone: str, previous: dict[dt.date, dt.date]) -> DataFrame:
    """One row per (trading_date, symbol), as `lib/transforms.daily_summary`: vwap over typical
    prices, open-to-close and range in %, return against the previous session's close (null
    when that session is not in `bars`)."""
    spark = bars.sparkSession
    day = F.to_date(F.from_utc_timestamp("ts", timezone))
    sessions = (
        bars.withColumn("trading_date", day)
        .groupBy("trading_date", "symbol")
        .agg(
            F.min_by("open", "ts").alias("open"),
            F.max("high").alias("high"),
            F.min("low").alias("low"),
            F.max_by("close", "ts").alias("close"),
            F.sum("volume").alias("volume"),
            F.sum((F.col("high") + F.col("low") + F.col("close")) / 3 * F.col("volume")).alias(
                "_pv"
            ),
            F.count(F.lit(1)).alias("bar_count"),
        )
    )
    prev = spark.createDataFrame(list(previous.items()), "trading_date date, _prev_date date")
    prev_close = sessions.select(
        F.col("trading_date").alias("_prev_date"), "symbol", F.col("close").alias("prev_close")
    )
    return (
        sessions.join(F.broadcast(prev), "trading_date", "left")
        .join(prev_close, ["_prev_date", "symbol"], "left")
        .select(
            "trading_date",
            "symbol",
            "open",
            "high",
            "low",
            "close",
            "volume",
            F.when(F.col("volume") > 0, F.col("_pv") / F.col("volume")).alias("vwap"),
            ((F.col("close") / F.col("open") - 1) * 100).alias("open_to_close_pct"),
            ((F.col("high") - F.col("low")) / F.col("open") * 100).alias("range_pct"),
            ((F.col("close") / F.col("prev_close") - 1) * 100).alias("return_pct"),
            "prev_close",
            "bar_count",
        )
    )
