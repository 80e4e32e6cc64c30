"""Writing the job's tables: Parquet in Hive-style partition folders (`symbol=AAPL/date=...`),
each run replacing its window whole.

Spark's dynamic partition overwrite replaces only the partitions a run writes: a (symbol,
date) whose records are all quarantined on a re-run would keep the folder of the earlier run.
So after writing, the window's partitions that this run did not write are removed (the idea
of the lake's window replacement: delete the window, then write). Dates outside the window
are never listed, let alone touched. Writing first and removing after means a reader never
sees a window with neither the old rows nor the new.

Except where a provider did not answer a symbol (`lib.answers.kept_spans`, as the polars path's
lake and warehouse): the stored rows of a kept span stay. A partition with kept rows and new
ones is written with both (`kept_rows`); one with only kept rows is left as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from finance_assets.lib.io.spans import Kept, grouped

_GLOB = set("*?[]{}\\,")


@dataclass(frozen=True)
class Table:
    """A partitioned table of the job: its root, its partition columns (the last is `date`) and
    the values fixed for this run (the quarantine's `asset`)."""

    path: str
    partition_by: tuple[str, ...]
    fixed: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.partition_by[-1] != "date":
            raise ValueError(f"{self.path}: the last partition column must be date")
        for name, value in self.fixed.items():
            if _GLOB & set(value) or value != _escape(value):
                raise ValueError(f"partition value {value!r} of {name} needs escaping")

    def replace_window(
        self, frame: DataFrame, dates: Iterable[str], written: set[tuple[str, ...]]
    ) -> list[str]:
        """Write `frame`, then remove the partitions of `dates` that `written` (the partition
        values this run wrote, in `partition_by`'s order) lacks; returns the removed folders."""
        frame.write.mode("overwrite").partitionBy(*self.partition_by).parquet(self.path)
        return self.remove_stale(frame.sparkSession, dates, written)

    def partitions(self, spark: SparkSession, dates: Iterable[str]) -> dict[tuple[str, ...], str]:
        """The partition folders of `dates` (listed level by level, never the other dates'),
        as partition values -> folder URI."""
        dates = sorted(set(dates))
        if not dates:
            return {}
        levels = [f"{n}={self.fixed.get(n, '*')}" for n in self.partition_by[:-1]]
        levels.append("date={" + ",".join(dates) + "}")
        pattern = _path(spark, self.path.rstrip("/") + "/" + "/".join(levels))
        fs = pattern.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        found = {}
        for status in fs.globStatus(pattern) or []:
            if not status.isDirectory():
                continue
            folder = status.getPath()
            names, cursor = [], folder
            for _ in self.partition_by:
                names.append(cursor.getName())
                cursor = cursor.getParent()
            values = tuple(unquote(n.split("=", 1)[1]) for n in reversed(names))
            found[values] = folder.toString()
        return found

    def remove_stale(
        self, spark: SparkSession, dates: Iterable[str], written: set[tuple[str, ...]]
    ) -> list[str]:
        """Remove the partition folders of `dates` whose values `written` lacks."""
        stale = [f for v, f in self.partitions(spark, dates).items() if v not in written]
        for folder in stale:
            path = _path(spark, folder)
            path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).delete(path, True)
        return sorted(stale)

    def kept_rows(
        self,
        spark: SparkSession,
        dates: Iterable[str],
        kept: Sequence[Kept],
        time_column: str,
        columns: Sequence[str],
    ) -> DataFrame | None:
        """The stored rows of `dates` inside `kept` spans (`columns`, partition columns
        included), read into Spark's own storage before the same folders are overwritten;
        None when there are none."""
        if not kept:
            return None
        folders = self.partitions(spark, dates)
        if not folders:
            return None
        stored = spark.read.option("basePath", self.path).parquet(*folders.values())
        for name, value in self.fixed.items():
            stored = stored.filter(F.col(name).cast("string") == value)
        # Partition values read back as text, as the job writes them (`date` would be a date).
        for name in self.partition_by:
            stored = stored.withColumn(name, F.col(name).cast("string"))
        rows = stored.filter(in_spans(kept, time_column)).select(*columns)
        # Eager: the rows must be read before their files are replaced.
        rows = rows.localCheckpoint(eager=True)
        return rows if not rows.isEmpty() else None


def in_spans(kept: Sequence[Kept], time_column: str, symbol_column: str = "symbol") -> Column:
    """True for the rows inside a kept span (`lib.io.spans.kept_expr` in Spark)."""
    expr = F.lit(False)
    t = F.col(time_column)
    for (start, end), symbols in grouped(kept).items():
        expr = expr | (
            (t >= F.lit(start.astimezone(dt.UTC)))
            & (t < F.lit(end.astimezone(dt.UTC)))
            & F.col(symbol_column).isin(symbols)
        )
    return expr


def _path(spark: SparkSession, uri: str):
    return spark.sparkContext._jvm.org.apache.hadoop.fs.Path(uri)


def _escape(value: str) -> str:
    """Spark's partition-path escaping (ExternalCatalogUtils.escapePathName) of plain names."""
    special = set("\"#%'*/:=?\\\x7f{[]^")
    return "".join(f"%{ord(c):02X}" if c in special or ord(c) < 0x20 else c for c in value)
