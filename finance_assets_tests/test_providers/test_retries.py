"""Retry only what can succeed: the raw asset's step retries against a local Twelve Data
stand-in, counting the requests each fault costs through a real in-process materialisation
(`dg.materialize` runs the in-process executor, which honours `RetryPolicy`)."""

from __future__ import annotations

import datetime as dt
import json

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from finance_assets.defs.market.assets import build_market_assets
from finance_assets.lib.markets import Market
from finance_assets.providers.simulated_market import SimulatedMarket
from finance_assets.resources import TwelveDataResource, build_resources

SECRET = "td-key-9d41c7e2-retry-budget"
DAY = "2026-11-18"


def _raw_daily(market: Market) -> dg.AssetsDefinition:
    (asset,) = [a for a in build_market_assets(market) if a.key.path[-1] == "raw_daily_quotes"]
    return asset


@pytest.fixture(autouse=True)
def _key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Set as a user sets it: the resource holds `dg.EnvVar("TWELVEDATA_API_KEY")`."""
    monkeypatch.setenv("TWELVEDATA_API_KEY", SECRET)


def _resources(tmp_path, httpserver: HTTPServer) -> dict:
    return build_resources(
        {
            "FINANCE_DATA_DIR": str(tmp_path / "data"),
            "MARKET_DATA_PROVIDER": "twelve_data",
            "TWELVEDATA_API_KEY": SECRET,
            "TWELVEDATA_CREDITS_PER_MINUTE": "800",  # no waits for credits in these tests
            "TWELVEDATA_BASE_URL": httpserver.url_for("").rstrip("/"),
        }
    )


def _materialize(market: Market, resources: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [_raw_daily(market)],
        partition_key=DAY,
        resources=resources,
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def _events(result: dg.ExecuteInProcessResult, kind: str) -> list[dg.DagsterEvent]:
    return [e for e in result.all_events if e.event_type_value == kind]


def _failure_text(result: dg.ExecuteInProcessResult) -> str:
    (failure,) = _events(result, "STEP_FAILURE")
    error = failure.step_failure_data.error
    return error.to_string() if error else ""


def _td_error(code: int, message: str) -> str:
    # Twelve Data's error envelope (samples/twelvedata/td_error_*.json).
    return json.dumps({"code": code, "message": message, "status": "error"})


def _simulated_answer(market: Market):
    """200 with the simulated market's bars in Twelve Data's batch format."""
    sim = SimulatedMarket()

    def answer(request: Request) -> Response:
        fmt = "%Y-%m-%d %H:%M:%S"
        start = dt.datetime.strptime(request.args["start_date"], fmt).replace(tzinfo=market.tz)
        end = dt.datetime.strptime(request.args["end_date"], fmt).replace(tzinfo=market.tz)
        symbols = request.args["symbol"].split(",")
        body = sim.fetch_bars(market, symbols, "1day", start, end + dt.timedelta(seconds=1))
        return Response(body[0].body, content_type="application/json")

    return answer


PERMANENT = {
    "401": (
        401,
        _td_error(401, "**apikey** parameter is incorrect or not specified."),
        {},
        "AuthenticationFailed",
    ),
    "400-config": (
        200,  # Twelve Data reports most errors with HTTP 200 and the code in the body
        _td_error(400, "**start_date** parameter is incorrect. Please specify it correctly."),
        {},
        "InvalidRequest",
    ),
    "retry-after-3600": (
        429,
        _td_error(429, "You have run out of API credits for the current minute."),
        {"Retry-After": "3600"},
        "RateLimited",
    ),
}


@pytest.mark.parametrize("fault", sorted(PERMANENT))
def test_a_permanent_fault_costs_one_request_and_fails_once(fault, tmp_path, us, httpserver):
    status, body, headers, error = PERMANENT[fault]
    httpserver.expect_request("/time_series").respond_with_data(
        body, status=status, headers=headers, content_type="application/json"
    )
    result = _materialize(us, _resources(tmp_path, httpserver))

    assert not result.success
    assert len(httpserver.log) == 1  # was 4: the step retried it three times
    assert _events(result, "STEP_UP_FOR_RETRY") == []
    text = _failure_text(result)
    assert error in text and "not retried" in text
    assert SECRET not in text
    if fault == "retry-after-3600":
        assert "3600s" in text and "try again after" in text
        (failure,) = _events(result, "STEP_FAILURE")
        retry_at = failure.step_failure_data.user_failure_data.metadata["retry_at"].value
        assert dt.datetime.fromisoformat(retry_at) > dt.datetime.now(dt.UTC) + dt.timedelta(
            minutes=59
        )


def test_a_missing_key_at_run_time_fails_once_without_a_request(tmp_path, us, httpserver):
    """A resource built without `build_resources` (which refuses it at load): still one step
    attempt, no request."""
    resources = _resources(tmp_path, httpserver)
    resources["market_data"] = TwelveDataResource(base_url=httpserver.url_for("").rstrip("/"))
    result = _materialize(us, resources)
    assert not result.success
    assert len(httpserver.log) == 0
    assert _events(result, "STEP_UP_FOR_RETRY") == []
    assert "TWELVEDATA_API_KEY is not set" in _failure_text(result)


def test_a_503_then_200_is_retried_by_the_client_and_succeeds(tmp_path, us, httpserver):
    httpserver.expect_ordered_request("/time_series").respond_with_data(
        "<html><body>503 Service Temporarily Unavailable</body></html>",
        status=503,
        content_type="text/html",
    )
    httpserver.expect_ordered_request("/time_series").respond_with_handler(_simulated_answer(us))
    result = _materialize(us, _resources(tmp_path, httpserver))

    assert result.success
    assert len(httpserver.log) == 2
    assert _events(result, "STEP_UP_FOR_RETRY") == []
    payloads = result.output_for_node("us__raw_daily_quotes")
    assert len(payloads) == 1 and set(payloads[0].symbols) == set(us.universe)


def test_a_lasting_503_uses_the_whole_attempt_budget(tmp_path, us, httpserver):
    """The attempt budget (docs/providers.md): 3 client attempts per step attempt, 1 + 3 step
    attempts."""
    httpserver.expect_request("/time_series").respond_with_data(
        "Service Unavailable", status=503, content_type="text/plain"
    )
    result = _materialize(us, _resources(tmp_path, httpserver))

    assert not result.success
    assert len(_events(result, "STEP_UP_FOR_RETRY")) == 3
    assert len(httpserver.log) == 12
    assert "HTTP 503" in _failure_text(result) and "gave up after 3 attempts" in _failure_text(
        result
    )
