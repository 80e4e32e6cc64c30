"""The demo's windows at chosen instants: only partitions that exist, only closed sessions.

Each instant is checked for both markets against hand-worked expectations and against Dagster's
own view of which partitions exist at that instant (`partition_loading_context`).
"""

import datetime as dt

import pytest
from dagster._core.definitions.partitions.context import partition_loading_context

from finance_assets.defs.common.partitions import daily_partitions, five_minute_partitions
from finance_assets.defs.social.assets import hourly_partitions
from finance_assets.lib import clock

UTC = dt.UTC
D = dt.date

# (instant UTC, days, {market: (first session, last session, intraday end key, posts end key)})
CASES = [
    # The instant of the first-run report: New York mid-session, London closed an hour before.
    (
        dt.datetime(2026, 12, 1, 19, 50, tzinfo=UTC),
        5,
        {
            "us": (D(2026, 11, 23), D(2026, 11, 30), "2026-11-30-15:55", "2026-11-30-15:00"),
            "uk": (D(2026, 11, 25), D(2026, 12, 1), "2026-12-01-16:25", "2026-12-01-16:00"),
        },
    ),
    # Mid-session in both (London at noon): the open session is left out.
    (
        dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        1,
        {
            "us": (D(2026, 11, 30), D(2026, 11, 30), "2026-11-30-15:55", "2026-11-30-15:00"),
            "uk": (D(2026, 11, 30), D(2026, 11, 30), "2026-11-30-16:25", "2026-11-30-16:00"),
        },
    ),
    # London closed at 16:30 but its 16:00 hour of posts has not ended: not complete yet.
    (
        dt.datetime(2026, 12, 1, 16, 45, tzinfo=UTC),
        1,
        {
            "us": (D(2026, 11, 30), D(2026, 11, 30), "2026-11-30-15:55", "2026-11-30-15:00"),
            "uk": (D(2026, 11, 30), D(2026, 11, 30), "2026-11-30-16:25", "2026-11-30-16:00"),
        },
    ),
    # New York exactly at its close: complete (the last bar and hour end at 16:00).
    (
        dt.datetime(2026, 12, 1, 21, 0, tzinfo=UTC),
        1,
        {
            "us": (D(2026, 12, 1), D(2026, 12, 1), "2026-12-01-15:55", "2026-12-01-15:00"),
            "uk": (D(2026, 12, 1), D(2026, 12, 1), "2026-12-01-16:25", "2026-12-01-16:00"),
        },
    ),
    # After both closes, after midnight in London, before it in New York.
    (
        dt.datetime(2026, 12, 2, 0, 30, tzinfo=UTC),
        2,
        {
            "us": (D(2026, 11, 30), D(2026, 12, 1), "2026-12-01-15:55", "2026-12-01-15:00"),
            "uk": (D(2026, 11, 30), D(2026, 12, 1), "2026-12-01-16:25", "2026-12-01-16:00"),
        },
    ),
    # Black Friday: New York closes at 13:00; Thanksgiving (26th) is no session in New York.
    (
        dt.datetime(2026, 11, 27, 18, 30, tzinfo=UTC),
        3,
        {
            "us": (D(2026, 11, 24), D(2026, 11, 27), "2026-11-27-12:55", "2026-11-27-12:00"),
            "uk": (D(2026, 11, 25), D(2026, 11, 27), "2026-11-27-16:25", "2026-11-27-16:00"),
        },
    ),
    # Thanksgiving itself, mid-afternoon in London (open) and New York (closed).
    (
        dt.datetime(2026, 11, 26, 15, 0, tzinfo=UTC),
        1,
        {
            "us": (D(2026, 11, 25), D(2026, 11, 25), "2026-11-25-15:55", "2026-11-25-15:00"),
            "uk": (D(2026, 11, 25), D(2026, 11, 25), "2026-11-25-16:25", "2026-11-25-16:00"),
        },
    ),
    # A Saturday.
    (
        dt.datetime(2026, 12, 5, 12, 0, tzinfo=UTC),
        2,
        {
            "us": (D(2026, 12, 3), D(2026, 12, 4), "2026-12-04-15:55", "2026-12-04-15:00"),
            "uk": (D(2026, 12, 3), D(2026, 12, 4), "2026-12-04-16:25", "2026-12-04-16:00"),
        },
    ),
    # Monday morning before either open: Friday is the last session.
    (
        dt.datetime(2026, 12, 7, 7, 0, tzinfo=UTC),
        1,
        {
            "us": (D(2026, 12, 4), D(2026, 12, 4), "2026-12-04-15:55", "2026-12-04-15:00"),
            "uk": (D(2026, 12, 4), D(2026, 12, 4), "2026-12-04-16:25", "2026-12-04-16:00"),
        },
    ),
    # Boxing Day observed (London closed) after Christmas; London's Christmas Eve closes 12:30.
    (
        dt.datetime(2026, 12, 28, 22, 0, tzinfo=UTC),
        1,
        {
            "us": (D(2026, 12, 28), D(2026, 12, 28), "2026-12-28-15:55", "2026-12-28-15:00"),
            "uk": (D(2026, 12, 24), D(2026, 12, 24), "2026-12-24-12:25", "2026-12-24-12:00"),
        },
    ),
    # March: New York already on summer time (UTC-4), London not yet (UTC+0).
    (
        dt.datetime(2026, 3, 10, 20, 5, tzinfo=UTC),
        1,
        {
            "us": (D(2026, 3, 10), D(2026, 3, 10), "2026-03-10-15:55", "2026-03-10-15:00"),
            "uk": (D(2026, 3, 10), D(2026, 3, 10), "2026-03-10-16:25", "2026-03-10-16:00"),
        },
    ),
    # ... and an hour earlier New York is still open, though 16:00 in London winter time.
    (
        dt.datetime(2026, 3, 10, 19, 30, tzinfo=UTC),
        1,
        {
            "us": (D(2026, 3, 9), D(2026, 3, 9), "2026-03-09-15:55", "2026-03-09-15:00"),
            "uk": (D(2026, 3, 10), D(2026, 3, 10), "2026-03-10-16:25", "2026-03-10-16:00"),
        },
    ),
    # October: London back on winter time (UTC+0), New York still on summer time.
    (
        dt.datetime(2026, 10, 27, 20, 0, tzinfo=UTC),
        2,
        {
            "us": (D(2026, 10, 26), D(2026, 10, 27), "2026-10-27-15:55", "2026-10-27-15:00"),
            "uk": (D(2026, 10, 26), D(2026, 10, 27), "2026-10-27-16:25", "2026-10-27-16:00"),
        },
    ),
]


