"""What has closed by a given instant: the ranges the demo (and anyone asking "the last N
days") may run without touching a partition that does not exist yet or a session still open.

Every function takes `now` explicitly, so the rules are tested at chosen instants (mid-session,
after one market's close and before midnight, early closes, weekends, holidays, the weeks when
New York and London are on different DST offsets), not only at today's.

Why a session counts as complete only at the end of the hour holding its close: the posts are
hourly partitions, and a day's sentiment counts the posts up to the close. London closes at
16:30, so its 16:00 hour (and with it the day's sentiment) is complete at 17:00.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from finance_assets.lib.markets import BAR_MINUTES, Market

INTRADAY_FMT = "%Y-%m-%d-%H:%M"
HOURLY_FMT = "%Y-%m-%d-%H:%M"
DAILY_FMT = "%Y-%m-%d"
_HOUR = dt.timedelta(hours=1)


def _ceil_hour(moment: dt.datetime) -> dt.datetime:
    # London and New York are whole hours from UTC: UTC hours are local hours.
    moment = moment.astimezone(dt.UTC)
    floor = moment.replace(minute=0, second=0, microsecond=0)
    return floor if floor == moment else floor + _HOUR


def complete_at(market: Market, day: dt.date) -> dt.datetime:
    """When every partition a session needs has ended: its last 5-minute bar (at the close)
    and the hour of posts that holds the close."""
    _, close = market.session_bounds(day)
    return _ceil_hour(close)


def last_complete_hour(market: Market, now: dt.datetime) -> dt.datetime:
    """Start (UTC) of the newest hourly partition whose hour has ended by `now`."""
    floor = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)
    return floor - _HOUR


def complete_sessions(
    market: Market, count: int, now: dt.datetime, end: dt.date | None = None
) -> list[dt.date]:
    """The last `count` sessions on or before `end` (default: today in the market's timezone)
    that are complete by `now`, oldest first.

    Raises ValueError, naming the value, for an `end` after today, and when fewer than `count`
    sessions exist since the market's first 5-minute partition.
    """
    if count < 1:
        raise ValueError(f"the number of sessions must be at least 1, got {count}")
    today = now.astimezone(market.tz).date()
    if end is not None and end > today:
        raise ValueError(
            f"end date {end} is in the future: today is {today} in {market.timezone} "
            f"({market.name})"
        )
    first = dt.date.fromisoformat(market.intraday_start)
    day = end or today
    candidates = market.sessions(first, day)
    closed = [d for d in candidates if complete_at(market, d) <= now]
    if len(closed) < count:
        raise ValueError(
            f"{market.key}: only {len(closed)} complete session(s) between the first 5-minute "
            f"partition ({first}, FINANCE_INTRADAY_START) and {day}; asked for {count}"
        )
    return closed[-count:]


@dataclass(frozen=True)
class RunWindows:
    """Partition key ranges (first, last: both inclusive, both existing) for a run of
    sessions: the 5-minute bars, the hourly posts, and the daily assets."""

    sessions: tuple[dt.date, ...]
    intraday: tuple[str, str]
    posts: tuple[str, str]
    daily: tuple[str, str]


Sessions = list[dt.date] | tuple[dt.date, ...]


def intraday_range(market: Market, sessions: Sessions) -> tuple[str, str]:
    """First and last 5-minute partition keys of a run of sessions (early closes included)."""
    first_open, _ = market.session_bounds(sessions[0])
    _, last_close = market.session_bounds(sessions[-1])
    last_bar = last_close - dt.timedelta(minutes=BAR_MINUTES)
    return (
        first_open.astimezone(market.tz).strftime(INTRADAY_FMT),
        last_bar.astimezone(market.tz).strftime(INTRADAY_FMT),
    )


def posts_range(market: Market, sessions: Sessions, now: dt.datetime) -> tuple[str, str]:
    """Hourly keys from midnight of the session before the first (its close starts the first
    day's count) to the hour that holds the last session's close, never an hour that has not
    ended by `now` nor one before the first hourly partition."""
    tz = market.tz
    start_local = dt.datetime.combine(market.previous_session(sessions[0]), dt.time(), tz)
    first_partition = dt.datetime.combine(
        dt.date.fromisoformat(market.intraday_start), dt.time(), tz
    )
    start = max(start_local, first_partition)
    last_needed = complete_at(market, sessions[-1]) - _HOUR
    end = min(last_needed, last_complete_hour(market, now))
    return (
        start.astimezone(tz).strftime(HOURLY_FMT),
        end.astimezone(tz).strftime(HOURLY_FMT),
    )


def run_windows(
    market: Market, count: int, now: dt.datetime, end: dt.date | None = None
) -> RunWindows:
    """The ranges a run of the last `count` complete sessions uses, as of `now`."""
    sessions = complete_sessions(market, count, now, end)
    return RunWindows(
        sessions=tuple(sessions),
        intraday=intraday_range(market, sessions),
        posts=posts_range(market, sessions, now),
        daily=(sessions[0].strftime(DAILY_FMT), sessions[-1].strftime(DAILY_FMT)),
    )
