"""Corporate actions per market: `<market>/corporate_actions`, the splits and dividends the
providers send inline with the daily bars (read from the raw zone's payloads, no extra call)
and, where asked for, Twelve Data's `/splits` and `/dividends` (`<market>/raw_corporate_actions`),
deduplicated across providers; and `<market>/adjusted_daily_bars`, every daily bar adjusted for
them and compared with the provider's own `adj_close` where one was sent.

The math is `lib/transforms/corporate_actions.py` (pure, tested without Dagster).
"""

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
import polars as pl

from finance_assets.defs.common.assets import (
    fails_once_if_permanent,
    market_asset,
    output_unless_failed,
    raw_zone_payloads,
    step_tags,
    table_metadata,
    warehouse_table,
)
from finance_assets.defs.common.automation import DAILY
from finance_assets.defs.common.partitions import daily_partitions, refuse_invalid_partitions
from finance_assets.lib import answers
from finance_assets.lib.io import postgres
from finance_assets.lib.io.managers import WarehouseResource, table_preview
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import RawPayload
from finance_assets.lib.schema import (
    ADJUSTED_BAR_KEY,
    ADJUSTED_BAR_SCHEMA,
    BAR_SCHEMA,
    CORPORATE_ACTION_KEY,
    CORPORATE_ACTION_SCHEMA,
    empty,
)
from finance_assets.lib.transforms import agreement
from finance_assets.lib.transforms import corporate_actions as ca
from finance_assets.providers import corporate_actions as actions_settings
from finance_assets.providers import reference
from finance_assets.providers.corporate_actions import ActionsSource
from finance_assets.providers.twelve_data.client import ACTION_CREDITS, TwelveDataClient
from finance_assets.providers.twelve_data.parser import ACTIONS_FORMAT
from finance_assets.resources.market_data import MarketDataResource

# The vendor domain's raw answers of a market's reference provider (MARKET_DATA_REFERENCE_<M>),
# read by key: a second provider's actions for the symbols of its sample.
REFERENCE_QUOTES = "reference_daily_quotes"
# Twelve Data's /splits and /dividends answers (TWELVEDATA_CORPORATE_ACTIONS=true).
RAW_ACTIONS = "raw_corporate_actions"

ACTION_COLUMNS = {
    "ex_date": "exchange-local ex-date: the first session that trades without the split or "
    "dividend",
    "kind": "split or dividend",
    "ratio": "a split's new shares per old share (4.0 for 4-for-1); null for a dividend",
    "amount": "a dividend per share, in the price's currency as the provider states it "
    "(Yahoo: split-adjusted as of its fetch); null for a split",
    "source": "every provider that reported it, comma-separated",
}
ADJUSTED_COLUMNS = {
    "close": "close as stored in daily_bars (as the provider sent it)",
    "factor": "product of the factors of the actions after this day: 1/ratio per split (unless "
    "the provider's close already holds it), 1 - amount/previous close per dividend",
    "adj_open": "open x factor",
    "adj_high": "high x factor",
    "adj_low": "low x factor",
    "adj_close": "close x factor: adjusted for every split and dividend known now",
    "adj_volume": "volume / the split part of factor",
    "provider_adj_close": "the provider's own adj_close, as sent (null when it sends none)",
    "expected_provider_adj_close": "what provider_adj_close should be on the provider's basis "
    "(its load's last day) if it knows the same actions",
    "source": "provider the bar came from",
}
# Every stored row, whatever its date: the adjusted table is rebuilt whole at each run.
_ALL_DAYS = (dt.date(1900, 1, 1), dt.date(2200, 1, 1))
_ALL_TIMES = tuple(dt.datetime.combine(day, dt.time(), dt.UTC) for day in _ALL_DAYS)


