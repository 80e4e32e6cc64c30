"""A provider that answers part of a window, without an error: the window is replaced exactly
where it answered, per symbol and session; the stored rows elsewhere stay, byte for byte; what
arrived is stored; `universe_complete` fails (ERROR) naming the symbols and windows left
uncovered, and the lake and the warehouse agree. Real clients against loopback stand-ins, the
real PostgreSQL, raw zone and lake."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from finance_assets.demo import run_market
from finance_assets.lib.markets import Market
from finance_assets_tests.test_providers.test_alpha_vantage_and_yfinance_end_to_end import (
    EASTERN,
    _av_document,
)
from finance_assets_tests.test_providers.test_alpha_vantage_and_yfinance_end_to_end import (
    SECRET as AV_SECRET,
)
from finance_assets_tests.test_providers.test_provider_gaps import (
    _check,
    _lake_rows,
    _pg_rows,
    _snapshot,
)
from finance_assets_tests.test_providers.test_twelve_data_end_to_end import (
    DAY,
    _stand_in,
    _td_env,
)
from finance_assets_tests.test_providers.test_yahoo import (  # noqa: F401 (autouse fixtures)
    _loopback_only,
    _yfinance_cache,
    base_url,
)

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples" / "alphavantage"
AV_COMPACT = SAMPLES / "av_intraday_1min_MSFT_2017-12-18.json"


def _first_bars(handler: Any, symbol: str, keep: int) -> Any:
    """The Twelve Data stand-in, answering `symbol`'s 5-minute series with its first `keep`
    bars only (the body cut short, no error: the provider's status stays "ok")."""

    def cut(request: Request) -> Response:
        answer = handler(request)
        if request.args["interval"] != "5min":
            return answer
        document = json.loads(answer.get_data())
        series = document.get(symbol, document)
        series["values"] = sorted(series["values"], key=lambda v: v["datetime"])[:keep][::-1]
        return Response(json.dumps(document), content_type="application/json")

    return cut


def _assert_stores_agree(pg_url: str, data: Path, result: dg.ExecuteInProcessResult) -> None:
    assert _check(result, "stores_agree").passed
    assert _pg_rows(pg_url, "bars_5min") == _lake_rows(data, "bars_5min")


def _local(row: tuple) -> str:
    return row[1].astimezone(EASTERN).strftime("%H:%M")


def test_a_symbol_answered_for_its_first_30_bars_keeps_the_rest_of_its_rows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_url: str, us: Market, httpserver: HTTPServer
) -> None:
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    _td_env(monkeypatch, tmp_path, pg_url, httpserver)
    monkeypatch.setenv("TWELVEDATA_BASE_URL", base_url(httpserver))  # by address: loopback only
    data = tmp_path / "data"
    handler, _ = _stand_in(us)
    answers = {"handler": handler}
    httpserver.expect_request("/time_series").respond_with_handler(
        lambda request: answers["handler"](request)
    )
    defs = _defs(us)
    assert all(r.success for r in run_market(defs, us, DAY, dg.DagsterInstance.ephemeral()))
    msft_before = _pg_rows(pg_url, "bars_5min", "MSFT")
    aapl_before = _pg_rows(pg_url, "bars_5min", "AAPL")
    assert len(msft_before) == 78

    # The re-fetch answers MSFT for 09:30..11:55 only (30 bars), the others in full.
    answers["handler"] = _first_bars(handler, "MSFT", 30)
    intraday, daily = run_market(defs, us, DAY, dg.DagsterInstance.ephemeral())
    assert intraday.success and daily.success  # what arrived was stored

    msft = _snapshot(pg_url, data, "MSFT")
    for store in ("pg/bars_5min", "lake/bars_5min"):
        rows = msft[store]
        assert len(rows) == 78, store  # not 30
        # The 30 covered bars were replaced (a new ingested_at, the same values) ...
        assert [r[:-1] for r in rows[:30]] == [r[:-1] for r in msft_before[:30]]
        assert [r[-1] for r in rows[:30]] != [r[-1] for r in msft_before[:30]]
        # ... the 48 uncovered ones stay byte for byte.
        assert rows[30:] == msft_before[30:]
    aapl = _pg_rows(pg_url, "bars_5min", "AAPL")
    assert [r[:-1] for r in aapl] == [r[:-1] for r in aapl_before]
    assert {r[-1] for r in aapl}.isdisjoint({r[-1] for r in aapl_before})  # replaced
    _assert_stores_agree(pg_url, data, intraday)

    check = _check(intraday, "universe_complete")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    assert check.metadata["partial_symbols"].value == ["MSFT"]
    assert check.metadata["uncovered"].value == {"MSFT": "2026-11-18 12:00..15:55 (48 bars)"}
    assert check.metadata["uncovered_bars"].value == 48
    assert "MSFT not covered: 2026-11-18 12:00..15:55 (48 bars)" in (check.description or "")
    bars = next(
        e.materialization
        for e in intraday.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["us", "bars_5min"])
    )
    assert bars.metadata["uncovered"].value == {"MSFT": "2026-11-18 12:00..15:55 (48 bars)"}
    assert bars.metadata["run_rows_loaded"].value == 4 * 78 + 30  # a range run: its totals
    assert _check(daily, "universe_complete").passed  # the daily answer was whole


