"""Markets: exchange calendar, timezone, session times and the symbol universe.

Trading sessions, holidays and early closes come from `exchange-calendars`; nothing here is a
hand-written holiday list. No Dagster imports: the partitions, the simulated provider, the
transforms and the benchmarks all read the same definitions.
"""

from __future__ import annotations

import bisect
import csv
import dataclasses
import datetime as dt
import functools
import io
import json
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from finance_assets.lib.settings import EnvSettings

if TYPE_CHECKING:
    # Imported when a calendar is first built: exchange-calendars and pandas cost ~1.5 s to
    # import and building a calendar ~0.6 s, which the code location's load no longer pays
    # (it reads the calendar's summary, `CalendarSummary`).
    import exchange_calendars as xcals

BAR_MINUTES = 5
# A symbol as universes, landing files and the lake write it: `AAPL`, `BRK.B`, `SHEL.L`,
# `BT.A.L`, indices `^GSPC`, `SP500`, FX `EURUSD=X`; upper case, at most 20 characters.
SYMBOL = re.compile(r"\^?[A-Z0-9][A-Z0-9.=&-]{0,19}")
SYMBOL_RULE = "upper-case letters, digits and . = & - (a leading ^ for an index), 1 to 20 long"

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
    # Sector by symbol, where the universe says (GICS for the S&P 500, ICB for the FTSE 100).
    sectors: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    # Where the universe comes from, for the UI ("S&P 500 as of 2026-08-08", a file's name).
    universe_label: str = field(default="demo universe", compare=False)

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
    def calendar_start(self) -> str:
        """The first day the calendar is built from (ISO)."""
        earliest = min(
            dt.date.fromisoformat(self.daily_start), dt.date.fromisoformat(self.intraday_start)
        )
        return (earliest - _CALENDAR_LEAD).isoformat()

    @property
    def calendar(self) -> xcals.ExchangeCalendar:
        return _calendar(self.calendar_name, self.calendar_start)

    @property
    def calendar_summary(self) -> CalendarSummary:
        """What building the definitions reads of the calendar, without building it when a
        summary of today's calendar is cached (`calendar_summary`)."""
        return calendar_summary(self.calendar_name, self.calendar_start)

    @property
    def regular_open(self) -> dt.time:
        return self.calendar_summary.regular_open

    @property
    def regular_close(self) -> dt.time:
        return self.calendar_summary.regular_close

    # --- sessions -------------------------------------------------------------------------

    def sessions(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Trading sessions with start <= session <= end."""
        return self.calendar_summary.sessions_in(start, end)

    def is_session(self, day: dt.date) -> bool:
        return self.calendar_summary.is_session(day)

    def session_bounds(self, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
        """(open, close) of a session as UTC datetimes; early closes included."""
        opens, closes = self.calendar_summary.session_times(day)
        return (
            dt.datetime.combine(day, opens, self.tz).astimezone(dt.UTC),
            dt.datetime.combine(day, closes, self.tz).astimezone(dt.UTC),
        )

    def previous_session(self, day: dt.date) -> dt.date:
        return self.calendar_summary.neighbour(day, -1)

    def next_session(self, day: dt.date) -> dt.date:
        return self.calendar_summary.neighbour(day, +1)

    def last_sessions(self, count: int, end: dt.date | None = None) -> list[dt.date]:
        """The last `count` sessions that have closed on or before `end` (default: today)."""
        summary = self.calendar_summary
        end = end or dt.datetime.now(self.tz).date()
        day = end if summary.is_session(end) else summary.neighbour(end, -1)
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
    import exchange_calendars as xcals

    return xcals.get_calendar(name, start=start)


def _regular_time(times: Sequence[tuple[object, dt.time]]) -> dt.time:
    # exchange_calendars lists (since-date, time) pairs; the last one is in force today.
    return times[-1][1]


@dataclass(frozen=True)
class CalendarSummary:
    """What the platform reads of a calendar: its sessions (`start` to the last one
    exchange-calendars builds, a year after today), its regular open and close, and the
    sessions that open or close at other times (early closes, late opens, and sessions from
    before today's regular hours), in the exchange's local time.

    Sessions, their bounds and their neighbours are answered from it, so neither loading the
    code location nor a run's clean step builds a calendar (~2 s of imports and holiday rules
    in every process)."""

    first_session: dt.date
    last_session: dt.date
    sessions: tuple[dt.date, ...]
    regular_open: dt.time
    regular_close: dt.time
    special_opens: tuple[tuple[dt.date, dt.time], ...] = ()
    special_closes: tuple[tuple[dt.date, dt.time], ...] = ()

    @classmethod
    def of(cls, calendar: xcals.ExchangeCalendar) -> CalendarSummary:
        regular_open = _regular_time(calendar.open_times)
        regular_close = _regular_time(calendar.close_times)

        def special(times: object, regular: dt.time) -> tuple[tuple[dt.date, dt.time], ...]:
            local = times.dt.tz_convert(calendar.tz)  # type: ignore[attr-defined]
            return tuple(
                (session.date(), moment.time())
                for session, moment in local.items()
                if moment.time() != regular
            )

        return cls(
            first_session=calendar.first_session.date(),
            last_session=calendar.last_session.date(),
            sessions=tuple(ts.date() for ts in calendar.sessions),
            regular_open=regular_open,
            regular_close=regular_close,
            special_opens=special(calendar.opens, regular_open),
            special_closes=special(calendar.closes, regular_close),
        )

    def to_json(self) -> str:
        def pairs(items: tuple[tuple[dt.date, dt.time], ...]) -> dict[str, str]:
            return {day.isoformat(): moment.isoformat() for day, moment in items}

        return json.dumps(
            {
                "first_session": self.first_session.isoformat(),
                "last_session": self.last_session.isoformat(),
                "sessions": [day.isoformat() for day in self.sessions],
                "regular_open": self.regular_open.isoformat(),
                "regular_close": self.regular_close.isoformat(),
                "special_opens": pairs(self.special_opens),
                "special_closes": pairs(self.special_closes),
            }
        )

    @classmethod
    def from_json(cls, text: str) -> CalendarSummary:
        data = json.loads(text)

        def pairs(items: dict[str, str]) -> tuple[tuple[dt.date, dt.time], ...]:
            return tuple(
                (dt.date.fromisoformat(day), dt.time.fromisoformat(moment))
                for day, moment in items.items()
            )

        return cls(
            first_session=dt.date.fromisoformat(data["first_session"]),
            last_session=dt.date.fromisoformat(data["last_session"]),
            sessions=tuple(map(dt.date.fromisoformat, data["sessions"])),
            regular_open=dt.time.fromisoformat(data["regular_open"]),
            regular_close=dt.time.fromisoformat(data["regular_close"]),
            special_opens=pairs(data["special_opens"]),
            special_closes=pairs(data["special_closes"]),
        )

    # --- questions about sessions ---------------------------------------------------------

    @functools.cached_property
    def _index(self) -> dict[dt.date, int]:
        return {day: i for i, day in enumerate(self.sessions)}

    @functools.cached_property
    def _opens(self) -> dict[dt.date, dt.time]:
        return dict(self.special_opens)

    @functools.cached_property
    def _closes(self) -> dict[dt.date, dt.time]:
        return dict(self.special_closes)

    def _in_range(self, day: dt.date) -> None:
        if not self.first_session <= day <= self.last_session:
            raise ValueError(
                f"{day} is outside the calendar's sessions "
                f"({self.first_session} to {self.last_session})"
            )

    def is_session(self, day: dt.date) -> bool:
        self._in_range(day)
        return day in self._index

    def sessions_in(self, start: dt.date, end: dt.date) -> list[dt.date]:
        """Sessions with start <= session <= end, within the calendar's range."""
        lo = bisect.bisect_left(self.sessions, start)
        hi = bisect.bisect_right(self.sessions, end)
        return list(self.sessions[lo:hi])

    def session_times(self, day: dt.date) -> tuple[dt.time, dt.time]:
        """(open, close) of a session in the exchange's local time."""
        if not self.is_session(day):
            raise ValueError(f"{day} is not a trading session")
        return self._opens.get(day, self.regular_open), self._closes.get(day, self.regular_close)

    def neighbour(self, day: dt.date, step: int) -> dt.date:
        """The session before (`step` -1) or after (+1) `day`, a session or not."""
        self._in_range(day)
        if step < 0:
            i = bisect.bisect_left(self.sessions, day) - 1
        else:
            i = bisect.bisect_right(self.sessions, day)
        if not 0 <= i < len(self.sessions):
            raise ValueError(
                f"no session {'before' if step < 0 else 'after'} {day} in the calendar "
                f"({self.first_session} to {self.last_session})"
            )
        return self.sessions[i]


def cache_dir(environ: Mapping[str, str] | None = None) -> Path:
    """FINANCE_CACHE_DIR: where computed, re-computable data is kept between processes (the
    calendars' summaries); default `$XDG_CACHE_HOME/finance_assets` (`~/.cache/...`)."""
    environ = os.environ if environ is None else environ
    if environ.get("FINANCE_CACHE_DIR"):
        return Path(environ["FINANCE_CACHE_DIR"])
    base = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "finance_assets"


# Part of the summary file's name: a file written in an earlier format is never read.
SUMMARY_FORMAT = "v2"


@functools.cache
def calendar_summary(name: str, start: str) -> CalendarSummary:
    """The summary of calendar `name` built from `start`, as exchange-calendars builds it today.

    Every process that loads the code location (the code server, each run worker) reads it;
    building the calendar for it costs ~2 s of imports and holiday rules per process, so it is
    kept in a file named by what determines it: the calendar, its start, exchange-calendars'
    version (new holidays come with new versions) and today's date (a calendar ends a year
    after the day it is built). A missing, unreadable or unwritable file only costs the build.
    """
    version = metadata.version("exchange_calendars")
    today = dt.date.today()  # the day exchange-calendars' default end is counted from
    path = (
        cache_dir() / f"calendar-{name}-{start}-{version}-{today.isoformat()}-{SUMMARY_FORMAT}.json"
    )
    try:
        return CalendarSummary.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        pass
    summary = CalendarSummary.of(_calendar(name, start))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a process reading it concurrently sees all or nothing.
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, prefix=f".{path.name}.", delete=False
        ) as tmp:
            tmp.write(summary.to_json())
        os.replace(tmp.name, path)
    except OSError:
        pass
    return summary


