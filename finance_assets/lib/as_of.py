""""As known then": a window's bars as the platform knew them at an instant, from the raw zone.

The answer at instant T is what the clean step (`clean_step.clean_window`: the same parse,
supersession, cleaning and kept-span rules, not a copy) makes of exactly the payloads received
at or before T (their envelope's `fetched_at`), replayed in arrival order: after each arrival
the window is cleaned again, and where that clean keeps the stored rows (a symbol a provider
answered with an error, the part of a session a partial answer did not reach) the rows of the
previous state stay, as they do in the lake and the warehouse. The raw zone keeps superseded
payloads for this (`<asset>/_superseded/`, `lake.write_payloads`), so the history reaches back
as far as raw retention does.

`bar_versions` gives every version of every bar with the interval it was known in
(`known_from`, `known_until`; open-ended while still current): the saved query
`queries/bars_as_of.sql` filters it, and `as_of` is the state at one instant. A window nothing
was known of at T answers empty and says so (`AsOf.note`), never a bare empty frame.

A clean whose blocking checks fail writes nothing (`blocked`: the stores keep their rows), so
an arrival that would fail them changes nothing known here either. What it does not model:
when runs happened (here a clean after each payload; a run cleans after its last fetch, which
gives the same rows unless one run fetched the same symbol twice, an error after an answer),
and a landing run's own rejected file.

    python -m finance_assets.lib.as_of bars --raw data/raw --market us --table daily_bars \\
        --start 2026-11-16 --end 2026-11-20 --at 2026-11-18T22:00:00+00:00
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from finance_assets.lib import answers, quality, transforms
from finance_assets.lib.clean_step import CleanWindow, clean_window
from finance_assets.lib.io import lake
from finance_assets.lib.io.objects import ObjectStore
from finance_assets.lib.io.spans import kept_expr
from finance_assets.lib.markets import Market, markets_from_env
from finance_assets.lib.providers.base import Interval, RawPayload
from finance_assets.lib.schema import BAR_SCHEMA, UTC_TS, empty
from finance_assets.lib.settings import EnvSettings, SettingsError

# The clean tables a reader asks for: the raw asset they are made from, and its interval.
TABLES: dict[str, tuple[str, Interval]] = {
    "daily_bars": ("raw_daily_quotes", "1day"),
    "bars_5min": ("raw_intraday_quotes", "5min"),
}
# What a version is told apart by: every column but when it was written.
VALUE_COLUMNS = [c for c in BAR_SCHEMA if c != "ingested_at"]
VERSION_SCHEMA = {**BAR_SCHEMA, "known_from": UTC_TS, "known_until": UTC_TS}
# The clean assets' default share of quarantined records above which a file is rejected whole
# (`FINANCE_MAX_QUARANTINE_RATE`): the answer uses the rule the runs used.
MAX_QUARANTINE_RATE = 0.05


@dataclass(frozen=True)
class AsOf:
    """A window's bars as known at `instant`, and what they were made from."""

    bars: pl.DataFrame  # BAR_SCHEMA, sorted by (symbol, ts); `ingested_at`: the arrival
    instant: dt.datetime
    start: dt.datetime
    end: dt.datetime
    payloads: tuple[str, ...]  # the payload ids received at or before `instant`
    later: tuple[str, ...]  # those received after it (not used)
    note: str  # what the answer is, in words: always set, and the only word on an empty one

    @property
    def known(self) -> bool:
        """Whether any payload of the window had been received at `instant`."""
        return bool(self.payloads)