def _compact_intraday(av_symbol: str) -> dict[str, Any]:
    """A real Alpha Vantage `compact` intraday answer (the last 100 bars, newest first: the
    recorded body of the shared samples, its values as received) on DAY's 5-minute marks: the
    100 bars ending at 19:45 US/Eastern, an extended-hours answer, start at 11:30."""
    document = json.loads(AV_COMPACT.read_text())
    (recorded,) = [key for key in document if key.startswith("Time Series")]
    values = list(document[recorded].values())
    assert len(values) == 100 and document["Meta Data"]["5. Output Size"] == "Compact"
    last = dt.datetime.combine(DAY[0], dt.time(19, 45), EASTERN)
    series = {
        (last - i * dt.timedelta(minutes=5)).strftime("%Y-%m-%d %H:%M:%S"): value
        for i, value in enumerate(values)
    }
    meta = {
        **document["Meta Data"],
        "1. Information": "Intraday (5min) open, high, low, close prices and volume",
        "2. Symbol": av_symbol,
        "3. Last Refreshed": next(iter(series)),
        "4. Interval": "5min",
    }
    return {"Meta Data": meta, "Time Series (5min)": series}


def test_an_alpha_vantage_compact_answer_stores_what_arrived_and_keeps_the_morning(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_url: str,
    us: Market,
    httpserver: HTTPServer,
    request: pytest.FixtureRequest,
) -> None:
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    assert "_loopback_only" in request.fixturenames
    _td_env(monkeypatch, tmp_path, pg_url, httpserver)  # the data dir, the warehouse, clean
    data = tmp_path / "data"
    monkeypatch.setenv("MARKET_DATA_PROVIDER", "simulated")
    defs = _defs(us)
    assert all(r.success for r in run_market(defs, us, DAY, dg.DagsterInstance.ephemeral()))
    before = {s: _pg_rows(pg_url, "bars_5min", s) for s in us.universe}
    assert all(len(rows) == 78 for rows in before.values())

    def handler(req: Request) -> Response:
        args = dict(req.args)
        assert args.get("apikey") == AV_SECRET
        if args["function"] == "TIME_SERIES_INTRADAY":
            document = _compact_intraday(args["symbol"])
        else:
            document = _av_document(us, args["symbol"], args["function"])
        return Response(json.dumps(document, indent=4), content_type="application/json")

    httpserver.expect_request("/query").respond_with_handler(handler)
    monkeypatch.setenv("MARKET_DATA_PROVIDER", "alpha_vantage")
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", AV_SECRET)
    monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", base_url(httpserver))
    monkeypatch.setenv("ALPHAVANTAGE_CALLS_PER_MINUTE", "600")
    intraday, _ = run_market(_defs(us), us, DAY, dg.DagsterInstance.ephemeral())
    assert intraday.success  # not "no bars from any source for 24 traded window(s)"

    sample = list(json.loads(AV_COMPACT.read_text())["Time Series (1min)"].values())
    closes = [float(v["4. close"]) for v in sample][::-1]  # oldest first: 11:30, 11:35, ...
    for symbol in us.universe:
        for store, rows in _snapshot(pg_url, data, symbol).items():
            if store.endswith("daily_bars"):
                continue
            assert len(rows) == 78, (symbol, store)
            # 09:30..11:25: the stored rows, byte for byte; 11:30..15:55: what arrived.
            assert rows[:24] == before[symbol][:24], (symbol, store)
            assert (_local(rows[23]), _local(rows[24])) == ("11:25", "11:30")
            assert [r[5] for r in rows[24:]] == pytest.approx(closes[:54]), (symbol, store)
    _assert_stores_agree(pg_url, data, intraday)

    check = _check(intraday, "universe_complete")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    window = "2026-11-18 09:30..11:25 (24 bars)"
    assert check.metadata["uncovered"].value == {s: window for s in us.universe}
    assert check.metadata["uncovered_bars"].value == 24 * len(us.universe)
    assert check.metadata["empty_windows"].value == 24
    assert all(f"{s} not covered: {window}" in (check.description or "") for s in us.universe)
