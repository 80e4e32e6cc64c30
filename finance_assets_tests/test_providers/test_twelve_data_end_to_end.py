"""MARKET_DATA_PROVIDER=twelve_data materialises the same assets as the simulated provider,
against a local stand-in that speaks Twelve Data's /time_series, and never leaks its key."""

import datetime as dt
import json
import logging

import dagster as dg
import psycopg
import pytest
from werkzeug import Request, Response

from finance_assets.demo import run_market
from finance_assets.providers.simulated_market import SimulatedMarket

SECRET = "td-key-6f1e2b9c-must-not-leak"
DAY = [dt.date(2026, 11, 18)]


def _stand_in(market):
    """A handler answering /time_series from the simulated market, in Twelve Data's format."""
    sim = SimulatedMarket()
    seen: list[dict[str, str]] = []

    def handler(request: Request) -> Response:
        args = dict(request.args)
        seen.append({**args, "auth": request.headers.get("Authorization", "")})
        if request.headers.get("Authorization") != f"apikey {SECRET}":
            return Response(
                json.dumps({"code": 401, "message": "bad key", "status": "error"}),
                status=401,
                content_type="application/json",
            )
        fmt = "%Y-%m-%d %H:%M:%S"
        start = dt.datetime.strptime(args["start_date"], fmt).replace(tzinfo=market.tz)
        end = dt.datetime.strptime(args["end_date"], fmt).replace(tzinfo=market.tz)
        end += dt.timedelta(seconds=1)
        symbols = args["symbol"].split(",")
        body = sim.fetch_bars(market, symbols, args["interval"], start, end)[0].body
        return Response(body, content_type="application/json")

    return handler, seen


def _warehouse(url):
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(
                f"SELECT symbol, ts, open, high, low, close, volume FROM us.{table} ORDER BY 1, 2"
            ).fetchall()
            for table in ("bars_5min", "daily_bars")
        }


def test_twelve_data_provider_end_to_end(monkeypatch, tmp_path, pg_url, us, httpserver, caplog):
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")
    assert all(r.success for r in run_market(_defs(us), us, DAY, dg.DagsterInstance.ephemeral()))
    simulated = _warehouse(pg_url)

    handler, seen = _stand_in(us)
    httpserver.expect_request("/time_series").respond_with_handler(handler)
    monkeypatch.setenv("MARKET_DATA_PROVIDER", "twelve_data")
    monkeypatch.setenv("TWELVEDATA_API_KEY", SECRET)
    monkeypatch.setenv("TWELVEDATA_CREDITS_PER_MINUTE", "800")  # the free 8 would wait a minute
    monkeypatch.setenv("TWELVEDATA_BASE_URL", httpserver.url_for("").rstrip("/"))
    instance = dg.DagsterInstance.ephemeral()
    caplog.set_level(logging.DEBUG)
    results = run_market(_defs(us), us, DAY, instance)
    assert all(r.success for r in results)

    # One call per interval: all five symbols in one batch, the whole range in one request.
    assert [(c["interval"], c["symbol"]) for c in seen] == [
        ("5min", "AAPL,MSFT,GOOGL,TSLA,NVDA"),
        ("1day", "AAPL,MSFT,GOOGL,TSLA,NVDA"),
    ]
    twelve = _warehouse(pg_url)
    assert [r[1:] for r in twelve["bars_5min"]] == [r[1:] for r in simulated["bars_5min"]]
    assert twelve == simulated

    # The key went to the server, and nowhere else: logs, events, metadata, raw zone metadata.
    assert all(c["auth"] == f"apikey {SECRET}" for c in seen)
    texts = [caplog.text]
    for result in results:
        for event in instance.all_logs(result.run_id):
            texts.append(event.message or "")
            texts.append(str(event.dagster_event) if event.dagster_event else "")
    texts += [p.read_text() for p in (tmp_path / "data" / "raw").rglob("*.meta.json")]
    assert texts and not [t for t in texts if SECRET in t]
    # A current payload (the simulated run's are set aside under _superseded/ by now).
    meta = json.loads(next((tmp_path / "data" / "raw").glob("*/*/dt=*/*.meta.json")).read_text())
    assert meta["provider"] == "twelve_data" and meta["request"]["endpoint"] == "time_series"


def test_unknown_provider_and_missing_key_are_clear(monkeypatch):
    from finance_assets.resources import TwelveDataResource, build_resources

    with pytest.raises(ValueError, match="TWELVEDATA_API_KEY is not set"):
        TwelveDataResource().get_provider()
    with pytest.raises(ValueError, match="valid: simulated, twelve_data, alpha_vantage"):
        build_resources({"MARKET_DATA_PROVIDER": "bloomberg"})


def _td_env(monkeypatch, tmp_path, pg_url, httpserver):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    monkeypatch.setenv("MARKET_DATA_PROVIDER", "twelve_data")
    monkeypatch.setenv("TWELVEDATA_API_KEY", SECRET)
    monkeypatch.setenv("TWELVEDATA_CREDITS_PER_MINUTE", "800")
    monkeypatch.setenv("TWELVEDATA_BASE_URL", httpserver.url_for("").rstrip("/"))
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")


def _failing(market, bad: set[str]):
    """The stand-in, answering `bad` symbols with Twelve Data's per-symbol error."""
    handler, _ = _stand_in(market)

    def with_errors(request: Request) -> Response:
        answer = handler(request)
        document = json.loads(answer.get_data())
        symbols = request.args["symbol"].split(",")
        if len(symbols) == 1:
            document = {symbols[0]: document}
        for symbol in bad:
            document[symbol] = {
                "code": 400,
                "message": f"**symbol** not found: {symbol}. Please specify it correctly.",
                "status": "error",
            }
        return Response(json.dumps(document), content_type="application/json")

    return with_errors


def test_one_bad_symbol_does_not_fail_the_others(monkeypatch, tmp_path, pg_url, us, httpserver):
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    _td_env(monkeypatch, tmp_path, pg_url, httpserver)
    httpserver.expect_request("/time_series").respond_with_handler(_failing(us, {"TSLA"}))
    intraday, _ = run_market(_defs(us), us, DAY, dg.DagsterInstance.ephemeral())
    assert intraday.success
    event = next(
        e
        for e in intraday.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["us", "bars_5min"])
    )
    meta = event.materialization.metadata
    assert meta["missing_symbols"].value == ["TSLA"]
    assert "not found" in meta["provider_errors"].value["TSLA"]
    warn = next(
        c for c in intraday.get_asset_check_evaluations() if c.check_name == "universe_complete"
    )
    assert not warn.passed and warn.severity == dg.AssetCheckSeverity.WARN
    with psycopg.connect(pg_url) as conn:
        symbols = {r[0] for r in conn.execute("SELECT DISTINCT symbol FROM us.bars_5min")}
    assert symbols == set(us.universe) - {"TSLA"}


def test_every_symbol_failing_fails_the_asset(monkeypatch, tmp_path, pg_url, us, httpserver):
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    _td_env(monkeypatch, tmp_path, pg_url, httpserver)
    httpserver.expect_request("/time_series").respond_with_handler(_failing(us, set(us.universe)))
    intraday, _ = run_market(_defs(us), us, DAY, dg.DagsterInstance.ephemeral())
    assert not intraday.success
    retries = [e for e in intraday.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert len(retries) == 3  # the asset's retry policy asked again, three times
    assert all("every symbol of us failed" in str(e.event_specific_data) for e in retries)
    failure = next(e for e in intraday.all_events if e.event_type_value == "STEP_FAILURE")
    assert "ProviderError" in str(failure.event_specific_data)
