"""Yahoo Finance as the `market_data` resource."""

from finance_assets.providers.yfinance import SPEC
from finance_assets.providers.yfinance.client import YahooClient
from finance_assets.resources.market_data import MarketDataResource


class YFinanceResource(MarketDataResource):
    """Yahoo's chart API through yfinance (`MARKET_DATA_PROVIDER=yfinance`); no key."""

    base_url: str | None = SPEC.field("base_url")
    proxy: str | None = SPEC.field("proxy")
    calls_per_minute: int = SPEC.field("calls_per_minute")
    cache_dir: str | None = SPEC.field("cache_dir")

    def get_provider(self) -> YahooClient:
        return YahooClient(
            base_url=self.base_url,
            proxy=self.proxy,
            calls_per_minute=self.calls_per_minute,
            cache_dir=self.cache_dir,
        )
