"""The analytics domain of a market: the daily report, the BI views and the forecast."""

import dagster as dg

from finance_assets.defs.analytics.forecast import price_forecast_asset
from finance_assets.defs.analytics.report import market_report_asset
from finance_assets.defs.analytics.views import bi_views_asset
from finance_assets.lib.markets import Market


def build_analytics_assets(market: Market) -> list[dg.AssetsDefinition]:
    return [market_report_asset(market), price_forecast_asset(market), bi_views_asset(market)]
