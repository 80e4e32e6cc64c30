"""`TWELVEDATA_CORPORATE_ACTIONS`, checked when the definitions load: it adds
`<market>/raw_corporate_actions` where Twelve Data gives the market its daily bars or its
reference, through the same resource, and is refused where it could call nothing."""

from __future__ import annotations

import dagster as dg
import pytest

from finance_assets.lib.settings import SettingsError
from finance_assets_tests.test_resources.test_reference_settings import _defs

RAW = "raw_corporate_actions"


def _keys(defs: dg.Definitions) -> set[str]:
    return {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}


def test_the_raw_actions_asset_exists_where_twelve_data_serves_the_market(monkeypatch, tmp_path):
    defs = _defs(
        monkeypatch,
        tmp_path,
        {
            "MARKET_DATA_REFERENCE_US": "twelve_data",
            "MARKET_DATA_REFERENCE_US_SYMBOLS": "2",
            "MARKET_DATA_PROVIDER_UK_DAILY": "twelve_data",
            "TWELVEDATA_API_KEY": "td-test-key",
            "TWELVEDATA_CORPORATE_ACTIONS": "true",
        },
    )
    graph = defs.resolve_asset_graph()
    assert {f"us/{RAW}", f"uk/{RAW}"} <= _keys(defs)
    us_raw = graph.assets_def_for_key(dg.AssetKey(["us", RAW]))
    uk_raw = graph.assets_def_for_key(dg.AssetKey(["uk", RAW]))
    # One resource for Twelve Data, whichever role it has.
    for raw in (us_raw, uk_raw):
        providers = {k for k in raw.required_resource_keys if k.startswith("market_data")}
        assert providers == {"market_data_twelve_data"}
    # The reference's sample in us, the whole universe where Twelve Data is the daily provider.
    assert "for 2 symbols" in us_raw.descriptions_by_key[us_raw.key]
    assert "its reference" in us_raw.descriptions_by_key[us_raw.key]
    assert "its daily provider" in uk_raw.descriptions_by_key[uk_raw.key]
    for market in ("us", "uk"):
        actions = graph.assets_def_for_key(dg.AssetKey([market, "corporate_actions"]))
        assert dg.AssetKey([market, RAW]) in actions.dependency_keys
        # In the daily job, beside the bars.
        job = defs.resolve_job_def(f"{market}_daily_job")
        assert dg.AssetKey([market, RAW]) in job.asset_layer.executable_asset_keys


def test_off_unless_asked(monkeypatch, tmp_path):
    defs = _defs(
        monkeypatch,
        tmp_path,
        {"MARKET_DATA_PROVIDER": "twelve_data", "TWELVEDATA_API_KEY": "td-test-key"},
    )
    assert not {k for k in _keys(defs) if k.endswith(RAW)}


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"TWELVEDATA_CORPORATE_ACTIONS": "yes"},
            "TWELVEDATA_CORPORATE_ACTIONS='yes' is not one of: true, false",
        ),
        (
            {
                "TWELVEDATA_CORPORATE_ACTIONS": "true",
                "MARKET_DATA_PROVIDER_US_5MIN": "twelve_data",
                "TWELVEDATA_API_KEY": "td-test-key",
            },
            "TWELVEDATA_CORPORATE_ACTIONS=true but no market's daily bars or reference come "
            "from twelve_data",
        ),
    ],
)
def test_a_setting_that_could_call_nothing_is_refused(monkeypatch, tmp_path, environ, message):
    with pytest.raises(SettingsError, match=message):
        _defs(monkeypatch, tmp_path, environ)
