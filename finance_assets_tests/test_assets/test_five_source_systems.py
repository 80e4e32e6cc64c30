"""The five source systems in one code location, at their real size (issue 22, item 6).

One environment, one `Definitions` (`build_defs`, as `dagster dev` loads it), every provider
a loopback stand-in answering from the real recorded bodies of `../shared/samples/`, each body a
template with the symbol, the dates and the number of bars filled in:

- the US daily S&P 500 (503 symbols) from Alpha Vantage (`TIME_SERIES_DAILY`, the MSFT sample);
- the London daily FTSE 100 (100 symbols) from yfinance (the v8 chart, the OCDO.L sample);
- 20 sessions of US 5-minute bars, the whole S&P 500, from Twelve Data (batches of 120, the
  AAPL `/time_series` sample's values in turn), every payload staged in MongoDB (nx-27017);
- the hourly posts of X's recent search (the two recorded pages, with the fields the client
  asks for), scored and joined to the daily summary;
- ±1 % price alerts from the 5-minute bars, delivered to Slack (`chat.postMessage`, Slack's
  own answer) and to the signed price-alert webhook.

Posts are London's 100 companies, not the S&P 500's 503: X's recent search allows 450
requests per 15 minutes, and two pages for each of 503 companies (1,006 requests) spend that
window twice over: the client waits out each reset (up to `X_MAX_WAIT_SECONDS`, 900 s; a
later reset is refused, `RateLimited`), half an hour and more for one hour of posts. 100
companies (200 requests) fit one window. The stand-in counts the window down in the
`x-rate-limit-*` headers as X does, and the test checks the requests stayed within it.

Then the lake, the warehouse, MongoDB and the notices are checked against what the stand-ins
served, counted here and not read back from the pipeline: rows per market and table, the lake
and the warehouse agreeing, MongoDB holding the raw zone's bodies byte for byte, each alert
(found here from the served bars) delivered once on each channel and never again.
"""

from __future__ import annotations

import copy
import datetime as dt
import hmac
import json
import threading
import urllib.parse
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bson
import dagster as dg
import polars as pl
import psycopg
import pytest
from dagster._core.test_utils import freeze_time
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from finance_assets.defs.warehouse.alerts import notify_new_alerts
from finance_assets.demo import range_tags, run_market
from finance_assets.launch import failure_reasons, run_job
from finance_assets.lib import clock, notify
from finance_assets.lib.io import mongo
from finance_assets.lib.io.mongo import MongoRawStore
from finance_assets.lib.markets import Market, markets_from_env
from finance_assets.providers.alpha_vantage.client import canonical_symbol as av_canonical
from finance_assets.providers.yfinance.client import canonical_symbol as yahoo_canonical
from finance_assets_tests.conftest import fresh_database
from finance_assets_tests.test_providers.test_yahoo import (  # noqa: F401 (autouse fixtures)
    CRUMB,
    FakeYahoo,
    _loopback_only,
    _yfinance_cache,
    base_url,
)

AV_KEY = "av-key-5sys-SECRET"
TD_KEY = "td-key-5sys-SECRET"
X_TOKEN = "x-bearer-5sys-SECRET"
SLACK_TOKEN = "xoxb-5sys-SECRET-token"
HOOK_SECRET = "whsec-5sys-SECRET"
HOOK = "/hooks/price-alerts"
US_SESSIONS = 20
UK_SESSIONS = 3  # the posts of 3 sessions and the night before them: within search's 7 days
# The moves the Twelve Data stand-in puts into the last US session, from its middle bar on:
# AAPL 2 % up and MSFT 2 % down (an alert against the bar before and against the previous
# close each), everything else within a fraction of a percent.
MOVES = {"AAPL": 1.02, "MSFT": 0.98}
TD_FORMAT = "%Y-%m-%d %H:%M:%S"
Bar = tuple[dt.datetime, float, float, float, float, int]  # start, open, high, low, close, volume


# --- the stand-ins --------------------------------------------------------------------------


def _sample(samples: Path, name: str) -> Any:
    return json.loads((samples / name).read_text())


