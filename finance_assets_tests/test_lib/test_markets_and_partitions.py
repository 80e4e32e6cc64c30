import datetime as dt

import pytest

from finance_assets.defs.common.partitions import daily_partitions, five_minute_partitions
from finance_assets.lib.markets import load_universe, markets_from_env


def test_sessions_come_from_the_exchange_calendar(us, uk):
    # Thanksgiving 2025 is closed in New York, open in London.
    assert not us.is_session(dt.date(2025, 11, 27))
    assert uk.is_session(dt.date(2025, 11, 27))
    # Boxing Day is closed in London, open in New York.
    assert not uk.is_session(dt.date(2025, 12, 26))
    assert us.is_session(dt.date(2025, 12, 26))


def test_bar_starts_cover_the_regular_session_and_early_closes(us, uk):
    day = dt.datetime(2025, 11, 25, tzinfo=dt.UTC)
    bars = us.bar_starts(day, day + dt.timedelta(days=1))
    assert len(bars) == 78
    assert bars[0] == dt.datetime(2025, 11, 25, 14, 30, tzinfo=dt.UTC)
    assert bars[-1] == dt.datetime(2025, 11, 25, 20, 55, tzinfo=dt.UTC)
    early = dt.datetime(2025, 11, 28, tzinfo=dt.UTC)  # day after Thanksgiving: 13:00 close
    assert len(us.bar_starts(early, early + dt.timedelta(days=1))) == 42
    london = dt.datetime(2025, 11, 25, tzinfo=dt.UTC)
    assert len(uk.bar_starts(london, london + dt.timedelta(days=1))) == 102


def test_last_sessions_are_closed_sessions(us):
    sessions = us.last_sessions(5, dt.date(2025, 11, 30))
    assert sessions == [
        dt.date(2025, 11, 21),
        dt.date(2025, 11, 24),
        dt.date(2025, 11, 25),
        dt.date(2025, 11, 26),
        dt.date(2025, 11, 28),
    ]


def test_universe_from_csv(tmp_path):
    path = tmp_path / "universe.csv"
    path.write_text("Symbol,Name\nAAPL,Apple\nbrk.b,Berkshire\n\nAAPL,again\n")
    assert load_universe(path) == ("AAPL", "BRK.B")
    bad = tmp_path / "bad.csv"
    bad.write_text("Ticker Name,x\nAAPL,1\n")
    with pytest.raises(ValueError, match="no 'Symbol' column"):
        load_universe(bad)


def test_universe_env_and_errors(tmp_path):
    path = tmp_path / "u.csv"
    path.write_text("Symbol\nIBM\nORCL\n")
    markets = markets_from_env({"FINANCE_UNIVERSE_US": str(path), "FINANCE_MARKETS": "us"})
    assert list(markets) == ["us"]
    assert markets["us"].universe == ("IBM", "ORCL")
    with pytest.raises(ValueError, match="unknown market"):
        markets_from_env({"FINANCE_MARKETS": "us,jp"})
    with pytest.raises(ValueError, match="FINANCE_DAILY_START"):
        markets_from_env({"FINANCE_DAILY_START": "yesterday"})


def test_daily_partitions_are_trading_sessions(us):
    partitions = daily_partitions(us)
    keys = partitions.get_partition_keys(current_time=dt.datetime(2025, 12, 31, tzinfo=dt.UTC))
    assert "2025-11-27" not in keys  # Thanksgiving
    assert "2025-11-29" not in keys  # Saturday
    assert {"2025-11-26", "2025-11-28", "2025-12-26"} <= set(keys)
    # 2025-12-31 00:00 UTC is still the 30th in New York: today's partition exists already
    # (end_offset=1, for the after-close schedule).
    sessions = us.sessions(dt.date(2025, 1, 2), dt.date(2025, 12, 30))
    assert keys == [d.isoformat() for d in sessions]
    # Friday's partition ends at Friday midnight, not at Monday's.
    window = partitions.time_window_for_partition_key("2025-11-28")
    assert window.end - window.start == dt.timedelta(days=1)


def test_five_minute_partitions_follow_the_session(us, uk):
    partitions = five_minute_partitions(us)
    now = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    keys = partitions.get_partition_keys(current_time=now)
    day = [k for k in keys if k.startswith("2026-01-05")]
    assert len(day) == 78
    assert day[0] == "2026-01-05-09:30" and day[-1] == "2026-01-05-15:55"
    last = partitions.time_window_for_partition_key("2026-01-05-15:55")
    assert last.end.hour == 16 and last.end.minute == 0  # ends at the close
    # ~20k a year: every weekday's regular session (holidays hold no bars).
    assert 20_000 < len(keys) * 365 / (now.date() - dt.date(2026, 1, 2)).days < 21_000
    london = [k for k in five_minute_partitions(uk).get_partition_keys(current_time=now)]
    assert [k for k in london if k.startswith("2026-01-05")][-1] == "2026-01-05-16:25"
