"""Corporate actions through Dagster on the simulated market: its seeded splits and dividends
land in `us.corporate_actions`, and `us.adjusted_daily_bars` adjusts the daily bars for them.

The expectations are the simulated market's own events (its generator, not the parsing or
adjustment code) and the adjustment worked out here in plain Python, day by day.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg
import psycopg
import pytest

from finance_assets.providers.simulated_market import SimulatedMarket
from finance_assets_tests.test_assets.test_daily_only import _run, old_us  # noqa: F401
from finance_assets_tests.test_assets.test_end_to_end import _defs, env, fresh_schema  # noqa: F401
from finance_assets_tests.test_assets.test_vendor_agreement import reference_env  # noqa: F401

# NVDA splits 5-for-1 on 31 January and 4-for-1 on 2 February 2024 (seed 7); dividends fall
# on other symbols' days in the same fortnight.
START, END = "2024-01-24", "2024-02-06"


def _rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def test_simulated_splits_and_dividends_land_once_and_adjust_every_earlier_day(
    env,  # noqa: F811
    fresh_schema,  # noqa: F811
    old_us,  # noqa: F811
):
    defs = _defs(old_us)
    names = ["raw_daily_quotes", "daily_bars", "corporate_actions", "adjusted_daily_bars"]
    result = _run(defs, names, START, END)

    sim = SimulatedMarket(seed=7)
    window = (
        old_us.session_bounds(dt.date.fromisoformat(START))[0],
        old_us.session_bounds(dt.date.fromisoformat(END))[1],
    )
    expected = set()
    for symbol in old_us.universe:
        splits, dividends = sim.actions(old_us, symbol, *window)
        expected |= {
            (dt.date.fromisoformat(s["date"]), symbol, "split", s["from_factor"], None)
            for s in splits
        }
        expected |= {
            (dt.date.fromisoformat(d["ex_date"]), symbol, "dividend", None, d["amount"])
            for d in dividends
        }
    assert any(kind == "split" for _, _, kind, _, _ in expected)
    assert any(kind == "dividend" for _, _, kind, _, _ in expected)
    stored = _rows(
        fresh_schema,
        "SELECT ex_date, symbol, kind, ratio, amount, source FROM us.corporate_actions",
    )
    assert {row[:5] for row in stored} == expected
    assert {row[5] for row in stored} == {"simulated"}

    bars = _rows(
        fresh_schema,
        "SELECT symbol, (ts AT TIME ZONE 'America/New_York')::date, open, close, volume "
        "FROM us.daily_bars ORDER BY 1, 2",
    )
    adjusted = {
        (row[0], row[1]): row[2:]
        for row in _rows(
            fresh_schema,
            "SELECT symbol, trading_date, factor, adj_open, adj_close, adj_volume, "
            "provider_adj_close FROM us.adjusted_daily_bars",
        )
    }
    assert len(adjusted) == len(bars) == 10 * len(old_us.universe)
    closes: dict[tuple[str, dt.date], float] = {(s, d): c for s, d, _, c, _ in bars}
    for symbol, day, open_, close, volume in bars:
        factor, split_part = 1.0, 1.0
        for ex_date, who, kind, ratio, amount in expected:
            if who != symbol or ex_date <= day:
                continue
            if kind == "split":
                factor /= ratio
                split_part /= ratio
            else:
                previous = max(d for s, d in closes if s == symbol and d < ex_date)
                factor *= 1 - amount / closes[(symbol, previous)]
        got = adjusted[(symbol, day)]
        assert got[0] == pytest.approx(factor, rel=1e-12), (symbol, day)
        assert got[1] == pytest.approx(open_ * factor, rel=1e-12)
        assert got[2] == pytest.approx(close * factor, rel=1e-12)
        assert got[3] == pytest.approx(volume / split_part, rel=1e-12)
        assert got[4] is None  # the simulated market sends no adj_close of its own
    # NVDA's days before 31 January are divided by 20 (and its dividends, if any).
    assert adjusted[("NVDA", dt.date(2024, 1, 30))][0] == pytest.approx(1 / 20, rel=1e-2)

    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["providers_agree_on_actions"].passed
    assert checks["actions_reported"].passed
    compared = checks["adj_close_matches_provider"]
    assert compared.passed and compared.metadata["rows_compared"].value == 0


def test_the_checks_name_the_symbols_days_and_values_and_only_warn(samples):
    """The verdicts a user reads in the UI, from the recorded AAPL chart with its dividend left
    out of the actions table, and from two providers stating different amounts."""
    import json

    import polars as pl

    from finance_assets.defs.market.corporate_actions import _adj_close_check, _agreement_check
    from finance_assets.lib.transforms import corporate_actions as ca
    from finance_assets_tests.test_lib.test_corporate_actions import (
        AAPL_CHART,
        _actions,
        _chart_bars,
    )

    body = json.loads((samples / AAPL_CHART).read_bytes())
    bars = _chart_bars(body, fetched=dt.datetime(2025, 2, 19, 21, tzinfo=dt.UTC))
    split_only = _actions([("AAPL", "2020-08-31", "split", 4.0)], "yfinance")
    adjusted = ca.adjust_daily_bars(bars, split_only, "America/New_York").bars
    check = _adj_close_check(adjusted, ca.adj_close_disagreements(adjusted))
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.description.startswith("AAPL 2020-08-31..2020-11-05 (48 days, up to -0.1")
    assert check.metadata["rows_compared"].value == 49
    assert check.metadata["symbols_disagreeing"].value == ["AAPL"]

    conflicts = ca.deduplicate(
        pl.concat(
            [
                _actions([("AAPL", "2020-11-06", "dividend", 0.205)], "yfinance"),
                _actions([("AAPL", "2020-11-06", "dividend", 0.82)], "alpha_vantage"),
            ]
        )
    )[1]
    agreement = _agreement_check(conflicts)
    assert not agreement.passed and agreement.severity == dg.AssetCheckSeverity.WARN
    assert agreement.description == ("AAPL 2020-11-06 dividend: alpha_vantage=0.82, yfinance=0.205")


def test_a_window_without_payloads_fails_naming_what_to_run_and_writes_nothing(
    env,  # noqa: F811
    fresh_schema,  # noqa: F811
    old_us,  # noqa: F811
):
    """No payload is not "no corporate action": the run fails and the table is not created."""
    result = _run(_defs(old_us), ["corporate_actions"], START, START, expect=False)
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    message = failure.step_failure_data.error.message
    assert "no daily payloads in the raw zone for 2024-01-24 .. 2024-01-25" in message
    assert "materialise us/raw_daily_quotes for them first" in message
    assert _rows(fresh_schema, "SELECT to_regclass('us.corporate_actions')") == [(None,)]


def test_a_reference_providers_actions_are_deduplicated_with_the_primarys(
    reference_env,  # noqa: F811
    fresh_schema,  # noqa: F811
    us,
    httpserver,
):
    """With MARKET_DATA_REFERENCE_US=twelve_data (a local stand-in answering the simulated
    market's bodies for its sample AAPL, NVDA, TSLA), each action of a sampled symbol is one row
    reported by both providers; the others by the primary alone."""
    from finance_assets_tests.test_assets.test_vendor_agreement import (
        END as V_END,
    )
    from finance_assets_tests.test_assets.test_vendor_agreement import (
        START as V_START,
    )
    from finance_assets_tests.test_assets.test_vendor_agreement import _stand_in

    seen: list[dict[str, str]] = []
    httpserver.expect_request("/time_series").respond_with_handler(_stand_in(us, seen, False))
    names = ["raw_daily_quotes", "reference_daily_quotes", "corporate_actions"]
    result = _run(_defs(us), names, V_START, V_END)
    window = (
        us.session_bounds(dt.date.fromisoformat(V_START))[0],
        us.session_bounds(dt.date.fromisoformat(V_END))[1],
    )
    sim = SimulatedMarket(seed=7)
    sample = {"AAPL", "NVDA", "TSLA"}
    expected = set()
    for symbol in us.universe:
        splits, dividends = sim.actions(us, symbol, *window)
        sources = "simulated,twelve_data" if symbol in sample else "simulated"
        expected |= {
            (dt.date.fromisoformat(d["ex_date"]), symbol, d["amount"], sources) for d in dividends
        }
        expected |= {(dt.date.fromisoformat(s["date"]), symbol, None, sources) for s in splits}
    # TSLA (sampled) and GOOGL (not) go ex-dividend on 18 November 2026 (seed 7).
    assert {(day, symbol) for day, symbol, *_ in expected} == {
        (dt.date(2026, 11, 18), "TSLA"),
        (dt.date(2026, 11, 18), "GOOGL"),
    }
    stored = _rows(fresh_schema, "SELECT ex_date, symbol, amount, source FROM us.corporate_actions")
    assert set(stored) == expected
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks["providers_agree_on_actions"].passed and checks["actions_reported"].passed


# --- Twelve Data's /splits and /dividends (TWELVEDATA_CORPORATE_ACTIONS=true) ----------------

# The window of AAPL's 2020 dividend and 4-for-1 split and TSLA's 5-for-1 split.
TD_START, TD_END = "2020-08-06", "2020-09-01"
# The companies' published actions in it (twelve_data_actions/README.source.txt), as
# (ex_date, symbol, kind, ratio, amount): the stand-in's bodies are filtered to the window.
TD_ACTIONS = {
    (dt.date(2020, 8, 7), "AAPL", "dividend", None, 0.82),
    (dt.date(2020, 8, 31), "AAPL", "split", 4.0, None),
    (dt.date(2020, 8, 31), "TSLA", "split", 5.0, None),
}


@pytest.fixture
def td_actions_env(reference_env, old_us, monkeypatch, httpserver):  # noqa: F811
    """The simulated market is us's primary; Twelve Data its reference (sample AAPL, NVDA,
    TSLA), asked for its /splits and /dividends too."""
    monkeypatch.setenv("TWELVEDATA_CORPORATE_ACTIONS", "true")
    return reference_env


def _td_stand_in(httpserver, seen, **options):
    from finance_assets_tests.test_assets.test_vendor_agreement import SECRET
    from finance_assets_tests.test_providers.test_twelve_data_actions import stand_in

    for endpoint in ("splits", "dividends"):
        httpserver.expect_request(f"/{endpoint}").respond_with_handler(
            stand_in(seen, key=SECRET, **options)
        )


def _failure(result) -> str:
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return failure.step_failure_data.error.message if failure.step_failure_data.error else ""


def test_twelve_data_actions_land_beside_the_other_providers(
    td_actions_env,
    fresh_schema,  # noqa: F811
    old_us,  # noqa: F811
    httpserver,
):
    seen: list[dict[str, str]] = []
    _td_stand_in(httpserver, seen)
    names = ["raw_daily_quotes", "raw_corporate_actions", "corporate_actions"]
    result = _run(_defs(old_us), names, TD_START, TD_END)

    # One call per symbol of the sample and endpoint, for the whole range at once.
    assert sorted((c["endpoint"], c["symbol"], c["start_date"], c["end_date"]) for c in seen) == [
        (endpoint, symbol, TD_START, TD_END)
        for endpoint in ("dividends", "splits")
        for symbol in ("AAPL", "NVDA", "TSLA")
    ]
    # Expected: the simulated market's own seeded actions (its generator) and the companies'
    # real ones from Twelve Data, one row per (ex_date, symbol, kind) listing its providers.
    sim = SimulatedMarket(seed=7)
    window = (
        old_us.session_bounds(dt.date.fromisoformat(TD_START))[0],
        old_us.session_bounds(dt.date.fromisoformat(TD_END))[1],
    )
    reported: dict[tuple, dict[str, float]] = {}
    for symbol in old_us.universe:
        splits, dividends = sim.actions(old_us, symbol, *window)
        for s in splits:
            key = (dt.date.fromisoformat(s["date"]), symbol, "split")
            reported.setdefault(key, {})["simulated"] = s["from_factor"] / s["to_factor"]
        for d in dividends:
            key = (dt.date.fromisoformat(d["ex_date"]), symbol, "dividend")
            reported.setdefault(key, {})["simulated"] = d["amount"]
    for day, symbol, kind, ratio, amount in TD_ACTIONS:
        reported.setdefault((day, symbol, kind), {})["twelve_data"] = ratio or amount
    stored = _rows(
        fresh_schema,
        "SELECT ex_date, symbol, kind, coalesce(ratio, amount), source FROM us.corporate_actions",
    )
    assert {(d, s, k): src for d, s, k, _, src in stored} == {
        key: ",".join(sorted(by)) for key, by in reported.items()
    }
    for day, symbol, kind, value, _ in stored:
        by = reported[(day, symbol, kind)]
        assert value == pytest.approx(by[min(by)])  # the first provider by name is stored
    assert {"twelve_data"} <= {src for *_, src in stored for src in src.split(",")}
    assert {
        (d, s, k, v if k == "split" else None, v if k == "dividend" else None)
        for d, s, k, v, src in stored
        if "twelve_data" in src
    } >= TD_ACTIONS
    materialization = result.asset_materializations_for_node("us__corporate_actions")[0]
    assert materialization.metadata["twelve_data_actions_payloads"].value == 6
    assert "twelve_data" in materialization.metadata["sources"].value


def test_twelve_data_actions_refused_when_the_days_credits_cannot_pay(
    td_actions_env,
    fresh_schema,  # noqa: F811
    old_us,  # noqa: F811
    httpserver,
    monkeypatch,
):
    monkeypatch.setenv("TWELVEDATA_CREDITS_PER_DAY", "100")  # the sample's 6 calls cost 120
    seen: list[dict[str, str]] = []
    _td_stand_in(httpserver, seen)
    result = _run(_defs(old_us), ["raw_corporate_actions"], TD_START, TD_END, expect=False)
    message = _failure(result)
    assert "costing 120 credits" in message, message
    assert "TWELVEDATA_CREDITS_PER_DAY=100" in message
    assert "TWELVEDATA_CORPORATE_ACTIONS=true" in message
    assert seen == []  # refused before any call


def test_a_plan_without_the_endpoints_fails_clearly_and_is_not_retried(
    td_actions_env,
    fresh_schema,  # noqa: F811
    old_us,  # noqa: F811
    httpserver,
):
    seen: list[dict[str, str]] = []
    _td_stand_in(httpserver, seen, plan_error=True)
    result = _run(_defs(old_us), ["raw_corporate_actions"], TD_START, TD_END, expect=False)
    message = _failure(result)
    assert "available exclusively with grow or higher plans" in message, message
    assert "Grow plan" in message and "TWELVEDATA_CORPORATE_ACTIONS" in message
    assert "not retried" in message
    assert len(seen) == 1  # the first call's answer ends it: not empty, and not asked again
