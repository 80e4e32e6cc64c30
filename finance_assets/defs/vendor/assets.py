"""A second opinion on every price, per market that names a reference provider:
`<market>/reference_daily_quotes` asks the reference provider for the daily bars of a fixed
sample of the universe and keeps its answers as received in the raw zone (labelled with the
provider, like the primary's); `<market>/vendor_agreement` compares them with the primary's
`daily_bars`, bar by bar, into the table `<market>.vendor_agreement`, and its
`vendors_agree` check fails naming each bar that differs and by how much.

The reference's bars go nowhere else: never into `daily_bars`, its lake files or the
quarantine. Where the two providers differ, the primary's rows stay as they are.
"""

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import polars as pl

from finance_assets.defs.common.assets import (
    fails_once_if_permanent,
    range_verdicts,
    raw_zone_payloads,
    warehouse_table,
)
from finance_assets.defs.common.automation import DAILY
from finance_assets.defs.common.partitions import daily_partitions, refuse_invalid_partitions
from finance_assets.lib import answers, transforms
from finance_assets.lib.io.managers import table_preview
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.bars import plan_fetch
from finance_assets.lib.providers.base import ProviderError, RawPayload
from finance_assets.lib.schema import BAR_SCHEMA
from finance_assets.lib.transforms import agreement
from finance_assets.providers import routing
from finance_assets.providers.reference import Reference
from finance_assets.resources.market_data import MarketDataResource
from finance_assets.resources.thresholds import VendorToleranceResource

REFERENCE_QUOTES = "reference_daily_quotes"
AGREEMENT = "vendor_agreement"
AGREE_CHECK = "vendors_agree"
# Disagreeing bars named in the check's description and metadata.
LISTED = 20
# Per-partition agreement rates (the UI's plot) for ranges up to this many sessions.
PARTITION_METADATA_LIMIT = 800
# The check's figures the materialisation repeats (a range's prefixed `run_`).
_SHARED = ("pairs", "compared", "agreed", "disagreeing_bars", "agreement_rate")

COLUMNS = {
    "primary_source": "the provider the market's daily bars come from (`daily_bars.source`)",
    "reference_source": "the reference provider that answered the bar a second time",
    "primary_close": "the primary provider's close",
    "reference_close": "the reference provider's close",
    "close_diff_bp": "(reference close / primary close − 1) × 10,000, pence made pounds; "
    "null when either provider has no bar",
    "primary_volume": "the primary provider's volume",
    "reference_volume": "the reference provider's volume",
    "volume_diff_share": "|reference − primary volume| / the larger of the two; null when "
    "either sent no volume (not judged)",
    "status": "agree, close_differs, volume_differs, close_and_volume_differ, "
    "currency_differs, no_reference_bar or no_primary_bar",
    "agrees": "status = agree",
    "close_bp_limit": "the close tolerance in force (FINANCE_VENDOR_CLOSE_BP), bp",
    "volume_share_limit": "the volume tolerance in force (FINANCE_VENDOR_VOLUME_SHARE)",
}


def _reference_quotes_asset(
    market: Market,
    found: Reference,
    symbols: Sequence[str],
    partitions_def: dg.PartitionsDefinition,
) -> dg.AssetsDefinition:
    shown = ", ".join(symbols[:10]) + (" ..." if len(symbols) > 10 else "")

    @dg.asset(
        **raw_zone_payloads(
            market, "vendor", partitions_def, name=REFERENCE_QUOTES, schedule=DAILY
        ),
        required_resource_keys={found.resource_key},
        description=(
            f"The second opinion's answers: daily bars of {len(symbols)} symbols of the "
            f"{market.name} universe ({shown}) "
            f"from `{found.provider}` ({found.variable}; resource `{found.resource_key}`), kept "
            f"exactly as received in the raw zone (`raw/{market.key}/{REFERENCE_QUOTES}/"
            "dt=YYYY-MM-DD/`), each payload labelled with its provider. They are compared in "
            f"`{market.key}/{AGREEMENT}` and written nowhere else: never into the bars tables."
        ),
    )
    @fails_once_if_permanent
    def _raw(context: dg.AssetExecutionContext) -> list[RawPayload]:
        refuse_invalid_partitions(context, market)
        window = context.partition_time_window
        resource: MarketDataResource = getattr(context.resources, found.resource_key)
        provider = resource.get_provider()
        # Priced against the reference provider's own budget before any call.
        plan = plan_fetch(provider, market, symbols, "1day", window.start, window.end)
        if plan is not None:
            refusal = plan.refusal()
            if refusal is not None:
                raise dg.Failure(
                    description=refusal,
                    metadata={**plan.metadata(), "error": "BudgetExceeded", "retried": False},
                    allow_retries=False,
                )
        payloads = provider.fetch_bars(market, symbols, "1day", window.start, window.end)
        errors = {s: m for p in payloads for s, m in answers.payload_failures(p).items()}
        if payloads and len(errors) >= len(symbols):
            # Nothing usable came back: fail, so the retry policy asks again later.
            raise ProviderError(
                f"{provider.name}: every symbol of {market.key}'s reference sample failed: "
                + "; ".join(f"{s}: {m}" for s, m in sorted(errors.items())[:10])
            )
        context.add_output_metadata(
            {
                "provider": provider.name,
                "window": f"{window.start.isoformat()} .. {window.end.isoformat()}",
                "symbols": list(symbols),
                "failed_symbols": errors,
                "calls": len(payloads),
                **(plan.metadata() if plan is not None else {}),
            }
        )
        return payloads

    return _raw


