"""The Spark domain's definitions: `<market>/bars_by_symbol`, the PySpark job of `spark/` run
through Dagster Pipes (the client is the `spark_pipes` resource)."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from finance_assets.defs.cluster.assets import build_spark_assets
from finance_assets.defs.common.markets import configured_markets
from finance_assets.lib.markets import Market


def build_defs(markets: Sequence[Market]) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.with_source_code_references(
            [asset for market in markets for asset in build_spark_assets(market)]
        )
    )


@dg.definitions
def defs() -> dg.Definitions:
    """This domain's part of the code location, for the configured markets."""
    return build_defs(configured_markets())
