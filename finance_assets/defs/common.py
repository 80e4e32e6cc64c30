"""What every domain's assets share: how a table is described and stored in the warehouse, and
how a step that calls a provider is retried."""

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import dagster as dg
import polars as pl

from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import is_permanent

# Transient provider faults (timeouts, 5xx, short rate-limit waits) that outlast the client's
# own three attempts: retry the step three times, 2 s, 4 s, 8 s apart, jittered. Permanent ones
# never reach this policy: `fails_once_if_permanent` turns them into a Failure without retries.
API_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.FULL
)

F = TypeVar("F", bound=Callable[..., Any])


def fails_once_if_permanent(compute: F) -> F:
    """For an asset with `API_RETRY`: an error that asking again cannot cure (a 401, a 400, a
    spent quota, a missing key or bad setting, a pause longer than the client waits) fails the
    step once, saying why it is not retried; anything else propagates to the retry policy.

    Goes under `@dg.asset`; the signature Dagster reads (context, resources) is `compute`'s."""

    @functools.wraps(compute)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return compute(*args, **kwargs)
        except Exception as exc:
            if not is_permanent(exc):
                raise
            retry_at = getattr(exc, "retry_at", None)
            why = (
                "the provider asked for a longer pause than a run waits"
                if retry_at is not None
                else "asking again gives the same answer until the key, the setting, the plan "
                "or the request is fixed"
            )
            metadata: dict[str, Any] = {"error": type(exc).__name__, "retried": False}
            if retry_at is not None:
                metadata["retry_at"] = retry_at.isoformat()
            raise dg.Failure(
                description=f"{type(exc).__name__}: {exc} (not retried: {why})",
                metadata=metadata,
                allow_retries=False,
            ) from exc

    return wrapper  # type: ignore[return-value]


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
