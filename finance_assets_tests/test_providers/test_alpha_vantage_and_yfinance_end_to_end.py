"""MARKET_DATA_PROVIDER=alpha_vantage and MARKET_DATA_PROVIDER=yfinance materialise the same bars
as the simulated provider, against local stand-ins that answer from the simulated market in each
provider's own format; Alpha Vantage's key reaches the server and nothing else, and no request
leaves 127.0.0.1 (the guard of test_providers_yahoo, imported with its fixtures)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import urllib.parse
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from finance_assets.demo import run_market
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import BarRequest
from finance_assets.providers.alpha_vantage.client import to_alpha_vantage
from finance_assets.providers.simulated_market import SimulatedMarket
from finance_assets.providers.yfinance.client import canonical_symbol, to_yahoo
from finance_assets_tests.test_providers.test_yahoo import (  # noqa: F401 (autouse fixtures)
    CRUMB,
    NOT_FOUND,
    FakeYahoo,
    _loopback_only,
    _yfinance_cache,
    base_url,
    chart_body,
)

SECRET = "av-key-3c9d0e7a-must-not-leak"
DAY = [dt.date(2026, 11, 18)]  # a Wednesday, within Yahoo's 60 days of 5-minute history
EASTERN = ZoneInfo("America/New_York")  # Alpha Vantage's "US/Eastern"
COLUMNS = ("symbol", "ts", "open", "high", "low", "close", "volume", "adj_close")
ADJ_FACTOR = 0.995  # Yahoo's adjclose as if a dividend had gone ex since: != close on purpose


# --- the warehouse and the baseline --------------------------------------------------------------


def _warehouse(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        return {
            table: conn.execute(
                f"SELECT {', '.join(COLUMNS)} FROM us.{table} ORDER BY 1, 2"
            ).fetchall()
            for table in ("bars_5min", "daily_bars")
        }


def _quarantined(url: str) -> int:
    with psycopg.connect(url) as conn:
        if conn.execute("SELECT to_regclass('us.quarantine')").fetchone()[0] is None:
            return 0
        return conn.execute("SELECT count(*) FROM us.quarantine").fetchone()[0]


def _bars(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """symbol, ts, open, high, low, close, volume: what every provider must agree on."""
    return [row[:7] for row in rows]


def _drop_us(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")


def _truth(market: Market, interval: str) -> list[tuple[Any, ...]]:
    """SimulatedMarket's ground truth for DAY, as warehouse rows."""
    open_, close = market.session_bounds(DAY[0])
    if interval == "1day":
        open_ = dt.datetime.combine(DAY[0], dt.time(), market.tz)
        close = open_ + dt.timedelta(days=1)
    frame = SimulatedMarket().bars(BarRequest(market, market.universe, interval, open_, close))
    return sorted(tuple(row) for row in frame.rows())


@pytest.fixture(scope="module")
def simulated(
    pg_url: str, us: Market, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, list[tuple[Any, ...]]]:
    """The warehouse after a simulated run of DAY (run once for the module)."""
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FINANCE_DATA_DIR", str(tmp_path_factory.mktemp("simulated") / "data"))
        mp.setenv("FINANCE_PG_URL", pg_url)
        mp.setenv("MARKET_DATA_PROVIDER", "simulated")
        _drop_us(pg_url)
        results = run_market(_defs(us), us, DAY, dg.DagsterInstance.ephemeral())
        assert all(r.success for r in results)
        warehouse = _warehouse(pg_url)
    # The baseline is the simulated market's truth, not two empty tables agreeing.
    assert len(warehouse["bars_5min"]) == 78 * len(us.universe)
    assert _bars(warehouse["bars_5min"]) == _truth(us, "5min")
    assert _bars(warehouse["daily_bars"]) == _truth(us, "1day")
    assert {row[7] for table in warehouse.values() for row in table} == {None}
    return warehouse


