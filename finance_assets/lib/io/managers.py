"""Dagster IO managers: they only move data, for whole partition ranges at once.

Each reads `context.asset_partitions_time_window`, so a single-run backfill of 20 days writes and
reads those 20 days in one call. Where an asset's rows go:
- `RawZoneIOManager`: provider payloads exactly as received (JSON) in the raw zone.
- `PostgresIOManager`: frames in the warehouse, schema = market, table = asset (or the
  `dagster/table_name` metadata, `schema.table`); output metadata `partition_expr` names the
  time column that maps to the window, `primary_key` the key, `scope` the column values that
  share a table between assets.
- `LakeWarehouseIOManager`: the Parquet lake and the warehouse (the clean bars), reading from
  the lake; written so that a fault on either side leaves both with the same rows
  (`lake_warehouse.Stores.write`).

The raw zone's and the lake's roots are a path or an `s3://bucket/prefix` URI; the scheme only
chooses the object store (`objects.open_location`, S3 clients from the `s3` S3Resource, boto3's
chain when unset), the code that moves the data is the same.
"""

import datetime as dt
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import polars as pl

from finance_assets.lib.io import lake, lake_warehouse, mongo, postgres
from finance_assets.lib.io.mongo import MongoRawStore
from finance_assets.lib.io.objects import ObjectStore, open_location
from finance_assets.lib.io.objects.s3_resource import S3Resource
from finance_assets.lib.io.spans import WindowRows
from finance_assets.lib.providers.base import RawPayload


class WarehouseResource(dg.ConfigurableResource):
    """The PostgreSQL warehouse. With no `url`, an embedded server under `data_dir` is used."""

    url: str | None = None
    data_dir: str = "data"

    def get_url(self) -> str:
        if self.url:
            return self.url
        return _embedded_url(str(Path(self.data_dir).resolve()))


_EMBEDDED: dict[str, str] = {}


def _embedded_url(data_dir: str) -> str:
    # One embedded server per process and folder; it stops when the last user exits.
    if data_dir not in _EMBEDDED:
        _EMBEDDED[data_dir] = postgres.embedded_server_url(data_dir)
    return _EMBEDDED[data_dir]


def _window(
    context: dg.InputContext | dg.OutputContext,
) -> tuple[dt.datetime, dt.datetime, ZoneInfo]:
    if not context.has_asset_partitions:
        raise dg.DagsterInvariantViolationError(
            f"{context.asset_key.to_user_string()} is not partitioned; "
            "these IO managers store partitions by time window"
        )
    window = context.asset_partitions_time_window
    partitions_def = context.asset_partitions_def
    tz = ZoneInfo(getattr(partitions_def, "timezone", None) or "UTC")
    return window.start, window.end, tz


def asset_store(root: str, key: dg.AssetKey, s3: S3Resource | None = None) -> ObjectStore:
    """The objects of asset `key` under `root`: `<root>/<market>/<asset>/`."""
    return open_location(root, s3).child(*key.path)


def _output_metadata(context: dg.OutputContext) -> dict[str, Any]:
    return dict(context.definition_metadata or {})


def _cell(value: Any) -> str | int | float | bool | None:
    # A table record holds plain scalars; dates, times and nested values are shown as text.
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def table_preview(df: pl.DataFrame, rows: int = 10) -> dg.TableMetadataValue:
    """The first `rows` rows as a table the UI renders with its columns and types."""
    head = df.head(rows)
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord({name: _cell(value) for name, value in row.items()})
            for row in head.iter_rows(named=True)
        ],
        schema=dg.TableSchema(
            columns=[dg.TableColumn(name, str(dtype)) for name, dtype in head.schema.items()]
        ),
    )


def frame_metadata(
    df: pl.DataFrame, time_column: str = "ts", *, whole_run: bool = False
) -> dict[str, Any]:
    """What a user wants to see about a frame in the UI.

    `whole_run`: the frame spans several partitions (a single-run backfill). Dagster attaches
    output metadata to every partition's materialization, so the count is the run's
    (`run_row_count`), not a partition's row count, and there is no preview to copy 1,000 times.
    """
    meta: dict[str, Any] = {"run_row_count" if whole_run else "dagster/row_count": df.height}
    if df.height and "symbol" in df.columns:
        meta["symbols"] = df.get_column("symbol").n_unique()
    if df.height and time_column in df.columns:
        meta["first"] = str(df.get_column(time_column).min())
        meta["last"] = str(df.get_column(time_column).max())
    if df.height and not whole_run:
        meta["preview"] = table_preview(df)
    return meta


