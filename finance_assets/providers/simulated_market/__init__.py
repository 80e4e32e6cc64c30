"""The simulated market (`MARKET_DATA_PROVIDER=simulated`, the default): seeded, reproducible
bars in Twelve Data's payload format, with faults injected at `FINANCE_SIM_FAULT_RATE`."""

from finance_assets.lib.settings import NumberRange
from finance_assets.providers.simulated_market.client import SimulatedMarket
from finance_assets.providers.spec import ProviderSpec, Setting

SPEC = ProviderSpec(
    name="simulated",
    kind="bars",
    resource="finance_assets.providers.simulated_market.resource:SimulatedMarketResource",
    description="seeded, reproducible bars (no network, no key)",
    settings=(
        Setting(
            "fault_rate",
            "FINANCE_SIM_FAULT_RATE",
            "number",
            0.0,
            NumberRange(0, 1, meaning="the share of simulated records corrupted"),
        ),
    ),
    # Its payloads are Twelve Data's format: the twelve_data provider parses them.
)

__all__ = ["SPEC", "SimulatedMarket"]