def _provider_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pg_url: str, provider: str
) -> None:
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    monkeypatch.setenv("MARKET_DATA_PROVIDER", provider)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):  # local requests stay local
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    _drop_us(pg_url)  # only what this provider lands is compared


def _raw_meta(tmp_path: Path) -> list[dict[str, Any]]:
    files = sorted((tmp_path / "data" / "raw").rglob("*.meta.json"))
    return [json.loads(path.read_text()) for path in files]


# --- Alpha Vantage -------------------------------------------------------------------------------

# The calls the client should make for DAY (recent: no `month`, daily `compact`), in order.
AV_CALLS = {
    "TIME_SERIES_INTRADAY": {
        "interval": "5min",
        "outputsize": "full",
        "extended_hours": "false",
        "adjusted": "false",
    },
    "TIME_SERIES_DAILY": {"outputsize": "compact"},
}
AV_BAD_KEY = {
    "Error Message": "the parameter apikey is invalid or missing. Please claim your free API key "
    "on (https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."
}


def _av_invalid(function: str) -> dict[str, str]:
    return {
        "Error Message": "Invalid API call. Please retry or visit the documentation "
        f"(https://www.alphavantage.co/documentation/) for {function}."
    }


def _av_document(market: Market, av_symbol: str, function: str) -> dict[str, Any]:
    """What Alpha Vantage answers without `month`: intraday `full` is the trailing 30 days of
    regular-session bars (extended_hours=false), daily `compact` the latest 100 sessions, newest
    first, keys in US/Eastern (intraday keys label the bar's start), numbers as strings."""
    now = dt.datetime.now(dt.UTC)
    symbol = canonical_symbol(av_symbol)
    intraday = function == "TIME_SERIES_INTRADAY"
    start = now - dt.timedelta(days=30 if intraday else 160)
    frame = (
        SimulatedMarket()
        .bars(BarRequest(market, [symbol], "5min" if intraday else "1day", start, now))
        .sort("ts", descending=True)
    )
    if not intraday:
        frame = frame.head(100)
    series: dict[str, dict[str, str]] = {}
    for _, ts, open_, high, low, close, volume in frame.rows():
        local = ts.astimezone(EASTERN)
        key = local.strftime("%Y-%m-%d %H:%M:%S") if intraday else local.date().isoformat()
        series[key] = {
            "1. open": f"{open_:.4f}",
            "2. high": f"{high:.4f}",
            "3. low": f"{low:.4f}",
            "4. close": f"{close:.4f}",
            "5. volume": str(volume),
        }
    last = next(iter(series))
    if intraday:
        meta = {
            "1. Information": "Intraday (5min) open, high, low, close prices and volume",
            "2. Symbol": av_symbol,
            "3. Last Refreshed": last,
            "4. Interval": "5min",
            "5. Output Size": "Full size",
            "6. Time Zone": "US/Eastern",
        }
        return {"Meta Data": meta, "Time Series (5min)": series}
    meta = {
        "1. Information": "Daily Prices (open, high, low, close) and Volumes",
        "2. Symbol": av_symbol,
        "3. Last Refreshed": last,
        "4. Output Size": "Compact",
        "5. Time Zone": "US/Eastern",
    }
    return {"Meta Data": meta, "Time Series (Daily)": series}


def _alpha_vantage(market: Market) -> tuple[Any, list[dict[str, str]]]:
    """A handler answering /query from the simulated market, in Alpha Vantage's format: errors
    with HTTP 200 and an "Error Message", as Alpha Vantage does."""
    seen: list[dict[str, str]] = []

    def answer(document: dict[str, Any]) -> Response:
        return Response(json.dumps(document, indent=4), content_type="application/json")

    def handler(request: Request) -> Response:
        args = dict(request.args.items())
        seen.append(args)
        if args.get("apikey") != SECRET:
            return answer(AV_BAD_KEY)
        function = args.get("function", "")
        options = {k: v for k, v in args.items() if k not in ("function", "symbol", "apikey")}
        known = {to_alpha_vantage(s) for s in market.universe}
        if options != AV_CALLS.get(function) or args["symbol"] not in known:
            return answer(_av_invalid(function or "?"))
        return answer(_av_document(market, args["symbol"], function))

    return handler, seen


