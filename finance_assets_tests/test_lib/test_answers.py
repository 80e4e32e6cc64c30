"""What a batch answered, per symbol: the raw zone and the clean step's kept spans."""

import datetime as dt
import json

from finance_assets.defs.market.reconcile import expected_bar_starts
from finance_assets.lib import answers
from finance_assets.lib.clean_step import clean_window
from finance_assets.lib.io import lake
from finance_assets.lib.providers.base import RawPayload

T0 = dt.datetime(2026, 11, 18, 14, 30, tzinfo=dt.UTC)
T1 = T0 + dt.timedelta(hours=1)
ERROR = {"code": 400, "message": "**symbol** not found: MSFT.", "status": "error"}


def _series(symbol: str, n: int = 1) -> dict:
    values = [
        {
            "datetime": f"2026-11-18 09:{30 + 5 * i}:00",
            "open": "1",
            "high": "1",
            "low": "1",
            "close": "1",
            "volume": "5",
        }
        for i in range(n)
    ]
    return {"meta": {"symbol": symbol}, "values": values, "status": "ok"}


def _payload(document: dict, symbols, minute: int, **window) -> RawPayload:
    return RawPayload(
        provider="twelve_data",
        format="twelve_data",
        interval="5min",
        symbols=tuple(symbols),
        window_start=window.get("start", T0),
        window_end=window.get("end", T1),
        fetched_at=dt.datetime(2026, 11, 18, 22, minute, tzinfo=dt.UTC),
        body=json.dumps(document).encode(),
    )


def test_failures_and_empty_series_use_canonical_symbols():
    body = {"AAPL": _series("AAPL"), "MSFT": ERROR, "BT.A": {**_series("BT.A"), "values": []}}
    payload = _payload(body, ["AAPL", "MSFT", "BT.A.L"], 0)
    assert answers.payload_failures(payload) == {"MSFT": "400: **symbol** not found: MSFT."}
    assert set(answers.payload_unanswered(payload)) == {"MSFT", "BT.A.L"}
    assert answers.answered_symbols(payload) == {"AAPL"}


def test_the_newest_answer_decides_each_span():
    old = _payload({"AAPL": _series("AAPL"), "MSFT": _series("MSFT")}, ["AAPL", "MSFT"], 0)
    failed = _payload({"AAPL": _series("AAPL"), "MSFT": ERROR}, ["AAPL", "MSFT"], 1)
    kept, messages = answers.unanswered_spans([failed, old], T0, T1)
    assert [(k.symbol, k.start, k.end) for k in kept] == [("MSFT", T0, T1)]
    assert "not found" in messages["MSFT"]
    # A later answer for the second half lifts that half only.
    mid = T0 + dt.timedelta(minutes=30)
    later = _payload({"MSFT": _series("MSFT")}, ["MSFT"], 2, start=mid, end=T1)
    kept, _ = answers.unanswered_spans([old, failed, later], T0, T1)
    assert [(k.symbol, k.start, k.end) for k in kept] == [("MSFT", T0, mid)]


def test_raw_zone_keeps_the_payloads_of_a_symbol_a_batch_did_not_answer(tmp_path, us):
    old = _payload({"AAPL": _series("AAPL"), "MSFT": _series("MSFT")}, ["AAPL", "MSFT"], 0)
    lake.write_payloads(tmp_path, [old], T0, T1, us.tz)
    failed = _payload({"AAPL": _series("AAPL"), "MSFT": ERROR}, ["AAPL", "MSFT"], 1)
    lake.write_payloads(tmp_path, [failed], T0, T1, us.tz)
    assert [p.body for p in lake.read_payloads(tmp_path, T0, T1)] == [old.body, failed.body]
    answered = _payload({"AAPL": _series("AAPL"), "MSFT": _series("MSFT")}, ["AAPL", "MSFT"], 2)
    lake.write_payloads(tmp_path, [answered], T0, T1, us.tz)
    assert [p.body for p in lake.read_payloads(tmp_path, T0, T1)] == [answered.body]


