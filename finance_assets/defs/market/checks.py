"""The checks of the clean-bars assets (`<market>/bars_5min`, `<market>/daily_bars`): what
they declare and how a window's bars are judged. The asset runs them before it writes; the
reconciliation check (`stores_agree`) is in `reconcile.py`."""

from collections.abc import Sequence
from typing import Any

import dagster as dg
import polars as pl

from finance_assets.defs.market.reconcile import RECONCILE_CHECK
from finance_assets.lib import quality, transforms
from finance_assets.lib.io.dead_letters import DeadLetter
from finance_assets.lib.io.managers import table_preview

# Failing rows shown in a check's metadata.
SAMPLE_ROWS = 5


def bar_check_results(
    bars: pl.DataFrame,
    asset_key: dg.AssetKey,
    quarantine_rate: float,
    max_rate: float,
    rejected: Sequence[transforms.RejectedPayload] = (),
    run_file_sha256: str | None = None,
) -> list[dg.AssetCheckResult]:
    """The blocking checks on clean bars, with failing-row counts and a sample.

    `quarantine_rate` is the share of the accepted payloads' records; landing files rejected as
    a whole (`rejected`) are named in the check's metadata and fail it as a warning, which
    blocks nothing: the other payloads' bars load. It is an error only in the run the landing
    sensor started for that very file (`run_file_sha256`): that run fails, saying why.
    """
    results = []
    for check_name, (rule, _) in quality.BAR_RULES.items():
        failing = rule(bars)
        metadata: dict[str, Any] = {"failing_rows": failing.height, "rows": bars.height}
        if failing.height:
            metadata["sample"] = table_preview(failing, SAMPLE_ROWS)
        results.append(
            dg.AssetCheckResult(
                asset_key=asset_key,
                check_name=check_name,
                passed=failing.is_empty(),
                metadata=metadata,
            )
        )
    rate_ok = quarantine_rate <= max_rate
    own_file = any(r.sha256 and r.sha256 == run_file_sha256 for r in rejected)
    rate_metadata: dict[str, Any] = {
        "quarantine_rate": round(quarantine_rate, 6),
        # A setting, not a measurement: text, so the UI does not plot it.
        "max_quarantine_rate": dg.MetadataValue.text(str(max_rate)),
    }
    if rejected:
        rate_metadata["rejected_files"] = {r.file: r.reason for r in rejected}
    results.append(
        dg.AssetCheckResult(
            asset_key=asset_key,
            check_name="quarantine_rate",
            passed=rate_ok and not rejected,
            severity=dg.AssetCheckSeverity.ERROR
            if not rate_ok or own_file
            else dg.AssetCheckSeverity.WARN,
            metadata=rate_metadata,
        )
    )
    return results


READABLE_CHECK = "raw_payloads_readable"


def readable_check_result(
    asset_key: dg.AssetKey, dead: Sequence[DeadLetter]
) -> dg.AssetCheckResult:
    """Warns when the run moved raw payloads nothing could read to the dead-letter place.

    A warning, not a blocking error: the rest of the window is good and loads (blocking would
    bring back the window that fails for ever); the symbols of a dead-lettered payload keep
    their older payloads' bars or their stored rows, so data may be missing or stale until
    the provider is asked again, and the failed check says so (and notifies)."""
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=READABLE_CHECK,
        passed=not dead,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "dead_lettered": len(dead),
            "dead_letters": {d.file: d.reason for d in dead},
        },
        description="; ".join(f"{d.file}: {d.reason} (now {d.moved_to})" for d in dead)[:1000]
        or None,
    )


def bar_check_specs(asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    """The checks a clean-bars asset declares: the blocking rules, the quarantine rate and the
    completeness check, `universe_complete` (the benchmark's no-op twin declares the same ones)."""
    specs = [
        dg.AssetCheckSpec(
            "universe_complete",
            asset=asset_key,
            description="fails when a provider did not cover a traded window for a symbol of "
            "the universe (whose stored rows are kept): a warning for a symbol missing whole (a "
            "delisted symbol, a provider error, a typo in the universe file), an error for a "
            "symbol answered in part or a traded window no source answered; the symbols and "
            "windows are in the metadata (`uncovered`). Evaluated after the write, blocking "
            "nothing: what arrived is stored",
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
    specs.append(
        dg.AssetCheckSpec(
            READABLE_CHECK,
            asset=asset_key,
            description="warns when raw payloads of the window could not be read at all (a "
            "truncated body, an HTML error page, an envelope that is not JSON): they were "
            "moved to the raw zone's _dead_letter/ folder with their reason, the rest loaded",
        )
    )
    specs.append(
        dg.AssetCheckSpec(
            RECONCILE_CHECK,
            asset=asset_key,
            blocking=True,
            description="after the write, the lake and the warehouse hold the same rows for "
            "every partition of the run, compared row for row over every column; the "
            "differing partitions are in the metadata",
        )
    )
    return specs
