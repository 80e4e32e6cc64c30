"""`<market>/bi_views`: the market schema's views for BI tools, created or replaced."""

import dagster as dg
from psycopg import sql

from finance_assets.defs.common.assets import market_asset, step_tags
from finance_assets.defs.common.automation import DAILY
from finance_assets.lib.analytics import views
from finance_assets.lib.io import postgres
from finance_assets.lib.io.managers import WarehouseResource
from finance_assets.lib.markets import Market


def bi_views_asset(market: Market) -> dg.AssetsDefinition:
    names = ", ".join(f"`{market.key}.{view}`" for view in views.VIEWS)

    @dg.asset(
        key=[market.key, "bi_views"],
        op_tags=step_tags("transform"),
        deps=[
            dg.AssetKey([market.key, "daily_summary"]),
            dg.AssetKey([market.key, "stock_sentiment_daily"]),
            dg.AssetKey([market.key, "price_moves"]),
        ],
        # Views, not a table: no `dagster/table_name` or column schema of one table to show.
        # Unpartitioned, in the daily job: a range run of that job creates them once.
        **market_asset(market, "analytics", kinds={"sql"}, schedule=DAILY),
        description=(
            f"Views in the `{market.key}` schema for a BI tool (QuickSight, Power BI, Grafana, "
            f"Metabase): {names}. Created or replaced in one transaction at every run (views "
            "hold no rows: they read the tables as they are)."
        ),
    )
    def _views(warehouse: WarehouseResource) -> dg.MaterializeResult:
        url = warehouse.get_url()
        created = views.create_views(url, market.key, market.timezone)
        counts = {}
        with postgres.connect(url) as conn, conn.cursor() as cur:
            for view in views.VIEWS:
                query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(market.key, view))
                cur.execute(query.as_string(None))
                counts[view] = int(cur.fetchone()[0])
        return dg.MaterializeResult(
            metadata={
                "views": dg.MetadataValue.md(
                    "\n".join(
                        f"- `{market.key}.{view}` ({counts[view]:,} rows): "
                        f"{views.DESCRIPTIONS[view]}"
                        for view in views.VIEWS
                    )
                ),
                **{f"rows_{view}": count for view, count in counts.items()},
                "created": len(created),
            }
        )

    return _views
