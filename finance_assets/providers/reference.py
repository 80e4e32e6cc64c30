"""Which provider gives a market its second opinion, and on how many symbols.

`MARKET_DATA_REFERENCE_<MARKET>` names a bars provider that answers the market's daily bars a
second time, for `MARKET_DATA_REFERENCE_<MARKET>_SYMBOLS` symbols of its universe (a fixed
sample: `lib/transforms/agreement.reference_sample`); `vendor_agreement` compares them with
the primary provider's (`providers/routing.py`). Unset: no second opinion for that market.

    MARKET_DATA_PROVIDER_US_DAILY=alpha_vantage
    MARKET_DATA_REFERENCE_US=twelve_data
    MARKET_DATA_REFERENCE_US_SYMBOLS=20

The reference provider's resource is the one routing gives it (`market_data` when it is the
default provider, else `market_data_<provider>`): one resource, one rate limit and one key per
provider, whichever markets and roles it serves. Pure: no Dagster.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from finance_assets.lib.settings import NumberRange
from finance_assets.providers import registry, routing

DEFAULT_SYMBOLS = 10
SYMBOLS = NumberRange(1, 10_000, whole=True, meaning="symbols of the universe asked twice")
# What the comparison tolerates (`lib/transforms/agreement.Tolerance`).
CLOSE_BP_VARIABLE = "FINANCE_VENDOR_CLOSE_BP"
VOLUME_SHARE_VARIABLE = "FINANCE_VENDOR_VOLUME_SHARE"
DEFAULT_CLOSE_BP = 10.0
DEFAULT_VOLUME_SHARE = 0.10
CLOSE_BP = NumberRange(
    0, 10_000, low_open=True, meaning="basis points two closes of one bar may differ by"
)
VOLUME_SHARE = NumberRange(
    0, 1, low_open=True, meaning="share of the larger volume two volumes of one bar may differ by"
)
_VARIABLE = re.compile(r"MARKET_DATA_REFERENCE_(?P<market>[A-Z0-9]+)(?P<symbols>_SYMBOLS)?")


@dataclass(frozen=True)
class Reference:
    """A market's reference provider and the size of its sample."""

    market: str
    provider: str
    symbols: int
    resource_key: str
    variable: str


def variables(market: str) -> tuple[str, str]:
    """The provider's variable and the sample size's, of one market."""
    return (
        f"MARKET_DATA_REFERENCE_{market.upper()}",
        f"MARKET_DATA_REFERENCE_{market.upper()}_SYMBOLS",
    )


def _whole(raw: str) -> int | None:
    try:
        value = float(raw)
    except ValueError:
        return None
    return int(value) if value.is_integer() and SYMBOLS.contains(value) else None


def reference(environ: Mapping[str, str], market: str) -> Reference | None:
    """The market's reference, or None when it has none (or the setting is unusable: see
    `reference_problems`, which the settings check reports at load)."""
    provider_var, symbols_var = variables(market)
    provider = (environ.get(provider_var) or "").strip().lower()
    if not provider or provider not in registry.names("bars"):
        return None
    raw = (environ.get(symbols_var) or "").strip()
    symbols = _whole(raw) if raw else DEFAULT_SYMBOLS
    if symbols is None:
        return None
    return Reference(
        market, provider, symbols, routing.resource_key(provider, environ), provider_var
    )


def references(environ: Mapping[str, str], markets: Iterable[str]) -> list[Reference]:
    return [r for m in markets if (r := reference(environ, m)) is not None]


def reference_problems(environ: Mapping[str, str], markets: Iterable[str]) -> list[str]:
    """Every reference setting that cannot be used, each naming its variable and what is
    valid: an unknown provider, the very provider the market's daily bars come from (no
    second opinion), a sample size out of range, a size without a provider, or a market this
    code location does not have."""
    markets = list(markets)
    valid = registry.names("bars")
    problems = []
    for market in markets:
        provider_var, symbols_var = variables(market)
        provider = (environ.get(provider_var) or "").strip().lower()
        raw = (environ.get(symbols_var) or "").strip()
        if provider and provider not in valid:
            problems.append(
                f"{provider_var}={environ[provider_var]!r} is not a market-data provider; "
                f"valid: {', '.join(valid)}"
            )
        elif provider:
            primary = routing.route(environ, market, "1day")
            if primary.provider == provider:
                problems.append(
                    f"{provider_var}={provider!r} is the provider {market}'s daily bars already "
                    f"come from ({primary.variable}): a second opinion needs another provider"
                )
        if raw and _whole(raw) is None:
            problems.append(f"{symbols_var}={raw!r} is not {SYMBOLS.text()}")
        if raw and not provider:
            problems.append(f"{symbols_var} is set but {provider_var} names no provider")
    known = {v for m in markets for v in variables(m)}
    for name in sorted(environ):
        if name not in known and (environ[name] or "").strip() and _VARIABLE.fullmatch(name):
            problems.append(
                f"{name} names no market of this code location (markets: {', '.join(markets)})"
            )
    return problems
