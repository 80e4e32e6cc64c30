"""Twelve Data's `/splits` and `/dividends` through `TwelveDataClient.fetch_actions`, against a
local stand-in answering the constructed bodies of `twelve_data_actions/` (documented shapes,
the companies' real actions: README.source.txt there).

The expected actions are written out here from the companies' published splits and dividends,
not computed by the parser; the credits from Twelve Data's documented weight (20 a symbol)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from finance_assets.lib import answers
from finance_assets.lib.clean_step import clean_window
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import RawPayload
from finance_assets.lib.providers.budget import BudgetExceeded
from finance_assets.lib.providers.http import AuthenticationFailed, InvalidSymbol
from finance_assets.lib.transforms import corporate_actions as ca
from finance_assets.providers.simulated_market import SimulatedMarket
from finance_assets.providers.twelve_data.parser import ACTIONS_FORMAT, parse_twelve_data_actions
from finance_assets_tests.test_providers.test_http import API_KEY, FakeTime, base_url, td_client

BODIES = Path(__file__).parent / "twelve_data_actions"
NOW = dt.datetime(2026, 3, 2, 15, 0, 20, tzinfo=dt.UTC)


def _body(name: str) -> dict:
    return json.loads((BODIES / name).read_text())


def stand_in(
    seen: list[dict[str, str]], *, plan_error: bool = False, status: int = 200, key: str = API_KEY
):
    """Twelve Data's /splits and /dividends: the recorded lists filtered to the request's
    start_date..end_date (inclusive, as documented); with `plan_error`, the answer a key
    without the Grow plan gets."""

    def handler(request: Request) -> Response:
        args = dict(request.args)
        endpoint = request.path.strip("/")
        seen.append({"endpoint": endpoint, **args})
        if request.headers.get("Authorization") != f"apikey {key}":
            return Response('{"code":401,"message":"bad key","status":"error"}', status=401)
        if plan_error:
            body = _body("error_403_plan.json")
            body["message"] = body["message"].replace("/splits", f"/{endpoint}")
            return Response(json.dumps(body), status=status, content_type="application/json")
        path = BODIES / f"{endpoint}_{args['symbol']}.json"
        if not path.exists():
            return Response(
                json.dumps({"code": 404, "message": "symbol not found", "status": "error"}),
                status=404,
                content_type="application/json",
            )
        body = json.loads(path.read_text())
        date_key = "date" if endpoint == "splits" else "ex_date"
        body[endpoint] = [
            entry
            for entry in body[endpoint]
            if args["start_date"] <= entry[date_key] <= args["end_date"]
        ]
        return Response(json.dumps(body), content_type="application/json")

    return handler


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return FakeTime(NOW, monkeypatch)


@pytest.fixture(scope="module")
def us_2020(us: Market) -> Market:
    return dataclasses.replace(us, daily_start="2020-01-02", intraday_start="2020-01-02")


def _window(market: Market, first: str, last: str) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(dt.date.fromisoformat(first), dt.time(), market.tz)
    end = dt.datetime.combine(dt.date.fromisoformat(last), dt.time(), market.tz)
    return start, end + dt.timedelta(days=1)


def test_one_call_per_symbol_and_endpoint_with_the_window_and_the_real_actions(
    httpserver: HTTPServer, fake: FakeTime, us_2020: Market
):
    seen: list[dict[str, str]] = []
    for endpoint in ("splits", "dividends"):
        httpserver.expect_request(f"/{endpoint}").respond_with_handler(stand_in(seen))
    client = td_client(base_url(httpserver), fake, credits_per_minute=800)
    start, end = _window(us_2020, "2020-08-03", "2020-09-04")
    payloads = client.fetch_actions(us_2020, ["AAPL", "TSLA"], start, end)

    assert [(c["endpoint"], c["symbol"], c["start_date"], c["end_date"]) for c in seen] == [
        ("splits", "AAPL", "2020-08-03", "2020-09-04"),
        ("dividends", "AAPL", "2020-08-03", "2020-09-04"),
        ("splits", "TSLA", "2020-08-03", "2020-09-04"),
        ("dividends", "TSLA", "2020-08-03", "2020-09-04"),
    ]
    assert all(p.format == ACTIONS_FORMAT and p.provider == "twelve_data" for p in payloads)
    assert [p.symbols for p in payloads] == [("AAPL",), ("AAPL",), ("TSLA",), ("TSLA",)]
    # Kept as received: the stand-in's bytes.
    assert json.loads(payloads[0].body)["splits"][0]["description"] == "4-for-1 split"
    assert len({p.payload_id for p in payloads}) == 4
    assert API_KEY not in json.dumps([p.request for p in payloads])

    read = ca.actions_from_payloads(payloads)
    got = {
        (r["ex_date"].isoformat(), r["symbol"], r["kind"], r["ratio"], r["amount"])
        for r in read.actions.iter_rows(named=True)
    }
    assert got == {
        ("2020-08-31", "AAPL", "split", 4.0, None),
        ("2020-08-07", "AAPL", "dividend", None, 0.82),
        ("2020-08-31", "TSLA", "split", 5.0, None),
    }
    assert read.silent == set() and read.unreadable == {}

    plan = client.plan_actions(us_2020, ["AAPL", "TSLA"], start, end)
    assert (plan.calls, plan.cost) == (4, 80)  # 20 credits a symbol per endpoint


def test_a_london_symbol_is_asked_on_the_lse_and_answered_under_its_canonical_name(
    httpserver: HTTPServer, fake: FakeTime, uk: Market
):
    seen: list[dict[str, str]] = []

    def handler(request: Request) -> Response:
        seen.append(dict(request.args))
        meta = {"symbol": "BT.A", "exchange": "LSE", "mic_code": "XLON", "currency": "GBp"}
        return Response(
            json.dumps({"meta": meta, "dividends": [{"ex_date": "2024-06-27", "amount": 5.6}]})
        )

    httpserver.expect_request("/dividends").respond_with_handler(handler)
    httpserver.expect_request("/splits").respond_with_json(
        {"meta": {"symbol": "BT.A"}, "splits": []}
    )
    client = td_client(base_url(httpserver), fake, credits_per_minute=800)
    start, end = _window(uk, "2024-06-24", "2024-06-28")
    payloads = client.fetch_actions(uk, ["BT.A.L"], start, end)
    assert seen == [
        {"symbol": "BT.A", "start_date": "2024-06-24", "end_date": "2024-06-28", "exchange": "LSE"}
    ]
    read = ca.actions_from_payloads(payloads)
    assert read.actions.select("symbol", "amount").rows() == [("BT.A.L", 5.6)]


def test_a_symbol_twelve_data_does_not_know_is_skipped_and_the_others_kept(
    httpserver: HTTPServer, fake: FakeTime, us_2020: Market, caplog: pytest.LogCaptureFixture
):
    seen: list[dict[str, str]] = []
    for endpoint in ("splits", "dividends"):
        httpserver.expect_request(f"/{endpoint}").respond_with_handler(stand_in(seen))
    client = td_client(base_url(httpserver), fake, credits_per_minute=800)
    start, end = _window(us_2020, "2024-06-03", "2024-06-14")
    payloads = client.fetch_actions(us_2020, ["ZZZZ", "NVDA"], start, end)
    # ZZZZ's /splits answered 404 "symbol not found": its /dividends is not asked.
    assert [(c["endpoint"], c["symbol"]) for c in seen] == [
        ("splits", "ZZZZ"),
        ("splits", "NVDA"),
        ("dividends", "NVDA"),
    ]
    assert "skipping ZZZZ" in caplog.text
    read = ca.actions_from_payloads(payloads)
    assert sorted(read.actions.select("ex_date", "kind", "ratio", "amount").rows()) == [
        (dt.date(2024, 6, 10), "split", 10.0, None),
        (dt.date(2024, 6, 11), "dividend", None, 0.01),
    ]
    with pytest.raises(InvalidSymbol):
        client.fetch_actions(us_2020, ["ZZZZ"], start, end)


def test_refused_before_any_call_when_the_plan_cannot_pay(
    httpserver: HTTPServer, fake: FakeTime, us_2020: Market
):
    seen: list[dict[str, str]] = []
    httpserver.expect_request("/splits").respond_with_handler(stand_in(seen))
    start, end = _window(us_2020, "2020-08-03", "2020-09-04")
    # The free plan: 8 credits a minute can never pay a 20-credit call.
    free = td_client(base_url(httpserver), fake)
    with pytest.raises(BudgetExceeded) as refused:
        free.fetch_actions(us_2020, ["AAPL"], start, end)
    assert "costs 20 credits" in str(refused.value)
    assert "TWELVEDATA_CREDITS_PER_MINUTE=8" in str(refused.value)
    # A daily budget of 100 credits: three symbols cost 120.
    small = td_client(base_url(httpserver), fake, credits_per_minute=800, credits_per_day=100)
    with pytest.raises(BudgetExceeded) as refused:
        small.fetch_actions(us_2020, ["AAPL", "NVDA", "TSLA"], start, end)
    assert "costing 120 credits" in str(refused.value)
    assert "TWELVEDATA_CREDITS_PER_DAY=100" in str(refused.value)
    assert seen == []


@pytest.mark.parametrize("status", [200, 403])
def test_a_plan_without_the_endpoints_fails_naming_the_plan_and_the_setting(
    httpserver: HTTPServer, fake: FakeTime, us_2020: Market, status: int
):
    seen: list[dict[str, str]] = []
    httpserver.expect_request("/splits").respond_with_handler(
        stand_in(seen, plan_error=True, status=status)
    )
    client = td_client(base_url(httpserver), fake, credits_per_minute=800)
    start, end = _window(us_2020, "2020-08-03", "2020-09-04")
    with pytest.raises(AuthenticationFailed) as failed:
        client.fetch_actions(us_2020, ["AAPL"], start, end)
    text = str(failed.value)
    assert "available exclusively with grow or higher plans" in text
    assert "Grow plan" in text and "TWELVEDATA_CORPORATE_ACTIONS" in text
    assert len(seen) == 1  # not asked again: the same answer would come back


def test_the_split_ratio_reads_the_description_whichever_way_the_factors_are_stated():
    """Twelve Data's docs state AAPL's 2020 split as from 4 to 1 (ratio 0.25) in one version
    and as from 1 to 4 (ratio 4) in another; "4-for-1" either way."""
    for from_factor, to_factor in ((4, 1), (1, 4)):
        body = {
            "meta": {"symbol": "AAPL"},
            "splits": [
                {
                    "date": "2020-08-31",
                    "description": "4-for-1 split",
                    "from_factor": from_factor,
                    "to_factor": to_factor,
                }
            ],
        }
        frame = parse_twelve_data_actions(json.dumps(body), "p")
        assert frame is not None and frame.get_column("ratio").to_list() == [4.0]
    reverse = {
        "meta": {"symbol": "X"},
        "splits": [
            {
                "date": "2020-01-02",
                "description": "1-for-10 reverse split",
                "from_factor": 1,
                "to_factor": 10,
            }
        ],
    }
    assert parse_twelve_data_actions(json.dumps(reverse), "p").get_column("ratio").to_list() == [
        0.1
    ]
    # Without a readable description: from_factor / to_factor.
    bare = {
        "meta": {"symbol": "X"},
        "splits": [{"date": "2020-01-02", "from_factor": 3, "to_factor": 2}],
    }
    assert parse_twelve_data_actions(json.dumps(bare), "p").get_column("ratio").to_list() == [1.5]


# --- an actions payload never counts as bars ------------------------------------------------


def test_a_bars_window_is_unchanged_by_an_actions_payload(us: Market):
    """A Twelve Data batch answers AAPL's bars and NVDA with an error: NVDA's stored rows are
    kept over the window and its message reported. A later `/dividends` payload for NVDA (it
    answered, and is newer) must change none of that: not the bars, not the kept spans, not
    the messages: it says nothing about bars."""
    day = dt.date(2026, 11, 18)
    start = dt.datetime.combine(day, dt.time(), us.tz)
    end = start + dt.timedelta(days=1)
    bars = SimulatedMarket().fetch_bars(us, ["AAPL", "NVDA"], "1day", start, end)[0]
    document = json.loads(bars.body)
    document["NVDA"] = {"code": 400, "message": "NVDA: no data for now", "status": "error"}
    batch = dataclasses.replace(
        bars, provider="twelve_data", format="twelve_data", body=json.dumps(document).encode()
    )
    nvda_meta = {"symbol": "NVDA", "exchange": "NASDAQ", "currency": "USD"}
    actions = RawPayload(
        provider="twelve_data",
        format=ACTIONS_FORMAT,
        interval="1day",
        symbols=("NVDA",),
        window_start=start,
        window_end=end,
        fetched_at=batch.fetched_at + dt.timedelta(minutes=5),
        body=json.dumps(
            {"meta": nvda_meta, "dividends": [{"ex_date": "2026-11-18", "amount": 0.01}]}
        ).encode(),
        request={"endpoint": "dividends"},
    )
    # The message is the one of the original batch, whatever the parser makes of it.
    assert answers.payload_failures(batch) == {"NVDA": "400: NVDA: no data for now"}
    assert answers.payload_failures(actions) == {}  # it did answer NVDA: about dividends

    def cleaned(raw: list[RawPayload]):
        return clean_window(
            raw, us, "1day", asset="daily_bars", start=start, end=end, ingested_at=NOW
        )

    alone, mixed = cleaned([batch]), cleaned([batch, actions])
    assert alone.result.bars.get_column("symbol").to_list() == ["AAPL"]
    # NVDA (and the symbols not asked) keep their stored rows over the window.
    assert {k.symbol for k in alone.kept} == set(us.universe) - {"AAPL"}
    assert "NVDA" in alone.provider_errors
    assert mixed.result.bars.equals(alone.result.bars)
    assert mixed.result.quarantine.equals(alone.result.quarantine)
    assert mixed.kept == alone.kept and mixed.provider_errors == alone.provider_errors
    assert mixed.unreadable == alone.unreadable == {}

    # answers.kept_spans on its own (the window-replace logic): the same with or without it.
    result = alone.result
    for raw in ([batch], [batch, actions]):
        _, kept, failures = answers.kept_spans(
            raw, result, us.universe, start, end, market=us, interval="1day"
        )
        assert failures == {"NVDA": "400: NVDA: no data for now"}
        assert {k.symbol for k in kept} >= {"NVDA"}