class AlphaVantage:
    """`/query?function=TIME_SERIES_DAILY`: the recorded MSFT body with the symbol and the
    latest 100 sessions (`compact`; `full`: since the first daily partition) filled in, each
    session with the sample's prices, newest first, HTTP 200 as Alpha Vantage answers."""

    def __init__(self, samples: Path, market: Market, last_session: dt.date) -> None:
        self.template = _sample(samples, "alphavantage/av_daily_MSFT_2017-08-11.json")
        self.market = market
        # The sessions closed by the run (once: the calendar's per-day lookups add up at 503).
        self.sessions = market.sessions(dt.date.fromisoformat(market.daily_start), last_session)
        self.served: dict[str, list[dt.date]] = {}
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        args = dict(request.args.items())
        if args.get("apikey") != AV_KEY or args.get("function") != "TIME_SERIES_DAILY":
            error = {"Error Message": "the parameter apikey is invalid or missing."}
            return Response(json.dumps(error), content_type="application/json")
        sessions = self.sessions
        if args.get("outputsize") == "compact":
            sessions = sessions[-100:]
        body = copy.deepcopy(self.template)
        (prices,) = body["Time Series (Daily)"].values()
        body["Meta Data"]["2. Symbol"] = args["symbol"]
        body["Meta Data"]["3. Last Refreshed"] = sessions[-1].isoformat()
        body["Time Series (Daily)"] = {day.isoformat(): prices for day in reversed(sessions)}
        with self.lock:
            self.served[av_canonical(args["symbol"])] = sessions
        return Response(json.dumps(body, indent="\t"), content_type="application/json")


