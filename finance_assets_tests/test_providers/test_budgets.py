"""Budgets at index size: a fetch priced before any call (calls, credits, minutes at the
per-minute budget), refused at once when it cannot fit the daily budget (naming the budget and
the setting), and retries of answers the provider did not charge for not waiting for a minute
of credits. Fake clocks: nothing waits for real; stand-in servers on loopback record calls."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer

from finance_assets.lib.markets import Market, index_universe
from finance_assets.lib.providers.bars import plan_fetch
from finance_assets.lib.providers.budget import BudgetExceeded, minutes_at_budget
from finance_assets.lib.providers.http import RateLimiter
from finance_assets.lib.settings import SettingsError
from finance_assets.providers.simulated_market import SimulatedMarket
from finance_assets_tests.test_providers.test_http import (
    API_KEY,
    FakeTime,
    av_client,
    base_url,
    configured,
    json_bytes,
    td_client,
    td_document,
)

NOW = dt.datetime(2026, 3, 2, 15, 0, 20, 500000, tzinfo=dt.UTC)
SP500 = index_universe("sp500").symbols


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    return FakeTime(NOW, monkeypatch)


@pytest.fixture(scope="module")
def sp500(us: Market) -> Market:
    return dataclasses.replace(us, universe=SP500)


def _day(market: Market, day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(), market.tz)
    return start, start + dt.timedelta(days=1)


# --- the plan --------------------------------------------------------------------------------


def test_503_symbols_at_twelve_data_free_plan(
    httpserver: HTTPServer, sp500: Market, fake: FakeTime
) -> None:
    assert len(SP500) == 503
    client = td_client(base_url(httpserver), fake)  # the free plan: 8 credits a minute
    start, end = _day(sp500, dt.date(2026, 2, 2))

    plan = plan_fetch(client, sp500, sp500.universe, "1day", start, end)

    assert plan is not None
    # Batches of 8 (a batch may not cost more than a minute's credits): 62 of 8 and one of 7.
    assert plan.calls == 63
    assert plan.cost == 503
    # Each batch waits for the minute after the one before: the last is sent 62 minutes in.
    assert plan.minutes == pytest.approx(62.0)
    assert plan.fits_day and plan.days == 1
    assert plan.metadata() == {
        "planned_calls": 63,
        "planned_credits": 503,
        "minutes_at_budget": 62.0,
        "budget_per_minute": "8 credits (TWELVEDATA_CREDITS_PER_MINUTE)",
        "budget_per_day": "800 credits (TWELVEDATA_CREDITS_PER_DAY)",
        "share_of_daily_budget": 0.629,
    }
    assert httpserver.log == []  # planning sends nothing

    # A plan of 800 credits a minute: batches of 120, 503 credits within one minute.
    paid = td_client(base_url(httpserver), fake, credits_per_minute=800)
    paid_plan = paid.plan(sp500, sp500.universe, "1day", start, end)
    assert (paid_plan.calls, paid_plan.cost, paid_plan.minutes) == (5, 503, 0.0)


def test_a_twelve_data_fetch_beyond_the_daily_credits_is_refused(
    httpserver: HTTPServer, sp500: Market, fake: FakeTime
) -> None:
    # Two 5-minute windows of 5000 bars (~64 sessions each): 1006 credits, above 800 a day.
    client = td_client(base_url(httpserver), fake, credits_per_minute=800)
    start = dt.datetime(2025, 6, 2, tzinfo=dt.UTC)
    end = dt.datetime(2025, 10, 1, tzinfo=dt.UTC)
    plan = client.plan(sp500, sp500.universe, "5min", start, end)
    assert (plan.calls, plan.cost, plan.fits_day) == (10, 1006, False)

    with pytest.raises(BudgetExceeded) as refused:
        client.fetch_bars(sp500, sp500.universe, "5min", start, end)
    message = str(refused.value)
    assert "1,006 credits" in message and "daily budget of 800 credits" in message
    assert "TWELVEDATA_CREDITS_PER_DAY" in message
    assert httpserver.log == []


def test_minutes_at_budget_is_the_limiters_sliding_window() -> None:
    assert minutes_at_budget([], 5) == 0.0
    assert minutes_at_budget([1] * 5, 5) == 0.0  # a minute's worth goes at once
    assert minutes_at_budget([1] * 6, 5) == 1.0
    assert minutes_at_budget([1] * 25, 5) == 4.0
    assert minutes_at_budget([4, 4, 4], 8) == 1.0  # the third waits for the first to leave
    assert minutes_at_budget([3, 6, 3], 8) == 2.0  # 6 waits for 3, the last 3 for the 6


def test_a_source_without_budget_has_no_plan(us: Market) -> None:
    start, end = _day(us, dt.date(2026, 2, 2))
    assert plan_fetch(SimulatedMarket(), us, us.universe, "1day", start, end) is None


# --- refusals before any call ----------------------------------------------------------------


def test_alpha_vantage_run_beyond_25_calls_a_day_is_refused_before_any_call(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    httpserver.expect_request("/query").respond_with_json({})
    symbols = SP500[:30]
    start, end = _day(us, dt.date(2026, 2, 2))
    client = av_client(base_url(httpserver), fake)

    with pytest.raises(BudgetExceeded) as refused:
        client.fetch_bars(us, symbols, "1day", start, end)

    message = str(refused.value)
    assert "30 calls" in message
    assert "daily budget of 25 calls (ALPHAVANTAGE_CALLS_PER_DAY=25)" in message
    assert "2 days of budget" in message
    assert httpserver.log == []  # not one call reached the server
    assert fake.sleeps == []  # and nothing waited

    # Within the budget it goes ahead: 25 symbols, 25 calls.
    assert client.plan(us, symbols[:25], "1day", start, end).fits_day


def test_the_daily_settings_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, httpserver: HTTPServer
) -> None:
    environ = {"ALPHAVANTAGE_API_KEY": API_KEY, "MARKET_DATA_PROVIDER": "alpha_vantage"}
    client = configured(monkeypatch, environ, "market_data")
    assert (client.budget.per_day, client.budget.per_minute) == (25, 5)
    client = configured(monkeypatch, {**environ, "ALPHAVANTAGE_CALLS_PER_DAY": "75"}, "market_data")
    assert client.budget.per_day == 75

    environ = {"TWELVEDATA_API_KEY": API_KEY, "MARKET_DATA_PROVIDER": "twelve_data"}
    client = configured(monkeypatch, environ, "market_data")
    assert (client.budget.per_day, client.budget.unit) == (800, "credits")


@pytest.mark.parametrize("value", ["0", "2.5", "many", "-25"])
def test_a_bad_daily_setting_fails_at_load_naming_it(value: str) -> None:
    from finance_assets.resources import build_resources

    with pytest.raises(SettingsError, match=r"ALPHAVANTAGE_CALLS_PER_DAY.*a whole number from 1"):
        build_resources(
            {"MARKET_DATA_PROVIDER": "alpha_vantage", "ALPHAVANTAGE_CALLS_PER_DAY": value}
        )


def test_the_raw_asset_refuses_a_run_beyond_the_daily_budget_without_calling(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_url: str,
    us: Market,
    httpserver: HTTPServer,
) -> None:
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    httpserver.expect_request("/query").respond_with_json({})
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    monkeypatch.setenv("MARKET_DATA_PROVIDER", "alpha_vantage")
    monkeypatch.setenv("ALPHAVANTAGE_API_KEY", API_KEY)
    monkeypatch.setenv("ALPHAVANTAGE_BASE_URL", base_url(httpserver))
    market = dataclasses.replace(us, universe=SP500[:30])
    defs = _defs(market)
    job = dg.define_asset_job("raw_daily", selection=[dg.AssetKey(["us", "raw_daily_quotes"])])
    job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("raw_daily")

    result = job_def.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key="2026-11-18", raise_on_error=False
    )

    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    error = failure.step_failure_data.error
    assert "ALPHAVANTAGE_CALLS_PER_DAY" in error.message
    assert "daily budget of 25 calls" in error.message
    metadata = failure.step_failure_data.user_failure_data.metadata
    assert metadata["planned_calls"].value == 30
    assert metadata["retried"].value is False
    # Not retried by the step's retry policy either.
    assert not [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert httpserver.log == []


# --- retries that cost nothing ---------------------------------------------------------------


def test_a_retried_429_that_cost_no_credit_does_not_wait_a_minute(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    # A batch spending the whole minute (8 symbols, 8 credits) answered 429: the provider did
    # not charge it, so its retry waits what the provider asked (2 s), not a minute of credits.
    symbols = list(SP500[:8])
    start, end = _day(us, dt.date(2026, 2, 2))
    good = json_bytes({s: td_document(us, s, "1day", start, end) for s in symbols})
    httpserver.expect_ordered_request("/time_series").respond_with_data(
        b'{"code": 429, "message": "too many requests", "status": "error"}',
        status=429,
        headers={"Retry-After": "2"},
    )
    httpserver.expect_ordered_request("/time_series").respond_with_data(good)

    [payload] = td_client(base_url(httpserver), fake).fetch_bars(us, symbols, "1day", start, end)

    assert payload.body == good
    assert fake.sleeps == [pytest.approx(2.0)]
    assert len(httpserver.log) == 2
    httpserver.check_assertions()


def test_a_retried_5xx_gives_its_credits_back(
    httpserver: HTTPServer, us: Market, fake: FakeTime
) -> None:
    symbols = list(SP500[:8])
    start, end = _day(us, dt.date(2026, 2, 2))
    good = json_bytes({s: td_document(us, s, "1day", start, end) for s in symbols})
    httpserver.expect_ordered_request("/time_series").respond_with_json(
        {"code": 500, "message": "internal error", "status": "error"}, status=500
    )
    httpserver.expect_ordered_request("/time_series").respond_with_data(good)

    td_client(base_url(httpserver), fake).fetch_bars(us, symbols, "1day", start, end)

    # Only tenacity's backoff (full jitter, at most 1 s the first time): no minute of credits.
    assert len(fake.sleeps) == 1 and fake.sleeps[0] <= 1.0
    httpserver.check_assertions()


def test_refund_gives_back_the_newest_units_only(fake: FakeTime) -> None:
    limiter = RateLimiter("refund", 8, clock=fake.clock)
    limiter.acquire(5)
    limiter.acquire(3)
    limiter.refund(3)
    assert limiter.acquire(3) == 0.0  # the 3 came back
    assert limiter.acquire(1) > 0  # the first 5 did not


def test_the_raw_asset_records_its_plan(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    pg_url: str,
    us: Market,
    httpserver: HTTPServer,
) -> None:
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    start, end = _day(us, dt.date(2026, 11, 18))
    batch = {s: td_document(us, s, "1day", start, end) for s in us.universe}
    httpserver.expect_request("/time_series").respond_with_json(batch)
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    monkeypatch.setenv("MARKET_DATA_PROVIDER", "twelve_data")
    monkeypatch.setenv("TWELVEDATA_API_KEY", API_KEY)
    monkeypatch.setenv("TWELVEDATA_BASE_URL", base_url(httpserver))
    defs = _defs(us)
    job = dg.define_asset_job("raw_daily", selection=[dg.AssetKey(["us", "raw_daily_quotes"])])
    job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("raw_daily")

    result = job_def.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key="2026-11-18"
    )

    [materialization] = result.asset_materializations_for_node("us__raw_daily_quotes")
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["planned_calls"] == 1 == metadata["calls"] == len(httpserver.log)
    assert metadata["planned_credits"] == len(us.universe)
    assert metadata["minutes_at_budget"] == 0.0
    assert metadata["budget_per_day"] == "800 credits (TWELVEDATA_CREDITS_PER_DAY)"
