"""Whether a market asks Twelve Data's `/splits` and `/dividends`, and for which symbols.

`TWELVEDATA_CORPORATE_ACTIONS=true` turns them on for every market whose daily bars
(`MARKET_DATA_PROVIDER_<MARKET>_DAILY`, `providers/routing.py`) or reference
(`MARKET_DATA_REFERENCE_<MARKET>`, `providers/reference.py`) come from Twelve Data: its whole
universe where Twelve Data is the daily provider, else the reference's sample. Each call costs
20 credits a symbol and needs the Grow plan or above (`twelve_data/client.py`), so it is off
unless asked for. Pure: no Dagster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from finance_assets.providers import reference, routing
from finance_assets.providers.twelve_data.client import ACTIONS_VARIABLE

PROVIDER = "twelve_data"
VARIABLE = ACTIONS_VARIABLE
CHOICES = ("true", "false")


@dataclass(frozen=True)
class ActionsSource:
    """Twelve Data as a market's source of corporate actions: the resource that calls it, the
    role it has for the market, and the sample size when it is the reference (None: the whole
    universe)."""

    market: str
    resource_key: str
    role: str  # "daily provider" or "reference"
    variable: str  # the variable that gave Twelve Data that role
    sample: int | None


def enabled(environ: Mapping[str, str]) -> bool:
    return (environ.get(VARIABLE) or "").strip().lower() == "true"


def source(environ: Mapping[str, str], market: str) -> ActionsSource | None:
    """Twelve Data's role for `market` when the setting is on and it has one, else None."""
    if not enabled(environ):
        return None
    daily = routing.route(environ, market, "1day")
    if daily.provider == PROVIDER:
        return ActionsSource(market, daily.resource_key, "daily provider", daily.variable, None)
    second = reference.reference(environ, market)
    if second is not None and second.provider == PROVIDER:
        return ActionsSource(
            market, second.resource_key, "reference", second.variable, second.symbols
        )
    return None


def problems(environ: Mapping[str, str], markets: Iterable[str]) -> list[str]:
    """A value other than true or false, and `true` where no market gets its daily bars or its
    reference from Twelve Data (nothing would call the endpoints: a silent no-op otherwise)."""
    raw = (environ.get(VARIABLE) or "").strip()
    if raw and raw.lower() not in CHOICES:
        return [f"{VARIABLE}={raw!r} is not one of: {', '.join(CHOICES)}"]
    markets = list(markets)
    if enabled(environ) and not any(source(environ, m) for m in markets):
        return [
            f"{VARIABLE}=true but no market's daily bars or reference come from {PROVIDER} "
            f"(markets: {', '.join(markets)}; set MARKET_DATA_PROVIDER_<MARKET>_DAILY or "
            f"MARKET_DATA_REFERENCE_<MARKET> to {PROVIDER}): nothing would call /splits and "
            "/dividends"
        ]
    return []