@dataclass(frozen=True)
class Universe:
    """The symbols a market follows, with each company's name and sector where known, and
    where the list comes from (`label`: a shipped index with its as-of date, or a file)."""

    symbols: tuple[str, ...]
    names: dict[str, str] = field(default_factory=dict)
    sectors: dict[str, str] = field(default_factory=dict)
    label: str = ""


# The index universes shipped as package data (`universes/index.json`: market, as-of date,
# source and licence of each list).
INDEX_UNIVERSES: dict[str, dict[str, str]] = json.loads(
    resources.files(__package__).joinpath("universes/index.json").read_text()
)


def index_universe(name: str) -> Universe:
    """A shipped index's constituents (`sp500`, `ftse100`)."""
    spec = INDEX_UNIVERSES[name]
    universe = _read_universe(
        resources.files(__package__).joinpath(f"universes/{name}.csv").read_text(), name
    )
    return dataclasses.replace(universe, label=f"{spec['title']} as of {spec['as_of']}")


def read_universe(path: str | os.PathLike[str]) -> Universe:
    """A universe CSV: a `Symbol` (or `ticker`) column, optionally the company's name
    (`name`, `Security`, `company_name`) and `sector` (or `GICS Sector`); blank and repeated
    rows dropped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"universe file {path} does not exist")
    universe = _read_universe(path.read_text(encoding="utf-8-sig"), f"universe file {path}")
    return dataclasses.replace(universe, label=path.name)


def load_universe(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The symbols of a universe CSV (`read_universe`)."""
    return read_universe(path).symbols


