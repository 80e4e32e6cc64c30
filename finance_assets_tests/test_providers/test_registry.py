"""The provider registry: every provider found in one place, and a provider added through it
(the fake exchange, registered in-process) reaches the settings, the environment dict and the
payload parsers with no other file changed."""

from __future__ import annotations

import datetime as dt

import dagster as dg
import orjson
import pytest

from finance_assets.lib.providers.base import PayloadFormatError, RawPayload
from finance_assets.lib.settings import SettingsError
from finance_assets.lib.transforms import PARSERS, failed_symbols, parse_payloads
from finance_assets.providers import registry
from finance_assets.providers.spec import ProviderSpec, Setting
from finance_assets.resources import build_resources
from finance_assets_tests.test_providers import fake_provider
from finance_assets_tests.test_providers.fake_provider import FakeExchangeResource


def test_every_provider_is_one_package_with_its_spec_and_resource():
    for spec in registry.all_specs():
        resource = spec.resource_class()
        assert resource.__module__.startswith("finance_assets.providers."), spec.name
        # The resource's fields are the spec's settings, with their defaults.
        fields = resource.model_fields
        for setting in spec.settings:
            assert setting.field in fields, (spec.name, setting.field)
            assert fields[setting.field].default == (None if setting.is_secret else setting.default)
    assert registry.names("bars") == ("simulated", "twelve_data", "alpha_vantage", "yfinance")
    assert registry.names("posts") == ("simulated", "x_api")
    assert sorted(PARSERS) == ["alpha_vantage", "twelve_data", "yahoo_chart", "yahoo_csv"]


def test_a_spec_refuses_what_would_make_the_registry_ambiguous():
    with pytest.raises(ValueError, match="already registered"):
        registry.register(registry.get("bars", "twelve_data"))
    taken = ProviderSpec(
        name="other", kind="bars", resource="x:Y", description="", formats=dict(PARSERS)
    )
    with pytest.raises(ValueError, match=r"formats .* are taken"):
        registry.register(taken)
    clash = ProviderSpec(
        name="other",
        kind="bars",
        resource="x:Y",
        description="",
        settings=(Setting("api_key", "TWELVEDATA_API_KEY", "secret"),),
    )
    with pytest.raises(ValueError, match="TWELVEDATA_API_KEY"):
        registry.register(clash)
    with pytest.raises(ValueError, match="valid range"):
        Setting("rate", "FAKE_RATE", "number", 1.0)
    with pytest.raises(ValueError, match="only a secret can be required"):
        Setting("url", "FAKE_URL", "url", required="it")
    with pytest.raises(ValueError, match="lower-case"):
        ProviderSpec(name="Fake-X", kind="bars", resource="x:Y", description="")
    assert "other" not in registry.names("bars")


@pytest.fixture
def fake():
    with registry.registered(fake_provider.SPEC) as spec:
        yield spec
    assert "fake_exchange" not in registry.names("bars")


def test_a_registered_provider_is_a_valid_choice_with_its_settings(fake):
    # Not chosen: its key is not asked for, but its settings are checked all the same.
    assert type(build_resources({})["market_data"]).__name__ == "SimulatedMarketResource"
    with pytest.raises(SettingsError) as bad:
        build_resources({"FAKE_EXCHANGE_CALLS_PER_MINUTE": "0"})
    assert bad.value.problems == [
        "FAKE_EXCHANGE_CALLS_PER_MINUTE='0' is out of range; valid: a whole number from 1 to "
        "100,000 (calls a minute the plan allows)"
    ]
    # Chosen: its key is required.
    with pytest.raises(SettingsError) as missing:
        build_resources({"MARKET_DATA_PROVIDER": "fake_exchange"})
    assert missing.value.problems == [
        "FAKE_EXCHANGE_API_KEY is not set: MARKET_DATA_PROVIDER=fake_exchange needs its key"
    ]
    resources = build_resources(
        {
            "MARKET_DATA_PROVIDER": "fake_exchange",
            "FAKE_EXCHANGE_API_KEY": "fx-secret",
            "FAKE_EXCHANGE_CALLS_PER_MINUTE": "45",
        }
    )
    market_data = resources["market_data"]
    assert isinstance(market_data, FakeExchangeResource)
    # The key as an EnvVar (the UI shows its name), the number read and range-checked.
    assert market_data.api_key == dg.EnvVar("FAKE_EXCHANGE_API_KEY")
    assert market_data.calls_per_minute == 45
    # The error lists it among the valid values.
    with pytest.raises(SettingsError, match=r"valid: simulated, .*, fake_exchange"):
        build_resources({"MARKET_DATA_PROVIDER": "nasdaq_direct"})


def test_an_unregistered_provider_is_refused(fake):
    registry.unregister("bars", "fake_exchange")
    try:
        with pytest.raises(SettingsError, match="MARKET_DATA_PROVIDER='fake_exchange' is not"):
            build_resources({"MARKET_DATA_PROVIDER": "fake_exchange", "FAKE_EXCHANGE_API_KEY": "k"})
    finally:
        registry.register(fake_provider.SPEC)


def _payload(fmt: str, body: bytes) -> RawPayload:
    start = dt.datetime(2026, 1, 5, 14, 30, tzinfo=dt.UTC)
    return RawPayload(
        provider="fake_exchange",
        format=fmt,
        interval="5min",
        symbols=("AAPL",),
        window_start=start,
        window_end=start + dt.timedelta(hours=1),
        fetched_at=start + dt.timedelta(hours=2),
        body=body,
    )


def test_a_registered_providers_payload_format_is_parsed_through_the_transforms(fake):
    body = orjson.dumps(
        {
            "symbol": "AAPL",
            "bars": [
                {
                    "datetime": "2026-01-05 09:30:00",
                    "open": 1,
                    "high": 2,
                    "low": 0.5,
                    "close": 1.5,
                    "volume": 10,
                }
            ],
        }
    )
    assert "fake_json" in PARSERS
    parsed = parse_payloads([_payload("fake_json", body)])
    assert parsed.records.select("symbol", "close").rows() == [("AAPL", "1.5")]
    assert failed_symbols([_payload("fake_json", body)]) == {}
    registry.unregister("bars", "fake_exchange")
    try:
        with pytest.raises(PayloadFormatError, match="unknown format 'fake_json'"):
            parse_payloads([_payload("fake_json", body)])
    finally:
        registry.register(fake_provider.SPEC)
