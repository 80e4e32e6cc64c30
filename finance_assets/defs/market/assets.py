"""Bars, per market: provider payloads -> raw zone -> validated clean bars (lake + warehouse).

One factory builds the same shape for both intervals and every market:
`<market>/raw_intraday_quotes` -> `<market>/bars_5min`, and
`<market>/raw_daily_quotes` -> `<market>/daily_bars`; rejected records go to the market's
`quarantine` table.
"""

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import dagster as dg
import polars as pl

from finance_assets.defs.common import owners, table_metadata
from finance_assets.defs.market.landing import LandingZoneResource
from finance_assets.defs.market.partitions import daily_partitions, five_minute_partitions
from finance_assets.lib import quality, transforms
from finance_assets.lib.io import postgres
from finance_assets.lib.io.managers import WarehouseResource, table_preview
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import Interval, ProviderError, RawPayload
from finance_assets.lib.schema import BAR_KEY, BAR_SCHEMA
from finance_assets.resources import DataQualityResource, MarketDataResource

# Provider calls fail transiently: retry the step with growing, jittered waits.
API_RETRY = dg.RetryPolicy(
    max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.FULL
)
SAMPLE_ROWS = 5
# A range run gives each partition its own counts up to this many partitions (a week of
# 5-minute bars). Dagster re-enumerates the run's partition keys on every per-partition
# `add_asset_metadata` call, so the cost grows with the square of the range: 4.4 s for 1,560
# partitions (measured), against 0.3 s for 390. Longer ranges carry the run's totals only.
PARTITION_METADATA_LIMIT = 400


def _market_tags(market: Market) -> dict[str, str]:
    return {"market": market.key}


def _raw_quotes_asset(
    market: Market, name: str, interval: Interval, partitions_def: dg.PartitionsDefinition
) -> dg.AssetsDefinition:
    @dg.asset(
        key=[market.key, name],
        partitions_def=partitions_def,
        backfill_policy=dg.BackfillPolicy.single_run(),
        retry_policy=API_RETRY,
        io_manager_key="raw_zone_io_manager",
        group_name=f"{market.key}_market",
        kinds={"json"},
        owners=owners("market"),
        tags=_market_tags(market),
        description=(
            f"{interval} bars for the {market.name} universe ({len(market.universe)} symbols), "
            "every provider response kept exactly as received in the raw zone "
            f"(`raw/{market.key}/{name}/dt=YYYY-MM-DD/`). A partition range is fetched in one call "
            "per symbol batch, so a backfill costs a handful of calls, not one per partition."
        ),
    )
    def _raw(
        context: dg.AssetExecutionContext,
        market_data: MarketDataResource,
        landing_zone: LandingZoneResource,
    ) -> list[RawPayload]:
        window = context.partition_time_window
        # A run the landing sensor started (tag `finance/landing_file`) reads the dropped file.
        provider = (
            landing_zone.provider_for_run(market, context.run.tags) or market_data.get_provider()
        )
        payloads = provider.fetch_bars(market, market.universe, interval, window.start, window.end)
        errors = transforms.failed_symbols(payloads)
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
            }
        )
        return payloads

    return _raw


def _sample(df: pl.DataFrame, rows: int = SAMPLE_ROWS) -> dg.MetadataValue:
    return table_preview(df, rows)


def bar_check_results(
    bars: pl.DataFrame, asset_key: dg.AssetKey, quarantine_rate: float, max_rate: float
) -> list[dg.AssetCheckResult]:
    """The blocking checks on clean bars, with failing-row counts and a sample."""
    results = []
    for check_name, (rule, _) in quality.BAR_RULES.items():
        failing = rule(bars)
        metadata: dict[str, Any] = {"failing_rows": failing.height, "rows": bars.height}
        if failing.height:
            metadata["sample"] = _sample(failing)
        results.append(
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=check_name,
                passed=failing.is_empty(),
                metadata=metadata,
            )
        )
    results.append(
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name="quarantine_rate",
            passed=quarantine_rate <= max_rate,
            metadata={
                "quarantine_rate": round(quarantine_rate, 6),
                # A setting, not a measurement: text, so the UI does not plot it.
                "max_quarantine_rate": dg.MetadataValue.text(str(max_rate)),
            },
        )
    )
    return results


