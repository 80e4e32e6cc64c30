"""A provider that does not answer for a symbol, or for anything: the stored data stays, byte for
byte, and the run says so. Twelve Data's format from a local stand-in, the real PostgreSQL, the
real raw zone and lake."""

import json
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg
from werkzeug import Request, Response

from finance_assets.demo import run_market
from finance_assets_tests.test_providers.test_twelve_data_end_to_end import (
    DAY,
    _failing,
    _stand_in,
    _td_env,
)

TABLES = ("bars_5min", "daily_bars")


def _pg_rows(url: str, table: str, symbol: str | None = None) -> list[tuple]:
    where = " WHERE symbol = %s" if symbol else ""
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT * FROM us.{table}{where} ORDER BY ts, symbol", [symbol] if symbol else []
        ).fetchall()


def _lake_rows(data: Path, table: str, symbol: str | None = None) -> list[tuple]:
    frame = pl.read_parquet(sorted((data / "lake" / "us" / table).rglob("part-0.parquet")))
    if symbol:
        frame = frame.filter(pl.col("symbol") == symbol)
    return frame.sort("ts", "symbol").rows()


def _raw_files(data: Path) -> dict[str, bytes]:
    return {str(p.relative_to(data)): p.read_bytes() for p in (data / "raw").rglob("*.json")}


def _snapshot(url: str, data: Path, symbol: str | None = None) -> dict[str, list[tuple]]:
    out = {}
    for table in TABLES:
        out[f"pg/{table}"] = _pg_rows(url, table, symbol)
        out[f"lake/{table}"] = _lake_rows(data, table, symbol)
    return out


def _check(result: dg.ExecuteInProcessResult, name: str) -> dg.AssetCheckEvaluation:
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == name)


def test_one_symbol_error_in_a_batch_keeps_its_payloads_and_rows_byte_for_byte(
    monkeypatch, tmp_path, pg_url, us, httpserver
):
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    _td_env(monkeypatch, tmp_path, pg_url, httpserver)
    data = tmp_path / "data"
    bad: set[str] = set()
    httpserver.expect_request("/time_series").respond_with_handler(_failing(us, bad))
    defs = _defs(us)
    assert all(r.success for r in run_market(defs, us, DAY, dg.DagsterInstance.ephemeral()))
    msft_before = _snapshot(pg_url, data, "MSFT")
    aapl_before = _snapshot(pg_url, data, "AAPL")
    raw_before = _raw_files(data)
    assert all(msft_before.values()) and len(msft_before["pg/bars_5min"]) == 78

    # Twelve Data answers MSFT with a per-symbol error inside the batch of five.
    bad.add("MSFT")
    intraday, daily = run_market(defs, us, DAY, dg.DagsterInstance.ephemeral())
    assert intraday.success and daily.success
    # MSFT's rows: the same, byte for byte (ingested_at included), in both stores.
    assert _snapshot(pg_url, data, "MSFT") == msft_before
    # The others were replaced (a new ingested_at), so the run did write.
    aapl_after = _snapshot(pg_url, data, "AAPL")
    assert aapl_after["pg/bars_5min"] != aapl_before["pg/bars_5min"]
    assert [r[:-1] for r in aapl_after["pg/bars_5min"]] == [
        r[:-1] for r in aapl_before["pg/bars_5min"]
    ]
    # The previous payloads (the only ones holding MSFT's bars) are still there, as received.
    raw_after = _raw_files(data)
    assert {k: raw_after.get(k) for k in raw_before} == raw_before
    for result in (intraday, daily):
        warn = _check(result, "universe_complete")
        assert not warn.passed
        assert warn.metadata["missing_symbols"].value == ["MSFT"]
        assert "not found: MSFT" in warn.metadata["provider_errors"].value["MSFT"]
        assert "MSFT" in (warn.description or "") and "not found" in warn.description
        assert _check(result, "stores_agree").passed

    # A later run that is answered fills it in, and supersedes every older payload.
    bad.clear()
    assert all(r.success for r in run_market(defs, us, DAY, dg.DagsterInstance.ephemeral()))
    msft_now = _snapshot(pg_url, data, "MSFT")
    assert msft_now["pg/bars_5min"] != msft_before["pg/bars_5min"]  # rewritten, new ingested_at
    assert [r[:-1] for r in msft_now["pg/bars_5min"]] == [
        r[:-1] for r in msft_before["pg/bars_5min"]
    ]
    files = _raw_files(data)
    bodies = [k for k in files if not k.endswith(".meta.json") and "/_superseded/" not in k]
    assert len(bodies) == 2  # one payload per raw asset: the older ones were superseded
    # ... and set aside as they were ("as known then"), not deleted.
    for key, body in raw_before.items():
        folder, name = key.rsplit("/dt=", 1)
        assert files[f"{folder}/_superseded/dt={name}"] == body


def _empty_handler(request: Request) -> Response:
    """Twelve Data's batch shape with every series empty: an answer with nothing in it."""
    symbols = request.args["symbol"].split(",")
    document = {
        symbol: {
            "meta": {"symbol": symbol, "interval": request.args["interval"], "currency": "USD"},
            "values": [],
            "status": "ok",
        }
        for symbol in symbols
    }
    return Response(json.dumps(document), content_type="application/json")


def test_a_traded_window_with_no_bars_fails_and_keeps_the_stored_rows(
    monkeypatch, tmp_path, pg_url, us, httpserver
):
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    _td_env(monkeypatch, tmp_path, pg_url, httpserver)
    data = tmp_path / "data"
    handler, _ = _stand_in(us)
    answers = {"handler": handler}
    httpserver.expect_request("/time_series").respond_with_handler(
        lambda request: answers["handler"](request)
    )
    defs = _defs(us)
    assert all(r.success for r in run_market(defs, us, DAY, dg.DagsterInstance.ephemeral()))
    before = _snapshot(pg_url, data)
    raw_before = _raw_files(data)
    assert len(before["pg/bars_5min"]) == 5 * 78 and len(before["pg/daily_bars"]) == 5

    answers["handler"] = _empty_handler
    intraday, daily = run_market(defs, us, DAY, dg.DagsterInstance.ephemeral())
    for result, windows in ((intraday, 78), (daily, 1)):
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
        text = str(failure.event_specific_data)
        assert f"no bars from any source for {windows} traded window(s)" in text
        assert "nothing was written" in text
        assert not _check(result, "universe_complete").passed
    # Nothing was deleted: not the rows, not the payloads they came from.
    assert _snapshot(pg_url, data) == before
    raw_after = _raw_files(data)
    assert {k: raw_after.get(k) for k in raw_before} == raw_before