def _spans_partitions(context: dg.OutputContext) -> bool:
    if not context.has_asset_partitions:
        return False
    key_range = context.asset_partition_key_range
    return key_range.start != key_range.end


class RawZoneIOManager(dg.ConfigurableIOManager):
    """Payloads as received under `<root>/<market>/<asset>/dt=YYYY-MM-DD/`, and also in
    MongoDB when `mongodb_uri` is set (`MONGODB_URI`)."""

    root: str
    mongodb_uri: str | None = None
    mongodb_database: str = "finance_raw"
    s3: S3Resource | None = None  # the client of an s3:// root; unset: boto3's chain

    def handle_output(self, context: dg.OutputContext, obj: list[RawPayload]) -> None:
        start, end, tz = _window(context)
        # MongoDB's documents first: a body it would refuse (over 16 MiB even compressed)
        # fails the step before either store holds anything of this fetch, so the raw zone
        # and MongoDB never disagree about it.
        documents = (
            mongo.payload_documents(context.asset_key.path, obj) if self.mongodb_uri else None
        )
        store = asset_store(self.root, context.asset_key, self.s3)
        written = lake.write_payloads(store, obj, start, end, tz)
        metadata: dict[str, Any] = {
            "payloads": len(written),
            "bytes": sum(len(p.body) for p in obj),
            "dagster/uri": store.uri(),
            # Older payloads of the window this write superseded: kept for "as known then".
            "superseded_set_aside": len(written.set_aside),
            "superseded_history": store.uri(lake.SUPERSEDED),
        }
        if self.mongodb_uri:
            store = MongoRawStore(self.mongodb_uri, self.mongodb_database)
            try:
                store.write_payloads(context.asset_key.path, obj, start, end, documents)
            finally:
                store.close()
            metadata["mongodb"] = f"{self.mongodb_database}.raw_payloads"
        context.add_output_metadata(metadata)

    def load_input(self, context: dg.InputContext) -> lake.RawPayloads:
        """The window's payloads; an envelope nothing can read is moved to the dead-letter
        place (`lake.read_payloads`) and named in the result's `dead_letters` for the asset
        to report."""
        start, end, _ = _window(context)
        try:
            run_id: str | None = context.step_context.run_id
        except dg.DagsterInvariantViolationError:  # built outside a run (build_input_context)
            run_id = None
        raw = lake.read_payloads(
            asset_store(self.root, context.asset_key, self.s3), start, end, run_id=run_id
        )
        for dead in raw.dead_letters:
            context.log.warning(f"dead-lettered {dead.file}: {dead.reason} -> {dead.moved_to}")
        return raw


def _no_upstream_partitions(context: dg.InputContext) -> bool:
    """An input whose partition mapping maps the run's partitions to none upstream (a daily
    partition before the 5-minute partitions start): nothing to read, not an error."""
    return context.has_asset_partitions and not context.asset_partition_keys


def _lake_read(store: ObjectStore, context: dg.InputContext) -> pl.DataFrame:
    if _no_upstream_partitions(context):
        return pl.DataFrame()
    start, end, tz = _window(context)
    meta = (
        dict(context.upstream_output.definition_metadata or {}) if context.upstream_output else {}
    )
    frame = lake.read_window(
        store,
        start=start,
        end=end,
        tz=tz,
        time_column=meta.get("partition_expr", "ts"),
    )
    return pl.DataFrame() if frame is None else frame


def _table_name(meta: dict[str, Any], key: dg.AssetKey) -> str:
    """The table within the market's schema: `dagster/table_name` (`schema.table`) when the
    asset declares one, else the asset's name."""
    qualified = meta.get("dagster/table_name")
    return str(qualified).split(".", 1)[-1] if qualified else key.path[-1]


