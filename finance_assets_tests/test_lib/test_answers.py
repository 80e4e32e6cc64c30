"""What a batch answered, per symbol: the raw zone and the clean step's kept spans."""

import datetime as dt
import json

from finance_assets.lib import answers
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
