"""`<market>/market_report`: the charts people look at, one page per market and session."""

import datetime as dt
import os

import dagster as dg
import polars as pl

from finance_assets.defs.common.assets import market_asset, step_tags, with_sessions_before
from finance_assets.defs.common.automation import DAILY
from finance_assets.defs.common.partitions import daily_partitions, refuse_invalid_partitions
from finance_assets.lib.analytics import metrics, publish, report
from finance_assets.lib.markets import Market
from finance_assets.providers import reference
from finance_assets.resources import StorageResource

# A range run's metadata is copied onto each of its partitions: the chart (~80 KB) is embedded
# for ranges up to a month, beyond that the pages are listed only.
MAX_EMBEDDED_SESSIONS = 31
_INTRADAY = dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)


def _sessions(context: dg.AssetExecutionContext) -> list[dt.date]:
    return [dt.date.fromisoformat(key) for key in context.partition_keys]


def market_report_asset(market: Market) -> dg.AssetsDefinition:
    key = dg.AssetKey([market.key, "market_report"])
    # A market with a reference provider (MARKET_DATA_REFERENCE_<MARKET>) shows the second
    # opinion's agreement per session too.
    second_opinion = reference.reference(os.environ, market.key) is not None
    extra_ins = (
        {"vendor_agreement": with_sessions_before([market.key, "vendor_agreement"], metrics.WINDOW)}
        if second_opinion
        else {}
    )

    @dg.asset(
        key=key,
        op_tags=step_tags("transform"),
        ins={
            # The sessions before each day too: the volume z-scores need WINDOW of them.
            "daily_summary": with_sessions_before([market.key, "daily_summary"], metrics.WINDOW),
            "stock_sentiment_daily": dg.AssetIn([market.key, "stock_sentiment_daily"]),
            # A day's 5-minute partitions; on an early close the afternoon's do not exist.
            "bars_5min": dg.AssetIn([market.key, "bars_5min"], partition_mapping=_INTRADAY),
            "price_moves": dg.AssetIn([market.key, "price_moves"], partition_mapping=_INTRADAY),
            **extra_ins,
        },
        **market_asset(
            market,
            "analytics",
            daily_partitions(market),
            kinds={"matplotlib", "html"},
            schedule=DAILY,
        ),
        description=(
            f"The daily report of {market.name}: price and running VWAP per symbol with the "
            "day's alerts marked, open-to-close and high-low ranges, volume over the last "
            "sessions with unusual days flagged, sentiment beside the day's return, and the "
            "alerts over the day. One PNG and one self-contained HTML page per session under "
            f"`reports/{market.key}/dt=YYYY-MM-DD/` beside the lake; the chart is shown here."
        ),
    )
    def _report(
        context: dg.AssetExecutionContext,
        storage: StorageResource,
        daily_summary: pl.DataFrame,
        stock_sentiment_daily: pl.DataFrame,
        bars_5min: pl.DataFrame,
        price_moves: pl.DataFrame,
        **second: pl.DataFrame,
    ) -> dg.MaterializeResult:
        refuse_invalid_partitions(context, market)
        sessions = _sessions(context)
        have = (
            set(daily_summary.get_column("trading_date").to_list())
            if daily_summary.width
            else set()
        )
        missing = [day for day in sessions if day not in have]
        if missing:
            raise dg.Failure(
                description=f"no daily summary in {market.key}.daily_summary for "
                f"{', '.join(map(str, missing))}: materialise {market.key}/daily_summary first",
                allow_retries=False,
            )
        root = publish.reports_root(storage.lake_root)
        pages: dict[dt.date, str] = {}
        last_png, alerts, unusual = b"", 0, 0
        for day in sessions:
            data = report.day_data(
                market=market.name,
                timezone=market.timezone,
                day=day,
                bars=bars_5min,
                summary=daily_summary,
                sentiment=stock_sentiment_daily,
                alerts=price_moves,
                vendor_agreement=second.get("vendor_agreement"),
            )
            files = report.render(data)
            written = publish.write_report(root, market.key, day, files, storage.s3)
            pages[day] = str(written[report.PAGE])
            last_png = files[report.OVERVIEW]
            alerts += data.alerts.height
            unusual += data.history.filter(
                (pl.col("trading_date") == day) & pl.col("unusual_volume")
            ).height
        last = sessions[-1]
        metadata: dict[str, object] = {
            "report": dg.MetadataValue.path(pages[last]),
            "report_url": dg.MetadataValue.url(
                pages[last] if publish.is_s3(pages[last]) else f"file://{pages[last]}"
            ),
            "sessions": len(sessions),
            "price_alerts": alerts,
            "unusual_volume": unusual,
        }
        if len(sessions) <= MAX_EMBEDDED_SESSIONS:
            caption = f"{market.name} {last}"
            metadata["chart"] = dg.MetadataValue.md(
                (f"Session {last} (the run's last)\n\n" if len(sessions) > 1 else "")
                + report.markdown_image(last_png, caption)
            )
        if len(sessions) > 1:
            metadata["pages"] = dg.MetadataValue.md(
                "\n".join(f"- {day}: `{path}`" for day, path in pages.items())
            )
        return dg.MaterializeResult(metadata=metadata)

    return _report
