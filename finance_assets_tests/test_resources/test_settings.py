"""Settings are checked when the definitions load: each error names the variable, the value
and the valid range, and a code location with bad settings does not load at all."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from finance_assets.lib import landing, markets
from finance_assets.lib.markets import markets_from_env
from finance_assets.resources import (
    AlertSettingsResource,
    DataQualityResource,
    SimulatedMarketResource,
    TwelveDataResource,
    XApiResource,
    build_resources,
)

REPO = Path(__file__).resolve().parents[2]

# Every numeric setting of resources.py: values that must be refused, and the range the error
# must state.
NUMERIC = {
    "FINANCE_MAX_QUARANTINE_RATE": (["2", "nan", "-1", "inf", "5%"], "a number from 0 to 1"),
    "FINANCE_SIM_FAULT_RATE": (["1.5", "-0.1", "nan"], "a number from 0 to 1"),
    "TWELVEDATA_CREDITS_PER_MINUTE": (["0", "8.5", "-3", "1e9"], "a whole number from 1 to"),
    "ALPHAVANTAGE_CALLS_PER_MINUTE": (["0", "2.5", "many"], "a whole number from 1 to"),
    "TWELVEDATA_CREDITS_PER_DAY": (["0", "800.5", "1e12"], "a whole number from 1 to"),
    "ALPHAVANTAGE_CALLS_PER_DAY": (["0", "-25", "lots"], "a whole number from 1 to"),
    "YFINANCE_CALLS_PER_MINUTE": (["-60", "0.5"], "a whole number from 1 to"),
    "FINANCE_TOP_POSTS": (["0", "2.5", "ten"], "a whole number from 1 to 1,000"),
    "X_MAX_PAGES": (["0", "101", "1.5"], "a whole number from 1 to 100"),
    "X_MAX_WAIT_SECONDS": (["-1", "nan", "90000"], "a number from 0 to 86,400"),
    "FINANCE_PRICE_MOVE_PCT": (["0", "-1", "101", "nan"], "a number above 0 and at most 100"),
}
CASES = [(name, value, valid) for name, (values, valid) in NUMERIC.items() for value in values]


@pytest.mark.parametrize(("name", "value", "valid"), CASES)
def test_a_numeric_setting_outside_its_range_is_refused_naming_it(name, value, valid):
    with pytest.raises(ValueError) as caught:
        build_resources({name: value})
    message = str(caught.value)
    assert f"{name}={value!r}" in message
    assert f"valid: {valid}" in message


def test_the_edges_of_each_range_are_accepted():
    resources = build_resources(
        {
            "FINANCE_MAX_QUARANTINE_RATE": "1",
            "FINANCE_SIM_FAULT_RATE": "0",
            "MARKET_DATA_PROVIDER": "twelve_data",
            "TWELVEDATA_API_KEY": "k",
            "TWELVEDATA_CREDITS_PER_MINUTE": "800",
            "POSTS_PROVIDER": "x_api",
            "X_BEARER_TOKEN": "t",
            "FINANCE_TOP_POSTS": "1000",
            "X_MAX_PAGES": "100",
            "X_MAX_WAIT_SECONDS": "0",
            "FINANCE_PRICE_MOVE_PCT": "100",
        }
    )
    assert resources["data_quality"].max_quarantine_rate == 1.0
    assert resources["market_data"].credits_per_minute == 800
    assert resources["posts"].top_n == 1000 and resources["posts"].max_pages == 100
    assert resources["alerts"].price_move_threshold_pct == 100.0


def test_resources_built_in_code_are_held_to_the_same_ranges():
    """Not only the environment: a resource in a test, a script or the launchpad."""
    for build in (
        lambda: DataQualityResource(max_quarantine_rate=2),
        lambda: DataQualityResource(max_quarantine_rate=float("nan")),
        lambda: SimulatedMarketResource(fault_rate=-1),
        lambda: TwelveDataResource(api_key="k", credits_per_minute=0),
        lambda: XApiResource(bearer_token="t", max_pages=0),
        lambda: AlertSettingsResource(price_move_threshold_pct=0),
    ):
        with pytest.raises(ValueError):
            build()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        (
            {"MARKET_DATA_PROVIDER": "twelve_data"},
            "TWELVEDATA_API_KEY is not set: MARKET_DATA_PROVIDER=twelve_data needs its key",
        ),
        (
            {"MARKET_DATA_PROVIDER": "alpha_vantage"},
            "ALPHAVANTAGE_API_KEY is not set: MARKET_DATA_PROVIDER=alpha_vantage needs its key",
        ),
        ({"POSTS_PROVIDER": "x_api"}, "X_BEARER_TOKEN is not set: POSTS_PROVIDER=x_api"),
        (
            {"TWELVEDATA_BASE_URL": "ftp://proxy.example/td"},
            "TWELVEDATA_BASE_URL='ftp://proxy.example/td' is not a URL with a host",
        ),
        ({"ALPHAVANTAGE_BASE_URL": "localhost:8080"}, "ALPHAVANTAGE_BASE_URL='localhost:8080'"),
        ({"X_API_BASE_URL": "https://"}, "X_API_BASE_URL='https://' is not a URL"),
        ({"YFINANCE_BASE_URL": "query1.finance.yahoo.com"}, "YFINANCE_BASE_URL="),
        (
            {"YFINANCE_PROXY": "proxy:3128"},
            "YFINANCE_PROXY='proxy:3128' is not a URL with a host and the scheme one of http",
        ),
        ({"COMPREHEND_REGION": "europe"}, "COMPREHEND_REGION='europe' is not an AWS region"),
        ({"FINANCE_LANDING_URI": "gs://bucket/x"}, "FINANCE_LANDING_URI='gs://bucket/x'"),
        ({"FINANCE_LANDING_URI": "s3://Bad_Bucket/x"}, "is not an S3 bucket name"),
        ({"MONGODB_DATABASE": "finance.raw"}, "MONGODB_DATABASE='finance.raw' is not a MongoDB"),
        ({"FINANCE_SCHEDULES": "runing"}, "FINANCE_SCHEDULES='runing' is not a schedule status"),
    ],
)
def test_keys_and_urls_are_checked_when_definitions_load(environ, expected):
    """Before, a missing key or a non-http base URL surfaced only at run time, after four
    attempts (24-36 s)."""
    with pytest.raises(ValueError, match=re.escape(expected)):
        build_resources(environ)


@pytest.mark.parametrize(
    ("name", "url", "shown"),
    [
        ("FINANCE_PG_URL", "postgresql//etl:Pw-a81c55d0-load@db:5432/wh", "etl:***@db:5432/wh"),
        ("FINANCE_PG_URL", "postgresql://etl:Pw-a81c55d0-load@db/wh?sslmod=1", "etl:***@db/wh"),
        ("MONGODB_URI", "mongodb//raw:Pw-a81c55d0-load@mongo:27017/", "raw:***@mongo:27017/"),
        ("MONGODB_URI", "mongodb://raw:Pw-a81c55d0-load@mongo:port/", "raw:***@mongo:port/"),
    ],
)
def test_a_malformed_store_url_is_refused_with_its_password_starred(name, url, shown):
    with pytest.raises(ValueError) as caught:
        build_resources({name: url})
    message = str(caught.value)
    assert f"{name}=" in message and shown in message
    assert "Pw-a81c55d0-load" not in message


def test_every_problem_is_reported_at_once():
    with pytest.raises(ValueError) as caught:
        build_resources(
            {
                "FINANCE_MAX_QUARANTINE_RATE": "2",
                "MARKET_DATA_PROVIDER": "twelve_data",
                "X_MAX_PAGES": "0",
            }
        )
    message = str(caught.value)
    assert message.startswith("3 settings are invalid")
    for name in ("FINANCE_MAX_QUARANTINE_RATE", "TWELVEDATA_API_KEY", "X_MAX_PAGES"):
        assert name in message


@pytest.mark.parametrize("value", ["", " , ", ","])
def test_an_empty_market_list_is_an_error_not_zero_assets(value):
    with pytest.raises(ValueError, match=r"FINANCE_MARKETS=.* names no market; valid: .*uk, us"):
        markets_from_env({"FINANCE_MARKETS": value})
    assert set(markets_from_env({})) == {"us", "uk"}  # unset: every market


def test_universe_symbols_follow_the_landing_zones_rule(tmp_path):
    universe = tmp_path / "universe.csv"
    universe.write_text("Symbol\nAAPL\nBRK.B\n^GSPC\nMS FT\nAAPL;DROP\n")
    with pytest.raises(ValueError) as caught:
        markets_from_env({"FINANCE_UNIVERSE_US": str(universe)})
    message = str(caught.value)
    assert "FINANCE_UNIVERSE_US=" in message
    assert "line 5: 'MS FT'" in message and "line 6: 'AAPL;DROP'" in message
    universe.write_text("Symbol\nAAPL\nbrk.b\n^GSPC\nBT.A.L\n")
    loaded = markets_from_env({"FINANCE_UNIVERSE_US": str(universe)})["us"].universe
    assert loaded == ("AAPL", "BRK.B", "^GSPC", "BT.A.L")
    # One rule: the landing zone's symbols are the universes'.
    assert landing.names.is_symbol is markets.is_symbol


def test_importing_the_definitions_with_bad_settings_fails_naming_each(tmp_path):
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FINANCE_", "TWELVEDATA_", "MARKET_DATA", "POSTS_", "X_"))
    }
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "FINANCE_DATA_DIR": str(tmp_path),
            "FINANCE_MARKETS": "",
            "FINANCE_MAX_QUARANTINE_RATE": "2",
            "MARKET_DATA_PROVIDER": "twelve_data",
            "FINANCE_PG_URL": "postgresql//etl:Pw-a81c55d0-load@db:5432/wh",
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", "import finance_assets.definitions"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-5:]
    assert any("4 settings are invalid" in line for line in last), done.stderr[-2000:]
    for expected in (
        "FINANCE_MARKETS='' names no market",
        "FINANCE_MAX_QUARANTINE_RATE='2' is out of range; valid: a number from 0 to 1",
        "TWELVEDATA_API_KEY is not set",
        "FINANCE_PG_URL='postgresql//etl:***@db:5432/wh'",
    ):
        assert expected in done.stderr, expected
    assert "Pw-a81c55d0-load" not in done.stderr + done.stdout
