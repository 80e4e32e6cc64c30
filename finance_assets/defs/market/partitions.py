"""Partitions on the market's clock: daily trading sessions and 5-minute regular-session bars.

Daily: one partition per session of the exchange calendar (weekends by cron, holidays as
exclusions), ~252 a year.

5-minute: every weekday's regular-session bars (~20.3k a year for New York). Holidays and the
afternoons of early closes are *not* excluded here: Dagster serialises a partitions definition
into every planned event of a run, and ~900 excluded datetimes a year made a 2-day backfill spend
18 s doing so. Those partitions simply hold no bars (the provider returns none, the clean asset
writes none), and the schedules skip them using the exchange calendar.
"""

from __future__ import annotations

import datetime as dt
import functools

import dagster as dg

from finance_assets.lib.markets import BAR_MINUTES, Market

INTRADAY_FMT = "%Y-%m-%d-%H:%M"
DAILY_FMT = "%Y-%m-%d"


def _non_session_weekdays(market: Market, start: dt.date) -> list[dt.date]:
    last = market.calendar.last_session.date()
    sessions = set(market.sessions(start, last))
    days = (start + dt.timedelta(days=i) for i in range((last - start).days + 1))
    return [d for d in days if d.weekday() < 5 and d not in sessions]


@functools.cache
def daily_partitions(market: Market) -> dg.TimeWindowPartitionsDefinition:
    start = dt.date.fromisoformat(market.daily_start)
    holidays = [
        dt.datetime.combine(day, dt.time(), market.tz)
        for day in _non_session_weekdays(market, start)
    ]
    # Every day ticks, weekends and holidays are excluded: a session's window ends at the next
    # midnight (not at the next session). `end_offset=1` makes today's partition exist during
    # the day, so the after-close schedule can run it without waiting for midnight.
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 0 * * *",
        start=market.daily_start,
        fmt=DAILY_FMT,
        timezone=market.timezone,
        end_offset=1,
        exclusions=["0 0 * * 0,6", *holidays],
    )


@functools.cache
def five_minute_partitions(market: Market) -> dg.TimeWindowPartitionsDefinition:
    open_, close = market.regular_open, market.regular_close
    # The cron ticks through the closing hour, so the last bar's window ends at the close (not
    # at the next morning's open); ticks outside the session are excluded.
    cron = f"*/{BAR_MINUTES} {open_.hour}-{close.hour} * * 1-5"
    excluded: list[str | dt.datetime] = []
    if open_.minute:
        excluded.append(f"0-{open_.minute - BAR_MINUTES}/{BAR_MINUTES} {open_.hour} * * 1-5")
    excluded.append(f"{close.minute}-55/{BAR_MINUTES} {close.hour} * * 1-5")
    start = dt.date.fromisoformat(market.intraday_start)
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule=cron,
        start=dt.datetime.combine(start, open_).strftime(INTRADAY_FMT),
        fmt=INTRADAY_FMT,
        timezone=market.timezone,
        exclusions=excluded,
    )
