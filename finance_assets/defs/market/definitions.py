"""The market domain's definitions: raw and clean bars per market, their corporate actions and
adjusted daily bars, the feeds the freshness checks judge, the landing-zone sensors, the bar
schedules and the freshness sensor."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from finance_assets.defs.common.markets import configured_markets
from finance_assets.defs.market.assets import build_market_assets
from finance_assets.defs.market.corporate_actions import build_corporate_action_assets
from finance_assets.defs.market.freshness import build_feed_defs, build_freshness_sensor
from finance_assets.defs.market.landing import build_landing_sensor
from finance_assets.defs.market.schedules import build_market_schedules
from finance_assets.lib.markets import Market
from finance_assets.resources import current_env


def build_defs(markets: Sequence[Market], *, follow_schedules: bool) -> dg.Definitions:
    """`follow_schedules`: the freshness sensor judges a feed only while its schedule runs (the
    local environment); otherwise always."""
    per_market = []
    for market in markets:
        feeds = build_feed_defs(market)
        per_market.append(
            dg.Definitions(
                assets=dg.with_source_code_references(
                    [
                        *build_market_assets(market),
                        *build_corporate_action_assets(market),
                        *(feeds.assets or []),
                    ]
                ),
                asset_checks=feeds.asset_checks,
                sensors=[build_landing_sensor(market)],
                schedules=build_market_schedules(market),
            )
        )
    return dg.Definitions.merge(
        *per_market,
        dg.Definitions(
            sensors=[build_freshness_sensor(markets, follow_schedules=follow_schedules)]
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """This domain's part of the code location, for the configured markets. Locally a feed is
    judged only while its schedule runs; in production always."""
    return build_defs(configured_markets(), follow_schedules=current_env() == "local")