def _raw_actions_asset(market: Market, found: ActionsSource) -> dg.AssetsDefinition:
    """Twelve Data's `/splits` and `/dividends` for the market's symbols (its universe, or the
    reference's sample), kept as received in the raw zone in a format of their own."""
    symbols = (
        list(market.universe)
        if found.sample is None
        else agreement.reference_sample(market.universe, found.sample)
    )
    shown = ", ".join(symbols[:10]) + (" ..." if len(symbols) > 10 else "")

    @dg.asset(
        **raw_zone_payloads(
            market, "market", daily_partitions(market), name=RAW_ACTIONS, schedule=DAILY
        ),
        required_resource_keys={found.resource_key},
        description=(
            f"Twelve Data's `/splits` and `/dividends` for {len(symbols)} symbols of the "
            f"{market.name} universe ({shown}; Twelve Data is its {found.role}, "
            f"{found.variable}; resource `{found.resource_key}`), one call per symbol and "
            f"endpoint for the partition window, {ACTION_CREDITS} credits each, priced before "
            f"any call ({actions_settings.VARIABLE}=true). Kept exactly as received in the raw "
            f"zone (`raw/{market.key}/{RAW_ACTIONS}/dt=YYYY-MM-DD/`, format "
            f"`{ACTIONS_FORMAT}`: actions only, never read as bars); read by "
            f"`{market.key}/corporate_actions`."
        ),
    )
    @fails_once_if_permanent
    def _raw(context: dg.AssetExecutionContext) -> list[RawPayload]:
        refuse_invalid_partitions(context, market)
        window = context.partition_time_window
        resource: MarketDataResource = getattr(context.resources, found.resource_key)
        provider = resource.get_provider()
        if not isinstance(provider, TwelveDataClient):
            raise dg.Failure(
                description=f"{found.resource_key} is {provider.name}, not twelve_data: "
                f"{actions_settings.VARIABLE} asks Twelve Data only",
                allow_retries=False,
            )
        # Priced before any call, like the bars: a window the plan cannot pay for is refused
        # now, naming the budget and the setting, not after hours of waiting for credits.
        plan = provider.plan_actions(market, symbols, window.start, window.end)
        refusal = plan.refusal()
        if refusal is not None:
            raise dg.Failure(
                description=f"{refusal} ({actions_settings.VARIABLE}=true asks for /splits "
                f"and /dividends at {ACTION_CREDITS} credits a symbol each)",
                metadata={**plan.metadata(), "error": "BudgetExceeded", "retried": False},
                allow_retries=False,
            )
        context.log.info(
            f"{provider.name}: {plan.calls} call(s), {plan.cost} {plan.budget.unit}, at least "
            f"{plan.minutes:.1f} min at {plan.budget.per_minute} {plan.budget.unit}/min"
        )
        payloads = provider.fetch_actions(market, symbols, window.start, window.end)
        errors = {s: m for p in payloads for s, m in answers.payload_failures(p).items()}
        context.add_output_metadata(
            {
                "provider": provider.name,
                "window": f"{window.start.isoformat()} .. {window.end.isoformat()}",
                "symbols": len(symbols),
                "calls": len(payloads),
                "failed_symbols": errors,
                **plan.metadata(),
            }
        )
        return payloads

    return _raw


