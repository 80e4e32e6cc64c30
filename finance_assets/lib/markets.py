"""Markets: exchange calendar, timezone, session times and the symbol universe.

Trading sessions, holidays and early closes come from `exchange-calendars`; nothing here is a
hand-written holiday list. No Dagster imports: the partitions, the simulated provider, the
transforms and the benchmarks all read the same definitions.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import exchange_calendars as xcals

from finance_assets.lib.settings import EnvSettings

BAR_MINUTES = 5
# A symbol as universes, landing files and the lake write it: `AAPL`, `BRK.B`, `SHEL.L`,
# `BT.A.L`, indices `^GSPC`, `SP500`, FX `EURUSD=X`; upper case, at most 20 characters.
SYMBOL = re.compile(r"\^?[A-Z0-9][A-Z0-9.=&-]{0,19}")
SYMBOL_RULE = "upper-case letters, digits and . = & - (a leading ^ for an index), 1 to 20 long"
DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# Partition start dates. 5-minute partitions cost ~20k a year, so their default start is recent.
DEFAULT_DAILY_START = "2025-01-02"
DEFAULT_INTRADAY_START = "2026-01-02"
# The calendar is loaded from a little before the earliest start, so that "previous session"
# is defined for the first partition too.
_CALENDAR_LEAD = dt.timedelta(days=30)


@dataclass(frozen=True)
class Market:
    """One exchange and the universe of symbols the platform follows on it."""

    key: str
    name: str
    calendar_name: str
    timezone: str
    currency: str
    universe: tuple[str, ...]
    daily_start: str = DEFAULT_DAILY_START
    intraday_start: str = DEFAULT_INTRADAY_START
    # Company names by symbol (for post searches); symbols without one use their ticker.
    names: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    def company(self, symbol: str) -> str:
        return self.names.get(symbol) or ticker_root(symbol)

    def posts_query(self, symbol: str) -> str:
        """The X search for a company: its hashtag or cashtag, original posts in English."""
        hashtag = re.sub(r"\W", "", self.company(symbol))
        return f"(#{hashtag} OR ${ticker_root(symbol)}) -is:retweet lang:en"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def calendar(self) -> xcals.ExchangeCalendar:
        earliest = min(
            dt.date.fromisoformat(self.daily_start), dt.date.fromisoformat(self.intraday_start)
        )
        return _calendar(self.calendar_name, (earliest - _CALENDAR_LEAD).isoformat())

    @property
    def regular_open(self) -> dt.time:
        return _regular_time(self.calendar.open_times)

    @property
    def regular_close(self) -> dt.time:
        return _regular_time(self.calendar.close_times)

    # --- sessions -------------------------------------------------------------------------

    def sessions(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Trading sessions with start <= session <= end."""
        cal = self.calendar
        start = max(start, cal.first_session.date())
        end = min(end, cal.last_session.date())
        if start > end:
            return []
        return [ts.date() for ts in cal.sessions_in_range(start.isoformat(), end.isoformat())]

    def is_session(self, day: dt.date) -> bool:
        return self.calendar.is_session(day.isoformat())

    def session_bounds(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """(open, close) of a session as UTC datetimes; early closes included."""
        cal = self.calendar
        return (
            cal.session_open(day.isoformat()).to_pydatetime(),
            cal.session_close(day.isoformat()).to_pydatetime(),
        )

    def previous_session(self, day: dt.date) -> dt.date:
        return self.calendar.previous_session(day.isoformat()).date()

    def last_sessions(self, count: int, end: dt.date | None = None) -> list[dt.date]:
        """The last `count` sessions that have closed on or before `end` (default: today)."""
        cal = self.calendar
        end = end or dt.datetime.now(self.tz).date()
        day = (
            end
            if cal.is_session(end.isoformat())
            else cal.date_to_session(end.isoformat(), direction="previous").date()
        )
        if day == dt.datetime.now(self.tz).date():
            _, close = self.session_bounds(day)
            if dt.datetime.now(dt.UTC) < close:
                day = self.previous_session(day)
        days = [day]
        while len(days) < count:
            days.append(self.previous_session(days[-1]))
        return sorted(days)

    def bar_starts(self, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
        """UTC starts of every regular-session 5-minute bar with start <= bar < end."""
        starts: list[dt.datetime] = []
        step = dt.timedelta(minutes=BAR_MINUTES)
        local_start = start.astimezone(self.tz).date()
        local_end = end.astimezone(self.tz).date()
        for day in self.sessions(local_start, local_end):
            open_, close = self.session_bounds(day)
            bar = open_
            while bar < close:
                if start <= bar < end:
                    starts.append(bar)
                bar += step
        return starts


def is_symbol(symbol: str) -> bool:
    """The one rule for symbols, in universes and in landing files alike."""
    return bool(SYMBOL.fullmatch(symbol))


def ticker_root(symbol: str) -> str:
    """`AZN.L` -> `AZN`, `BRK.B` -> `BRK`: the part a cashtag can carry."""
    return re.split(r"[.\-]", symbol, maxsplit=1)[0]


@functools.cache
def _calendar(name: str, start: str) -> xcals.ExchangeCalendar:
    return xcals.get_calendar(name, start=start)


def _regular_time(times: Sequence[tuple[object, dt.time]]) -> dt.time:
    # exchange_calendars lists (since-date, time) pairs; the last one is in force today.
    return times[-1][1]


def load_universe(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """Symbols from a CSV with a `Symbol` (or `ticker`) column; blank and repeated rows dropped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"universe file {path} does not exist")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = {name.strip().lower(): name for name in reader.fieldnames or []}
        column = columns.get("symbol") or columns.get("ticker")
        if column is None:
            raise ValueError(
                f"universe file {path} has no 'Symbol' column (columns: {reader.fieldnames})"
            )
        symbols: list[str] = []
        bad: list[str] = []
        for line, row in enumerate(reader, start=2):
            symbol = (row[column] or "").strip().upper()
            if symbol and not is_symbol(symbol):
                bad.append(f"line {line}: {symbol!r}")
            elif symbol and symbol not in symbols:
                symbols.append(symbol)
    if bad:
        shown = "; ".join(bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ValueError(
            f"universe file {path} has {len(bad)} symbol(s) that are not symbols ({shown}); "
            f"a symbol is {SYMBOL_RULE}"
        )
    if not symbols:
        raise ValueError(f"universe file {path} lists no symbols")
    return tuple(symbols)


def _demo_markets() -> dict[str, Market]:
    """The markets the platform ships (`demo_markets.json`: a market's settings and its demo
    universe, symbol -> company)."""
    specs = json.loads(resources.files(__package__).joinpath("demo_markets.json").read_text())
    return {
        key: Market(key=key, universe=tuple(spec["names"]), **spec) for key, spec in specs.items()
    }


_DEMO_MARKETS = _demo_markets()


def markets_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Market]:
    """The configured markets; every bad setting is reported together (`SettingsError`).

    - `FINANCE_MARKETS`: comma-separated market keys (default: all of them; set but empty is
      an error, not a code location without assets).
    - `FINANCE_UNIVERSE_<KEY>`: path to a universe CSV replacing that market's demo universe.
    - `FINANCE_DAILY_START` / `FINANCE_INTRADAY_START`: first partition dates (YYYY-MM-DD).
    """
    env = EnvSettings(os.environ if environ is None else environ)
    given = env.environ.get("FINANCE_MARKETS")
    listed = given if given is not None else ",".join(_DEMO_MARKETS)
    wanted = [k for k in dict.fromkeys(k.strip().lower() for k in listed.split(",")) if k]
    valid = ", ".join(sorted(_DEMO_MARKETS))
    unknown = [k for k in wanted if k not in _DEMO_MARKETS]
    if unknown:
        env.problem(f"FINANCE_MARKETS names unknown market(s) {unknown}; valid: {valid}")
    elif not wanted:
        env.problem(
            f"FINANCE_MARKETS={given!r} names no market; valid: a comma-separated list of "
            f"{valid} (unset: all of them)"
        )
    daily_start = _env_date(env, "FINANCE_DAILY_START", DEFAULT_DAILY_START)
    intraday_start = _env_date(env, "FINANCE_INTRADAY_START", DEFAULT_INTRADAY_START)
    markets: dict[str, Market] = {}
    for key in wanted:
        if key not in _DEMO_MARKETS:
            continue
        market = _DEMO_MARKETS[key]
        variable = f"FINANCE_UNIVERSE_{key.upper()}"
        universe_file = env.raw(variable)
        universe = market.universe
        if universe_file:
            try:
                universe = load_universe(universe_file)
            except (OSError, ValueError) as exc:
                env.problem(f"{variable}={universe_file!r}: {exc}")
        markets[key] = dataclasses.replace(
            market, universe=universe, daily_start=daily_start, intraday_start=intraday_start
        )
    env.check()
    return markets


def _env_date(env: EnvSettings, name: str, default: str) -> str:
    value = env.raw(name) or default
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        env.problem(f"{name}={value!r} is not a date (YYYY-MM-DD)")
        return default
    return value
