"""Which provider answers a market's bars of an interval.

`MARKET_DATA_PROVIDER_<MARKET>_<INTERVAL>` (`DAILY`, `5MIN`), else `MARKET_DATA_PROVIDER_<MARKET>`,
else `MARKET_DATA_PROVIDER` (the default for every market; unset: the first bars provider the
registry lists, the simulated market). So an Alpha Vantage daily pipeline for New York, a
yfinance daily pipeline for London and a Twelve Data 5-minute pipeline run side by side in one
code location:

    MARKET_DATA_PROVIDER=twelve_data
    MARKET_DATA_PROVIDER_US_DAILY=alpha_vantage
    MARKET_DATA_PROVIDER_UK_DAILY=yfinance

The default provider sits under the resource key `market_data` (as it always has); every other
chosen provider under `market_data_<provider>`, one resource per provider whatever the number of
markets it serves, so its rate limit and key are shared across them. Pure: no Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from finance_assets.providers import registry
from finance_assets.providers.spec import KINDS

DEFAULT_VARIABLE = KINDS["bars"].variable  # MARKET_DATA_PROVIDER
BASE_KEY = KINDS["bars"].resource_key  # market_data
INTERVAL_NAMES = {"5min": "5MIN", "1day": "DAILY"}
_ROUTE_VARIABLE = re.compile(
    rf"{DEFAULT_VARIABLE}_(?P<market>[A-Z0-9]+)(?:_(?P<interval>[A-Z0-9]+))?"
)


@dataclass(frozen=True)
class Route:
    """The provider of one market's bars of one interval, and the variable that chose it."""

    market: str
    interval: str
    provider: str
    variable: str  # the variable that decided (or DEFAULT_VARIABLE when none is set)
    resource_key: str


def route_variables(market: str, interval: str) -> tuple[str, str, str]:
    """The variables that choose the provider of `market`'s `interval` bars, first wins."""
    upper = market.upper()
    return (
        f"{DEFAULT_VARIABLE}_{upper}_{INTERVAL_NAMES[interval]}",
        f"{DEFAULT_VARIABLE}_{upper}",
        DEFAULT_VARIABLE,
    )


def default_provider(environ: Mapping[str, str]) -> str:
    value = (environ.get(DEFAULT_VARIABLE) or "").strip().lower()
    return value or registry.names("bars")[0]


def resource_key(provider: str, environ: Mapping[str, str]) -> str:
    """`market_data` for the default provider, `market_data_<provider>` for any other."""
    return BASE_KEY if provider == default_provider(environ) else f"{BASE_KEY}_{provider}"


def route(environ: Mapping[str, str], market: str, interval: str) -> Route:
    for variable in route_variables(market, interval):
        value = (environ.get(variable) or "").strip().lower()
        if value:
            return Route(market, interval, value, variable, resource_key(value, environ))
    provider = default_provider(environ)
    return Route(market, interval, provider, DEFAULT_VARIABLE, BASE_KEY)


def routes(environ: Mapping[str, str], markets: Iterable[str]) -> list[Route]:
    """Every (market, interval) route of `markets`."""
    return [route(environ, m, i) for m in markets for i in INTERVAL_NAMES]


def route_problems(environ: Mapping[str, str], markets: Iterable[str]) -> list[str]:
    """Unknown providers named by a route variable, and route variables that name no market or
    interval of this code location (a typo would silently fall back to the default)."""
    markets = list(markets)
    valid = registry.names("bars")
    problems = []
    for found in routes(environ, markets):
        if found.provider not in valid and found.variable != DEFAULT_VARIABLE:
            problems.append(
                f"{found.variable}={environ[found.variable]!r} is not a market-data provider; "
                f"valid: {', '.join(valid)}"
            )
    known = {v for m in markets for i in INTERVAL_NAMES for v in route_variables(m, i)}
    for name in sorted(environ):
        stray = name not in known and (environ[name] or "").strip()
        if stray and _ROUTE_VARIABLE.fullmatch(name):
            problems.append(
                f"{name} names no market and interval of this code location (markets: "
                f"{', '.join(markets)}; intervals: {', '.join(INTERVAL_NAMES.values())}; e.g. "
                f"{DEFAULT_VARIABLE}_{markets[0].upper() if markets else 'US'}_DAILY)"
            )
    return problems