def _bars_or_empty(frame: pl.DataFrame) -> pl.DataFrame:
    """An input with no partitions upstream reads as a frame without columns."""
    return frame if frame.width else pl.DataFrame(schema=BAR_SCHEMA)


def _check(
    key: dg.AssetKey,
    pairs: pl.DataFrame,
    daily: pl.DataFrame,
    market: Market,
    reference_errors: Mapping[str, str] | None = None,
) -> dg.AssetCheckResult:
    """Fails when any bar of the sample differs beyond the tolerance, one provider lacks a bar
    the other has, or nothing at all could be compared (an empty window is not agreement)."""
    compared = int(daily["compared"].sum()) if daily.height else 0
    agreed = int(daily["agreed"].sum()) if daily.height else 0
    # A symbol the reference answered with an error: its message first, then each bar.
    errors = dict(reference_errors or {})
    lines = [f"{s}: the reference answered {m!r}" for s, m in sorted(errors.items())]
    lines += agreement.disagreements(pairs, market.tz, LISTED)
    bad = pairs.filter(~pl.col("agrees"))
    metadata: dict[str, Any] = {
        "pairs": pairs.height,
        "compared": compared,
        "agreed": agreed,
        "disagreeing_bars": bad.height,
        "statuses": dict(pairs.group_by("status").len().sort("status").iter_rows()),
        "reference_errors": errors,
        "disagreements": dg.MetadataValue.md("\n".join(f"- {line}" for line in lines) or "none"),
    }
    if compared:
        metadata["agreement_rate"] = round(agreed / compared, 6)
    if bad.height:
        metadata["sample"] = table_preview(
            bad.select(
                "symbol",
                "trading_date",
                "status",
                "primary_close",
                "reference_close",
                "close_diff_bp",
                "primary_volume",
                "reference_volume",
                "volume_diff_share",
            ),
            LISTED,
        )
    description = None
    if not compared:
        description = "nothing to compare: neither provider had a bar of the sample in common"
    elif lines:
        listed = len(lines) - len(errors)
        more = f" (and {bad.height - listed} more)" if bad.height > listed else ""
        description = ("; ".join(lines) + more)[:1000]
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=AGREE_CHECK,
        passed=bool(compared) and bad.is_empty(),
        severity=dg.AssetCheckSeverity.ERROR,
        metadata=metadata,
        description=description,
    )


