"""Alpha Vantage's time series (`MARKET_DATA_PROVIDER=alpha_vantage`): one call per symbol, a
key required. The client and its payload parser share one module (`client.py`): the parser's
exchange and time-zone tables are the client's symbol notation."""

from finance_assets.providers.alpha_vantage.client import (
    DEFAULT_BASE_URL,
    FORMAT,
    FREE_CALLS_PER_DAY,
    FREE_CALLS_PER_MINUTE,
    PER_DAY_VARIABLE,
    PER_MINUTE_VARIABLE,
    parse_alpha_vantage,
    parse_alpha_vantage_actions,
)
from finance_assets.providers.spec import (
    CALLS_PER_DAY,
    CALLS_PER_MINUTE,
    Budget,
    ProviderSpec,
    Setting,
)

SPEC = ProviderSpec(
    name="alpha_vantage",
    kind="bars",
    resource="finance_assets.providers.alpha_vantage.resource:AlphaVantageResource",
    description="Alpha Vantage's TIME_SERIES_* (a key; 5 calls a minute, 25 a day free)",
    settings=(
        Setting("api_key", "ALPHAVANTAGE_API_KEY", "secret", required="its key"),
        Setting("base_url", "ALPHAVANTAGE_BASE_URL", "url", DEFAULT_BASE_URL),
        Setting(
            "calls_per_minute",
            PER_MINUTE_VARIABLE,
            "whole",
            FREE_CALLS_PER_MINUTE,
            CALLS_PER_MINUTE,
        ),
        # A fetch needing more is refused before any call (a premium plan: raise it).
        Setting("calls_per_day", PER_DAY_VARIABLE, "whole", FREE_CALLS_PER_DAY, CALLS_PER_DAY),
    ),
    formats={FORMAT: parse_alpha_vantage},
    actions={FORMAT: parse_alpha_vantage_actions},
    budget=Budget(
        "calls_per_minute",
        FREE_CALLS_PER_DAY,
        "one call per symbol",
        per_day_setting="calls_per_day",
    ),
    run_limit=1,
)

__all__ = ["SPEC"]
