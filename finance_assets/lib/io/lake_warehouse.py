"""The lake and the warehouse as one store: the write order, and the check that they agree.

Write order (one window, both stores):
1. the lake's day files are staged under temporary names (a thread), while the warehouse
   deletes the window and COPYs the new rows in one open transaction;
2. the warehouse commits only once the lake's files are all staged: a lake that cannot be
   written (read-only, full) rolls the transaction back;
3. the staged files are moved into place once the commit has returned (a rename locally, a
   server-side copy on S3: the upload, the slow and fallible part, happened before the
   commit). A warehouse that fails (connection killed mid-COPY, statement timeout) discards
   them.

Just before the commit, the staged window is marked pending (`lake.StagedWindow.mark`: a
marker object listing the staged files). The marker goes once the files are published. A
publish that fails after the commit (S3 answering CopyObject with 500s) is retried from the
staged files (`publish_attempts`, backoff doubling); if it still fails, the marker and the staged
files stay: readers of those days refuse them (`lake.PendingPublish`) rather than serve the
older files, `compare` counts them as differing (`pending_publish`), and the next write of the
asset (a retry, the next partition, a re-run) publishes them first (`lake.publish_pending`).

The lake is a local folder or an S3 prefix (`objects.py`): the same order on both, and S3
refusing a PUT (500, 503 SlowDown beyond the client's retries) while staging rolls the
warehouse back like a full disk does.

What remains: a process killed between the marker and the commit leaves a marker for a window
the warehouse may not have committed (the next write publishes it, and the reconciliation names
the partitions should they differ), and a commit whose answer is lost (the connection dies
during COMMIT) may have committed while the staged files are discarded. Either is repaired by
the next run of those partitions, and the reconciliation check (`differing_partitions`) names
any partition where the stores disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import polars as pl

from finance_assets.lib.io import lake, postgres
from finance_assets.lib.io.lake import Location
from finance_assets.lib.io.objects import ObjectInfo
from finance_assets.lib.io.spans import Kept


class StoresOutOfStep(RuntimeError):
    """The warehouse committed but the lake's files could not be published (yet): the
    window is marked pending in the lake, and the next write of the asset publishes it."""


@dataclass(frozen=True)
class WindowWrite:
    lake_files: list[ObjectInfo]
    rows_deleted: int


def _discard(staging: Future[lake.StagedWindow]) -> None:
    try:
        staged = staging.result()
    except BaseException:
        return  # staging failed and removed its own files
    staged.discard()


@dataclass(frozen=True)
class Stores:
    """One table in both stores: the lake's day files under `lake_dir` (local days of `tz`) and
    `table` in the warehouse at `url`, both keyed by the table's time column."""

    lake_dir: Location
    url: str
    table: postgres.WindowTable
    tz: ZoneInfo
    # Tries of the publish after the commit, `publish_backoff` seconds doubling between them
    # (1 + 2 + 4 s by default: S3's 500s come in bursts; boto3 retries each request too).
    publish_attempts: int = 4
    publish_backoff: float = 1.0

    def write(
        self,
        df: pl.DataFrame,
        *,
        start: dt.datetime,
        end: dt.datetime,
        primary_key: Sequence[str] | None = None,
        chunk: str | None = None,
        kept: Sequence[Kept] = (),
    ) -> WindowWrite:
        """Replace [start, end) in the lake and the warehouse so that, whatever fails, both
        hold the same rows: stage the lake, commit the warehouse, publish the lake (module
        docstring)."""
        lake_dir, name = lake.store_of(self.lake_dir), str(self.table)
        # Both writers spend their time outside the GIL (Parquet encoding, binary COPY).
        with ThreadPoolExecutor(max_workers=1) as pool:
            staging = pool.submit(
                lake.stage_window,
                lake_dir,
                df,
                start=start,
                end=end,
                tz=self.tz,
                time_column=self.table.time_column,
                kept=kept,
            )

            def lake_staged() -> None:
                try:
                    # Marked before the commit: whatever happens after it, readers can tell.
                    staging.result().mark()
                except BaseException as exc:
                    exc.add_note(f"{name}: the warehouse transaction was rolled back")
                    raise

            try:
                deleted = postgres.replace_window(
                    self.url,
                    df,
                    self.table,
                    start=start,
                    end=end,
                    primary_key=primary_key,
                    chunk=chunk,
                    kept=kept,
                    before_commit=lake_staged,
                )
            except BaseException:
                _discard(staging)
                raise
        staged = staging.result()
        marker = staged.marker
        try:
            files = staged.publish(self.publish_attempts, self.publish_backoff)
        except OSError as exc:
            days = ", ".join(sorted({key.split("/")[0] for _, key in staged.moves}))
            raise StoresOutOfStep(
                f"{name} committed [{start}, {end}) but the lake files of {days} under "
                f"{lake_dir.uri()} could not be published after {self.publish_attempts} "
                f"attempts ({exc}). They stay staged and marked pending "
                f"({lake_dir.uri(marker) if marker else 'no marker'}): readers of those days "
                "refuse them until the next write of the asset publishes them"
            ) from exc
        return WindowWrite(lake_files=files, rows_deleted=deleted)

    def read(
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        warehouse: postgres.WindowReader | None = None,
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """The window's rows in the lake and in the warehouse, read at the same time (Parquet
        decoding and the COPY both run outside the GIL). `warehouse`: an open reader of the
        table (`compare`'s, a day at a time over one connection), else a connection of its
        own."""
        with ThreadPoolExecutor(max_workers=1) as pool:
            reading = pool.submit(
                lake.read_window,
                self.lake_dir,
                start=start,
                end=end,
                tz=self.tz,
                time_column=self.table.time_column,
                pending="ignore",  # `compare` names pending windows; other readers refuse them
            )
            if warehouse is None:
                in_warehouse = postgres.read_window(
                    self.url, self.table, start=start, end=end, ordered=False
                )
            else:
                in_warehouse = warehouse.read(start, end, ordered=False)
            in_lake = reading.result()
        return (pl.DataFrame() if in_lake is None else in_lake), in_warehouse

    def compare(
        self,
        start: dt.datetime,
        end: dt.datetime,
        *,
        starts: Sequence[dt.datetime] | Callable[[], Sequence[dt.datetime]],
        keys: Sequence[str],
    ) -> Comparison:
        """`differing_partitions` over [start, end), a local day at a time: memory holds one
        day of both stores, not the whole range (a month of 2,000 symbols' bars is 30 M rows
        a side)."""
        cached: list[Sequence[dt.datetime]] = []

        def all_starts() -> Sequence[dt.datetime]:
            if not cached:
                cached.append(starts() if callable(starts) else starts)
            return cached[0]

        lake_rows = warehouse_rows = 0
        differing: dict[str, dict[str, int]] = {}
        pending = lake.pending_publishes(self.lake_dir, start, end)
        # One connection for every day: a connection and a table lookup per day cost more
        # than the day's read (26 days of 500 symbols' bars compared in 4.8 s, 2.7 s over one).
        with postgres.window_reader(self.url, self.table) as warehouse:
            for lo, hi in day_spans(start, end, self.tz):
                in_lake, in_warehouse = self.read(lo, hi, warehouse=warehouse)
                lake_rows += in_lake.height
                warehouse_rows += in_warehouse.height
                day = differing_partitions(
                    in_lake, in_warehouse, all_starts, keys, time_column=self.table.time_column
                )
                for key, counts in day.items():  # a partition longer than a day adds up its days
                    seen = differing.setdefault(key, dict.fromkeys(counts, 0))
                    for name, value in counts.items():
                        seen[name] += value
        if pending:
            # Partitions inside a window waiting to be published differ, whatever the rows
            # say: until the publish, the lake's files there are not the warehouse's.
            for key, window_start in zip(keys, all_starts(), strict=False):
                if any(p.start <= window_start < p.end for p in pending):
                    counts = differing.setdefault(
                        key,
                        {
                            "lake_rows": 0,
                            "warehouse_rows": 0,
                            "only_in_lake": 0,
                            "only_in_warehouse": 0,
                        },
                    )
                    counts["pending_publish"] = 1
        return Comparison(
            lake_rows,
            warehouse_rows,
            differing,
            [lake.store_of(self.lake_dir).uri(p.key) for p in pending],
        )


# --- reconciliation --------------------------------------------------------------------------


def differing_partitions(
    in_lake: pl.DataFrame,
    in_warehouse: pl.DataFrame,
    starts: Sequence[dt.datetime] | Callable[[], Sequence[dt.datetime]],
    keys: Sequence[str],
    *,
    time_column: str = "ts",
) -> dict[str, dict[str, int]]:
    """Partitions (`keys`, windows starting at `starts`, ascending) whose rows differ between
    the two stores, over every column (row hashes, then anti-joins for the differences):
    {key: {lake_rows, warehouse_rows, only_in_lake, only_in_warehouse}}; empty when they agree.
    `starts` may be a callable: it is needed only when the stores differ (enumerating 1,560
    windows is not free)."""
    if in_lake.is_empty() and in_warehouse.is_empty():
        return {}
    columns = in_lake.columns or in_warehouse.columns
    if in_lake.height and in_warehouse.height:
        if set(in_lake.columns) != set(in_warehouse.columns):
            raise ValueError(
                f"the stores have different columns: lake {in_lake.columns}, "
                f"warehouse {in_warehouse.columns}"
            )
        in_warehouse = in_warehouse.select(
            [pl.col(c).cast(in_lake.schema[c]) for c in in_lake.columns]
        )
        # The common case, cheaply: the same multiset of 64-bit row hashes (0.2 s for 780k
        # bars, against 0.6 s to sort and compare the frames; a false agreement would need a
        # changed row with its original's hash). Any difference goes to the exact comparison.
        if in_lake.height == in_warehouse.height and (
            in_lake.hash_rows().sort().equals(in_warehouse.hash_rows().sort())
        ):
            return {}
    lake_rows = in_lake if in_lake.height else pl.DataFrame(schema=in_warehouse.schema)
    warehouse_rows = in_warehouse if in_warehouse.height else pl.DataFrame(schema=lake_rows.schema)
    only_lake = lake_rows.join(warehouse_rows, on=columns, how="anti", nulls_equal=True)
    only_warehouse = warehouse_rows.join(lake_rows, on=columns, how="anti", nulls_equal=True)
    if callable(starts):
        starts = starts()
    bounds = pl.Series([s.astimezone(dt.UTC) for s in starts]).cast(pl.Datetime("us", "UTC"))

    def per_window(frame: pl.DataFrame) -> dict[int, int]:
        if frame.is_empty():
            return {}
        index = bounds.search_sorted(
            frame.get_column(time_column).cast(pl.Datetime("us", "UTC")), side="right"
        )
        counts = (index - 1).value_counts()
        return dict(zip(counts[:, 0].to_list(), counts[:, 1].to_list(), strict=True))

    lake_n, wh_n = per_window(lake_rows), per_window(warehouse_rows)
    only_l, only_w = per_window(only_lake), per_window(only_warehouse)
    # A duplicated row shows in the counts only.
    counted = {i for i in set(lake_n) | set(wh_n) if lake_n.get(i, 0) != wh_n.get(i, 0)}
    out = {}
    for i in sorted(set(only_l) | set(only_w) | counted):
        if 0 <= i < len(keys):
            out[keys[i]] = {
                "lake_rows": lake_n.get(i, 0),
                "warehouse_rows": wh_n.get(i, 0),
                "only_in_lake": only_l.get(i, 0),
                "only_in_warehouse": only_w.get(i, 0),
            }
    return out


@dataclass(frozen=True)
class Comparison:
    lake_rows: int
    warehouse_rows: int
    # See `differing_partitions`; a partition of a window waiting to be published also has
    # `pending_publish: 1`.
    differing: dict[str, dict[str, int]]
    pending: list[str] = field(default_factory=list)  # the pending-publish markers' URIs


def day_spans(
    start: dt.datetime, end: dt.datetime, tz: ZoneInfo
) -> list[tuple[dt.datetime, dt.datetime]]:
    """[start, end) cut at each local midnight: the lake's day files, one at a time."""
    spans, lo = [], start
    while lo < end:
        local = lo.astimezone(tz)
        midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), tz)
        hi = min(end, midnight)
        spans.append((lo, hi))
        lo = hi
    return spans