def test_alpha_vantage_provider_end_to_end(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_url: str,
    us: Market,
    httpserver: HTTPServer,
    caplog: pytest.LogCaptureFixture,
    simulated: dict[str, list[tuple[Any, ...]]],
    request: pytest.FixtureRequest,
) -> None:
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    assert "_loopback_only" in request.fixturenames  # Alpha Vantage's requests too
    handler, seen = _alpha_vantage(us)
    httpserver.expect_request("/query").respond_with_handler(handler)
    _provider_env(monkeypatch, tmp_path, pg_url, "alpha_vantage")
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", SECRET)
    monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", base_url(httpserver))
    monkeypatch.setenv("ALPHAVANTAGE_CALLS_PER_MINUTE", "600")  # the free 5 would wait a minute
    instance = dg.DagsterInstance.ephemeral()
    caplog.set_level(logging.DEBUG)
    results = run_market(_defs(us), us, DAY, instance)
    assert all(r.success for r in results)

    # One call per symbol per interval: the 5-minute run, then the daily one.
    assert seen == [
        {"function": function, "symbol": symbol, **params, "apikey": SECRET}
        for function, params in AV_CALLS.items()
        for symbol in us.universe
    ]

    # The bodies held 30 days / 100 sessions; the warehouse holds DAY, as the simulated run did.
    warehouse = _warehouse(pg_url)
    assert _bars(warehouse["bars_5min"]) == _bars(simulated["bars_5min"])
    assert _bars(warehouse["daily_bars"]) == _bars(simulated["daily_bars"])
    assert {row[7] for table in warehouse.values() for row in table} == {None}  # not sent
    assert _quarantined(pg_url) == 0  # the other days were left out by the parser, not rejected

    # The key went to the server and nowhere else: logs, events, raw zone metadata. The one
    # log that may show it is the stand-in's own access log (werkzeug): it *is* the server.
    server_side = [r for r in caplog.records if r.name == "werkzeug"]
    assert server_side and all(SECRET in r.getMessage() for r in server_side)
    ours = [caplog.handler.format(r) for r in caplog.records if r.name != "werkzeug"]
    texts = ["\n".join(ours)]
    for result in results:
        for event in instance.all_logs(result.run_id):
            texts.append(event.message or "")
            texts.append(str(event.dagster_event) if event.dagster_event else "")
    metas = _raw_meta(tmp_path)
    texts += [json.dumps(meta) for meta in metas]
    assert [t for t in texts if SECRET in t] == []
    # ... and the checks had something to look at: urllib3's request lines, both payloads.
    assert [line for line in ours if "/query?function=TIME_SERIES_INTRADAY" in line]
    assert len(metas) == 2 * len(us.universe)
    assert {(m["provider"], m["request"]["endpoint"]) for m in metas} == {
        ("alpha_vantage", "query")
    }
    assert {m["request"]["function"] for m in metas} == set(AV_CALLS)
    assert not [m for m in metas if "apikey" in m["request"]]


# --- yfinance ------------------------------------------------------------------------------------