def _pg_target(
    context: dg.OutputContext | dg.InputContext,
) -> tuple[postgres.WindowTable, dict[str, Any], dict[str, Any]]:
    """The asset's table, the run's window (start, end) and the table's keys (primary_key,
    index), from the asset's metadata."""
    meta = (
        _output_metadata(context)
        if isinstance(context, dg.OutputContext)
        else dict(context.upstream_output.definition_metadata or {})
        if context.upstream_output
        else {}
    )
    time_column = meta.get("partition_expr", "ts")
    start, end, tz = _window(context)
    if meta.get("partition_expr_type") == "date":
        # A date column holds exchange-local dates: compare with the window's local dates.
        start, end = start.astimezone(tz).date(), end.astimezone(tz).date()
    table = postgres.WindowTable(
        context.asset_key.path[0],
        _table_name(meta, context.asset_key),
        time_column,
        scope=meta.get("scope"),
    )
    keys = {"primary_key": meta.get("primary_key"), "index": meta.get("index")}
    return table, {"start": start, "end": end}, keys


def _pg_write(url: str, context: dg.OutputContext, obj: pl.DataFrame) -> dict[str, Any]:
    table, window, keys = _pg_target(context)
    # A range of days goes a day at a time (sorted by key per day): bounded memory.
    chunk = "1d" if isinstance(obj.schema.get(table.time_column), pl.Datetime) else None
    deleted = postgres.replace_window(url, obj, table, chunk=chunk, **window, **keys)
    return {
        "dagster/table_name": str(table),
        "rows_replaced": deleted,
    }


def _pg_read(url: str, context: dg.InputContext) -> pl.DataFrame:
    if _no_upstream_partitions(context):
        return pl.DataFrame()
    table, window, _ = _pg_target(context)
    return postgres.read_window(url, table, **window)


class PostgresIOManager(dg.ConfigurableIOManager):
    """Frames in PostgreSQL, one transaction per partition window (delete window, COPY)."""

    warehouse: dg.ResourceDependency[WarehouseResource]

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame) -> None:
        meta = _pg_write(self.warehouse.get_url(), context, obj)
        time_column = _output_metadata(context).get("partition_expr", "ts")
        context.add_output_metadata(
            {**frame_metadata(obj, time_column, whole_run=_spans_partitions(context)), **meta}
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        return _pg_read(self.warehouse.get_url(), context)


class LakeWarehouseIOManager(dg.ConfigurableIOManager):
    """The clean bars in the lake and the warehouse, read from the lake.

    Takes a frame, or `WindowRows` (a frame and the spans whose stored rows stay). The lake's
    files are staged while the warehouse transaction runs, the transaction commits only once
    they are, and they are renamed into place after it: whatever fails, both stores keep the
    same rows (`lake_warehouse.Stores.write`)."""

    lake_root: str
    warehouse: dg.ResourceDependency[WarehouseResource]
    s3: S3Resource | None = None  # the client of an s3:// root; unset: boto3's chain

    def handle_output(self, context: dg.OutputContext, obj: pl.DataFrame | WindowRows) -> None:
        rows = obj if isinstance(obj, WindowRows) else WindowRows(obj)
        start, end, tz = _window(context)
        table, _, keys = _pg_target(context)
        if _output_metadata(context).get("partition_expr_type") == "date":
            raise dg.DagsterInvariantViolationError(
                "LakeWarehouseIOManager keys both stores by a timestamp column, not a date"
            )
        time_type = rows.frame.schema.get(table.time_column)
        store = asset_store(self.lake_root, context.asset_key, self.s3)
        both = lake_warehouse.Stores(store, self.warehouse.get_url(), table, tz)
        written = both.write(
            rows.frame,
            start=start,
            end=end,
            primary_key=keys["primary_key"],
            # A range goes a day at a time (sorted by key per day): bounded memory.
            chunk="1d" if isinstance(time_type, pl.Datetime) else None,
            kept=rows.kept,
        )
        context.add_output_metadata(
            {
                **frame_metadata(rows.frame, whole_run=_spans_partitions(context)),
                "lake_files": len(written.lake_files),
                "lake_bytes": sum(f.size for f in written.lake_files),
                "dagster/uri": store.uri(),
                "table": str(table),
                "rows_replaced": written.rows_deleted,
                "kept_symbols": sorted({k.symbol for k in rows.kept}),
            }
        )

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        return _lake_read(asset_store(self.lake_root, context.asset_key, self.s3), context)