def _markets(us, uk):
    return {"us": us, "uk": uk}


@pytest.mark.parametrize(("now", "days", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_windows_use_closed_sessions_and_existing_partitions(us, uk, now, days, expected):
    for key, market in _markets(us, uk).items():
        first, last, intraday_end, posts_end = expected[key]
        windows = clock.run_windows(market, days, now)
        assert len(windows.sessions) == days
        assert (windows.sessions[0], windows.sessions[-1]) == (first, last), key
        assert windows.intraday[1] == intraday_end, key
        assert windows.posts[1] == posts_end, key
        assert windows.daily == (f"{first:%Y-%m-%d}", f"{last:%Y-%m-%d}")
        # Every session closed by now, and every key a partition Dagster says exists by now.
        assert all(market.session_bounds(d)[1] <= now for d in windows.sessions)
        with partition_loading_context(effective_dt=now):
            for partitions, keys in (
                (five_minute_partitions(market), windows.intraday),
                (hourly_partitions(market), windows.posts),
                (daily_partitions(market), windows.daily),
            ):
                for partition_key in keys:
                    assert partitions.has_partition_key(partition_key), (key, partition_key)


def test_posts_start_the_midnight_of_the_session_before(us):
    windows = clock.run_windows(us, 2, dt.datetime(2026, 12, 2, 3, 0, tzinfo=UTC))
    assert windows.sessions == (D(2026, 11, 30), D(2026, 12, 1))
    assert windows.posts[0] == "2026-11-27-00:00"  # Black Friday: the session before Monday


def test_an_end_in_the_future_or_before_the_partitions_is_refused(us):
    now = dt.datetime(2026, 12, 1, 19, 50, tzinfo=UTC)
    with pytest.raises(
        ValueError, match=r"end date 2026-12-02 is in the future: today is 2026-12-01"
    ):
        clock.run_windows(us, 1, now, D(2026, 12, 2))
    with pytest.raises(ValueError, match=r"only 0 complete session\(s\).*FINANCE_INTRADAY_START"):
        clock.run_windows(us, 1, now, D(2025, 12, 31))
    with pytest.raises(ValueError, match="at least 1"):
        clock.run_windows(us, 0, now)
    # An end date today while the session is open: the sessions before it.
    assert clock.run_windows(us, 1, now, D(2026, 12, 1)).sessions == (D(2026, 11, 30),)