class SimulatedYahoo(FakeYahoo):
    """FakeYahoo (cookie, crumb, consent, 404 for unknown symbols) whose chart answers come from
    the simulated market: the v8 chart of the requested symbol, interval and period."""

    def __init__(self, server: HTTPServer, market: Market) -> None:
        super().__init__(server)
        self.market = market

    def _chart(self, request: Request) -> Response:
        self.chart_requests.append(request)
        args = dict(request.args.items())
        if args.get("crumb") != CRUMB:
            body = b'{"finance":{"result":null,"error":{"code":"Unauthorized","description":"Invalid Crumb"}}}'  # noqa: E501
            return Response(body, status=401, content_type="application/json")
        yahoo_symbol = urllib.parse.unquote(request.path.rsplit("/", 1)[-1])
        symbol = canonical_symbol(yahoo_symbol)
        interval = {"5m": "5min", "1d": "1day"}.get(args.get("interval", ""))
        if symbol not in self.market.universe or interval is None:
            return Response(NOT_FOUND, status=404, content_type="application/json")
        start = dt.datetime.fromtimestamp(int(args["period1"]), dt.UTC)
        end = dt.datetime.fromtimestamp(int(args["period2"]), dt.UTC)
        frame = SimulatedMarket().bars(BarRequest(self.market, [symbol], interval, start, end))
        # Yahoo's stamps: the bar's start (5m), the session's open (1d), epoch seconds.
        stamps = [int(ts.timestamp()) for ts in frame.get_column("ts").to_list()]
        quote = {
            name: frame.get_column(name).to_list()  # floats and ints, as Yahoo's JSON has them
            for name in ("open", "high", "low", "close", "volume")
        }
        daily = interval == "1day"
        body = chart_body(
            yahoo_symbol,
            stamps,
            granularity=args["interval"],
            currency=self.market.currency,
            timezone=self.market.timezone,
            quote=quote,
            adjclose=[round(c * ADJ_FACTOR, 4) for c in quote["close"]] if daily else None,
        )
        return Response(body, content_type="application/json")


def test_yfinance_provider_end_to_end(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_url: str,
    us: Market,
    httpserver: HTTPServer,
    simulated: dict[str, list[tuple[Any, ...]]],
    request: pytest.FixtureRequest,
) -> None:
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    assert "_loopback_only" in request.fixturenames  # nothing may leave 127.0.0.1
    yahoo = SimulatedYahoo(httpserver, us)
    _provider_env(monkeypatch, tmp_path, pg_url, "yfinance")
    monkeypatch.setenv("YFINANCE_BASE_URL", base_url(httpserver))
    monkeypatch.setenv("YFINANCE_CALLS_PER_MINUTE", "600")
    monkeypatch.setenv("YFINANCE_CACHE_DIR", str(tmp_path / "yfinance-cache"))
    results = run_market(_defs(us), us, DAY, dg.DagsterInstance.ephemeral())
    assert all(r.success for r in results)

    # One chart call per symbol per interval, for exactly the partitions' windows, each with the
    # crumb yfinance's data layer minted (the call went through yfinance).
    open_, close = us.session_bounds(DAY[0])
    midnight = dt.datetime.combine(DAY[0], dt.time(), us.tz)
    windows = {"5m": (open_, close), "1d": (midnight, midnight + dt.timedelta(days=1))}
    assert [(call.path, dict(call.args.items())) for call in yahoo.chart_requests] == [
        (
            f"/v8/finance/chart/{to_yahoo(symbol)}",
            {
                "period1": str(math.floor(windows[interval][0].timestamp())),
                "period2": str(math.ceil(windows[interval][1].timestamp())),
                "interval": interval,
                "includePrePost": "false",
                "events": "div,splits,capitalGains",
                "crumb": CRUMB,
            },
        )
        for interval in ("5m", "1d")
        for symbol in us.universe
    ]

    warehouse = _warehouse(pg_url)
    assert _bars(warehouse["bars_5min"]) == _bars(simulated["bars_5min"])
    assert _bars(warehouse["daily_bars"]) == _bars(simulated["daily_bars"])
    # adj_close: Yahoo's adjclose for daily bars (served != close), none intraday.
    assert [row[7] for row in warehouse["daily_bars"]] == [
        round(row[5] * ADJ_FACTOR, 4) for row in simulated["daily_bars"]
    ]
    assert {row[7] for row in warehouse["bars_5min"]} == {None}
    assert _quarantined(pg_url) == 0

    metas = _raw_meta(tmp_path)
    assert len(metas) == 2 * len(us.universe)
    assert {(m["provider"], m["request"]["endpoint"]) for m in metas} == {
        ("yfinance", "v8/finance/chart")
    }