def _utc(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    return value.astimezone(dt.UTC)


def replay(
    payloads: Sequence[RawPayload],
    market: Market,
    interval: Interval,
    *,
    asset: str,
    start: dt.datetime,
    end: dt.datetime,
    max_quarantine_rate: float | None = MAX_QUARANTINE_RATE,
) -> list[tuple[dt.datetime, pl.DataFrame]]:
    """The window's bars after each arrival, oldest first: (arrival instant, the bars then).

    After each arrival the window is cleaned as a run would clean it, and written unless the
    clean asset's blocking checks would fail (`blocked`, judged on the whole window as a run
    judges it): then nothing changes. Payload groups that share no symbol are cleaned apart
    (the clean step compares payloads of the same symbol only; `payload_groups`), each again
    only when one of its payloads arrives, so a window of many batches costs a clean per
    arrival of a group, not of the whole window."""
    start, end = _utc(start, "start"), _utc(end, "end")
    groups = transforms.payload_groups(list(payloads))
    cleans: dict[int, CleanWindow] = {}  # each group's clean of what had arrived
    states: dict[int, pl.DataFrame] = {}  # each group's rows as the stores held them
    arrivals: dict[dt.datetime, list[int]] = {}
    for index, group in enumerate(groups):
        for instant in {p.fetched_at.astimezone(dt.UTC) for p in group}:
            arrivals.setdefault(instant, []).append(index)
    out = []
    for instant in sorted(arrivals):
        for index in arrivals[instant]:
            cleans[index] = clean_window(
                [p for p in groups[index] if p.fetched_at <= instant],
                market,
                interval,
                asset=asset,
                start=start,
                end=end,
                ingested_at=instant,
                max_quarantine_rate=max_quarantine_rate,
            )
        whole = _combined([c.result for c in cleans.values()])
        if not blocked(whole, market, interval, start, end, max_quarantine_rate):
            # A run writes every group: where a clean keeps the stored rows (its kept spans),
            # the rows of before stay, as they do in the lake and the warehouse.
            for index, cleaned in cleans.items():
                state = states.get(index, empty(BAR_SCHEMA))
                stays = state.filter(kept_expr(cleaned.kept, "ts"))
                bars = cleaned.result.bars.select(stays.columns)
                states[index] = pl.concat([stays, bars]).sort("symbol", "ts")
        frames = list(states.values()) or [empty(BAR_SCHEMA)]
        out.append((instant, pl.concat(frames).sort("symbol", "ts")))
    return out


def _combined(results: Sequence[transforms.CleanResult]) -> transforms.CleanResult:
    """One run's result over the groups' results (what its checks judge)."""
    return transforms.CleanResult(
        bars=pl.concat([r.bars for r in results]),
        quarantine=pl.concat([r.quarantine for r in results]),
        received=sum(r.received for r in results),
        rejected=[x for r in results for x in r.rejected],
        rejected_records=sum(r.rejected_records for r in results),
    )


def blocked(
    result: transforms.CleanResult,
    market: Market,
    interval: Interval,
    start: dt.datetime,
    end: dt.datetime,
    max_quarantine_rate: float | None,
) -> list[str]:
    """Why the clean asset would have written nothing for this result (empty: it writes), as
    its blocking checks decide (`defs/market/assets.py`): a bar rule failing
    (`quality.BAR_RULES`), the accepted payloads' quarantine rate over the limit, or no traded
    window with a single bar. (A landing run failing on its own rejected file is not modelled:
    replays take no landing run's tag.)"""
    reasons = [name for name, (rule, _) in quality.BAR_RULES.items() if rule(result.bars).height]
    if max_quarantine_rate is not None and result.accepted_quarantine_rate > max_quarantine_rate:
        reasons.append("quarantine_rate")
    if interval == "5min":
        expected = market.bar_starts(start, end)
    else:
        days = market.sessions(start.astimezone(market.tz).date(), end.astimezone(market.tz).date())
        opens = (market.session_bounds(day)[0].astimezone(dt.UTC) for day in days)
        expected = [o for o in opens if start <= o < end]
    if expected and len(answers.empty_windows(result.bars, expected)) == len(expected):
        reasons.append("no bars in any traded window")
    return reasons


def bar_versions(states: Sequence[tuple[dt.datetime, pl.DataFrame]]) -> pl.DataFrame:
    """Every version of every bar (`replay`'s states): its values, `known_from` (the arrival
    that first gave them) and `known_until` (the arrival that changed or removed them; null
    while current). A re-fetch that gives the same values starts no new version."""
    keys = VALUE_COLUMNS
    current = pl.DataFrame(schema=VERSION_SCHEMA)
    closed: list[pl.DataFrame] = []
    for instant, state in states:
        at = pl.lit(instant).cast(UTC_TS)
        ended = current.join(state, on=keys, how="anti", nulls_equal=True)
        closed.append(ended.with_columns(known_until=at))
        still = current.join(state, on=keys, how="semi", nulls_equal=True)
        started = state.join(current, on=keys, how="anti", nulls_equal=True).with_columns(
            known_from=at, known_until=pl.lit(None, UTC_TS)
        )
        current = pl.concat([still, started.select(current.columns)])
    return pl.concat([*closed, current]).sort("symbol", "ts", "known_from")


def _read(
    raw: lake.Location, start: dt.datetime, end: dt.datetime
) -> tuple[list[RawPayload], list[str]]:
    return lake.read_history(raw, start, end)


def as_of(
    raw: lake.Location,
    market: Market,
    interval: Interval,
    *,
    asset: str,
    start: dt.datetime,
    end: dt.datetime,
    instant: dt.datetime,
    max_quarantine_rate: float | None = MAX_QUARANTINE_RATE,
) -> AsOf:
    """The bars of [start, end) as the platform knew them at `instant`, from the raw asset's
    store `raw` (`<raw>/<market>/<raw asset>`: a folder or an S3 prefix). `asset` names the
    clean asset (the quarantine's scope, as the clean step has it)."""
    start, end, instant = _utc(start, "start"), _utc(end, "end"), _utc(instant, "instant")
    if end <= start:
        raise ValueError(f"window is empty: start {start} is not before end {end}")
    stored, unreadable = _read(raw, start, end)
    known = [p for p in stored if p.fetched_at <= instant]
    later = [p for p in stored if p.fetched_at > instant]
    window = f"[{start:%Y-%m-%d %H:%M}, {end:%Y-%m-%d %H:%M}) UTC"
    skipped = f"; {len(unreadable)} unreadable envelope(s) left out" if unreadable else ""
    if not known:
        if later:
            first = min(p.fetched_at for p in later).astimezone(dt.UTC)
            why = f"the first of its {len(later)} payload(s) arrived at {first:%Y-%m-%d %H:%M:%S}"
            why += " UTC"
        else:
            why = "the raw zone holds no payload for it (never fetched, or expired by retention)"
        note = f"nothing was known of {window} at {instant:%Y-%m-%d %H:%M:%S} UTC: {why}{skipped}"
        return AsOf(empty(BAR_SCHEMA), instant, start, end, (), _ids(later), note)
    states = replay(
        known,
        market,
        interval,
        asset=asset,
        start=start,
        end=end,
        max_quarantine_rate=max_quarantine_rate,
    )
    bars = states[-1][1]
    note = (
        f"{bars.height} bar(s) of {bars.get_column('symbol').n_unique()} symbol(s) known of "
        f"{window} at {instant:%Y-%m-%d %H:%M:%S} UTC, from {len(known)} payload(s) received "
        f"by then (last at {states[-1][0]:%Y-%m-%d %H:%M:%S} UTC); {len(later)} arrived later"
        f"{skipped}"
    )
    if bars.is_empty():
        note = (
            f"no bar of {window} was known at {instant:%Y-%m-%d %H:%M:%S} UTC: its "
            f"{len(known)} payload(s) received by then gave none the clean step would write "
            "(errors, empty answers, or cleans its blocking checks stopped)"
            f"{skipped}"
        )
    return AsOf(bars, instant, start, end, _ids(known), _ids(later), note)


def versions(
    raw: lake.Location,
    market: Market,
    interval: Interval,
    *,
    asset: str,
    start: dt.datetime,
    end: dt.datetime,
    max_quarantine_rate: float | None = MAX_QUARANTINE_RATE,
) -> pl.DataFrame:
    """Every version of the bars of [start, end) the raw zone still holds payloads for
    (`bar_versions`); empty when it holds none."""
    stored, _ = _read(raw, start, end)
    if not stored:
        return pl.DataFrame(schema=VERSION_SCHEMA)
    states = replay(
        stored,
        market,
        interval,
        asset=asset,
        start=start,
        end=end,
        max_quarantine_rate=max_quarantine_rate,
    )
    return bar_versions(states)


def _ids(payloads: Sequence[RawPayload]) -> tuple[str, ...]:
    return tuple(p.payload_id for p in payloads)


# --- command line ----------------------------------------------------------------------------


def window_of(market: Market, first: str, last: str) -> tuple[dt.datetime, dt.datetime]:
    """[first day's midnight, the day after `last`'s midnight) in the market's time zone, UTC;
    a clear error naming the value when a day is not YYYY-MM-DD."""
    days = []
    for name, text in (("--start", first), ("--end", last)):
        try:
            days.append(dt.date.fromisoformat(text))
        except ValueError:
            raise ValueError(f"{name} {text!r} is not a date (YYYY-MM-DD)") from None
    if days[1] < days[0]:
        raise ValueError(f"--end {last} is before --start {first}")
    start = dt.datetime.combine(days[0], dt.time(), market.tz)
    end = dt.datetime.combine(days[1] + dt.timedelta(days=1), dt.time(), market.tz)
    return start.astimezone(dt.UTC), end.astimezone(dt.UTC)


def parse_instant(text: str) -> dt.datetime:
    """An ISO 8601 instant with its offset (`Z` or `+00:00`); a naive one is refused: "as
    known at 09:30" means nothing without saying where."""
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--at {text!r} is not an ISO 8601 instant") from None
    if value.tzinfo is None:
        raise ValueError(f"--at {text!r} has no UTC offset (add Z or +00:00)")
    return value.astimezone(dt.UTC)


def settings_from_env() -> tuple[dict[str, Market], float]:
    """The configured markets and the clean assets' `FINANCE_MAX_QUARANTINE_RATE`, checked as
    the code location checks them (`SettingsError` naming each bad one)."""
    from finance_assets.resources.bounds import QUARANTINE_RATE  # the setting's range, once

    env = EnvSettings(os.environ)
    rate = env.number("FINANCE_MAX_QUARANTINE_RATE", MAX_QUARANTINE_RATE, QUARANTINE_RATE)
    env.check()
    return markets_from_env(), rate


def raw_store(raw_root: str, market: str, table: str) -> ObjectStore:
    """The raw asset's store that `table` is cleaned from."""
    return lake.store_of(raw_root).child(market, TABLES[table][0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["bars", "versions"])
    parser.add_argument(
        "--raw", default=os.path.join(os.environ.get("FINANCE_DATA_DIR", "data"), "raw")
    )
    parser.add_argument("--market", default="us")
    parser.add_argument("--table", choices=sorted(TABLES), default="daily_bars")
    parser.add_argument("--start", required=True, help="first day, YYYY-MM-DD (market's time)")
    parser.add_argument("--end", required=True, help="last day, YYYY-MM-DD (inclusive)")
    parser.add_argument("--at", help="the instant (ISO 8601 with offset); bars only")
    args = parser.parse_args(argv)
    try:
        markets, rate = settings_from_env()
    except SettingsError as exc:
        parser.error(str(exc))
    if args.market not in markets:
        parser.error(f"--market {args.market!r} is not configured; known: {sorted(markets)}")
    market = markets[args.market]
    try:
        start, end = window_of(market, args.start, args.end)
        if args.what == "bars" and not args.at:
            raise ValueError("bars needs --at, the instant to answer as of")
        instant = parse_instant(args.at) if args.at else None
    except ValueError as exc:
        parser.error(str(exc))
    store = raw_store(args.raw, args.market, args.table)
    interval = TABLES[args.table][1]
    with pl.Config(tbl_rows=200, tbl_cols=20, tbl_width_chars=200):
        if instant is None:
            found = versions(
                store,
                market,
                interval,
                asset=args.table,
                start=start,
                end=end,
                max_quarantine_rate=rate,
            )
            print(found if found.height else "no version: the raw zone holds no payload for it")
            return 0
        answer = as_of(
            store,
            market,
            interval,
            asset=args.table,
            start=start,
            end=end,
            instant=instant,
            max_quarantine_rate=rate,
        )
        print(answer.note)
        if answer.bars.height:
            print(answer.bars.drop("ingested_at"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
