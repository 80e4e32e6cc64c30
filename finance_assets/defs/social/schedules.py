"""Posts by the hour: five minutes after each hour, that hour's posts for every company, and
after downtime the hours the schedule missed.

Dagster runs only the latest missed tick of a schedule without a partition set, so a daemon
that was down (a restart, or the AWS stack's service window, `deployment/aws/README.md`) would
leave the hours before it unfetched. Each tick therefore asks for every hour since the last one
materialised, within X's recent-search reach (seven days), as one single-run backfill.
"""

import datetime as dt
from collections.abc import Collection

import dagster as dg

from finance_assets.defs.common.automation import (
    HOURLY,
    provider_tag,
    scheduled,
    schedules_default_status,
)
from finance_assets.defs.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from finance_assets.defs.social.assets import HOURLY_FMT, hourly_partitions
from finance_assets.lib.markets import Market

HOUR = dt.timedelta(hours=1)
# X API v2 recent search answers the last seven days: an older hour cannot be fetched again.
CATCH_UP = dt.timedelta(days=7) - HOUR


def posts_request(
    market: Market, tick: dt.datetime, materialized: Collection[str] = ()
) -> dg.RunRequest:
    """The run for the hour that ended before `tick` (posts never stop for weekends), and for
    the hours before it back to the last one in `materialized` (raw_posts' partitions) when
    that is within `CATCH_UP`. With none within reach (a new deployment) only the last hour:
    older posts are a backfill the user chooses."""

    def key(moment: dt.datetime) -> str:
        return moment.astimezone(market.tz).strftime(HOURLY_FMT)

    # Hours counted in UTC: local wall-clock arithmetic is wrong across a DST change.
    hour = tick.astimezone(market.tz).replace(minute=0, second=0, microsecond=0)
    last = hour.astimezone(dt.UTC) - HOUR
    first, earliest = last, max(last - CATCH_UP, hourly_partitions(market).start)
    while first - HOUR >= earliest and key(first - HOUR) not in materialized:
        first -= HOUR
    if first - HOUR < earliest:  # no materialised hour within reach: nothing to catch up
        first = last
    start, end = key(first), key(last)
    tags = {"market": market.key}
    if start == end:
        return dg.RunRequest(run_key=end, partition_key=end, tags=tags)
    return dg.RunRequest(
        run_key=f"{start}..{end}", tags={**tags, RANGE_START_TAG: start, RANGE_END_TAG: end}
    )


def build_social_schedules(market: Market) -> list[dg.ScheduleDefinition]:
    job = dg.define_asset_job(
        f"{market.key}_posts_job",
        selection=scheduled(market, HOURLY),
        description=f"The last hour's posts about the companies of {market.name}, scored.",
        tags=provider_tag("finance/posts_provider", "POSTS_PROVIDER"),
    )
    raw_posts = dg.AssetKey([market.key, "raw_posts"])

    @dg.schedule(
        name=f"{market.key}_posts_hourly_schedule",
        cron_schedule="5 * * * *",
        execution_timezone=market.timezone,
        job=job,
        default_status=schedules_default_status(),
        description=f"Posts about the companies of {market.name}, hourly; after downtime, "
        "every hour missed since the last one fetched (up to seven days) in one run.",
    )
    def _hourly(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        materialized = context.instance.get_materialized_partitions(raw_posts)
        return posts_request(market, context.scheduled_execution_time, materialized)

    return [_hourly]
