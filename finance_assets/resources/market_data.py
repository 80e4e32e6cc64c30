"""What every bar provider's resource is: the assets ask for `market_data`, whichever provider
it is. `MARKET_DATA_PROVIDER` picks the class (resources/__init__.py, from the registry); each
provider's class sits in its own package (`finance_assets/providers/<name>/resource.py`) and
holds only its settings; API keys arrive as `dg.EnvVar`s (the UI shows the variable's name,
never its value)."""

import dagster as dg

from finance_assets.lib.providers.base import BarProvider
from finance_assets.lib.providers.http import MissingApiKey


class MarketDataResource(dg.ConfigurableResource):
    """The market-data provider of the raw assets (resource key `market_data`)."""

    def get_provider(self) -> BarProvider:
        raise NotImplementedError(f"{type(self).__name__} names no provider")


def required_key(value: str | None, variable: str) -> str:
    if not value:
        # Typed as permanent: the step fails once, without retries (see defs/common/assets.py).
        raise MissingApiKey(f"{variable} is not set: the provider needs an API key")
    return value
