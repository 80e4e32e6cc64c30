"""Twelve Data as the `market_data` resource."""

from finance_assets.providers.twelve_data import SPEC
from finance_assets.providers.twelve_data.client import TwelveDataClient
from finance_assets.resources.market_data import MarketDataResource, required_key


class TwelveDataResource(MarketDataResource):
    """Twelve Data's `/time_series` (`MARKET_DATA_PROVIDER=twelve_data`)."""

    api_key: str | None = SPEC.field("api_key")
    base_url: str = SPEC.field("base_url")
    credits_per_minute: int = SPEC.field("credits_per_minute")
    credits_per_day: int = SPEC.field("credits_per_day")

    def get_provider(self) -> TwelveDataClient:
        return TwelveDataClient(
            required_key(self.api_key, "TWELVEDATA_API_KEY"),
            self.base_url,
            credits_per_minute=self.credits_per_minute,
            credits_per_day=self.credits_per_day,
        )
