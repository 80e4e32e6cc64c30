"""The vendor domain's definitions: for each market that names a reference provider
(`MARKET_DATA_REFERENCE_<MARKET>`), the reference's daily bars and their agreement with the
primary provider's."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import dagster as dg

from finance_assets.defs.common.markets import configured_markets
from finance_assets.defs.vendor.assets import build_vendor_assets
from finance_assets.lib.markets import Market
from finance_assets.providers import reference


def build_defs(markets: Sequence[Market], environ: Mapping[str, str]) -> dg.Definitions:
    assets = []
    for market in markets:
        found = reference.reference(environ, market.key)
        if found is not None:
            assets += build_vendor_assets(market, found, environ)
    return dg.Definitions(assets=dg.with_source_code_references(assets))


@dg.definitions
def defs() -> dg.Definitions:
    """This domain's part of the code location, for the configured markets."""
    return build_defs(configured_markets(), os.environ)
