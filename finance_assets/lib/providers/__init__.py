"""Market-data providers: one client per source behind one interface (`BarProvider`)."""

from finance_assets.lib.providers.base import BarProvider, ProviderError, RawPayload
from finance_assets.lib.providers.simulated import SimulatedMarket

__all__ = ["BarProvider", "ProviderError", "RawPayload", "SimulatedMarket"]
