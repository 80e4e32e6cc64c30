"""The simulated market as the `market_data` resource."""

from finance_assets.providers.simulated_market import SPEC
from finance_assets.providers.simulated_market.client import SimulatedMarket
from finance_assets.resources.market_data import MarketDataResource


class SimulatedMarketResource(MarketDataResource):
    """Seeded, reproducible bars (`MARKET_DATA_PROVIDER=simulated`, the default)."""

    seed: int = 7
    fault_rate: float = SPEC.field("fault_rate")

    def get_provider(self) -> SimulatedMarket:
        return SimulatedMarket(seed=self.seed, fault_rate=self.fault_rate)
