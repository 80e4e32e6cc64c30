"""A provider per market and interval in one code location: `MARKET_DATA_PROVIDER` is the
default, `MARKET_DATA_PROVIDER_<MARKET>` and `MARKET_DATA_PROVIDER_<MARKET>_<INTERVAL>` override
it; keys are required only of the providers chosen; each chosen provider is one resource shared
by the markets it serves; the jobs carry the provider their run calls."""

from __future__ import annotations

import dagster as dg
import pytest

from finance_assets.lib.settings import SettingsError
from finance_assets.providers import routing

THREE = {
    "MARKET_DATA_PROVIDER": "twelve_data",
    "MARKET_DATA_PROVIDER_US_DAILY": "alpha_vantage",
    "MARKET_DATA_PROVIDER_UK": "yfinance",
    "TWELVEDATA_API_KEY": "td-test-key",
    "ALPHAVANTAGE_API_KEY": "av-test-key",
}


def _clear(monkeypatch):
    import os

    for name in list(os.environ):
        if name.startswith(("MARKET_DATA_PROVIDER", "TWELVEDATA_", "ALPHAVANTAGE_", "FINANCE_")):
            monkeypatch.delenv(name)


def _defs(monkeypatch, tmp_path, environ) -> dg.Definitions:
    _clear(monkeypatch)
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    import finance_assets.definitions as definitions

    return definitions.build_defs()


def test_three_providers_side_by_side(monkeypatch, tmp_path):
    defs = _defs(monkeypatch, tmp_path, THREE)
    resources = defs.resources
    assert type(resources["market_data"]).__name__ == "TwelveDataResource"
    assert type(resources["market_data_alpha_vantage"]).__name__ == "AlphaVantageResource"
    assert type(resources["market_data_yfinance"]).__name__ == "YFinanceResource"
    graph = defs.resolve_asset_graph()

    def asks_for(key: str) -> set[str]:
        return set(graph.assets_def_for_key(dg.AssetKey(key.split("/"))).required_resource_keys)

    assert "market_data_alpha_vantage" in asks_for("us/raw_daily_quotes")
    assert "market_data" in asks_for("us/raw_intraday_quotes")  # the default: Twelve Data
    assert "market_data_yfinance" in asks_for("uk/raw_daily_quotes")
    assert "market_data_yfinance" in asks_for("uk/raw_intraday_quotes")  # the market's choice
    tags = {
        job: defs.resolve_job_def(job).tags["finance/market_data_provider"]
        for job in ("us_bars_5min_job", "us_daily_job", "uk_bars_5min_job", "uk_daily_job")
    }
    assert tags == {
        "us_bars_5min_job": "twelve_data",
        "us_daily_job": "alpha_vantage",
        "uk_bars_5min_job": "yfinance",
        "uk_daily_job": "yfinance",
    }
    # The keys are EnvVars: the UI shows the variable, never the value.
    assert "av-test-key" not in repr(resources["market_data_alpha_vantage"])


def test_a_key_is_required_only_of_the_providers_chosen(monkeypatch, tmp_path):
    without = {k: v for k, v in THREE.items() if k != "ALPHAVANTAGE_API_KEY"}
    with pytest.raises(SettingsError) as caught:
        _defs(monkeypatch, tmp_path, without)
    assert "ALPHAVANTAGE_API_KEY is not set: MARKET_DATA_PROVIDER_US_DAILY=alpha_vantage needs" in (
        str(caught.value)
    )
    # Twelve Data's key alone when only the New York 5-minute bars use it.
    only = {"MARKET_DATA_PROVIDER_US_5MIN": "twelve_data", "TWELVEDATA_API_KEY": "k"}
    defs = _defs(monkeypatch, tmp_path, only)
    assert type(defs.resources["market_data"]).__name__ == "SimulatedMarketResource"
    assert set(k for k in defs.resources if k.startswith("market_data")) == {
        "market_data",
        "market_data_twelve_data",
    }


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"MARKET_DATA_PROVIDER_US_DAILY": "bloomberg"},
            "MARKET_DATA_PROVIDER_US_DAILY='bloomberg' is not a market-data provider; valid:",
        ),
        (
            {"MARKET_DATA_PROVIDER_JP_DAILY": "yfinance"},
            "MARKET_DATA_PROVIDER_JP_DAILY names no market and interval of this code location",
        ),
        (
            {"MARKET_DATA_PROVIDER_US_WEEKLY": "yfinance"},
            "MARKET_DATA_PROVIDER_US_WEEKLY names no market and interval",
        ),
    ],
)
def test_bad_routes_name_the_variable(monkeypatch, tmp_path, environ, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(")):
        _defs(monkeypatch, tmp_path, environ)


def test_the_route_precedence_is_interval_then_market_then_default():
    environ = {
        "MARKET_DATA_PROVIDER": "twelve_data",
        "MARKET_DATA_PROVIDER_US": "yfinance",
        "MARKET_DATA_PROVIDER_US_DAILY": "alpha_vantage",
    }
    assert routing.route(environ, "us", "1day").provider == "alpha_vantage"
    assert routing.route(environ, "us", "5min").provider == "yfinance"
    assert routing.route(environ, "uk", "5min").provider == "twelve_data"
    assert routing.route({}, "uk", "1day").provider == "simulated"
    assert routing.route(environ, "uk", "1day").resource_key == "market_data"
    assert routing.route(environ, "us", "5min").resource_key == "market_data_yfinance"