def bar_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The checks a clean-bars asset declares: the blocking rules, the quarantine rate and the
    universe warning (the benchmark's no-op twin declares the same ones)."""
    specs = [
        dg.AssetCheckSpec(
            "universe_complete",
            asset=asset_key,
            description="warns when symbols of the universe have no bars in a window where the "
            "market traded (a delisted symbol, a provider gap, a typo in the universe file)",
        )
    ] + [
        dg.AssetCheckSpec(name, asset=asset_key, blocking=True, description=description)
        for name, (_, description) in quality.BAR_RULES.items()
    ]
    specs.append(
        dg.AssetCheckSpec(
            "quarantine_rate",
            asset=asset_key,
            blocking=True,
            description="the share of received records quarantined stays within the threshold "
            "(FINANCE_MAX_QUARANTINE_RATE, default 5 %)",
        )
    )
    return specs


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


def _clean_bars_asset(
    market: Market,
    name: str,
    raw_name: str,
    interval: Interval,
    partitions_def: dg.TimeWindowPartitionsDefinition,
) -> dg.AssetsDefinition:
    bars_key = dg.AssetKey([market.key, name])

    @dg.asset(
        key=bars_key,
        ins={"raw": dg.AssetIn(key=[market.key, raw_name])},
        io_manager_key="lake_warehouse_io_manager",
        kinds={"parquet", "polars", "postgres"},
        owners=owners("market"),
        tags=_market_tags(market),
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
    ) -> Iterator[dg.Output | dg.AssetCheckResult]:
        window = context.partition_time_window
        valid_starts = None
        if interval == "5min":
            valid_starts = pl.Series(
                "ts",
                market.bar_starts(window.start.astimezone(dt.UTC), window.end.astimezone(dt.UTC)),
            )
        result, provider_errors = transforms.clean_payloads(
            raw,
            market,
            interval,
            asset=name,
            window_start=window.start,
            window_end=window.end,
            ingested_at=dt.datetime.now(dt.UTC),
            valid_starts=valid_starts,
        )
        # The dead-letter store is written whatever the checks say: it is what explains them.
        # (A store, not an asset: per-partition materialisation events for it would cost a
        # third of a 5-minute backfill's Dagster bookkeeping.)
        postgres.replace_window(
            warehouse.get_url(),
            result.quarantine,
            schema=market.key,
            table="quarantine",
            time_column="partition_ts",
            start=window.start,
            end=window.end,
            scope={"asset": name},
            index=["partition_ts", "asset"],
        )
        if provider_errors:
            context.log.warning(
                f"provider errors for {len(provider_errors)} symbol(s): {provider_errors}"
            )
        checks = bar_check_results(
            result.bars, bars_key, result.quarantine_rate, data_quality.max_quarantine_rate
        )
        failed = [c.check_name for c in checks if not c.passed]
        if failed:
            # Blocking checks guard the lake and the warehouse too: record why, write nothing,
            # fail the step. The previous rows stay and downstream assets do not run.
            yield from checks
            raise dg.Failure(
                description=f"blocking check(s) failed for {bars_key.to_user_string()}: "
                f"{', '.join(failed)}; nothing was written",
                metadata={"failed_checks": failed, "rows": result.bars.height},
            )
        reasons = result.quarantine.group_by("reason").len().sort("len", descending=True)
        missing = sorted(set(market.universe) - set(result.bars.get_column("symbol").unique()))
        traded = valid_starts is None or valid_starts.len() > 0
        universe_check = dg.AssetCheckResult(
            check_name="universe_complete",
            passed=not (missing and traded and (result.bars.height or result.received)),
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "missing_symbols": missing,
                "provider_errors": {s: provider_errors[s] for s in missing if s in provider_errors},
            },
        )
        totals: dict[str, Any] = {
            "records_received": result.received,
            "rows_loaded": result.bars.height,
            "rows_quarantined": result.quarantine.height,
            "quarantine_rate": round(result.quarantine_rate, 6),
        }
        keys = context.partition_keys
        if len(keys) > 1:
            # A single-run backfill: Dagster copies output metadata to every partition's
            # materialization, so the totals are labelled as the run's, and each partition
            # gets its own counts (within PARTITION_METADATA_LIMIT).
            totals = {f"run_{name}": value for name, value in totals.items()}
            totals["run_partitions"] = len(keys)
            if len(keys) <= PARTITION_METADATA_LIMIT:
                for key, counts in _counts_per_partition(result, partitions_def, keys).items():
                    context.add_asset_metadata(counts, partition_key=key)
        yield dg.Output(
            result.bars,
            metadata={
                **totals,
                "payloads": len(raw),
                "missing_symbols": missing,
                "provider_errors": provider_errors,
                "quarantine_reasons": _sample(reasons, 10),
            },
        )
        yield from checks
        yield universe_check

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
