"""Writing the job's tables: Parquet in Hive-style partition folders (`symbol=AAPL/date=...`),
each run replacing its window whole.

Spark's dynamic partition overwrite replaces only the partitions a run writes: a (symbol,
date) whose records are all quarantined on a re-run would keep the folder of the earlier run.
So after writing, the window's partitions that this run did not write are removed (the idea
of the lake's window replacement: delete the window, then write). Dates outside the window
are never listed, let alone touched. Writing first and removing after means a reader never
sees a window with neither the old rows nor the new.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from urllib.parse import unquote

from pyspark.sql import DataFrame, SparkSession

_GLOB = set("*?[]{}\\,")


def replace_window(
    frame: DataFrame,
    path: str,
    partition_by: Sequence[str],
    dates: Iterable[str],
    written: set[tuple[str, ...]],
    fixed: dict[str, str] | None = None,
) -> list[str]:
    """Write `frame` partitioned by `partition_by` (the last column is `date`), then remove the
    partitions of `dates` (with the `fixed` values, e.g. asset) that `written` lacks: `written`
    holds the partition values this run wrote, in `partition_by`'s order. Returns the removed
    folders."""
    frame.write.mode("overwrite").partitionBy(*partition_by).parquet(path)
    return remove_stale(frame.sparkSession, path, partition_by, dates, written, fixed)


def window_partitions(
    spark: SparkSession,
    path: str,
    partition_by: Sequence[str],
    dates: Iterable[str],
    fixed: dict[str, str] | None = None,
) -> dict[tuple[str, ...], str]:
    """The partition folders of `dates` under `path` (one listing per level, never the other
    dates'), as partition values -> folder URI."""
    dates = sorted(set(dates))
    if not dates or partition_by[-1] != "date":
        return {}
    fixed = fixed or {}
    levels = []
    for name in partition_by[:-1]:
        value = fixed.get(name)
        if value is not None and (_GLOB & set(value) or value != _escape(value)):
            raise ValueError(f"partition value {value!r} of {name} needs escaping")
        levels.append(f"{name}={value}" if value is not None else f"{name}=*")
    levels.append("date={" + ",".join(dates) + "}")
    jvm = spark.sparkContext._jvm
    pattern = jvm.org.apache.hadoop.fs.Path(path.rstrip("/") + "/" + "/".join(levels))
    fs = pattern.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    found = {}
    for status in fs.globStatus(pattern) or []:
        if not status.isDirectory():
            continue
        folder = status.getPath()
        names, cursor = [], folder
        for _ in partition_by:
            names.append(cursor.getName())
            cursor = cursor.getParent()
        found[tuple(unquote(n.split("=", 1)[1]) for n in reversed(names))] = folder.toString()
    return found


def remove_stale(
    spark: SparkSession,
    path: str,
    partition_by: Sequence[str],
    dates: Iterable[str],
    written: set[tuple[str, ...]],
    fixed: dict[str, str] | None = None,
) -> list[str]:
    """Remove the partition folders of `dates` whose values `written` lacks."""
    stale = [
        folder
        for values, folder in window_partitions(spark, path, partition_by, dates, fixed).items()
        if values not in written
    ]
    jvm = spark.sparkContext._jvm
    for folder in stale:
        hadoop_path = jvm.org.apache.hadoop.fs.Path(folder)
        fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
        fs.delete(hadoop_path, True)
    return sorted(stale)


def _escape(value: str) -> str:
    """Spark's partition-path escaping (ExternalCatalogUtils.escapePathName) of plain names."""
    special = set("\"#%'*/:=?\\\x7f{[]^")
    return "".join(f"%{ord(c):02X}" if c in special or ord(c) < 0x20 else c for c in value)
