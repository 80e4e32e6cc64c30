"""A second opinion's settings, checked when the definitions load: `MARKET_DATA_REFERENCE_<MARKET>`
(+ `_SYMBOLS`) and the tolerances `FINANCE_VENDOR_CLOSE_BP` / `FINANCE_VENDOR_VOLUME_SHARE`.
The reference provider shares the resource a route would give it; its key is required."""

from __future__ import annotations

import os

import dagster as dg
import pytest

from finance_assets.lib.settings import SettingsError
from finance_assets.providers import reference


def _defs(monkeypatch, tmp_path, environ) -> dg.Definitions:
    for name in list(os.environ):
        if name.startswith(("MARKET_DATA_", "TWELVEDATA_", "ALPHAVANTAGE_", "FINANCE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    import finance_assets.definitions as definitions

    return definitions.build_defs()


def test_a_reference_adds_its_assets_resource_and_sample(monkeypatch, tmp_path):
    defs = _defs(
        monkeypatch,
        tmp_path,
        {
            "MARKET_DATA_PROVIDER_US_5MIN": "twelve_data",
            "MARKET_DATA_REFERENCE_US": "twelve_data",
            "MARKET_DATA_REFERENCE_US_SYMBOLS": "2",
            "TWELVEDATA_API_KEY": "td-test-key",
            "FINANCE_VENDOR_CLOSE_BP": "7.5",
        },
    )
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"us/reference_daily_quotes", "us/vendor_agreement"} <= keys
    # Only the market that names a reference gets one.
    assert not {"uk/reference_daily_quotes", "uk/vendor_agreement"} & keys
    # One resource for Twelve Data, whether it serves a route or a reference.
    raw = graph.assets_def_for_key(dg.AssetKey(["us", "reference_daily_quotes"]))
    assert {k for k in raw.required_resource_keys if k.startswith("market_data")} == {
        "market_data_twelve_data"
    }
    assert {k for k in defs.resources if k.startswith("market_data")} == {
        "market_data",
        "market_data_twelve_data",
    }
    tolerance = defs.resources["vendor_tolerance"]
    assert (tolerance.close_bp, tolerance.volume_share) == (7.5, 0.10)
    # The sample's two symbols, named in the UI's description.
    assert "daily bars of 2 symbols" in raw.descriptions_by_key[raw.key]
    # The report reads the comparison.
    report = graph.assets_def_for_key(dg.AssetKey(["us", "market_report"]))
    assert dg.AssetKey(["us", "vendor_agreement"]) in report.dependency_keys
    uk_report = graph.assets_def_for_key(dg.AssetKey(["uk", "market_report"]))
    assert dg.AssetKey(["uk", "vendor_agreement"]) not in uk_report.dependency_keys


def test_the_reference_providers_key_is_required(monkeypatch, tmp_path):
    with pytest.raises(
        SettingsError,
        match=r"TWELVEDATA_API_KEY is not set: "
        r"MARKET_DATA_REFERENCE_US=twelve_data needs",
    ):
        _defs(monkeypatch, tmp_path, {"MARKET_DATA_REFERENCE_US": "twelve_data"})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"MARKET_DATA_REFERENCE_US": "bloomberg"},
            "MARKET_DATA_REFERENCE_US='bloomberg' is not a market-data provider; valid:",
        ),
        (
            {"MARKET_DATA_REFERENCE_UK": "simulated"},
            "MARKET_DATA_REFERENCE_UK='simulated' is the provider uk's daily bars already come "
            "from (MARKET_DATA_PROVIDER): a second opinion needs another provider",
        ),
        (
            {
                "MARKET_DATA_PROVIDER_US_DAILY": "yfinance",
                "MARKET_DATA_REFERENCE_US": "yfinance",
            },
            "MARKET_DATA_REFERENCE_US='yfinance' is the provider us's daily bars already come "
            "from (MARKET_DATA_PROVIDER_US_DAILY)",
        ),
        (
            {"MARKET_DATA_REFERENCE_US": "yfinance", "MARKET_DATA_REFERENCE_US_SYMBOLS": "0"},
            "MARKET_DATA_REFERENCE_US_SYMBOLS='0' is not a whole number from 1 to 10,000",
        ),
        (
            {"MARKET_DATA_REFERENCE_US": "yfinance", "MARKET_DATA_REFERENCE_US_SYMBOLS": "2.5"},
            "MARKET_DATA_REFERENCE_US_SYMBOLS='2.5' is not a whole number",
        ),
        (
            {"MARKET_DATA_REFERENCE_UK_SYMBOLS": "5"},
            "MARKET_DATA_REFERENCE_UK_SYMBOLS is set but MARKET_DATA_REFERENCE_UK names no "
            "provider",
        ),
        (
            {"MARKET_DATA_REFERENCE_JP": "yfinance"},
            "MARKET_DATA_REFERENCE_JP names no market of this code location",
        ),
        (
            {"FINANCE_VENDOR_CLOSE_BP": "0"},
            "FINANCE_VENDOR_CLOSE_BP='0' is out of range; valid: a number above 0",
        ),
        (
            {"FINANCE_VENDOR_VOLUME_SHARE": "nan"},
            "FINANCE_VENDOR_VOLUME_SHARE='nan'",
        ),
        (
            {"FINANCE_VENDOR_VOLUME_SHARE": "1.5"},
            "FINANCE_VENDOR_VOLUME_SHARE='1.5' is out of range; valid: a number above 0 and at "
            "most 1",
        ),
    ],
)
def test_bad_reference_settings_name_the_variable(monkeypatch, tmp_path, environ, message):
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        _defs(monkeypatch, tmp_path, environ)


def test_a_sample_larger_than_the_universe_is_the_universe():
    found = reference.reference(
        {"MARKET_DATA_REFERENCE_US": "yfinance", "MARKET_DATA_REFERENCE_US_SYMBOLS": "50"}, "us"
    )
    assert found is not None and found.symbols == 50
    assert reference.reference({}, "us") is None
    assert reference.reference({"MARKET_DATA_REFERENCE_US": "yfinance"}, "us").symbols == (
        reference.DEFAULT_SYMBOLS
    )
