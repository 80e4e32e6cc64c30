"""The providers the platform knows: one line each. Adding a provider is a folder under
`finance_assets/providers/` with its `SPEC`, one line here, and `python deployment/render.py
--write` for the deployments.

Everything that lists providers asks this module: `MARKET_DATA_PROVIDER` / `POSTS_PROVIDER`'s
valid values and the settings read for each (`resources/__init__.py`), the payload format ->
parser table (`lib/transforms/parsing.py`), the deployments' variables, secrets and run-tag
limits (`deployment/render.py`). No Dagster import.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from finance_assets.providers import (
    alpha_vantage,
    simulated_market,
    simulated_posts,
    twelve_data,
    x_api,
    yfinance,
)
from finance_assets.providers.spec import ActionParser, ErrorScanner, Kind, Parser, ProviderSpec

# In the order errors and the deployments list them; the first of each kind is the default.
_SPECS: list[ProviderSpec] = [
    simulated_market.SPEC,
    twelve_data.SPEC,
    alpha_vantage.SPEC,
    yfinance.SPEC,
    simulated_posts.SPEC,
    x_api.SPEC,
]


def all_specs() -> tuple[ProviderSpec, ...]:
    return tuple(_SPECS)


def specs(kind: Kind) -> tuple[ProviderSpec, ...]:
    """The providers of one kind, the default first."""
    return tuple(s for s in _SPECS if s.kind == kind)


def names(kind: Kind) -> tuple[str, ...]:
    return tuple(s.name for s in specs(kind))


def get(kind: Kind, name: str) -> ProviderSpec:
    for spec in specs(kind):
        if spec.name == name:
            return spec
    raise KeyError(f"no {kind} provider {name!r}; known: {', '.join(names(kind))}")


def parsers() -> dict[str, Parser]:
    """Payload format -> its parser, from every provider's spec."""
    return {fmt: parse for spec in _SPECS for fmt, parse in spec.formats.items()}


def error_scanners() -> dict[str, ErrorScanner]:
    return {fmt: scan for spec in _SPECS for fmt, scan in spec.error_scanners.items()}


def action_parsers() -> dict[str, ActionParser]:
    """Payload format -> the reader of the splits and dividends its bodies carry inline."""
    return {fmt: read for spec in _SPECS for fmt, read in spec.actions.items()}


def actions_only_formats() -> frozenset[str]:
    """Formats that carry corporate actions and no bars (Twelve Data's `/splits` and
    `/dividends` answers): the bars' clean step leaves their payloads out, so one can never
    count as an answer about bars."""
    return frozenset(action_parsers().keys() - parsers().keys())


def register(spec: ProviderSpec) -> None:
    """Add a provider in this process (a plug-in, or a test's fake). Its name must be new for
    its kind, its formats new, and its variables new: two providers reading one variable, or
    two parsers for one format, would make the choice depend on the registry's order."""
    if spec.name in names(spec.kind):
        raise ValueError(f"a {spec.kind} provider {spec.name!r} is already registered")
    taken_formats = parsers().keys() & spec.formats.keys()
    if taken_formats:
        raise ValueError(f"provider {spec.name!r}: formats {sorted(taken_formats)} are taken")
    taken_vars = {s.variable for other in _SPECS for s in other.settings} & {
        s.variable for s in spec.settings
    }
    if taken_vars:
        raise ValueError(f"provider {spec.name!r}: variables {sorted(taken_vars)} are taken")
    _SPECS.append(spec)


def unregister(kind: Kind, name: str) -> None:
    _SPECS.remove(get(kind, name))


@contextmanager
def registered(spec: ProviderSpec) -> Iterator[ProviderSpec]:
    """`register(spec)` for the length of a `with` block."""
    register(spec)
    try:
        yield spec
    finally:
        unregister(spec.kind, spec.name)
