"""The social domain's definitions: posts, their sentiment, the daily roll-up and its join
with prices, per market, with their schedules."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from finance_assets.defs.common.markets import configured_markets
from finance_assets.defs.social.assets import build_social_assets
from finance_assets.defs.social.schedules import build_social_schedules
from finance_assets.lib.markets import Market


def build_defs(markets: Sequence[Market]) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.with_source_code_references(
            [asset for market in markets for asset in build_social_assets(market)]
        ),
        schedules=[s for market in markets for s in build_social_schedules(market)],
    )


@dg.definitions
def defs() -> dg.Definitions:
    """This domain's part of the code location, for the configured markets."""
    return build_defs(configured_markets())
