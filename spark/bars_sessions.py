"""Trading sessions from exchange_calendars (the calendar the project uses): the sessions of a
window for the 5-minute bar-start check and the daily summary, and the session opens a daily
record's date becomes (`lib/transforms.with_bar_times`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from bars_rules import MARKETS
from pyspark.sql import DataFrame, SparkSession


def session_frame(
    spark: SparkSession, market: str, first: dt.date, last: dt.date
) -> tuple[DataFrame, dict[dt.date, dt.date]]:
    """(sessions, previous): the market's sessions in [first, last] (local `_day`, UTC `_s_open`
    and `_s_close`) and each session's previous session."""
    import exchange_calendars as xcals

    calendar_name, _ = MARKETS[market]
    calendar = xcals.get_calendar(calendar_name, start=(first - dt.timedelta(days=40)).isoformat())
    schedule = calendar.schedule.loc[: last.isoformat()]
    days = [d.date() for d in schedule.index]
    rows = [
        (day, o.to_pydatetime(), c.to_pydatetime())
        for day, o, c in zip(days, schedule["open"], schedule["close"], strict=True)
        if day >= first
    ]
    previous = dict(zip(days[1:], days[:-1], strict=True))
    schema = "_day date, _s_open timestamp, _s_close timestamp"
    return spark.createDataFrame(rows, schema), previous


def daily_opens(
    spark: SparkSession, market: str, days: Iterable[dt.date], calendar_start: str
) -> DataFrame:
    """`day` -> `ts`, the session's open (UTC), for the days that are sessions of the market's
    calendar (loaded from `calendar_start`, as `Market.calendar`): a date outside it is none."""
    import exchange_calendars as xcals

    days = sorted(set(days))
    rows = []
    if days:
        calendar = xcals.get_calendar(MARKETS[market][0], start=calendar_start)
        first = max(days[0], calendar.first_session.date())
        last = min(days[-1], calendar.last_session.date())
        if first <= last:
            sessions = calendar.sessions_in_range(first.isoformat(), last.isoformat())
            found = {ts.date() for ts in sessions}
            rows = [
                (day, calendar.session_open(day.isoformat()).to_pydatetime())
                for day in days
                if day in found
            ]
    return spark.createDataFrame(rows, "day date, ts timestamp")