def _bars(symbol: str, stamps: list[str]) -> dict:
    row = {"open": "1", "high": "1", "low": "1", "close": "1", "volume": "5"}
    values = [{"datetime": s, **row} for s in reversed(stamps)]  # newest first, as sent
    return {"meta": {"symbol": symbol}, "values": values, "status": "ok"}


def test_a_window_is_replaced_exactly_where_each_symbol_was_covered(us):
    # AAPL answered for 09:40..09:50 of the hour only, MSFT with an error, the rest not at all.
    stamps = ["2026-11-18 09:40:00", "2026-11-18 09:45:00", "2026-11-18 09:50:00"]
    body = {"AAPL": _bars("AAPL", stamps), "MSFT": ERROR}
    payload = _payload(body, ["AAPL", "MSFT"], 0)
    cleaned = clean_window(
        [payload], us, "5min", asset="bars_5min", start=T0, end=T1, ingested_at=T1
    )
    assert cleaned.result.bars.height == 3
    minute = dt.timedelta(minutes=1)
    spans = {(k.symbol, k.start, k.end) for k in cleaned.kept}
    assert ("AAPL", T0, T0 + 10 * minute) in spans  # before its first bar
    assert ("AAPL", T0 + 25 * minute, T1) in spans  # after its last bar's end
    assert {s for s in spans if s[0] == "AAPL"} == {
        ("AAPL", T0, T0 + 10 * minute),
        ("AAPL", T0 + 25 * minute, T1),
    }
    assert {(s, a, b) for s, a, b in spans if s != "AAPL"} == {
        (s, T0, T1) for s in us.universe if s != "AAPL"
    }
    assert "not found" in cleaned.provider_errors["MSFT"]

    expected = us.bar_starts(T0, T1)
    found = answers.uncovered(cleaned.kept, expected)
    assert len(found["AAPL"]) == 9 and len(found["MSFT"]) == 12
    described = answers.describe_uncovered(found, us.tz, 5 * minute)
    assert described["AAPL"] == "2026-11-18 09:30..09:35 (2 bars), 2026-11-18 09:55..10:25 (7 bars)"
    assert described["MSFT"] == "2026-11-18 09:30..10:25 (12 bars)"
    # Bounded: a long backfill's metadata names a few symbols and ranges, and counts the rest.
    short = answers.describe_uncovered(found, us.tz, 5 * minute, symbols=2, ranges=1)
    assert short["AAPL"] == "2026-11-18 09:30..09:35 (2 bars), +1 more"
    assert short["..."] == f"{len(found) - 2} more symbol(s)"


def test_daily_bars_cover_the_sessions_they_are_for(us):
    start = dt.datetime(2026, 11, 18, tzinfo=us.tz)
    end = dt.datetime(2026, 11, 20, tzinfo=us.tz)
    body = {"AAPL": _bars("AAPL", ["2026-11-18"]), "MSFT": _bars("MSFT", ["2026-11-18"])}
    payload = RawPayload(
        provider="twelve_data",
        format="twelve_data",
        interval="1day",
        symbols=("AAPL", "MSFT"),
        window_start=start,
        window_end=end,
        fetched_at=dt.datetime(2026, 11, 20, 22, tzinfo=dt.UTC),
        body=json.dumps(body).encode(),
    )
    cleaned = clean_window(
        [payload], us, "1day", asset="daily_bars", start=start, end=end, ingested_at=end
    )
    assert cleaned.result.bars.height == 2
    nov19 = dt.datetime(2026, 11, 19, tzinfo=us.tz).astimezone(dt.UTC)
    aapl = [(k.start, k.end) for k in cleaned.kept if k.symbol == "AAPL"]
    assert aapl == [(nov19, end.astimezone(dt.UTC))]
    found = answers.uncovered(cleaned.kept, expected_bar_starts(us, "1day", start, end))
    assert answers.describe_uncovered(found, us.tz, dt.timedelta(days=1))["AAPL"] == "2026-11-19"
    assert len(found["GOOGL"]) == 2  # asked for by nobody: both sessions
