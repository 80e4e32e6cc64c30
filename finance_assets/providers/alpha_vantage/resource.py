"""Alpha Vantage as the `market_data` resource."""

from finance_assets.providers.alpha_vantage import SPEC
from finance_assets.providers.alpha_vantage.client import AlphaVantageClient
from finance_assets.resources.market_data import MarketDataResource, required_key


class AlphaVantageResource(MarketDataResource):
    """Alpha Vantage's time series (`MARKET_DATA_PROVIDER=alpha_vantage`)."""

    api_key: str | None = SPEC.field("api_key")
    base_url: str = SPEC.field("base_url")
    calls_per_minute: int = SPEC.field("calls_per_minute")
    calls_per_day: int = SPEC.field("calls_per_day")

    def get_provider(self) -> AlphaVantageClient:
        return AlphaVantageClient(
            required_key(self.api_key, "ALPHAVANTAGE_API_KEY"),
            self.base_url,
            calls_per_minute=self.calls_per_minute,
            calls_per_day=self.calls_per_day,
        )
