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


@pytest.mark.parametrize("name", ["us", "uk"])
def test_sessions_and_their_times_come_from_the_summary_as_the_calendar_gives_them(
    name, us, uk, cache
):
    """Every session of the calendar's range: its bounds (early closes included), its
    neighbours; and the days between sessions. The calendar is exchange-calendars', read here
    directly; the market answers from the summary alone (built once, then read from the file)."""
    market = {"us": us, "uk": uk}[name]
    calendar = market.calendar
    market.calendar_summary  # noqa: B018 (writes the file)
    calendar_summary.cache_clear()
    summary = market.calendar_summary
    assert summary.special_closes, "a year holds early closes (Christmas Eve, ...)"
    sessions = [ts.date() for ts in calendar.sessions]
    for i, day in enumerate(sessions):
        label = day.isoformat()
        assert market.session_bounds(day) == (
            calendar.session_open(label).to_pydatetime(),
            calendar.session_close(label).to_pydatetime(),
        ), day
        if i:
            assert market.previous_session(day) == sessions[i - 1]
        if i + 1 < len(sessions):
            assert market.next_session(day) == sessions[i + 1]
    first, last = sessions[0], sessions[-1]
    days = [first + dt.timedelta(days=k) for k in range((last - first).days + 1)]
    assert [d for d in days if market.is_session(d)] == sessions
    assert market.sessions(first - dt.timedelta(days=40), last) == sessions
    christmas_eve = next(
        d for d in sessions if (d.month, d.day) == (12, 24) and calendar.is_session(d.isoformat())
    )
    local_close = calendar.session_close(christmas_eve.isoformat()).tz_convert(market.tz).time()
    assert local_close < summary.regular_close
    assert dict(summary.special_closes)[christmas_eve] == local_close
    with pytest.raises(ValueError, match="not a trading session"):
        market.session_bounds(dt.date(2026, 12, 25))
    with pytest.raises(ValueError, match="outside the calendar"):
        market.is_session(last + dt.timedelta(days=400))


def test_a_run_s_clean_step_builds_no_calendar(us, cache, monkeypatch):
    """The bar grid of a window is drawn from the summary: a run worker does not import
    exchange-calendars or build a calendar (~2 s a process)."""
    us.calendar_summary  # noqa: B018 (writes the file)
    calendar_summary.cache_clear()

    def no_calendar(*args):
        raise AssertionError("a calendar was built although its summary is cached")

    monkeypatch.setattr(markets_module, "_calendar", no_calendar)
    start = dt.datetime(2026, 11, 27, 14, 30, tzinfo=dt.UTC)  # the day after Thanksgiving
    bars = us.bar_starts(start, start + dt.timedelta(days=4))
    assert bars[0] == start
    friday = [b for b in bars if b.date() == dt.date(2026, 11, 27)]
    assert len(friday) == 42  # an early close at 13:00: 09:30-12:55
    assert len(bars) == 42 + 78
    assert us.last_sessions(3, dt.date(2026, 11, 29)) == [
        dt.date(2026, 11, 24),
        dt.date(2026, 11, 25),
        dt.date(2026, 11, 27),
    ]
