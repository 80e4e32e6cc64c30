"""What every domain's assets share: how a table is described and stored in the warehouse."""

from collections.abc import Sequence
from typing import Any

import dagster as dg
import polars as pl

from finance_assets.lib.markets import Market


def table_schema(schema: dict[str, pl.DataType]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name, str(dtype)) for name, dtype in schema.items()]
    )


def warehouse_table(
    market: Market,
    domain: str,
    partitions_def: dg.PartitionsDefinition,
    *,
    partition_expr: str,
    primary_key: Sequence[str],
    schema: dict[str, pl.DataType] | None = None,
    table: str | None = None,
    by_date: bool = False,
) -> dict[str, Any]:
    """The `@dg.asset` arguments of a partitioned PostgreSQL table of one market: single-run
    backfills, the warehouse IO manager, and the metadata it replaces partition windows by.
    `by_date`: `partition_expr` holds exchange-local dates, not timestamps."""
    metadata: dict[str, Any] = {"partition_expr": partition_expr, "primary_key": list(primary_key)}
    if by_date:
        metadata["partition_expr_type"] = "date"
    if table:
        metadata["table"] = table
    if schema:
        metadata["dagster/column_schema"] = table_schema(schema)
    return {
        "partitions_def": partitions_def,
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "io_manager_key": "warehouse_io_manager",
        "group_name": f"{market.key}_{domain}",
        "kinds": {"polars", "postgres"},
        "tags": {"market": market.key},
        "metadata": metadata,
    }