def _read_universe(text: str, what: str) -> Universe:
    reader = csv.DictReader(io.StringIO(text))
    columns = {name.strip().lower(): name for name in reader.fieldnames or []}
    column = columns.get("symbol") or columns.get("ticker")
    if column is None:
        raise ValueError(f"{what} has no 'Symbol' column (columns: {reader.fieldnames})")
    name_column = next((columns[c] for c in _NAME_COLUMNS if c in columns), None)
    sector_column = next((columns[c] for c in _SECTOR_COLUMNS if c in columns), None)
    symbols: list[str] = []
    names: dict[str, str] = {}
    sectors: dict[str, str] = {}
    bad: list[str] = []
    for line, row in enumerate(reader, start=2):
        symbol = (row[column] or "").strip().upper()
        if symbol and not is_symbol(symbol):
            bad.append(f"line {line}: {symbol!r}")
        elif symbol and symbol not in symbols:
            symbols.append(symbol)
            if name_column and (row[name_column] or "").strip():
                names[symbol] = row[name_column].strip()
            if sector_column and (row[sector_column] or "").strip():
                sectors[symbol] = row[sector_column].strip()
    if bad:
        shown = "; ".join(bad[:10]) + (f"; and {len(bad) - 10} more" if len(bad) > 10 else "")
        raise ValueError(
            f"{what} has {len(bad)} symbol(s) that are not symbols ({shown}); "
            f"a symbol is {SYMBOL_RULE}"
        )
    if not symbols:
        raise ValueError(f"{what} lists no symbols")
    return Universe(tuple(symbols), names, sectors)