class TwelveData:
    """`/time_series` batches: per symbol, the recorded AAPL body with its `meta` for the symbol
    and 5-minute values for every regular-session bar asked for, the sample's values taken in
    turn (strings, newest first, exchange-local `datetime`), `MOVES` applied in the last
    session; a batch answer is keyed by symbol, as Twelve Data's is."""

    def __init__(self, samples: Path, market: Market, last_session: dt.date) -> None:
        self.template = _sample(samples, "twelvedata/td_time_series_AAPL_1min_2023-08-24.json")
        self.market = market
        self.last_session = last_session
        self.bars: dict[str, list[Bar]] = {}
        self.calls: list[int] = []
        self.cache: dict[tuple[Any, ...], tuple[str, list[Bar]]] = {}
        self.lock = threading.Lock()

    def _values(self, starts: list[dt.datetime], factor: float) -> tuple[str, list[Bar]]:
        """The `values` array (JSON text, newest first) for `starts`, `factor` applied from the
        last session's middle bar on, and the bars it holds."""
        key = (starts[0], starts[-1], len(starts), factor)
        if key in self.cache:
            return self.cache[key]
        values = self.template["values"]
        last_open, _ = self.market.session_bounds(self.last_session)
        last_bars = [t for t in starts if t >= last_open]
        jump = last_bars[len(last_bars) // 2] if last_bars else None
        rows, served = [], []
        for k, start in enumerate(starts):
            value = dict(values[k % len(values)])
            scale = factor if jump is not None and start >= jump else 1.0
            for name in ("open", "high", "low", "close"):
                value[name] = f"{float(value[name]) * scale:.5f}"
            value["datetime"] = start.astimezone(self.market.tz).strftime(TD_FORMAT)
            rows.append(value)
            prices = (float(value[n]) for n in ("open", "high", "low", "close"))
            served.append((start, *prices, int(value["volume"])))
        self.cache[key] = (json.dumps(rows[::-1], separators=(",", ":")), served)
        return self.cache[key]

    def __call__(self, request: Request) -> Response:
        args = dict(request.args.items())
        if request.headers.get("Authorization") != f"apikey {TD_KEY}":
            error = {"code": 401, "message": "apikey is invalid", "status": "error"}
            return Response(json.dumps(error), status=401, content_type="application/json")
        assert args["interval"] == "5min" and args["timezone"] == "Exchange", args
        tz = self.market.tz
        start = dt.datetime.strptime(args["start_date"], TD_FORMAT).replace(tzinfo=tz)
        end = dt.datetime.strptime(args["end_date"], TD_FORMAT).replace(tzinfo=tz)
        starts = self.market.bar_starts(start, end + dt.timedelta(seconds=1))
        symbols = args["symbol"].split(",")
        series = {}
        for symbol in symbols:
            values, served = self._values(starts, MOVES.get(symbol, 1.0))
            meta = json.dumps({**self.template["meta"], "symbol": symbol, "interval": "5min"})
            series[symbol] = f'{{"meta":{meta},"values":{values},"status":"ok"}}'
            with self.lock:
                self.bars[symbol] = served
        with self.lock:
            self.calls.append(len(symbols))
        # Compact, as Twelve Data sends it; a batch answer keyed by symbol.
        if len(symbols) == 1:
            body = series[symbols[0]]
        else:
            body = "{" + ",".join(f"{json.dumps(s)}:{series[s]}" for s in symbols) + "}"
        return Response(body, content_type="application/json")


class Yahoo(FakeYahoo):
    """FakeYahoo's cookie, crumb and consent, and a daily chart per symbol: the recorded OCDO.L
    body with the symbol and one stamp per session of the period (the session's open, as
    Yahoo stamps daily bars), each with the sample's prices in pence."""

    def __init__(self, server: HTTPServer, samples: Path, market: Market) -> None:
        super().__init__(server)
        self.template = _sample(
            samples, "yahoo/yahoo_chart_OCDO.L_1d_2020-01-01_to_2020-01-03.json"
        )
        self.market = market
        self.served: dict[str, list[dt.date]] = {}

    def _chart(self, request: Request) -> Response:
        self.chart_requests.append(request)
        args = dict(request.args.items())
        if args.get("crumb") != CRUMB or args.get("interval") != "1d":
            return Response(b'{"chart":{"result":null,"error":{}}}', status=400)
        yahoo_symbol = urllib.parse.unquote(request.path.rsplit("/", 1)[-1])
        start = dt.datetime.fromtimestamp(int(args["period1"]), dt.UTC)
        end = dt.datetime.fromtimestamp(int(args["period2"]), dt.UTC)
        tz = self.market.tz
        sessions = [
            day
            for day in self.market.sessions(start.astimezone(tz).date(), end.astimezone(tz).date())
            if start <= self.market.session_bounds(day)[0] < end
        ]
        body = copy.deepcopy(self.template)
        result = body["chart"]["result"][0]
        result["meta"]["symbol"] = yahoo_symbol
        result["timestamp"] = [
            int(self.market.session_bounds(day)[0].timestamp()) for day in sessions
        ]
        quote = result["indicators"]["quote"][0]
        for name, values in quote.items():
            quote[name] = values[:1] * len(sessions)
        adjclose = result["indicators"]["adjclose"][0]
        adjclose["adjclose"] = adjclose["adjclose"][:1] * len(sessions)
        self.served[yahoo_canonical(yahoo_symbol)] = sessions
        return Response(json.dumps(body, indent=1), content_type="application/json")


class XSearch:
    """`/2/tweets/search/recent`: the two recorded pages of posts for every company (the first
    with its `next_token`, the second without), each post with the company's cashtag for the
    sample's search term, an id of its own and the fields the client asks for (`created_at`
    spread over the window asked for, `lang`, `public_metrics`); the rate-limit headers count
    450 requests per 15-minute window down, as X's do."""

    LIMIT = 450

    def __init__(self, samples: Path, market: Market) -> None:
        folder = "x_twitter"
        self.pages = [
            _sample(samples, f"{folder}/x_search_recent_tweets_tweepy.json"),
            _sample(samples, f"{folder}/x_search_recent_tweets_tweepy_2.json"),
        ]
        self.market = market
        self.by_query: dict[str, list[str]] = defaultdict(list)
        for symbol in market.universe:
            self.by_query[market.posts_query(symbol)].append(symbol)
        self.posts: dict[str, list[dt.datetime]] = defaultdict(list)
        self.requests = 0
        self.window_start = dt.datetime.now(dt.UTC)
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Response:
        if request.headers.get("Authorization") != f"Bearer {X_TOKEN}":
            body = {"title": "Unauthorized", "type": "about:blank", "status": 401}
            return Response(json.dumps(body), status=401, content_type="application/json")
        args = dict(request.args.items())
        assert set(args["tweet.fields"].split(",")) >= {"created_at", "public_metrics"}, args
        start = dt.datetime.fromisoformat(args["start_time"])
        end = dt.datetime.fromisoformat(args["end_time"])
        page = 1 if args.get("next_token") else 0
        with self.lock:
            self.requests += 1
            remaining = self.LIMIT - self.requests
            # Companies with the same search (two share classes) are searched one after the
            # other: the n-th search of a query is its n-th company.
            companies = self.by_query[args["query"]]
            per_company = sum(len(p["data"]) for p in self.pages)
            symbol = next((s for s in companies if len(self.posts[s]) < per_company), companies[-1])
            index = self.market.universe.index(symbol)
        document = copy.deepcopy(self.pages[page])
        count = sum(len(p["data"]) for p in self.pages)
        created = []
        for k, post in enumerate(document["data"]):
            position = page * len(self.pages[0]["data"]) + k
            at = start + (end - start) * (count - position - 0.5) / count  # newest first
            at = at.replace(microsecond=0)
            created.append(at)
            post["id"] = f"{post['id']}{index:04d}"
            post["edit_history_tweet_ids"] = [post["id"]]
            post["text"] = post["text"].replace("tweepy", f"${symbol.split('.')[0]}")
            post["created_at"] = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")
            post["lang"] = "en"
            post["public_metrics"] = {
                "retweet_count": k,
                "reply_count": 0,
                "like_count": 2 * k,
                "quote_count": 0,
                "impression_count": 100 + k,
            }
        meta = document["meta"]
        meta.update(newest_id=document["data"][0]["id"], oldest_id=document["data"][-1]["id"])
        meta["result_count"] = len(document["data"])
        meta.pop("next_token", None)
        if page == 0:
            meta["next_token"] = f"page-2-{index}"
        with self.lock:
            self.posts[symbol].extend(created)
        reset = int((self.window_start + dt.timedelta(minutes=15)).timestamp())
        headers = {
            "x-rate-limit-limit": str(self.LIMIT),
            "x-rate-limit-remaining": str(max(remaining, 0)),
            "x-rate-limit-reset": str(reset),
        }
        return Response(
            json.dumps(document, indent=1), headers=headers, content_type="application/json"
        )


# --- what the pipeline should have made of it, found here ----------------------------------


def _expected_alerts(
    bars: dict[str, list[Bar]],
    market: Market,
    threshold_pct: float,
) -> set[tuple[str, dt.datetime, str]]:
    """(symbol, bar start, kind) of every move of at least the threshold: a bar's close against
    the bar before it in its session, and against the previous session's close where that
    session was served, once per crossing (inside -> beyond)."""
    limit = threshold_pct / 100
    found = set()
    for symbol, rows in bars.items():
        sessions: dict[dt.date, list[tuple[dt.datetime, float]]] = defaultdict(list)
        for start, _o, _h, _l, close, _v in rows:
            sessions[start.astimezone(market.tz).date()].append((start, close))
        for day, day_bars in sessions.items():
            previous = sessions.get(market.previous_session(day))
            before = 0
            for k, (start, close) in enumerate(day_bars):
                if k and abs(close / day_bars[k - 1][1] - 1) >= limit:
                    found.add((symbol, start, "vs_prev_bar"))
                if previous is None:
                    continue
                change = close / previous[-1][1] - 1
                state = 1 if change >= limit else -1 if change <= -limit else 0
                if state and state != before:
                    found.add((symbol, start, "vs_prev_close"))
                before = state
    return found


def _count(url: str, schema: str, table: str, where: str = "TRUE") -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {schema}.{table} WHERE {where}").fetchone()[0]


def _lake_rows(data: Path, market: str, table: str) -> int:
    files = sorted((data / "lake" / market / table).glob("dt=*/*.parquet"))
    return sum(pl.read_parquet(f).height for f in files)


def _raw_bodies(data: Path, market: str, asset: str) -> list[bytes]:
    """The current (not set-aside) payload bodies of an asset in the raw zone."""
    folder = data / "raw" / market / asset
    return sorted(
        path.read_bytes()
        for path in folder.glob("dt=*/*")
        if path.is_file() and not path.name.endswith(".meta.json")
    )


# --- the test -------------------------------------------------------------------------------


@pytest.fixture
def warehouse_url(pg_server_url: str) -> Iterator[str]:
    with fresh_database(pg_server_url, "finance_five") as url:
        yield url


def test_five_source_systems_in_one_code_location(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    warehouse_url: str,
    mongo_uri: str,
    httpserver: HTTPServer,
    samples: Path,
    request: pytest.FixtureRequest,
) -> None:
    assert "_loopback_only" in request.fixturenames  # nothing may leave 127.0.0.1
    data = tmp_path / "data"
    server = base_url(httpserver)
    environment = {
        "FINANCE_DATA_DIR": str(data),
        "FINANCE_PG_URL": warehouse_url,
        "FINANCE_MARKETS": "us,uk",
        "FINANCE_UNIVERSE_US": "sp500",
        "FINANCE_UNIVERSE_UK": "ftse100",
        "MARKET_DATA_PROVIDER_US_DAILY": "alpha_vantage",
        "MARKET_DATA_PROVIDER_UK_DAILY": "yfinance",
        "MARKET_DATA_PROVIDER_US_5MIN": "twelve_data",
        "ALPHAVANTAGE_API_KEY": AV_KEY,
        "ALPHAVANTAGE_BASE_URL": server,
        # A premium plan's figures: the free 25 calls a day refuse 503 symbols before a call.
        "ALPHAVANTAGE_CALLS_PER_MINUTE": "600",
        "ALPHAVANTAGE_CALLS_PER_DAY": "100000",
        "TWELVEDATA_API_KEY": TD_KEY,
        "TWELVEDATA_BASE_URL": server,
        # 503 credits in one run: a minute's worth on a paid plan; the free 800 a day suffice.
        "TWELVEDATA_CREDITS_PER_MINUTE": "610",
        "YFINANCE_BASE_URL": server,
        "YFINANCE_CALLS_PER_MINUTE": "600",
        "YFINANCE_CACHE_DIR": str(tmp_path / "yfinance-cache"),
        "MONGODB_URI": mongo_uri,
        "MONGODB_DATABASE": "five_systems",
        "POSTS_PROVIDER": "x_api",
        "X_BEARER_TOKEN": X_TOKEN,
        "X_API_BASE_URL": server,
        "SLACK_BOT_TOKEN": SLACK_TOKEN,
        "SLACK_CHANNEL": "C1H9RESGL",
        "SLACK_API_URL": f"{server}/api/",
        "PRICE_ALERT_WEBHOOK_URL": f"{server}{HOOK}",
        "PRICE_ALERT_WEBHOOK_SECRET": HOOK_SECRET,
        "FINANCE_PRICE_MOVE_PCT": "1",
    }
    for name in ("FINANCE_SIM_FAULT_RATE", "FINANCE_ENV", "MARKET_DATA_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    from finance_assets.definitions import build_defs

    defs = build_defs()  # ONE code location, from this environment
    markets = markets_from_env()
    us, uk = markets["us"], markets["uk"]
    assert (len(us.universe), len(uk.universe)) == (503, 100)
    now = dt.datetime.now(dt.UTC)
    us_sessions = clock.complete_sessions(us, US_SESSIONS, now)
    uk_sessions = clock.complete_sessions(uk, UK_SESSIONS, now)

    alpha_vantage = AlphaVantage(samples, us, us_sessions[-1])
    twelve_data = TwelveData(samples, us, us_sessions[-1])
    x_search = XSearch(samples, uk)
    httpserver.expect_request("/query").respond_with_handler(alpha_vantage)
    httpserver.expect_request("/time_series").respond_with_handler(twelve_data)
    yahoo = Yahoo(httpserver, samples, uk)
    httpserver.expect_request("/2/tweets/search/recent").respond_with_handler(x_search)
    slack_ok = (samples / "slack" / "slack_chat_postMessage_ok.json").read_text()
    httpserver.expect_request("/api/chat.postMessage", method="POST").respond_with_data(
        slack_ok, content_type="application/json"
    )
    httpserver.expect_request(HOOK, method="POST").respond_with_data("", status=204)

    # New York: 20 sessions of 5-minute bars (Twelve Data), then the daily assets (Alpha
    # Vantage's daily bars), as `make demo` runs a market.
    instance = dg.DagsterInstance.ephemeral()
    # The 5-minute run delivers the alerts it finds itself (price_moves' success hook), judging
    # their age by Dagster's clock: set at the last session's close, as the tick after it, so
    # the test does not depend on the hour it runs at (a run long after would leave them stale).
    at = us.session_bounds(us_sessions[-1])[1] + dt.timedelta(minutes=5)
    with freeze_time(at):
        us_runs = run_market(defs, us, us_sessions, instance)
    assert us_runs.success, [failure_reasons(r) for r in us_runs]
    # London: the daily pipeline only (no 5-minute job): the hourly posts, then the daily
    # assets from yfinance's daily bars, the sentiment joined.
    for job, keys in (
        ("uk_posts_job", clock.posts_range(uk, uk_sessions, now)),
        ("uk_daily_job", (uk_sessions[0].isoformat(), uk_sessions[-1].isoformat())),
    ):
        result = run_job(defs, job, instance, tags=range_tags(*keys))
        assert result.success, failure_reasons(result)

    # --- the calls: one provider per market and interval ---------------------------------
    assert sorted(alpha_vantage.served) == sorted(us.universe)
    assert sum(twelve_data.calls) == len(us.universe) and max(twelve_data.calls) == 120
    assert sorted(twelve_data.bars) == sorted(us.universe)
    assert sorted(yahoo.served) == sorted(uk.universe)
    assert sorted(x_search.posts) == sorted(uk.universe)
    assert x_search.requests == 2 * len(uk.universe) <= XSearch.LIMIT

    # --- the warehouse: rows per market and table, from what was served --------------------
    bars_5min = sum(len(rows) for rows in twelve_data.bars.values())
    per_session = {day: len(us.bar_starts(*us.session_bounds(day))) for day in us_sessions}
    assert bars_5min == len(us.universe) * sum(per_session.values())
    us_daily = sum(
        len([d for d in days if d in us_sessions]) for days in alpha_vantage.served.values()
    )
    assert us_daily == len(us.universe) * US_SESSIONS
    uk_daily = sum(len([d for d in days if d in uk_sessions]) for days in yahoo.served.values())
    assert uk_daily == len(uk.universe) * UK_SESSIONS
    posts_by_day = Counter()
    # A post counts toward the first session closing at or after it: those before the close of
    # the session before the first (asked for from its midnight) count toward that one.
    before = uk.previous_session(uk_sessions[0])
    closes = [(uk.session_bounds(day)[1], day) for day in [before, *uk_sessions]]
    for symbol, moments in x_search.posts.items():
        for moment in moments:
            day = next((d for close, d in closes if moment <= close), None)
            if day in uk_sessions:
                posts_by_day[(symbol, day)] += 1
    alerts = _expected_alerts(twelve_data.bars, us, 1.0)
    assert {(s, kind) for s, _, kind in alerts} >= {
        (s, kind) for s in MOVES for kind in ("vs_prev_bar", "vs_prev_close")
    }
    expected = {
        ("us", "bars_5min"): bars_5min,
        ("us", "daily_bars"): us_daily,
        ("us", "daily_summary"): len(us.universe) * US_SESSIONS,
        ("us", "price_alerts"): len(alerts),
        ("uk", "daily_bars"): uk_daily,
        ("uk", "daily_summary"): len(uk.universe) * UK_SESSIONS,
        ("uk", "daily_sentiment"): len(posts_by_day),
        ("uk", "stock_sentiment_daily"): len(uk.universe) * UK_SESSIONS,
    }
    counted = {(m, t): _count(warehouse_url, m, t) for m, t in expected}
    assert counted == expected
    assert _count(warehouse_url, "us", "quarantine") == 0
    assert _count(warehouse_url, "uk", "quarantine") == 0
    # US summaries from the 5-minute bars, with a VWAP; London's from the daily bars, without.
    assert _count(warehouse_url, "us", "daily_summary", "bar_count = 0 OR vwap IS NULL") == 0
    assert _count(warehouse_url, "uk", "daily_summary", "bar_count > 0 OR vwap IS NOT NULL") == 0
    with psycopg.connect(warehouse_url) as conn:
        joined = conn.execute(
            "SELECT symbol, trading_date, post_count FROM uk.stock_sentiment_daily"
        ).fetchall()
        found = {
            (symbol, day, kind)
            for symbol, day, kind in conn.execute("SELECT symbol, ts, kind FROM us.price_alerts")
        }
    assert {(s, d): n for s, d, n in joined if n} == dict(posts_by_day)
    assert found == alerts

    # --- the lake agrees with the warehouse (the bars; the rest is the warehouse's) ---------
    lake_tables = {(m.parent.name, m.name) for m in (data / "lake").glob("*/*")}
    assert lake_tables == {("us", "bars_5min"), ("us", "daily_bars"), ("uk", "daily_bars")}
    for market, table in lake_tables:
        assert _lake_rows(data, market, table) == counted[(market, table)], (market, table)

    # --- MongoDB holds the raw zone's payloads, byte for byte ------------------------------
    store = MongoRawStore(mongo_uri, "five_systems")
    try:
        for market, asset in (
            ("us", "raw_intraday_quotes"),
            ("us", "raw_daily_quotes"),
            ("uk", "raw_daily_quotes"),
            ("uk", "raw_posts"),
        ):
            raw = _raw_bodies(data, market, asset)
            assert raw and sorted(store.bodies((market, asset))) == raw, (market, asset)
        # Each document within MongoDB's 16 MiB, which a real server enforces (nx-27017 does
        # not): the 5-minute batches (~23 MB of JSON each) are stored compressed.
        sizes = [len(bson.encode(doc)) for doc in store.collection.find()]
        assert max(sizes) <= mongo.MAX_DOCUMENT
        assert max(len(body) for body in _raw_bodies(data, "us", "raw_intraday_quotes")) > (
            mongo.MAX_DOCUMENT
        )
    finally:
        store.close()
    assert len(_raw_bodies(data, "us", "raw_intraday_quotes")) == len(twelve_data.calls)

    # --- the alerts, delivered once each on both channels ----------------------------------
    # The run sent the fresh ones (within 6 hours of `at`) and recorded the older ones as
    # stale; the price-alert sensor, the retry path, finds nothing left on either channel.
    with dg.build_resources({"notifier": defs.resources["notifier"]}) as resources:
        notifier = resources.notifier
    fresh = {a for a in alerts if a[1] >= at - dt.timedelta(hours=6)}
    assert {a[0] for a in fresh} >= set(MOVES)
    again = notify_new_alerts(warehouse_url, us, notifier, at + dt.timedelta(minutes=1))
    assert again == {"sent": 0, "skipped": 0, "failed": 0}
    slack = [
        json.loads(req.get_data())
        for req, _ in httpserver.log
        if req.path == "/api/chat.postMessage"
    ]
    hooks = [(req, json.loads(req.get_data())) for req, _ in httpserver.log if req.path == HOOK]
    ids = [f"us:{s}:{t.isoformat()}:{k}" for s, t, k in sorted(fresh)]
    assert sorted(body["data"]["id"] for _, body in hooks) == sorted(ids)  # once each
    assert len(slack) == len(fresh)
    # Slack's title line, "<icon> *AAPL +2.00% vs the previous close (us)*": one per alert.
    moved = {"vs_prev_close": "vs the previous close", "vs_prev_bar": "in one bar"}
    titles = Counter(
        (m["text"].splitlines()[0].split("*")[1].split(" ")[0], kind)
        for m in slack
        for kind, words in moved.items()
        if words in m["text"].splitlines()[0]
    )
    assert titles == Counter((symbol, kind) for symbol, _, kind in fresh)
    for symbol, factor in MOVES.items():
        sign = "+" if factor > 1 else "-"
        lines = [m["text"].splitlines()[0] for m in slack if f"*{symbol} " in m["text"]]
        assert lines and all(f"*{symbol} {sign}" in line for line in lines), lines
    for req, _ in hooks:
        stamp = req.headers[notify.TIMESTAMP_HEADER]
        signed = hmac.new(HOOK_SECRET.encode(), f"{stamp}.".encode() + req.get_data(), "sha256")
        assert req.headers[notify.SIGNATURE_HEADER] == f"sha256={signed.hexdigest()}"
    assert all(SLACK_TOKEN not in json.dumps(m) for m in slack)
