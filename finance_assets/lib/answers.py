"""What the providers answered, per symbol and span, and what a window replacement keeps.

A batch asks for several symbols and may answer some with an error (Twelve Data: `{"code":
400, ...}` for MSFT inside a batch of five). Such a symbol was asked for but not answered: its
previous raw payloads stay in the raw zone, and its stored bars stay in the lake and the
warehouse, until a later payload answers it. The same holds for a symbol no payload gave a
single record for in the window (an empty answer): replacing its rows with nothing would delete
data on the word of a silent provider.

Pure functions (no Dagster): the raw zone, the clean assets and the tests use them.
"""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

import polars as pl

from finance_assets.lib.io.spans import Kept, kept_expr
from finance_assets.lib.providers.base import RawPayload, json_object_or_none
from finance_assets.lib.transforms import CleanResult, failed_symbols
from finance_assets.providers import registry
from finance_assets.providers.twelve_data.parser import to_twelve_data

if TYPE_CHECKING:
    from finance_assets.lib.markets import Market


def _canonical(payload: RawPayload, found: dict[str, str]) -> dict[str, str]:
    """Provider-named symbols -> the payload's canonical ones (Twelve Data answers `BT.A.L` as
    `BT.A`); a body-level entry ("?") of a one-symbol request counts for that symbol."""
    out = {}
    for symbol in payload.symbols:
        for name in (symbol, to_twelve_data(symbol)[0]):
            if name in found:
                out[symbol] = found[name]
                break
        else:
            if len(payload.symbols) == 1 and "?" in found:
                out[symbol] = found["?"]
    return out


def bar_payloads(payloads: Iterable[RawPayload]) -> list[RawPayload]:
    """The payloads that can answer for bars: without those of a format that carries corporate
    actions only (Twelve Data's `/splits` and `/dividends`), which would otherwise count as
    answering their symbols for the window and lift what an error or a silence kept."""
    actions_only = registry.actions_only_formats()
    return [p for p in payloads if p.format not in actions_only]


def payload_failures(payload: RawPayload) -> dict[str, str]:
    """Canonical symbol -> provider message, for the symbols `payload` answered with an error."""
    errors = failed_symbols([payload])
    return _canonical(payload, errors) if errors else {}


_EMPTY_SERIES = (b'"values":[]', b'"values": []')
NO_BARS = "answered without a single bar"


def _empty_series(payload: RawPayload) -> dict[str, str]:
    """Symbols a Twelve Data body answered with an empty `values` list."""
    body = payload.body
    if payload.format != "twelve_data" or not any(m in body for m in _EMPTY_SERIES):
        return {}  # most bodies: one substring scan, no decoding
    document = json_object_or_none(body)
    if document is None:
        return {}
    series = {"?": document} if "values" in document else document
    return _canonical(
        payload,
        {
            str(name): NO_BARS
            for name, item in series.items()
            if isinstance(item, dict) and item.get("values") == []
        },
    )


def payload_unanswered(payload: RawPayload) -> dict[str, str]:
    """Symbols `payload` asked for and did not answer with bars: an error, or an empty series.
    (Formats that cannot say so per symbol report nothing here.)"""
    return {**_empty_series(payload), **payload_failures(payload)}


def answered_symbols(payload: RawPayload) -> set[str]:
    """The symbols `payload` asked for and answered (neither an error nor an empty series)."""
    return set(payload.symbols) - set(payload_unanswered(payload))


def supersedes(
    old_symbols: Iterable[str],
    old_answered: Callable[[], set[str]],
    asked: set[str],
    answered: set[str],
) -> bool:
    """Whether newer payloads of a window, which `asked` for these symbols and `answered`
    these, make an older payload inside the window redundant: each of its symbols is answered
    anew, or asked anew while the older payload did not answer it either (an error or an empty
    series then and now: it holds nothing for that symbol, and keeping it would pile up one
    payload per re-fetch of a failing symbol). A symbol it answered and the new ones did not
    keeps it: its bars are the ones the stores keep. `old_answered` is called (the body read)
    only when that matters."""
    old = set(old_symbols)
    if old <= answered:
        return True
    if not old <= asked:
        return False
    return not (old - answered) & old_answered()