_NAME_COLUMNS = ("name", "security", "company_name", "company")
_SECTOR_COLUMNS = ("sector", "gics sector")


def _demo_markets() -> dict[str, Market]:
    """The markets the platform ships (`demo_markets.json`: a market's settings and its demo
    universe, symbol -> company)."""
    specs = json.loads(resources.files(__package__).joinpath("demo_markets.json").read_text())
    return {
        key: Market(key=key, universe=tuple(spec["names"]), **spec) for key, spec in specs.items()
    }


_DEMO_MARKETS = _demo_markets()


def configured_market_keys(environ: Mapping[str, str]) -> list[str]:
    """The market keys `FINANCE_MARKETS` names that exist (all of them when unset), without
    checking anything else: for settings that depend on the markets (providers per market)."""
    listed = environ.get("FINANCE_MARKETS")
    wanted = ",".join(_DEMO_MARKETS) if listed is None else listed
    keys = dict.fromkeys(k.strip().lower() for k in wanted.split(","))
    return [k for k in keys if k in _DEMO_MARKETS]


def universe_variable(market: str) -> str:
    """`FINANCE_UNIVERSE_<MARKET>`: the setting of a market's universe (the deployments pass
    it from here too: deployment/render.py)."""
    return f"FINANCE_UNIVERSE_{market.upper()}"


def index_names(market: str) -> list[str]:
    """The shipped indices a market's universe may be (`sp500` for us)."""
    return [name for name, spec in INDEX_UNIVERSES.items() if spec["market"] == market]


def markets_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Market]:
    """The configured markets; every bad setting is reported together (`SettingsError`).

    - `FINANCE_MARKETS`: comma-separated market keys (default: all of them; set but empty is
      an error, not a code location without assets).
    - `FINANCE_UNIVERSE_<KEY>`: the market's universe instead of its five demo symbols: a
      shipped index (`sp500` for us, `ftse100` for uk) or the path of a universe CSV.
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
        variable = universe_variable(key)
        chosen = _env_universe(env, variable, key)
        if chosen is not None:
            market = dataclasses.replace(
                market,
                universe=chosen.symbols,
                names=chosen.names,
                sectors=chosen.sectors,
                universe_label=chosen.label,
            )
        markets[key] = dataclasses.replace(
            market, daily_start=daily_start, intraday_start=intraday_start
        )
    env.check()
    return markets


def _env_universe(env: EnvSettings, variable: str, market: str) -> Universe | None:
    value = env.raw(variable)
    if not value:
        return None
    index = value.strip().lower()
    if index in INDEX_UNIVERSES:
        if INDEX_UNIVERSES[index]["market"] != market:
            ours = index_names(market)
            env.problem(
                f"{variable}={value!r} is an index of the "
                f"{INDEX_UNIVERSES[index]['market']} market; for {market}: "
                f"{', '.join(ours) or 'none shipped'}, or the path of a universe CSV"
            )
            return None
        return index_universe(index)
    try:
        return read_universe(value)
    except (OSError, ValueError) as exc:
        shipped = ", ".join(INDEX_UNIVERSES)
        env.problem(f"{variable}={value!r}: {exc} (or a shipped index: {shipped})")
        return None


def _env_date(env: EnvSettings, name: str, default: str) -> str:
    value = env.raw(name) or default
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        env.problem(f"{name}={value!r} is not a date (YYYY-MM-DD)")
        return default
    return value
