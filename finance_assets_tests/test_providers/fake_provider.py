"""A provider that exists only in the tests: registered in-process (`registry.registered`), it
must be found everywhere a real one is, with no file of the repository edited."""

from __future__ import annotations

import orjson
import polars as pl

from finance_assets.lib.providers.base import BarProvider
from finance_assets.lib.schema import RAW_RECORD_FIELDS, RAW_RECORD_SCHEMA
from finance_assets.providers.spec import CALLS_PER_MINUTE, Budget, ProviderSpec, Setting
from finance_assets.resources.market_data import MarketDataResource, required_key


def parse_fake_json(body: bytes | str, payload_id: str) -> tuple[pl.DataFrame, dict[str, str]]:
    """`{"symbol": ..., "bars": [{"datetime": ..., "open": ...}, ...]}`, every field as text."""
    document = orjson.loads(body)
    rows = [
        {
            "payload_id": payload_id,
            "symbol": document["symbol"],
            "currency": "USD",
            **{name: str(bar[name]) for name in RAW_RECORD_FIELDS},
        }
        for bar in document["bars"]
    ]
    return pl.DataFrame(rows, schema=RAW_RECORD_SCHEMA), {}


SPEC = ProviderSpec(
    name="fake_exchange",
    kind="bars",
    resource=f"{__name__}:FakeExchangeResource",
    description="a fake exchange of the tests (a key; 30 calls a minute)",
    settings=(
        Setting("api_key", "FAKE_EXCHANGE_API_KEY", "secret", required="its key"),
        Setting(
            "calls_per_minute", "FAKE_EXCHANGE_CALLS_PER_MINUTE", "whole", 30, CALLS_PER_MINUTE
        ),
    ),
    formats={"fake_json": parse_fake_json},
    budget=Budget("calls_per_minute", 1_000),
    run_limit=1,
)


class FakeExchangeResource(MarketDataResource):
    api_key: str | None = SPEC.field("api_key")
    calls_per_minute: int = SPEC.field("calls_per_minute")

    def get_provider(self) -> BarProvider:
        required_key(self.api_key, "FAKE_EXCHANGE_API_KEY")
        raise NotImplementedError("the fake exchange is for the registry's tests only")
