"""The code location: every domain's definitions for every configured market, and the resources
of the environment `FINANCE_ENV` names."""

from __future__ import annotations

import warnings

import dagster as dg

from finance_assets.defs.analytics.assets import build_analytics_assets
from finance_assets.defs.market.assets import build_market_assets
from finance_assets.defs.market.freshness import build_feed_defs, build_freshness_sensor
from finance_assets.defs.market.landing import build_landing_sensor
from finance_assets.defs.market.schedules import build_market_schedules
from finance_assets.defs.ops.notifications import build_notification_defs
from finance_assets.defs.ops.retention import retention_job, retention_schedule
from finance_assets.defs.social.assets import build_social_assets
from finance_assets.defs.social.schedules import build_social_schedules
from finance_assets.defs.warehouse.alerts import build_price_alert_sensor
from finance_assets.defs.warehouse.assets import build_warehouse_assets
from finance_assets.lib.markets import Market, markets_from_env
from finance_assets.lib.settings import SettingsError
from finance_assets.resources import build_resources, current_env

# Single-run backfills are the point of this project; Dagster flags the parameter as beta.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)
# The daily assets read the session before their first (its close is the base of the return;
# its posts after the close count): a mapping option Dagster still flags as beta.
warnings.filterwarnings(
    "ignore", message=".*allow_nonexistent_upstream_partitions.*", category=dg.BetaWarning
)
# Code references in the UI, likewise beta (20 warnings at every load otherwise).
warnings.filterwarnings(
    "ignore",
    message=".*(with_source_code_references|CodeReferencesMetadataValue|LocalFileCodeReference).*",
    category=dg.BetaWarning,
)


def build_market_defs(market: Market) -> dg.Definitions:
    """Everything one market has: assets (each linked to its source code in the UI), their
    checks, the feeds the freshness checks judge, sensors and schedules (no resources)."""
    feeds = build_feed_defs(market)
    return dg.Definitions(
        assets=dg.with_source_code_references(
            [
                *build_market_assets(market),
                *build_warehouse_assets(market),
                *build_social_assets(market),
                *(feeds.assets or []),
                # analytics: the daily report, BI views and forecast (defs/analytics)
                *build_analytics_assets(market),
            ]
        ),
        asset_checks=feeds.asset_checks,
        sensors=[build_landing_sensor(market)],
        schedules=[*build_market_schedules(market), *build_social_schedules(market)],
    )


def build_defs() -> dg.Definitions:
    # Every bad setting in one error, markets' and resources' alike, before anything is built.
    problems: list[str] = []
    try:
        markets = list(markets_from_env().values())
    except SettingsError as exc:
        problems += exc.problems
    try:
        resources = build_resources()
    except SettingsError as exc:
        problems += exc.problems
    if problems:
        raise SettingsError(problems)
    # Locally a feed is judged only while its schedule runs; in production always.
    follow_schedules = current_env() == "local"
    return dg.Definitions.merge(
        *(build_market_defs(market) for market in markets),
        dg.Definitions(
            sensors=[
                build_freshness_sensor(markets, follow_schedules=follow_schedules),
                build_price_alert_sensor(markets),
            ],
            schedules=[retention_schedule],
            jobs=[retention_job],
            resources=resources,
        ),
        build_notification_defs(),
    )


defs = build_defs()