def _agreement_asset(
    market: Market,
    found: Reference,
    symbols: Sequence[str],
    partitions_def: dg.TimeWindowPartitionsDefinition,
    primary: routing.Route,
) -> dg.AssetsDefinition:
    key = dg.AssetKey([market.key, AGREEMENT])

    @dg.asset(
        **warehouse_table(
            market,
            "vendor",
            partitions_def,
            name=AGREEMENT,
            partition_expr="ts",
            primary_key=agreement.AGREEMENT_KEY,
            schema=agreement.AGREEMENT_SCHEMA,
            descriptions=COLUMNS,
            schedule=DAILY,
        ),
        ins={
            "reference": dg.AssetIn([market.key, REFERENCE_QUOTES]),
            "daily_bars": dg.AssetIn([market.key, "daily_bars"]),
        },
        check_specs=[
            dg.AssetCheckSpec(
                AGREE_CHECK,
                asset=key,
                description="fails when a bar of the sample differs between the two providers "
                "beyond the tolerance (close: FINANCE_VENDOR_CLOSE_BP basis points; volume: "
                "FINANCE_VENDOR_VOLUME_SHARE of the larger), when one provider has a bar the "
                "other lacks, or when nothing could be compared; the description names each "
                "bar and the size of its difference. Evaluated after the write: the table is "
                "the evidence, and the primary's bars are never changed",
            )
        ],
        description=(
            f"A second opinion on {market.name}'s daily bars: for {len(symbols)} symbols of the "
            f"universe, each bar of `{market.key}/daily_bars` (provider `{primary.provider}`, "
            f"{primary.variable}) beside the same bar from `{found.provider}` "
            f"({found.variable}), the close difference in basis points and the volume "
            "difference as a share, and whether they agree (table "
            f"`{market.key}.{AGREEMENT}`, one row per bar). Each session's "
            "`day_agreement_rate` (agreed / compared) is plotted in the asset's Plots tab; the "
            "`vendors_agree` check names every bar that differs. The primary's rows are never "
            "changed by a disagreement."
        ),
    )
    def _agreement(
        context: dg.AssetExecutionContext,
        reference: list[RawPayload],
        daily_bars: pl.DataFrame,
        vendor_tolerance: VendorToleranceResource,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        refuse_invalid_partitions(context, market)
        window = context.partition_time_window
        tolerance = agreement.Tolerance(vendor_tolerance.close_bp, vendor_tolerance.volume_share)
        # Parsed and cleaned like the primary's, in memory only: nothing of it is stored.
        cleaned, errors = transforms.clean_payloads(
            list(reference),
            market,
            "1day",
            asset=AGREEMENT,
            window_start=window.start,
            window_end=window.end,
            ingested_at=dt.datetime.now(dt.UTC),
        )
        pairs = agreement.compare_bars(
            _bars_or_empty(daily_bars), cleaned.bars, symbols, tolerance, market.tz
        )
        daily = agreement.daily_agreement(pairs)
        check = _check(key, pairs, daily, market, errors)
        keys = context.partition_keys
        metadata: dict[str, Any] = {
            "reference_provider": found.provider,
            "symbols": list(symbols),
            "reference_payloads": len(reference),
            "reference_errors": errors,
            "reference_records_rejected": cleaned.quarantine.height,
            "per_day": table_preview(daily, 31),
            "close_bp_limit": dg.MetadataValue.text(f"{tolerance.close_bp:g}"),
            "volume_share_limit": dg.MetadataValue.text(f"{tolerance.volume_share:g}"),
            **{k: v for k, v in check.metadata.items() if k in _SHARED},
        }
        per_partition = _per_partition(daily, keys)
        if len(keys) == 1:
            metadata.update(per_partition[keys[0]])
        else:
            # A range's totals are the run's; each session gets its own rate (within the
            # limit), so the Plots tab charts `day_agreement_rate` per day either way.
            metadata = {f"run_{k}" if k in _SHARED else k: v for k, v in metadata.items()}
            if len(keys) <= PARTITION_METADATA_LIMIT:
                for partition_key, rates in per_partition.items():
                    context.add_asset_metadata(rates, partition_key=partition_key)
        yield dg.MaterializeResult(value=pairs, metadata=metadata)
        yield from range_verdicts([check], keys)

    return _agreement


def _per_partition(daily: pl.DataFrame, keys: Sequence[str]) -> dict[str, dict[str, Any]]:
    by_day = {row["trading_date"].isoformat(): row for row in daily.iter_rows(named=True)}
    out: dict[str, dict[str, Any]] = {}
    for partition_key in keys:
        row = by_day.get(partition_key)
        values: dict[str, Any] = {"day_compared": row["compared"] if row else 0}
        if row and row["agreement_rate"] is not None:
            values["day_agreement_rate"] = round(row["agreement_rate"], 6)
        out[partition_key] = values
    return out


def build_vendor_assets(
    market: Market, found: Reference, environ: Mapping[str, str]
) -> list[dg.AssetsDefinition]:
    """The reference's raw answers and the agreement table of one market."""
    symbols = agreement.reference_sample(market.universe, found.symbols)
    partitions = daily_partitions(market)
    primary = routing.route(environ, market.key, "1day")
    return [
        _reference_quotes_asset(market, found, symbols, partitions),
        _agreement_asset(market, found, symbols, partitions, primary),
    ]
