"""Posts by the hour: five minutes after each hour, that hour's posts for every company."""

import datetime as dt

import dagster as dg

from finance_assets.defs.market.schedules import provider_tag, schedules_default_status
from finance_assets.defs.social.assets import HOURLY_FMT
from finance_assets.lib.markets import Market


def posts_request(market: Market, tick: dt.datetime) -> dg.RunRequest:
    """The run for the hour that ended before `tick` (posts never stop for weekends)."""
    hour = tick.astimezone(market.tz).replace(minute=0, second=0, microsecond=0)
    key = (hour - dt.timedelta(hours=1)).strftime(HOURLY_FMT)
    return dg.RunRequest(run_key=key, partition_key=key, tags={"market": market.key})


def build_social_schedules(market: Market) -> list[dg.ScheduleDefinition]:
    job = dg.define_asset_job(
        f"{market.key}_posts_job",
        selection=dg.AssetSelection.assets(
            [market.key, "raw_posts"], [market.key, "post_sentiment"]
        ),
        description=f"The last hour's posts about the companies of {market.name}, scored.",
        tags=provider_tag("finance/posts_provider", "POSTS_PROVIDER"),
    )

    @dg.schedule(
        name=f"{market.key}_posts_hourly_schedule",
        cron_schedule="5 * * * *",
        execution_timezone=market.timezone,
        job=job,
        default_status=schedules_default_status(),
        description=f"Posts about the companies of {market.name}, hourly.",
    )
    def _hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return posts_request(market, context.scheduled_execution_time)

    return [_hourly]
