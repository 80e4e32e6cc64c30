"""Schedules on each market's clock.

- `<market>_bars_5min_schedule`: one run per 5-minute bar during the regular session, a minute
  after the bar closes, for the bar that just closed; holidays and the afternoons of early
  closes are skipped with the reason (the exchange calendar decides, not the cron).
- `<market>_daily_schedule`: the daily assets half an hour after the end of the hour that holds
  every session's close (London closes at 16:30: its 16:00 hour of posts, which the day's
  sentiment counts, is fetched at 17:05; the daily run follows at 17:30).

Both start stopped (`FINANCE_SCHEDULES=running` starts them): a new deployment should not begin
calling paid providers before someone has looked at it.
"""

import datetime as dt

import dagster as dg

from finance_assets.defs.common.assets import AssetJob
from finance_assets.defs.common.automation import (
    DAILY,
    EVERY_5MIN,
    bars_provider_tag,
    scheduled,
    schedules_default_status,
)
from finance_assets.defs.common.partitions import (
    DAILY_FMT,
    INTRADAY_FMT,
)
from finance_assets.lib.markets import BAR_MINUTES, Market

# Providers publish a bar shortly after it closes: ask one minute later.
PUBLICATION_DELAY = dt.timedelta(minutes=1)
DAILY_DELAY = dt.timedelta(minutes=30)


def intraday_job(market: Market) -> AssetJob:
    return dg.define_asset_job(
        f"{market.key}_bars_5min_job",
        selection=scheduled(market, EVERY_5MIN),
        tags=bars_provider_tag(market, "5min"),
        description=f"The latest 5-minute bar of {market.name}: payloads, clean bars, moves.",
    )


def daily_job(market: Market) -> AssetJob:
    return dg.define_asset_job(
        f"{market.key}_daily_job",
        selection=scheduled(market, DAILY),
        tags=bars_provider_tag(market, "1day"),
        description=f"{market.name} after the close: daily bars, the daily summary, the day's "
        "sentiment and the two joined; then the daily report, the forecast and the BI views.",
    )


def bar_to_request(market: Market, tick: dt.datetime) -> dg.RunRequest | dg.SkipReason:
    """The run for the bar that closed just before `tick`, or why there is none."""
    tick = tick.astimezone(dt.UTC)
    published = tick - PUBLICATION_DELAY
    floored = published.replace(second=0, microsecond=0)
    floored -= dt.timedelta(minutes=floored.minute % BAR_MINUTES)
    bar_start = floored - dt.timedelta(minutes=BAR_MINUTES)
    if bar_start not in market.bar_starts(bar_start, bar_start + dt.timedelta(minutes=1)):
        local = bar_start.astimezone(market.tz)
        why = (
            "not a trading session"
            if not market.is_session(local.date())
            else "outside the regular session"
        )
        return dg.SkipReason(f"{market.key}: no bar at {local:%Y-%m-%d %H:%M %Z} ({why})")
    key = bar_start.astimezone(market.tz).strftime(INTRADAY_FMT)
    return dg.RunRequest(run_key=key, partition_key=key, tags={"market": market.key})


def session_to_request(market: Market, tick: dt.datetime) -> dg.RunRequest | dg.SkipReason:
    """The run for the session that closed before `tick` today, or why there is none."""
    day = tick.astimezone(market.tz).date()
    if not market.is_session(day):
        return dg.SkipReason(f"{market.key}: {day} is not a trading session")
    _, close = market.session_bounds(day)
    if tick.astimezone(dt.UTC) < close:
        return dg.SkipReason(f"{market.key}: the {day} session has not closed yet")
    key = day.strftime(DAILY_FMT)
    return dg.RunRequest(run_key=key, partition_key=key, tags={"market": market.key})


def build_market_schedules(market: Market) -> list[dg.ScheduleDefinition]:
    open_, close = market.regular_open, market.regular_close
    delay = int(PUBLICATION_DELAY.total_seconds() // 60)
    intraday_cron = f"{delay}-59/{BAR_MINUTES} {open_.hour}-{close.hour} * * 1-5"
    # After the posts of the hour holding the close are in (the hourly schedule runs at :05).
    close_hour_end = dt.datetime.combine(dt.date.min, close.replace(minute=0)) + (
        dt.timedelta(hours=1) if close.minute else dt.timedelta()
    )
    daily_tick = (close_hour_end + DAILY_DELAY).time()

    @dg.schedule(
        name=f"{market.key}_bars_5min_schedule",
        cron_schedule=intraday_cron,
        execution_timezone=market.timezone,
        job=intraday_job(market),
        default_status=schedules_default_status(),
        description=f"Each 5-minute bar of {market.name}, a minute after it closes.",
    )
    def _intraday(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        return bar_to_request(market, context.scheduled_execution_time)

    @dg.schedule(
        name=f"{market.key}_daily_schedule",
        cron_schedule=f"{daily_tick.minute} {daily_tick.hour} * * 1-5",
        execution_timezone=market.timezone,
        job=daily_job(market),
        default_status=schedules_default_status(),
        description=f"The daily assets of {market.name}, 30 minutes after the hour of each "
        "session's close.",
    )
    def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
        return session_to_request(market, context.scheduled_execution_time)

    return [_intraday, _daily]
