"""Bars, per market: provider payloads -> raw zone -> validated clean bars (lake + warehouse).

One factory builds the same shape for both intervals and every market:
`<market>/raw_intraday_quotes` -> `<market>/bars_5min`, and
`<market>/raw_daily_quotes` -> `<market>/daily_bars`; rejected records go to the market's
`quarantine` table.

A window is replaced in both stores exactly where the providers covered it, per symbol and
session (`lib/answers.py`): where a provider did not answer for a symbol (an error inside a
batch, no record at all) or answered part of a session (Alpha Vantage's `compact` 100 bars, a
cut-off body), the stored rows stay as they are, what arrived is stored, and the
`universe_complete` check fails after the write naming the symbols and windows left uncovered
(an ERROR when a symbol was answered in part or a traded window got no bar from any source).
A run in which no traded window got a single bar fails and writes nothing. After the write, the
blocking `stores_agree` check compares the lake with the warehouse, row for row.
"""

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg

from finance_assets.defs.common.assets import (
    fails_once_if_permanent,
    owners,
    range_verdicts,
    raw_zone_payloads,
    step_tags,
    table_metadata,
)
from finance_assets.defs.common.automation import DAILY, EVERY_5MIN, schedule_tags
from finance_assets.defs.common.partitions import (
    daily_partitions,
    five_minute_partitions,
    refuse_invalid_partitions,
)
from finance_assets.defs.market.checks import (
    bar_check_results,
    bar_check_specs,
    readable_check_result,
)
from finance_assets.defs.market.reconcile import (
    LISTED_PARTITIONS,
    expected_bar_starts,
    reconciliation_result,
)
from finance_assets.lib import answers, transforms
from finance_assets.lib.clean_step import clean_window, landed_symbols
from finance_assets.lib.io import lake, postgres
from finance_assets.lib.io.dead_letters import DeadLetter
from finance_assets.lib.io.managers import WarehouseResource, table_preview
from finance_assets.lib.io.objects import ObjectStore
from finance_assets.lib.io.spans import WindowRows
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.bars import plan_fetch
from finance_assets.lib.providers.base import Interval, ProviderError, RawPayload
from finance_assets.lib.schema import BAR_KEY, BAR_SCHEMA
from finance_assets.providers import routing
from finance_assets.resources.landing import LANDING_SHA256_TAG, LandingZoneResource
from finance_assets.resources.market_data import MarketDataResource
from finance_assets.resources.thresholds import DataQualityResource
from finance_assets.resources.zones import StorageResource

# A range run gives each partition its own counts up to this many partitions (six UK sessions
# of 5-minute bars: the demo's range). Dagster checks every per-partition `add_asset_metadata`
# call against the run's whole range (a cron walk with exclusions, ~2.5 ms a call, measured), so
# 800 partitions cost ~2 s and a month (~1,600) ~4.5 s: longer ranges carry the run's totals
# only, and say so on each partition's materialisation.
PARTITION_METADATA_LIMIT = 800


# The schedule each interval's assets run on (defs/common/automation.py).
SCHEDULE_OF: dict[Interval, str] = {"5min": EVERY_5MIN, "1day": DAILY}


