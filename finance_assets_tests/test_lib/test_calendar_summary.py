"""The calendar's summary, which the definitions are built from without building a calendar
(issue 23): the same sessions and session times as exchange-calendars', kept in a file per
calendar, version and day, and the partitions built from it the same as from the calendar."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import pytest

from finance_assets.defs.common.partitions import daily_partitions
from finance_assets.lib import markets as markets_module
from finance_assets.lib.markets import CalendarSummary, calendar_summary


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FINANCE_CACHE_DIR", str(tmp_path / "cache"))
    calendar_summary.cache_clear()
    yield tmp_path / "cache"
    calendar_summary.cache_clear()


@pytest.mark.parametrize("name", ["us", "uk"])
def test_the_summary_says_what_the_calendar_says(name, us, uk, cache):
    market = {"us": us, "uk": uk}[name]
    calendar, summary = market.calendar, market.calendar_summary
    assert summary.sessions == tuple(ts.date() for ts in calendar.sessions)
    assert (summary.first_session, summary.last_session) == (
        calendar.first_session.date(),
        calendar.last_session.date(),
    )
    assert summary.regular_open == calendar.open_times[-1][1]
    assert summary.regular_close == calendar.close_times[-1][1]
    # New York: 09:30-16:00; London: 08:00-16:30.
    assert (summary.regular_open, summary.regular_close) == {
        "us": (dt.time(9, 30), dt.time(16)),
        "uk": (dt.time(8), dt.time(16, 30)),
    }[name]


def test_a_cached_summary_is_read_without_building_the_calendar(us, cache, monkeypatch):
    first = us.calendar_summary
    (path,) = cache.glob(f"calendar-{us.calendar_name}-*.json")
    assert dt.date.today().isoformat() in path.name  # a calendar ends a year after today
    calendar_summary.cache_clear()

    def no_calendar(*args):
        raise AssertionError("the calendar was built although its summary is cached")

    monkeypatch.setattr(markets_module, "_calendar", no_calendar)
    assert us.calendar_summary == first


def test_an_unreadable_summary_is_built_again(us, cache):
    expected = CalendarSummary.of(us.calendar)
    us.calendar_summary  # noqa: B018 (writes the file)
    (path,) = cache.glob(f"calendar-{us.calendar_name}-*.json")
    path.write_text('{"first_session": "2025-')  # a torn or foreign file
    calendar_summary.cache_clear()
    assert us.calendar_summary == expected
    assert CalendarSummary.from_json(path.read_text()) == expected


def test_an_unwritable_cache_only_costs_the_build(us, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("FINANCE_CACHE_DIR", str(blocker / "cache"))
    calendar_summary.cache_clear()
    try:
        assert us.calendar_summary == CalendarSummary.of(us.calendar)
    finally:
        calendar_summary.cache_clear()


def test_daily_partitions_are_those_the_calendar_gives(us, uk, cache):
    for market in (us, uk):
        start = dt.date.fromisoformat(market.daily_start)
        last = market.calendar.last_session.date()
        sessions = set(market.sessions(start, last))
        holidays = [
            dt.datetime.combine(day, dt.time(), market.tz)
            for day in (start + dt.timedelta(days=i) for i in range((last - start).days + 1))
            if day.weekday() < 5 and day not in sessions
        ]
        from_calendar = dg.TimeWindowPartitionsDefinition(
            cron_schedule="0 0 * * *",
            start=market.daily_start,
            fmt="%Y-%m-%d",
            timezone=market.timezone,
            end_offset=1,
            exclusions=["0 0 * * 0,6", *holidays],
        )
        daily_partitions.cache_clear()
        built = daily_partitions(market)
        assert built == from_calendar
        now = dt.datetime(2026, 12, 7, tzinfo=dt.UTC)
        assert built.get_partition_keys(now) == from_calendar.get_partition_keys(now)
