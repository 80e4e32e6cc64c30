"""What every domain's assets share: who owns them, how a table is described in the UI and how
it is stored in the warehouse, and how a step that calls a provider is retried."""

import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import dagster as dg
import polars as pl

from finance_assets.defs.common.automation import schedule_tags
from finance_assets.lib import quality
from finance_assets.lib.io.managers import table_preview
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import is_permanent
from finance_assets.resources.steps import Component, step_execution_from_env

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


# The ECS executor's per-step override (dagster_aws.ecs): the task role the step runs under.
TASK_OVERRIDES_TAG = "ecs/task_overrides"


def step_tags(component: Component) -> dict[str, str]:
    """The op tags of a step of `component` (`ingest`: the raw payload assets; `transform`:
    every other): with `FINANCE_STEP_EXECUTOR=ecs`, its ECS task's role; otherwise none (every
    step runs in the run's process, under the run's credentials). The one place that decides
    the tag: every asset factory asks here."""
    execution = step_execution_from_env()
    if execution.executor != "ecs":
        return {}
    return {TASK_OVERRIDES_TAG: json.dumps({"taskRoleArn": execution.roles[component]})}


# Who answers for each domain's assets (shown as the assets' owners in the UI).
OWNERS: Mapping[str, Sequence[str]] = {
    "market": ["team:market-data"],
    "warehouse": ["team:analytics"],
    "social": ["team:social-signals"],
    "analytics": ["team:analytics"],
    "vendor": ["team:market-data"],
}

# What each column means, wherever it appears (a table may say more about its own columns).
COLUMNS: Mapping[str, str] = {
    "symbol": "ticker as the market writes it (London: `SHEL.L`)",
    "ts": "start of the bar, UTC",
    "open": "first traded price of the period",
    "high": "highest traded price of the period",
    "low": "lowest traded price of the period",
    "close": "last traded price of the period",
    "adj_close": "close adjusted for splits and dividends, where the provider gives one; "
    "null otherwise",
    "volume": "shares traded in the period",
    "currency": "price currency as the provider states it (USD; GBp = pence)",
    "source": "provider the record came from",
    "ingested_at": "when the platform loaded the record, UTC",
    "trading_date": "exchange-local date of the trading session",
    "vwap": "volume-weighted average price: Σ((high + low + close) / 3 × volume) / Σ volume; "
    "null without volume",
    "open_to_close_pct": "close / open − 1, in %",
    "range_pct": "(high − low) / open, in %",
    "return_pct": "close / previous session's close − 1, in %; null without that close",
    "prev_close": "close of the previous session",
    "bar_count": "5-minute bars the session had for the symbol (fewer on an early close)",
    "kind": "vs_prev_close (against the previous session's close, once per crossing) or "
    "vs_prev_bar (against the bar before)",
    "direction": "up or down",
    "price": "close of the bar that made the move",
    "reference": "the price the move is measured against",
    "change_pct": "price / reference − 1, in %",
    "threshold_pct": "the alert threshold in force (FINANCE_PRICE_MOVE_PCT), in %",
    "created_at": "when the post was published, UTC",
    "post_id": "the post's id at the source",
    "text_clean": "the post's text without URLs, mentions, control and invisible characters "
    "(emoji kept)",
    "compound": "overall sentiment score in [-1, 1]",
    "pos": "share of the text scored positive, [0, 1]",
    "neu": "share of the text scored neutral, [0, 1]",
    "neg": "share of the text scored negative, [0, 1]",
    "like_count": "likes at collection time",
    "retweet_count": "reposts at collection time",
    "reply_count": "replies at collection time",
    "quote_count": "quotes at collection time",
    "engagement": "likes + reposts + replies + quotes",
    "scorer": "what scored the sentiment (vader or comprehend)",
    "post_count": "posts about the company counted toward the day (after the previous "
    "session's close up to this one's); 0 when there were none",
    "mean_compound": "mean compound score of the day's posts",
    "weighted_compound": "compound score weighted by engagement + 1",
    "share_positive": "share of posts with compound ≥ 0.05",
    "share_negative": "share of posts with compound ≤ −0.05",
    "top_posts": "JSON list of the day's top posts by engagement (id, text, compound, engagement)",
}