def _subtract(
    spans: list[tuple[dt.datetime, dt.datetime]], start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    out = []
    for a, b in spans:
        if b <= start or end <= a:
            out.append((a, b))
            continue
        if a < start:
            out.append((a, start))
        if end < b:
            out.append((end, b))
    return out


def unanswered_spans(
    payloads: Iterable[RawPayload], start: dt.datetime, end: dt.datetime
) -> tuple[list[Kept], dict[str, str]]:
    """Spans of [start, end) where the newest payload asking for a symbol did not answer it
    (`payload_unanswered`), and each such symbol's message. A newer answer lifts them."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    spans: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    messages: dict[str, str] = {}
    for payload in sorted(payloads, key=lambda p: (p.fetched_at, p.batch)):
        a = max(payload.window_start.astimezone(dt.UTC), start)
        b = min(payload.window_end.astimezone(dt.UTC), end)
        if a >= b:
            continue
        failures = payload_unanswered(payload)
        for symbol in payload.symbols:
            kept = _subtract(spans.get(symbol, []), a, b)
            if symbol in failures:
                kept.append((a, b))
                messages[symbol] = failures[symbol]
            spans[symbol] = kept
    found = [Kept(s, a, b) for s, ranges in sorted(spans.items()) for a, b in sorted(ranges)]
    return found, {s: messages[s] for s in sorted({k.symbol for k in found})}


def without_kept(result: CleanResult, kept: Sequence[Kept]) -> CleanResult:
    """The clean result minus the records inside kept spans (bars and quarantine alike): those
    came from older payloads, and the rows stored from them stay instead."""
    if not kept:
        return result
    bars = result.bars.filter(~kept_expr(kept, "ts"))
    quarantine = result.quarantine.filter(~kept_expr(kept, "partition_ts").fill_null(False))
    dropped = result.bars.height - bars.height + result.quarantine.height - quarantine.height
    return CleanResult(bars=bars, quarantine=quarantine, received=result.received - dropped)


def _merged(
    spans: Iterable[tuple[dt.datetime, dt.datetime]],
) -> list[tuple[dt.datetime, dt.datetime]]:
    out: list[tuple[dt.datetime, dt.datetime]] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _day_span(day: dt.date, tz: dt.tzinfo) -> tuple[dt.datetime, dt.datetime]:
    midnight = dt.datetime.combine(day, dt.time(), tz)
    after = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz)
    return midnight.astimezone(dt.UTC), after.astimezone(dt.UTC)


def covered_spans(
    result: CleanResult, interval: str, tz: dt.tzinfo
) -> dict[str, list[tuple[dt.datetime, dt.datetime]]]:
    """What the records of `result` (bars and quarantined records alike: the provider sent them)
    span, per symbol and session: from the first bar's start to the last bar's end within each
    local day for 5-minute bars; each whole local day a daily bar is for. A provider that
    answers a session in part (Alpha Vantage's `compact` 100 bars, a cut-off body) covers only
    that part: the stored rows outside it are not its to delete."""
    times = pl.concat(
        [
            result.bars.select("symbol", t=pl.col("ts")),
            result.quarantine.select("symbol", t=pl.col("partition_ts")),
        ]
    ).drop_nulls()  # a record without a symbol or a time covers nothing
    if times.is_empty():
        return {}
    per_day = (
        times.with_columns(day=pl.col("t").dt.convert_time_zone(str(tz)).dt.date())
        .group_by("symbol", "day")
        .agg(first=pl.col("t").min(), last=pl.col("t").max())
        .sort("symbol", "day")
    )
    step = dt.timedelta(minutes=5)
    covered: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for symbol, day, first, last in per_day.iter_rows():
        if interval == "5min":
            span = (first.astimezone(dt.UTC), last.astimezone(dt.UTC) + step)
        else:
            span = _day_span(day, tz)
        covered.setdefault(symbol, []).append(span)
    return {s: _merged(spans) for s, spans in covered.items()}


def session_spans(
    market: Market, interval: str, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, dt.datetime]]:
    """The traded parts of [start, end) (UTC), where stored bars can be: each session's
    [open, close) for 5-minute bars, each session's local day for daily bars."""
    start, end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    days = market.sessions(start.astimezone(market.tz).date(), end.astimezone(market.tz).date())
    spans = []
    for day in days:
        if interval == "5min":
            a, b = (t.astimezone(dt.UTC) for t in market.session_bounds(day))
        else:
            a, b = _day_span(day, market.tz)
        a, b = max(a, start), min(b, end)
        if a < b:
            spans.append((a, b))
    return spans


def kept_spans(
    payloads: Sequence[RawPayload],
    result: CleanResult,
    symbols: Iterable[str],
    start: dt.datetime,
    end: dt.datetime,
    *,
    market: Market,
    interval: str,
) -> tuple[CleanResult, list[Kept], dict[str, str]]:
    """What a window replacement keeps, and the clean result to write instead.

    A window is replaced exactly where the providers covered it, per symbol. Kept: a symbol's
    spans where its newest payload did not answer it (an error, an empty series); the whole
    window for a symbol (of `symbols`, the universe, or a payload's) no payload gave a record
    for; and, for the others, each session's part their records do not span
    (`covered_spans`): the rest of a session a provider answered in part, a session it sent
    nothing for. `market` gives the sessions (its universe is not read). A payload the parse
    step could not read (`result.unreadable`) answered nothing and is left out. Returns (result
    without the kept spans' records, kept spans, failure messages per symbol)."""
    payloads = [p for p in bar_payloads(payloads) if p.payload_id not in result.unreadable]
    failed, messages = unanswered_spans(payloads, start, end)
    result = without_kept(result, failed)
    covered = covered_spans(result, interval, market.tz)
    asked = set(symbols) | {s for p in payloads for s in p.symbols}
    window = (start.astimezone(dt.UTC), end.astimezone(dt.UTC))
    sessions = session_spans(market, interval, start, end) if covered else []
    spans: dict[str, list[tuple[dt.datetime, dt.datetime]]] = {}
    for span in failed:
        spans.setdefault(span.symbol, []).append((span.start, span.end))
    for symbol in sorted(asked - set(covered)):
        spans.setdefault(symbol, []).append(window)
    for symbol, ranges in covered.items():
        rest = list(sessions)
        for a, b in ranges:
            rest = _subtract(rest, a, b)
        spans.setdefault(symbol, []).extend(rest)
    # The records left lie inside their symbol's covered spans, outside every kept one.
    kept = [Kept(s, a, b) for s in sorted(spans) for a, b in _merged(spans[s])]
    return result, kept, messages


def uncovered(
    kept: Sequence[Kept], expected_starts: Sequence[dt.datetime]
) -> dict[str, list[dt.datetime]]:
    """Symbol -> the traded bar starts (`expected_starts`, UTC) inside its kept spans: the
    windows no provider covered for it in this run, whose stored rows (if any) stay."""
    starts = sorted(t.astimezone(dt.UTC) for t in expected_starts)
    found: dict[str, list[dt.datetime]] = {}
    for span in kept:
        lo = bisect.bisect_left(starts, span.start.astimezone(dt.UTC))
        hi = bisect.bisect_left(starts, span.end.astimezone(dt.UTC))
        if hi > lo:
            found.setdefault(span.symbol, []).extend(starts[lo:hi])
    return {s: sorted(set(ts)) for s, ts in sorted(found.items())}


def describe_uncovered(
    found: dict[str, list[dt.datetime]],
    tz: dt.tzinfo,
    step: dt.timedelta,
    *,
    symbols: int = 20,
    ranges: int = 5,
) -> dict[str, str]:
    """Symbol -> its uncovered windows as local ranges ("2026-11-18 09:30..11:25 (24 bars)"),
    consecutive bar starts (`step` apart) joined; bounded to `symbols` symbols and `ranges`
    ranges each (the rest is counted), so a long backfill's metadata stays small."""
    out: dict[str, str] = {}
    for symbol, starts in list(found.items())[:symbols]:
        runs: list[list[dt.datetime]] = []
        for t in starts:
            if runs and t - runs[-1][-1] <= step and step < dt.timedelta(days=1):
                runs[-1].append(t)
            else:
                runs.append([t])
        texts = []
        for run in runs[:ranges]:
            a, b = run[0].astimezone(tz), run[-1].astimezone(tz)
            if step >= dt.timedelta(days=1):
                texts.append(a.date().isoformat())
            elif a == b:
                texts.append(a.strftime("%Y-%m-%d %H:%M"))
            else:
                texts.append(f"{a:%Y-%m-%d %H:%M}..{b:%H:%M} ({len(run)} bars)")
        if len(runs) > ranges:
            texts.append(f"+{len(runs) - ranges} more")
        out[symbol] = ", ".join(texts)
    if len(found) > symbols:
        out["..."] = f"{len(found) - symbols} more symbol(s)"
    return out


def empty_windows(bars: pl.DataFrame, expected_starts: Sequence[dt.datetime]) -> list[dt.datetime]:
    """The expected bar starts (one per traded partition) that no bar of any symbol has."""
    if not expected_starts:
        return []
    expected = pl.Series("ts", expected_starts).cast(pl.Datetime("us", "UTC"))
    present = bars.get_column("ts").unique().implode()
    return expected.filter(~expected.is_in(present)).sort().to_list()
