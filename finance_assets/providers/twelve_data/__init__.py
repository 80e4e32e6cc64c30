"""Twelve Data's `/time_series` (`MARKET_DATA_PROVIDER=twelve_data`): batches of up to 120
symbols a call, credits per symbol, a key required."""

from finance_assets.providers.spec import (
    CALLS_PER_DAY,
    CALLS_PER_MINUTE,
    Budget,
    ProviderSpec,
    Setting,
)
from finance_assets.providers.twelve_data.client import (
    DEFAULT_BASE_URL,
    FREE_CREDITS_PER_DAY,
    FREE_CREDITS_PER_MINUTE,
    PER_DAY_VARIABLE,
    PER_MINUTE_VARIABLE,
)
from finance_assets.providers.twelve_data.parser import (
    ACTIONS_FORMAT,
    FORMAT,
    parse_twelve_data,
    parse_twelve_data_actions,
    twelve_data_errors,
)

SPEC = ProviderSpec(
    name="twelve_data",
    kind="bars",
    resource="finance_assets.providers.twelve_data.resource:TwelveDataResource",
    description="Twelve Data's /time_series (a key; 8 credits a minute, 800 a day free)",
    settings=(
        Setting("api_key", "TWELVEDATA_API_KEY", "secret", required="its key"),
        Setting("base_url", "TWELVEDATA_BASE_URL", "url", DEFAULT_BASE_URL),
        Setting(
            "credits_per_minute",
            PER_MINUTE_VARIABLE,
            "whole",
            FREE_CREDITS_PER_MINUTE,
            CALLS_PER_MINUTE,
        ),
        # A fetch needing more is refused before any call; a plan without a daily cap: set
        # it to the most a run may spend.
        Setting("credits_per_day", PER_DAY_VARIABLE, "whole", FREE_CREDITS_PER_DAY, CALLS_PER_DAY),
    ),
    formats={FORMAT: parse_twelve_data},
    # The simulated market's daily bodies carry splits and dividends in /splits' and
    # /dividends' shapes; real /time_series bodies none. The client's own /splits and
    # /dividends answers (TWELVEDATA_CORPORATE_ACTIONS) have a format of their own: actions
    # only, never read as bars.
    actions={FORMAT: parse_twelve_data_actions, ACTIONS_FORMAT: parse_twelve_data_actions},
    error_scanners={FORMAT: twelve_data_errors, ACTIONS_FORMAT: twelve_data_errors},
    budget=Budget(
        "credits_per_minute",
        FREE_CREDITS_PER_DAY,
        "one credit per symbol",
        per_day_setting="credits_per_day",
    ),
    # The rate limiter lives in its run's process: two runs would each spend the whole budget.
    run_limit=1,
)

__all__ = ["SPEC"]