def _corporate_actions_asset(market: Market) -> dg.AssetsDefinition:
    partitions_def = daily_partitions(market)
    key = dg.AssetKey([market.key, "corporate_actions"])
    ins = {"raw": dg.AssetIn(key=[market.key, "raw_daily_quotes"])}
    # With a reference provider, its answers (kept by the vendor domain) are a second source of
    # the same actions for its sample of symbols: deduplicated with the primary's.
    second = reference.reference(os.environ, market.key)
    if second is not None:
        ins["reference"] = dg.AssetIn(key=[market.key, REFERENCE_QUOTES])
    # Twelve Data's own /splits and /dividends, where asked for (TWELVEDATA_CORPORATE_ACTIONS).
    twelve = actions_settings.source(os.environ, market.key)
    if twelve is not None:
        ins["twelve_data_actions"] = dg.AssetIn(key=[market.key, RAW_ACTIONS])
    read_from = [f"`{market.key}/raw_daily_quotes`"]
    if second is not None:
        read_from.append(f"the reference's `{market.key}/{REFERENCE_QUOTES}`")
    if twelve is not None:
        read_from.append(
            f"Twelve Data's `/splits` and `/dividends` in `{market.key}/{RAW_ACTIONS}`"
        )

    @dg.asset(
        ins=ins,
        **warehouse_table(
            market,
            "market",
            partitions_def,
            name="corporate_actions",
            partition_expr="ex_date",
            by_date=True,
            primary_key=CORPORATE_ACTION_KEY,
            schema=CORPORATE_ACTION_SCHEMA,
            descriptions=ACTION_COLUMNS,
            schedule=DAILY,
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "providers_agree_on_actions",
                asset=key,
                description="providers that report the same split or dividend state the same "
                "ratio or amount (within 0.01 %); a failure names each one and every "
                "provider's value (WARN: the first provider by name is stored)",
            ),
            dg.AssetCheckSpec(
                "actions_reported",
                asset=key,
                description="every symbol's daily payloads say whether it had corporate "
                "actions: a payload that cannot (Alpha Vantage's TIME_SERIES_DAILY, Twelve "
                "Data's /time_series, a Yahoo CSV) leaves its symbols' adjusted prices blind "
                "to the window (WARN, naming them)",
            ),
        ],
        description=(
            f"Splits and dividends of the {market.name} universe by ex-date, read from the "
            f"payloads kept in the raw zone ({', '.join(read_from)}"
            + ("" if twelve else ": no extra provider call")
            + "): Yahoo's chart `events`, Alpha Vantage's "
            "daily-adjusted split coefficient and dividend columns, Twelve Data's `/splits` and "
            "`/dividends` answers, the simulated market's seeded actions. One row per "
            "(ex_date, symbol, kind) whichever providers reported "
            f"it (`source` lists them). Table `{market.key}.corporate_actions`; "
            f"`{market.key}/adjusted_daily_bars` applies them."
        ),
    )
    def _actions(
        context: dg.AssetExecutionContext, **inputs: Any
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        refuse_invalid_partitions(context, market)
        raw: Sequence[RawPayload] = inputs["raw"]
        # The other sources of the same actions: the reference's daily answers, Twelve Data's
        # /splits and /dividends. Each says something only of the symbols it was asked for.
        others = {name: list(payloads) for name, payloads in inputs.items() if name != "raw"}
        window = context.partition_time_window
        first = window.start.astimezone(market.tz).date()
        last = window.end.astimezone(market.tz).date()
        if not raw:
            # No payload is not "no corporate action": say what is missing, write nothing.
            raise dg.Failure(
                description=f"{key.to_user_string()}: no daily payloads in the raw zone for "
                f"{first} .. {last}: materialise {market.key}/raw_daily_quotes for them first; "
                "nothing was written",
                allow_retries=False,
            )
        read = ca.actions_from_payloads(raw)
        for payloads in others.values():
            if not payloads:
                continue
            other = ca.actions_from_payloads(payloads)
            # Silent: no payload of any provider could say (the others answer some symbols).
            told = {s for p in payloads for s in p.symbols} - other.silent
            read = ca.ActionsRead(
                pl.concat([read.actions, other.actions]),
                {**read.unreadable, **other.unreadable},
                read.silent - told,
            )
        for payload_id, reason in read.unreadable.items():
            context.log.warning(f"corporate actions of {payload_id} not read: {reason}")
        actions, conflicts = ca.deduplicate(ca.in_window(read.actions, first, last))
        yield from output_unless_failed(
            key,
            actions,
            [_agreement_check(conflicts), _reported_check(read)],
            {
                "splits": actions.filter(pl.col("kind") == ca.SPLIT).height,
                "dividends": actions.filter(pl.col("kind") == ca.DIVIDEND).height,
                "sources": sorted(set(read.actions.get_column("source").to_list())),
                "payloads": len(raw),
                **{f"{name}_payloads": len(payloads) for name, payloads in others.items()},
                "payloads_unreadable": read.unreadable,
                "actions": table_preview(actions, 20),
            },
            keys=context.partition_keys,
        )

    return _actions


def _agreement_check(conflicts: pl.DataFrame) -> dg.AssetCheckResult:
    metadata: dict[str, Any] = {
        "conflicting_actions": conflicts.unique(CORPORATE_ACTION_KEY).height
    }
    description = None
    if conflicts.height:
        metadata["conflicts"] = table_preview(conflicts, 20)
        description = "; ".join(
            f"{row['symbol']} {row['ex_date']} {row['kind']}: "
            + ", ".join(
                f"{source}={value}"
                for source, value in zip(row["source"], row["value"], strict=True)
            )
            for row in conflicts.group_by(CORPORATE_ACTION_KEY, maintain_order=True)
            .agg("source", value=pl.coalesce("ratio", "amount"))
            .iter_rows(named=True)
        )[:1000]
    return dg.AssetCheckResult(
        check_name="providers_agree_on_actions",
        passed=conflicts.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=description,
    )


def _reported_check(read: ca.ActionsRead) -> dg.AssetCheckResult:
    silent = sorted(read.silent)
    return dg.AssetCheckResult(
        check_name="actions_reported",
        passed=not silent and not read.unreadable,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"silent_symbols": silent, "payloads_unreadable": len(read.unreadable)},
        description=(
            f"no corporate actions known for {', '.join(silent[:20])}"
            f"{' ...' if len(silent) > 20 else ''}: their payloads do not carry them"
            if silent
            else None
        ),
    )


