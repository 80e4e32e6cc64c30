"""Partitions on the market's clock: daily trading sessions and 5-minute regular-session bars.

Daily: one partition per session of the exchange calendar (weekends by cron, holidays as
exclusions), ~252 a year.

5-minute: every weekday's regular-session bars (~20.3k a year for New York). Holidays and the
afternoons of early closes are *not* excluded here: Dagster serialises a partitions definition
into every planned event of a run, and ~900 excluded datetimes a year made a 2-day backfill spend
18 s doing so. Those partitions simply hold no bars (the provider returns none, the clean asset
writes none), and the schedules skip them using the exchange calendar.

"Now" is the partition loading context's instant (`dg.partition_loading_context`): the clock
`has_partition_key` reads, so a key is judged against the same instant Dagster judges it by
(and a test that sets that instant moves both).
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

import dagster as dg

from finance_assets.lib.clock import DAILY_FMT, INTRADAY_FMT
from finance_assets.lib.markets import BAR_MINUTES, Market


def _non_session_weekdays(market: Market, start: dt.date) -> list[dt.date]:
    # The calendar's summary, not the calendar: building the definitions builds no calendar.
    calendar = market.calendar_summary
    last = calendar.last_session
    sessions = set(calendar.sessions)
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


# The run tags of a single-run backfill of a partition range.
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def _near(partitions_def: dg.TimeWindowPartitionsDefinition, key: str) -> str:
    """The valid keys around a key that is not one, for the error message."""
    fmt, tz = partitions_def.fmt, ZoneInfo(partitions_def.timezone)
    try:
        moment = dt.datetime.strptime(key, fmt).replace(tzinfo=tz)
    except ValueError:
        return f"partition keys look like {dt.datetime(2026, 11, 18, 9, 30).strftime(fmt)}"
    before = partitions_def.get_prev_partition_window(moment, respect_bounds=False)
    # Dagster's "previous" window ends by `moment`; the one holding it (09:30 for 09:31) is nearer.
    holding = before and partitions_def.get_next_partition_window(before.end, respect_bounds=False)
    if holding is not None and holding.start <= moment:
        before = holding
    after = partitions_def.get_next_partition_window(moment, respect_bounds=False)
    around = [w.start.astimezone(tz).strftime(fmt) for w in (before, after) if w is not None]
    return "the nearest partitions are " + " and ".join(around) if around else ""


def refuse_invalid_partitions(context: dg.AssetExecutionContext, market: Market) -> None:
    """Refuse, once and without retries, a run whose partition keys are not partitions that
    exist now (a range ending in the future, `2026-11-18-17:00` after the close), and a daily
    window holding a session that has not closed: it would be materialised as complete with
    the bars so far.

    Dagster runs a range whose keys do not exist: it runs the window from the first key's start
    to the last key's end, so a key after the close silently means the next morning's bars.
    """
    partitions_def = context.assets_def.partitions_def
    if not isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return
    tags = context.run.tags
    keys = (
        [tags[RANGE_START_TAG], tags[RANGE_END_TAG]]
        if RANGE_START_TAG in tags and RANGE_END_TAG in tags
        else [context.partition_key]
    )
    last = partitions_def.get_last_partition_key()
    for key in dict.fromkeys(keys):
        if not partitions_def.has_partition_key(key):
            near = _near(partitions_def, key)
            raise dg.Failure(
                description=f"{context.assets_def.key.to_user_string()}: {key!r} is not a "
                f"partition that exists now ({near}; the last one is {last}); a key in the future "
                "or outside the market's sessions is refused",
                allow_retries=False,
            )
    if partitions_def.fmt != DAILY_FMT:
        return  # 5-minute and hourly partitions exist only once their window has ended
    window = context.partition_time_window
    with dg.partition_loading_context() as loading:  # the instant `has_partition_key` read
        now = loading.effective_dt
    first, last_day = window.start.date(), (window.end - dt.timedelta(seconds=1)).date()
    for day in market.sessions(first, last_day):
        close = market.session_bounds(day)[1]
        if close > now:
            raise dg.Failure(
                description=f"{context.assets_def.key.to_user_string()}: the {day} session of "
                f"{market.key} closes at {close.astimezone(market.tz):%H:%M %Z}; a session is "
                "materialised only after its close (run it then, or end the range the day before)",
                allow_retries=False,
            )
