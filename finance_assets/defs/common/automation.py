"""How assets join their schedules: each asset declares the schedule it runs on (a `schedule`
tag, beside its `market` tag) and each job selects by those tags, so a new asset joins its job
by its own declaration, in its own domain, and no domain lists another domain's assets."""

import os

import dagster as dg

from finance_assets.lib.markets import Market
from finance_assets.providers import reference, routing
from finance_assets.providers.spec import KINDS, calls_tags

# The asset tag naming the schedule an asset runs on, and its values.
SCHEDULE_TAG = "schedule"
EVERY_5MIN = "5min"  # `<market>_bars_5min_job`: each bar a minute after it closes
HOURLY = "hourly"  # `<market>_posts_job`: the last hour's posts
DAILY = "daily"  # `<market>_daily_job`: after the close, the day's tables and analytics
SCHEDULES = (EVERY_5MIN, HOURLY, DAILY)


def schedule_tags(market: Market, schedule: str | None) -> dict[str, str]:
    """The tags every asset of `market` carries: its market and, if it runs on one, its
    schedule (one of `SCHEDULES`)."""
    if schedule is not None and schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {schedule!r}: one of {', '.join(SCHEDULES)}")
    return {"market": market.key, **({SCHEDULE_TAG: schedule} if schedule else {})}


def scheduled(market: Market, schedule: str) -> dg.AssetSelection:
    """The assets of `market` that declare `schedule` (with their checks)."""
    return dg.AssetSelection.tag(SCHEDULE_TAG, schedule) & dg.AssetSelection.tag(
        "market", market.key
    )


def schedules_default_status() -> dg.DefaultScheduleStatus:
    """Schedules start stopped (`FINANCE_SCHEDULES=running` starts them): a new deployment
    should not begin calling paid providers before someone has looked at it."""
    running = os.environ.get("FINANCE_SCHEDULES", "stopped").strip().lower() == "running"
    return dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED


def bars_provider_tag(market: Market, interval: str) -> dict[str, str]:
    """The run tags of `market`'s `interval` job: the provider of its bars
    (`finance/market_data_provider`, `providers/routing.py`) and `finance/calls.<provider>` for
    every provider its runs call: the bars' and, in the daily job, the market's reference
    (`providers/reference.py`, which also serves Twelve Data's corporate actions). The run
    coordinators limit each keyed provider by the latter, whatever its role in the run."""
    chosen = routing.route(os.environ, market.key, interval)
    called = [chosen.provider]
    if interval == "1day":
        second = reference.reference(os.environ, market.key)
        if second is not None:
            called.append(second.provider)
    return {KINDS["bars"].run_tag: chosen.provider, **calls_tags(called)}


def provider_tag(key: str, variable: str) -> dict[str, str]:
    """The run tags naming the provider a job calls (`finance/posts_provider` and its
    `finance/calls.<provider>`): the instances' QueuedRunCoordinator allows one run at a time
    per keyed provider (deployment/docker/dagster.yaml), since each client's rate limiter lives
    in its run's process."""
    provider = os.environ.get(variable, "").strip().lower() or "simulated"
    return {key: provider, **calls_tags([provider])}