def owners(domain: str) -> list[str]:
    return list(OWNERS[domain])


def table_schema(
    schema: Mapping[str, pl.DataType],
    *,
    primary_key: Sequence[str] = (),
    descriptions: Mapping[str, str] | None = None,
) -> dg.TableSchema:
    """The `dagster/column_schema` of a table: every column typed and described (a column
    nobody described is an error when definitions load), the key columns not nullable."""
    descriptions = {**COLUMNS, **(descriptions or {})}
    missing = [name for name in schema if name not in descriptions]
    if missing:
        raise ValueError(f"no description for column(s) {missing}: add them to COLUMNS")
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name,
                str(dtype),
                description=descriptions[name],
                constraints=dg.TableColumnConstraints(nullable=False)
                if name in primary_key
                else None,
            )
            for name, dtype in schema.items()
        ],
        constraints=dg.TableConstraints(other=[f"primary key ({', '.join(primary_key)})"])
        if primary_key
        else None,
    )


def table_metadata(
    schema_name: str,
    table: str,
    schema: Mapping[str, pl.DataType],
    *,
    primary_key: Sequence[str],
    descriptions: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """`dagster/table_name` and `dagster/column_schema` of a warehouse table."""
    return {
        "dagster/table_name": f"{schema_name}.{table}",
        "dagster/column_schema": table_schema(
            schema, primary_key=primary_key, descriptions=descriptions
        ),
    }


def market_asset(
    market: Market,
    domain: str,
    partitions_def: dg.PartitionsDefinition | None = None,
    *,
    kinds: set[str],
    schedule: str | None = None,
) -> dict[str, Any]:
    """The `@dg.asset` arguments every asset of a market shares: its group (`<market>_<domain>`),
    owners, market tag and the schedule it runs on (`defs/common/automation.py`), and
    single-run backfills of its partitions."""
    args: dict[str, Any] = {
        "backfill_policy": dg.BackfillPolicy.single_run(),
        "group_name": f"{market.key}_{domain}",
        "kinds": kinds,
        "owners": owners(domain),
        "tags": schedule_tags(market, schedule),
    }
    if partitions_def is not None:
        args["partitions_def"] = partitions_def
    return args


def with_sessions_before(key: Sequence[str], sessions: int) -> dg.AssetIn:
    """An input that reads the run's partitions and the `sessions` before them (those that
    exist: the first partitions have none before them)."""
    return dg.AssetIn(
        list(key),
        partition_mapping=dg.TimeWindowPartitionMapping(
            start_offset=-sessions, allow_nonexistent_upstream_partitions=True
        ),
    )


def warehouse_table(
    market: Market,
    domain: str,
    partitions_def: dg.PartitionsDefinition,
    *,
    name: str,
    partition_expr: str,
    primary_key: Sequence[str],
    schema: Mapping[str, pl.DataType],
    table: str | None = None,
    by_date: bool = False,
    descriptions: Mapping[str, str] | None = None,
    schedule: str | None = None,
) -> dict[str, Any]:
    """The `@dg.asset` arguments of a partitioned PostgreSQL table `<market>.<table>` (the
    asset's name unless `table` says otherwise): single-run backfills, the warehouse IO
    manager, owners, and the metadata it replaces partition windows by.
    `by_date`: `partition_expr` holds exchange-local dates, not timestamps."""
    metadata: dict[str, Any] = {
        "partition_expr": partition_expr,
        "primary_key": list(primary_key),
        **table_metadata(
            market.key,
            table or name,
            schema,
            primary_key=primary_key,
            descriptions=descriptions,
        ),
    }
    if by_date:
        metadata["partition_expr_type"] = "date"
    return {
        **market_asset(
            market, domain, partitions_def, kinds={"polars", "postgres"}, schedule=schedule
        ),
        "key": [market.key, name],
        "io_manager_key": "warehouse_io_manager",
        "op_tags": step_tags("transform"),
        "metadata": metadata,
    }


def raw_zone_payloads(
    market: Market,
    domain: str,
    partitions_def: dg.PartitionsDefinition,
    *,
    name: str,
    schedule: str | None = None,
) -> dict[str, Any]:
    """The `@dg.asset` arguments of a provider's answers kept in the raw zone (`<market>/<name>`):
    single-run backfills, `API_RETRY` for transient faults, the raw-zone IO manager, owners, the
    ingest role's step tag."""
    return {
        **market_asset(market, domain, partitions_def, kinds={"json"}, schedule=schedule),
        "key": [market.key, name],
        "retry_policy": API_RETRY,
        "io_manager_key": "raw_zone_io_manager",
        # In production each raw asset's step runs with the ingest role (FINANCE_STEP_EXECUTOR).
        "op_tags": step_tags("ingest"),
    }


def rule_check(check_name: str, failing: pl.DataFrame, rows: int) -> dg.AssetCheckResult:
    """A check from a rule's violating rows: their count and a sample."""
    metadata: dict[str, Any] = {"failing_rows": failing.height, "rows": rows}
    if failing.height:
        metadata["sample"] = table_preview(failing, 5)
    return dg.AssetCheckResult(check_name=check_name, passed=failing.is_empty(), metadata=metadata)


def unique_keys_check(frame: pl.DataFrame, primary_key: Sequence[str]) -> dg.AssetCheckResult:
    """The `unique_keys` check: each primary key once (a join or a detector multiplied none)."""
    return rule_check("unique_keys", quality.duplicate_keys(frame, primary_key), frame.height)


def output_unless_failed(
    key: dg.AssetKey,
    frame: pl.DataFrame,
    checks: Sequence[dg.AssetCheckResult],
    metadata: Mapping[str, Any],
    keys: Sequence[str] = (),
) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
    """The frame and its (blocking) checks; when one fails, the checks say why, nothing is
    written (the previous rows stay) and the step fails, so downstream assets do not run.
    `keys`: the run's partition keys (a range's verdicts say what they cover)."""
    checks = range_verdicts(checks, keys)
    # A WARN verdict informs; only an ERROR one stops the write.
    failed = [
        c.check_name for c in checks if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR
    ]
    if failed:
        yield from checks
        raise dg.Failure(
            description=f"blocking check(s) failed for {key.to_user_string()}: "
            f"{', '.join(failed)}; nothing was written",
            metadata={"failed_checks": failed, "rows": frame.height},
        )
    yield dg.MaterializeResult(value=frame, metadata=dict(metadata), check_results=checks)


# What `dg.define_asset_job` returns (a job resolved against the assets when the definitions
# load): Dagster does not export its class, so the hints name it through the function.
AssetJob = type(dg.define_asset_job("asset_job"))


def range_verdicts(
    results: Sequence[dg.AssetCheckResult], keys: Sequence[str]
) -> list[dg.AssetCheckResult]:
    """Check results of a run, each saying which partitions its verdict covers when the run is
    a range. Dagster records a range run's verdict without a partition (each partition's
    planned row then shows SKIPPED); one evaluation per partition instead is an unbatched event
    each (~21 ms measured: a minute for six checks over the demo's 468 partitions)."""
    if len(keys) <= 1:
        return list(results)
    covers = (
        f"{len(keys):,} partitions, {keys[0]} to {keys[-1]}: one verdict for the whole range "
        "(the partitions' own rows in the check history show SKIPPED)"
    )
    return [r.with_metadata({**r.metadata, "verdict_covers": covers}) for r in results]