def _adjusted_daily_bars_asset(market: Market) -> dg.AssetsDefinition:
    key = dg.AssetKey([market.key, "adjusted_daily_bars"])
    bars_table = postgres.WindowTable(market.key, "daily_bars", "ts")
    actions_table = postgres.WindowTable(market.key, "corporate_actions", "ex_date")
    target = postgres.WindowTable(market.key, "adjusted_daily_bars", "trading_date")

    @dg.asset(
        key=key,
        deps=[
            dg.AssetKey([market.key, "daily_bars"]),
            dg.AssetKey([market.key, "corporate_actions"]),
        ],
        # Unpartitioned, in the daily job: a split today changes every earlier adjusted price,
        # so the table is rebuilt whole (one transaction) rather than per partition.
        **market_asset(market, "market", kinds={"polars", "postgres"}, schedule=DAILY),
        op_tags=step_tags("transform"),
        metadata=table_metadata(
            market.key,
            "adjusted_daily_bars",
            ADJUSTED_BAR_SCHEMA,
            primary_key=ADJUSTED_BAR_KEY,
            descriptions=ADJUSTED_COLUMNS,
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "adj_close_matches_provider",
                asset=key,
                description=f"where the provider sends its own adj_close, it agrees with "
                f"the adjustment from {market.key}.corporate_actions within "
                f"{ca.ADJ_CLOSE_TOLERANCE_PCT} %, on the provider's basis; a failure names "
                "the symbols and days (WARN: a provider's missed or restated action, the "
                "bars stay as sent)",
            )
        ],
        description=(
            f"Every daily bar of {market.name} adjusted for the splits and dividends in "
            f"`{market.key}.corporate_actions`, backwards from today (Yahoo's and CRSP's "
            "method): `adj_close = close x factor`. Rebuilt whole at each run in table "
            f"`{market.key}.adjusted_daily_bars`; `{market.key}.daily_bars` keeps the prices "
            "as the provider sent them."
        ),
    )
    def _adjusted(warehouse: WarehouseResource) -> dg.MaterializeResult:
        url = warehouse.get_url()
        bars = postgres.read_window(url, bars_table, start=_ALL_TIMES[0], end=_ALL_TIMES[1])
        if bars.is_empty():
            raise dg.Failure(
                description=f"no rows in {bars_table}: materialise {market.key}/daily_bars "
                "first; nothing was written",
                allow_retries=False,
            )
        actions = postgres.read_window(url, actions_table, start=_ALL_DAYS[0], end=_ALL_DAYS[1])
        actions = (
            actions.select(list(CORPORATE_ACTION_SCHEMA)).cast(CORPORATE_ACTION_SCHEMA)  # type: ignore[arg-type]
            if actions.width
            else empty(CORPORATE_ACTION_SCHEMA)
        )
        bars = bars.select(list(BAR_SCHEMA))
        adjusted = ca.adjust_daily_bars(bars, actions, market.timezone)
        disagreements = ca.adj_close_disagreements(adjusted.bars)
        check = _adj_close_check(adjusted.bars, disagreements)
        postgres.replace_window(
            url,
            adjusted.bars,
            target,
            start=_ALL_DAYS[0],
            end=_ALL_DAYS[1],
            primary_key=ADJUSTED_BAR_KEY,
        )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": adjusted.bars.height,
                "symbols": adjusted.bars.get_column("symbol").n_unique(),
                "actions_applied": actions.height - adjusted.skipped.height,
                "rows_adjusted": adjusted.bars.filter(pl.col("factor") != 1.0).height,
                "actions_skipped": table_preview(adjusted.skipped, 10),
            },
            check_results=[check],
        )

    return _adjusted


def _adj_close_check(adjusted: pl.DataFrame, disagreements: pl.DataFrame) -> dg.AssetCheckResult:
    compared = adjusted.filter(pl.col("expected_provider_adj_close").is_not_null()).height
    metadata: dict[str, Any] = {
        "rows_compared": compared,
        "rows_disagreeing": disagreements.height,
        "symbols_disagreeing": sorted(set(disagreements.get_column("symbol").to_list())),
        "tolerance_pct": dg.MetadataValue.text(str(ca.ADJ_CLOSE_TOLERANCE_PCT)),
    }
    if disagreements.height:
        metadata["sample"] = table_preview(disagreements, 20)
    return dg.AssetCheckResult(
        check_name="adj_close_matches_provider",
        passed=disagreements.is_empty(),
        severity=dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description=ca.describe_disagreements(disagreements)[:1000] or None
        if disagreements.height
        else (None if compared else "no provider adj_close to compare with (none was sent)"),
    )


def build_corporate_action_assets(market: Market) -> list[dg.AssetsDefinition]:
    assets = [_corporate_actions_asset(market), _adjusted_daily_bars_asset(market)]
    found = actions_settings.source(os.environ, market.key)
    if found is not None:
        assets.append(_raw_actions_asset(market, found))
    return assets
