"""Thresholds the checks and alerts read, and where the raw zone and the lake live."""

import dagster as dg

from finance_assets.providers import reference
from finance_assets.resources.bounds import PRICE_MOVE_PCT, QUARANTINE_RATE, bounded


class AlertSettingsResource(dg.ConfigurableResource):
    """When a price move is worth an alert."""

    price_move_threshold_pct: float = bounded(1.0, PRICE_MOVE_PCT, "FINANCE_PRICE_MOVE_PCT")


class DataQualityResource(dg.ConfigurableResource):
    """Thresholds of the asset checks."""

    max_quarantine_rate: float = bounded(0.05, QUARANTINE_RATE, "FINANCE_MAX_QUARANTINE_RATE")


class VendorToleranceResource(dg.ConfigurableResource):
    """How far a reference provider's bar may differ from the primary's and still agree
    (`vendor_agreement`)."""

    close_bp: float = bounded(
        reference.DEFAULT_CLOSE_BP, reference.CLOSE_BP, reference.CLOSE_BP_VARIABLE
    )
    volume_share: float = bounded(
        reference.DEFAULT_VOLUME_SHARE, reference.VOLUME_SHARE, reference.VOLUME_SHARE_VARIABLE
    )
