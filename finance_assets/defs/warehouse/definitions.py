"""The warehouse domain's definitions: daily summaries and price moves per market, and the
price-alert sensor."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from finance_assets.defs.common.markets import configured_markets
from finance_assets.defs.warehouse.alerts import build_price_alert_sensor
from finance_assets.defs.warehouse.assets import build_warehouse_assets
from finance_assets.lib.markets import Market


def build_defs(markets: Sequence[Market]) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.with_source_code_references(
            [asset for market in markets for asset in build_warehouse_assets(market)]
        ),
        sensors=[build_price_alert_sensor(markets)],
    )


@dg.definitions
def defs() -> dg.Definitions:
    """This domain's part of the code location, for the configured markets."""
    return build_defs(configured_markets())
