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

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

import polars as pl

from finance_assets.lib.io.spans import Kept, kept_expr
from finance_assets.lib.providers.base import RawPayload, json_object_or_none
from finance_assets.lib.transforms import CleanResult, failed_symbols
from finance_assets.providers.twelve_data.parser import to_twelve_data


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


def kept_spans(
    payloads: Sequence[RawPayload],
    result: CleanResult,
    symbols: Iterable[str],
    start: dt.datetime,
    end: dt.datetime,
) -> tuple[CleanResult, list[Kept], dict[str, str]]:
    """What a window replacement keeps, and the clean result to write instead.

    Kept: a symbol's spans where its newest payload did not answer it, and the whole window
    for a symbol (of `symbols`, the universe, or a payload's) no payload gave a record for. Returns
    (result without the kept spans' records, kept spans, failure messages per symbol)."""
    failed, messages = unanswered_spans(payloads, start, end)
    result = without_kept(result, failed)
    answered = set(result.bars.get_column("symbol").unique().to_list()) | set(
        result.quarantine.get_column("symbol").drop_nulls().unique().to_list()
    )
    asked = set(symbols) | {s for p in payloads for s in p.symbols}
    silent = sorted(asked - answered)
    utc_start, utc_end = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    kept = failed + [Kept(s, utc_start, utc_end) for s in silent]
    return result, kept, messages


def empty_windows(bars: pl.DataFrame, expected_starts: Sequence[dt.datetime]) -> list[dt.datetime]:
    """The expected bar starts (one per traded partition) that no bar of any symbol has."""
    if not expected_starts:
        return []
    expected = pl.Series("ts", expected_starts).cast(pl.Datetime("us", "UTC"))
    present = bars.get_column("ts").unique().implode()
    return expected.filter(~expected.is_in(present)).sort().to_list()
