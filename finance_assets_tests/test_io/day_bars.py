"""One session's simulated 5-minute bars in the canonical schema, for the store tests."""

import datetime as dt

import polars as pl

from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import BarRequest
from finance_assets.lib.schema import BAR_SCHEMA, conform
from finance_assets.providers.simulated_market import SimulatedMarket

DAY = dt.date(2026, 11, 18)


def day_bars(
    market: Market, symbols: list[str], ingested_minute: int, day: dt.date = DAY
) -> pl.DataFrame:
    """The bars of `day` for `symbols`, ingested at 22:<ingested_minute> UTC on `day` (a later
    minute makes a later fetch of the same bars)."""
    start = dt.datetime.combine(day, dt.time(), market.tz)
    bars = SimulatedMarket().bars(
        BarRequest(market, symbols, "5min", start, start + dt.timedelta(days=1))
    )
    ingested = dt.datetime.combine(day, dt.time(22, ingested_minute), dt.UTC)
    return conform(
        bars.with_columns(
            adj_close=pl.lit(None, pl.Float64),
            currency=pl.lit("USD"),
            source=pl.lit("simulated"),
            ingested_at=pl.lit(ingested),
        ),
        BAR_SCHEMA,
    )
