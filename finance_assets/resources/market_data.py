"""The bar providers, one resource each. The assets ask for `market_data`, whichever it is:
`MARKET_DATA_PROVIDER` picks the class (resources/__init__.py), each class holds only its
provider's settings, and API keys arrive as `dg.EnvVar`s (the UI shows the variable's name,
never its value)."""

import dagster as dg

from finance_assets.lib.providers import alpha_vantage, twelve_data
from finance_assets.lib.providers.alpha_vantage import AlphaVantageClient
from finance_assets.lib.providers.base import BarProvider
from finance_assets.lib.providers.http import MissingApiKey
from finance_assets.lib.providers.simulated import SimulatedMarket
from finance_assets.lib.providers.twelve_data import TwelveDataClient
from finance_assets.lib.providers.yahoo import DEFAULT_CALLS_PER_MINUTE, YahooClient
from finance_assets.resources.bounds import CALLS_PER_MINUTE, SIM_FAULT_RATE, bounded, secret


class MarketDataResource(dg.ConfigurableResource):
    """The market-data provider of the raw assets (resource key `market_data`)."""

    def get_provider(self) -> BarProvider:
        raise NotImplementedError(f"{type(self).__name__} names no provider")


class SimulatedMarketResource(MarketDataResource):
    """Seeded, reproducible bars (`MARKET_DATA_PROVIDER=simulated`, the default)."""

    seed: int = 7
    fault_rate: float = bounded(0.0, SIM_FAULT_RATE, "FINANCE_SIM_FAULT_RATE")

    def get_provider(self) -> SimulatedMarket:
        return SimulatedMarket(seed=self.seed, fault_rate=self.fault_rate)


class TwelveDataResource(MarketDataResource):
    """Twelve Data's `/time_series` (`MARKET_DATA_PROVIDER=twelve_data`)."""

    api_key: str | None = secret("TWELVEDATA_API_KEY")
    base_url: str = twelve_data.DEFAULT_BASE_URL
    credits_per_minute: int = bounded(
        twelve_data.FREE_CREDITS_PER_MINUTE, CALLS_PER_MINUTE, "TWELVEDATA_CREDITS_PER_MINUTE"
    )

    def get_provider(self) -> TwelveDataClient:
        return TwelveDataClient(
            required_key(self.api_key, "TWELVEDATA_API_KEY"),
            self.base_url,
            credits_per_minute=self.credits_per_minute,
        )


class AlphaVantageResource(MarketDataResource):
    """Alpha Vantage's time series (`MARKET_DATA_PROVIDER=alpha_vantage`)."""

    api_key: str | None = secret("ALPHAVANTAGE_API_KEY")
    base_url: str = alpha_vantage.DEFAULT_BASE_URL
    calls_per_minute: int = bounded(
        alpha_vantage.FREE_CALLS_PER_MINUTE, CALLS_PER_MINUTE, "ALPHAVANTAGE_CALLS_PER_MINUTE"
    )

    def get_provider(self) -> AlphaVantageClient:
        return AlphaVantageClient(
            required_key(self.api_key, "ALPHAVANTAGE_API_KEY"),
            self.base_url,
            calls_per_minute=self.calls_per_minute,
        )


class YFinanceResource(MarketDataResource):
    """Yahoo's chart API through yfinance (`MARKET_DATA_PROVIDER=yfinance`); no key."""

    base_url: str | None = None  # a mirror of Yahoo's hosts; unset: Yahoo itself
    proxy: str | None = secret("YFINANCE_PROXY")  # its URL may hold a password
    calls_per_minute: int = bounded(
        DEFAULT_CALLS_PER_MINUTE, CALLS_PER_MINUTE, "YFINANCE_CALLS_PER_MINUTE"
    )
    cache_dir: str | None = None  # yfinance's cookie cache; unset: ~/.cache/py-yfinance

    def get_provider(self) -> YahooClient:
        return YahooClient(
            base_url=self.base_url,
            proxy=self.proxy,
            calls_per_minute=self.calls_per_minute,
            cache_dir=self.cache_dir,
        )


# MARKET_DATA_PROVIDER's values, in the order errors list them.
BAR_PROVIDERS: dict[str, type[MarketDataResource]] = {
    "simulated": SimulatedMarketResource,
    "twelve_data": TwelveDataResource,
    "alpha_vantage": AlphaVantageResource,
    "yfinance": YFinanceResource,
}


def required_key(value: str | None, variable: str) -> str:
    if not value:
        # Typed as permanent: the step fails once, without retries (see defs/common/assets.py).
        raise MissingApiKey(f"{variable} is not set: the provider needs an API key")
    return value