def _raw_quotes_asset(
    market: Market, name: str, interval: Interval, partitions_def: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    # The provider this market's bars of this interval come from (providers/routing.py): the
    # resource key is chosen when the definitions load, as the resources are.
    route = routing.route(os.environ, market.key, interval)

    @dg.asset(
        **raw_zone_payloads(
            market, "market", partitions_def, name=name, schedule=SCHEDULE_OF[interval]
        ),
        required_resource_keys={route.resource_key, "landing_zone"},
        description=(
            f"{interval} bars for the {market.name} universe ({market.universe_label}, "
            f"{len(market.universe)} symbols), "
            "every provider response kept exactly as received in the raw zone "
            f"(`raw/{market.key}/{name}/dt=YYYY-MM-DD/`). A partition range is fetched in one call "
            "per symbol batch, so a backfill costs a handful of calls, not one per partition. "
            f"Provider: `{route.provider}` ({route.variable}; resource `{route.resource_key}`)."
        ),
    )
    @fails_once_if_permanent
    def _raw(context: dg.AssetExecutionContext) -> list[RawPayload]:
        refuse_invalid_partitions(context, market)
        window = context.partition_time_window
        market_data: MarketDataResource = getattr(context.resources, route.resource_key)
        landing_zone: LandingZoneResource = context.resources.landing_zone
        # A run the landing sensor started (tag `finance/landing_file`) reads the dropped file.
        provider = (
            landing_zone.provider_for_run(market, context.run.tags) or market_data.get_provider()
        )
        # Priced before any call: a fetch that cannot fit the provider's daily budget is
        # refused now (permanent: not retried), not after hours of waiting for credits.
        plan = plan_fetch(provider, market, market.universe, interval, window.start, window.end)
        if plan is not None:
            context.log.info(
                f"{provider.name}: {plan.calls} call(s), {plan.cost} {plan.budget.unit}, "
                f"at least {plan.minutes:.1f} min at {plan.budget.per_minute} "
                f"{plan.budget.unit}/min"
            )
            refusal = plan.refusal()
            if refusal is not None:
                raise dg.Failure(
                    description=refusal,
                    metadata={**plan.metadata(), "error": "BudgetExceeded", "retried": False},
                    allow_retries=False,
                )
        payloads = provider.fetch_bars(market, market.universe, interval, window.start, window.end)
        # Canonical symbols (Twelve Data answers BT.A.L as BT.A), as the clean step names them.
        errors = {s: m for p in payloads for s, m in answers.payload_failures(p).items()}
        if payloads and len(errors) >= len(market.universe):
            # Nothing usable came back: fail, so the retry policy asks again later.
            raise ProviderError(
                f"{provider.name}: every symbol of {market.key} failed: "
                + "; ".join(f"{s}: {m}" for s, m in sorted(errors.items())[:10])
            )
        context.add_output_metadata(
            {
                "provider": provider.name,
                "window": f"{window.start.isoformat()} .. {window.end.isoformat()}",
                "symbols": len(market.universe),
                "calls": len(payloads),
                "failed_symbols": errors,
                **(plan.metadata() if plan is not None else {}),
            }
        )
        return payloads

    return _raw


def _counts_per_partition(
    result: transforms.CleanResult,
    partitions_def: dg.TimeWindowPartitionsDefinition,
    keys: Sequence[str],
) -> dict[str, dict[str, int]]:
    """received = loaded + quarantined, per partition of a range (quarantined records count
    for the partition of their `partition_ts`)."""
    windows = sorted(
        partitions_def.time_windows_for_partition_keys(frozenset(keys)), key=lambda w: w.start
    )
    starts = [w.start for w in windows]
    loaded = transforms.rows_per_window(result.bars.get_column("ts"), starts)
    quarantined = transforms.rows_per_window(result.quarantine.get_column("partition_ts"), starts)
    return {
        key: {
            "dagster/row_count": n,
            "records_received": n + q,
            "rows_loaded": n,
            "rows_quarantined": q,
        }
        for key, n, q in zip(sorted(keys), loaded, quarantined, strict=True)
    }


def _dead_letters(
    context: dg.AssetExecutionContext,
    raw: list[RawPayload],
    unreadable: dict[str, str],
    raw_store: ObjectStore,
    market: Market,
) -> list[DeadLetter]:
    """The payloads of the run nothing could read, moved out of the raw zone: envelopes by the
    IO manager while reading (`RawPayloads.dead_letters`), bodies the parse step could not read
    here. They block no later run; the rest of the window loads."""
    dead = list(getattr(raw, "dead_letters", ()))
    if unreadable:
        dead += lake.dead_letter_payloads(
            raw_store, raw, unreadable, market.tz, run_id=context.run.run_id
        )
    for letter in dead:
        context.log.warning(f"dead-lettered {letter.file}: {letter.reason} ({letter.moved_to})")
    return dead


def _clean_bars_asset(
    market: Market,
    name: str,
    raw_name: str,
    interval: Interval,
    partitions_def: dg.TimeWindowPartitionsDefinition,
) -> dg.AssetsDefinition:
    bars_key = dg.AssetKey([market.key, name])
    raw_key = dg.AssetKey([market.key, raw_name])

    @dg.asset(
        key=bars_key,
        ins={"raw": dg.AssetIn(key=raw_key)},
        io_manager_key="lake_warehouse_io_manager",
        kinds={"parquet", "polars", "postgres"},
        owners=owners("market"),
        tags=schedule_tags(market, SCHEDULE_OF[interval]),
        op_tags=step_tags("transform"),
        description=(
            f"Clean {interval} bars of {market.name} in the canonical schema (symbol, ts = UTC "
            "bar start, OHLC, volume, source, ingested_at): sorted, one row per (symbol, ts), OHLC "
            f"consistent. Parquet lake `lake/{market.key}/{name}/dt=YYYY-MM-DD/` and table "
            f"`{market.key}.{name}`. Records that fail validation go to the dead-letter table "
            f"`{market.key}.quarantine` (asset = '{name}') with every reason and the record as "
            "received: for every partition, received = loaded + quarantined."
        ),
        metadata={
            "partition_expr": "ts",
            "primary_key": BAR_KEY,
            **table_metadata(market.key, name, BAR_SCHEMA, primary_key=BAR_KEY),
        },
        check_specs=bar_check_specs(bars_key),
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        group_name=f"{market.key}_market",
    )
    def _clean(
        context: dg.AssetExecutionContext,
        raw: list[RawPayload],
        data_quality: DataQualityResource,
        warehouse: WarehouseResource,
        storage: StorageResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        refuse_invalid_partitions(context, market)
        window = context.partition_time_window
        landed = landed_symbols(raw, context.run.tags.get(LANDING_SHA256_TAG))
        cleaned = clean_window(
            raw,
            market,
            interval,
            asset=name,
            start=window.start,
            end=window.end,
            ingested_at=dt.datetime.now(dt.UTC),
            max_quarantine_rate=data_quality.max_quarantine_rate,
            # A landing run touches its file's symbols only: the others' rows stay as stored.
            only_symbols=landed,
        )
        result, kept, provider_errors = cleaned.result, cleaned.kept, cleaned.provider_errors
        # Payloads nothing can read leave the raw zone (envelopes while read, bodies here), so
        # they block no later run; the rest of the window loads and the check warns.
        dead = _dead_letters(context, raw, cleaned.unreadable, storage.raw(raw_key), market)
        readable = readable_check_result(bars_key, dead)
        url = warehouse.get_url()
        # The dead-letter store is written whatever the checks say: it is what explains them.
        # (A store, not an asset: per-partition materialisation events for it would cost a
        # third of a 5-minute backfill's Dagster bookkeeping.)
        postgres.replace_window(
            url,
            result.quarantine,
            postgres.WindowTable(market.key, "quarantine", "partition_ts", scope={"asset": name}),
            start=window.start,
            end=window.end,
            index=["partition_ts", "asset"],
            kept=kept,
        )
        if provider_errors:
            context.log.warning(
                f"provider errors for {len(provider_errors)} symbol(s): {provider_errors}"
            )
        checks = bar_check_results(
            result.bars,
            bars_key,
            result.accepted_quarantine_rate,
            data_quality.max_quarantine_rate,
            result.rejected,
            context.run.tags.get(LANDING_SHA256_TAG),
        )
        for rejection in result.rejected:
            context.log.warning(rejection.reason)
        reasons = result.quarantine.group_by("reason").len().sort("len", descending=True)
        missing = sorted(
            set(landed or market.universe) - set(result.bars.get_column("symbol").unique())
        )
        expected = expected_bar_starts(market, interval, window.start, window.end)
        missing_errors = {s: provider_errors[s] for s in missing if s in provider_errors}
        # Empty is not healthy: a traded window no source gave a single bar for.
        empty = answers.empty_windows(result.bars, expected)
        uncovered = answers.uncovered(kept, expected)
        if landed is not None:
            # A landing run replaces its file's symbols only: the others are kept on purpose.
            uncovered = {s: bars for s, bars in uncovered.items() if s in landed}
        bar_step = dt.timedelta(minutes=5) if interval == "5min" else dt.timedelta(days=1)
        uncovered_text = answers.describe_uncovered(uncovered, market.tz, bar_step)
        # A symbol missing whole is the universe warning it always was (a delisted symbol, a
        # provider's error, named with its message); a symbol answered in part, or a traded
        # window nobody answered, is a provider gone silent mid-answer: an error.
        partial = sorted(set(uncovered) - set(missing))
        universe_check = dg.AssetCheckResult(
            check_name="universe_complete",
            passed=not uncovered,
            severity=dg.AssetCheckSeverity.ERROR
            if partial or empty
            else dg.AssetCheckSeverity.WARN,
            metadata={
                "missing_symbols": missing,
                "provider_errors": missing_errors,
                "kept_symbols": sorted({k.symbol for k in kept}),
                "partial_symbols": partial,
                "uncovered": uncovered_text,
                "uncovered_bars": sum(len(v) for v in uncovered.values()),
                "empty_windows": len(empty),
            },
            description="; ".join(
                [f"{s}: {m}" for s, m in missing_errors.items()]
                + [
                    f"{s} not covered: {uncovered_text[s]} (stored rows kept)"
                    for s in partial
                    if s in uncovered_text
                ]
            )[:1000]
            or None,
        )
        # A rejected landing file makes `quarantine_rate` a warning: only ERROR checks block.
        failed = [
            c.check_name
            for c in checks
            if not c.passed and c.severity == dg.AssetCheckSeverity.ERROR
        ]
        # No traded window got a single bar: nothing to store, fail. (Some windows empty and
        # others not: what arrived is stored and `universe_complete` fails, after the write.)
        nothing = bool(expected) and len(empty) == len(expected)
        keys = context.partition_keys
        if failed or nothing:
            # Blocking checks guard the lake and the warehouse too: record why, write nothing,
            # fail the step. The previous rows stay and downstream assets do not run.
            yield from range_verdicts([*checks, universe_check, readable], keys)
            reasons_text = []
            if failed:
                reasons_text.append(f"blocking check(s) failed: {', '.join(failed)}")
            if nothing:
                local = [t.astimezone(market.tz).strftime("%Y-%m-%d %H:%M") for t in empty]
                reasons_text.append(
                    f"no bars from any source for {len(empty)} traded window(s) starting "
                    f"{', '.join(local[:5])}{' ...' if len(local) > 5 else ''}"
                    + (f" (provider errors: {missing_errors})" if missing_errors else "")
                )
            reasons_text += [r.reason for r in result.rejected]
            raise dg.Failure(
                description=f"{bars_key.to_user_string()}: {'; '.join(reasons_text)}; "
                "nothing was written, the stored rows stay",
                metadata={
                    "failed_checks": failed,
                    "rows": result.bars.height,
                    "empty_windows": len(empty),
                    "first_empty_windows": [str(t) for t in empty[:LISTED_PARTITIONS]],
                },
            )
        totals: dict[str, Any] = {
            "records_received": result.received,
            "rows_loaded": result.bars.height,
            "rows_quarantined": result.quarantine.height,
            "quarantine_rate": round(result.quarantine_rate, 6),
        }
        if result.rejected:
            totals["rejected_files"] = {r.file: r.reason for r in result.rejected}
        totals["payloads_dead_lettered"] = len(dead)
        if len(keys) > 1:
            # A single-run backfill: Dagster copies output metadata to every partition's
            # materialization, so the totals are labelled as the run's, and each partition
            # gets its own counts (within PARTITION_METADATA_LIMIT).
            totals = {f"run_{name}": value for name, value in totals.items()}
            totals["run_partitions"] = len(keys)
            if len(keys) <= PARTITION_METADATA_LIMIT:
                for key, counts in _counts_per_partition(result, partitions_def, keys).items():
                    context.add_asset_metadata(counts, partition_key=key)
            else:
                totals["partition_counts"] = (
                    f"not recorded per partition: this run covers {len(keys):,} partitions, "
                    f"above {PARTITION_METADATA_LIMIT} (each partition's metadata costs Dagster "
                    "~2.5 ms per call times the range); the counts of one partition are "
                    f"SELECT count(*) FROM {market.key}.{name} WHERE ts in its window"
                )
        # The IO manager writes when the output is yielded; the check below reads the result.
        yield dg.MaterializeResult(
            value=WindowRows(result.bars, tuple(kept)),
            metadata={
                **totals,
                "payloads": len(raw),
                "missing_symbols": missing,
                "provider_errors": provider_errors,
                "uncovered": uncovered_text,
                "uncovered_bars": sum(len(v) for v in uncovered.values()),
                "empty_windows": len(empty),
                "quarantine_reasons": table_preview(reasons, 10),
            },
        )
        reconciliation = reconciliation_result(
            bars_key,
            storage.lake(bars_key),
            url,
            window,
            market.tz,
            partitions_def,
            keys,
        )
        yield from range_verdicts([*checks, universe_check, readable, reconciliation], keys)

    return _clean


def build_market_assets(market: Market) -> list[dg.AssetsDefinition]:
    intraday = five_minute_partitions(market)
    daily = daily_partitions(market)
    return [
        _raw_quotes_asset(market, "raw_intraday_quotes", "5min", intraday),
        _clean_bars_asset(market, "bars_5min", "raw_intraday_quotes", "5min", intraday),
        _raw_quotes_asset(market, "raw_daily_quotes", "1day", daily),
        _clean_bars_asset(market, "daily_bars", "raw_daily_quotes", "1day", daily),
    ]
