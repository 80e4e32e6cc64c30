"""The code location: every domain's definitions for every configured market, and the resources
of the environment `FINANCE_ENV` names."""

from __future__ import annotations

import warnings

import dagster as dg

from finance_assets.defs.market.assets import build_market_assets
from finance_assets.defs.market.schedules import build_market_schedules
from finance_assets.defs.ops.retention import retention_job, retention_schedule
from finance_assets.defs.warehouse.assets import build_warehouse_assets
from finance_assets.lib.markets import markets_from_env
from finance_assets.resources import build_resources

# Single-run backfills are the point of this project; Dagster flags the parameter as beta.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)


def build_defs() -> dg.Definitions:
    assets: list[dg.AssetsDefinition] = []
    schedules: list[dg.ScheduleDefinition] = [retention_schedule]
    for market in markets_from_env().values():
        assets += build_market_assets(market)
        assets += build_warehouse_assets(market)
        schedules += build_market_schedules(market)
    return dg.Definitions(
        assets=assets, schedules=schedules, jobs=[retention_job], resources=build_resources()
    )


defs = build_defs()
