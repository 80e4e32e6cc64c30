"""Thresholds the checks and alerts read, and where the raw zone and the lake live."""

import dagster as dg

from finance_assets.resources.bounds import PRICE_MOVE_PCT, QUARANTINE_RATE, bounded


class AlertSettingsResource(dg.ConfigurableResource):
    """When a price move is worth an alert."""

    price_move_threshold_pct: float = bounded(1.0, PRICE_MOVE_PCT, "FINANCE_PRICE_MOVE_PCT")


class DataQualityResource(dg.ConfigurableResource):
    """Thresholds of the asset checks."""

    max_quarantine_rate: float = bounded(0.05, QUARANTINE_RATE, "FINANCE_MAX_QUARANTINE_RATE")
