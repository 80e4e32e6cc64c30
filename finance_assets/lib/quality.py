"""Data-quality rules over clean bars. Each returns the violating rows (empty = passed).

They re-check what cleaning promises, independently of the cleaning code, so the asset checks
catch a bug or a corruption that slips past it.
"""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

from finance_assets.lib.schema import MAX_PRICE, PRICE_COLUMNS


def null_prices(bars: pl.DataFrame) -> pl.DataFrame:
    """Rows with a price that is missing, NaN, infinite or not below MAX_PRICE."""
    return bars.filter(
        pl.any_horizontal(
            [
                # is_between is false for null, NaN and inf alike: one test for all of them.
                ~pl.col(c).is_between(-MAX_PRICE, MAX_PRICE, closed="none").fill_null(False)
                for c in PRICE_COLUMNS
            ]
        )
    )


def non_increasing_timestamps(bars: pl.DataFrame) -> pl.DataFrame:
    """Rows whose ts is not after the previous row's ts of the same symbol (stored order)."""
    return bars.filter(
        pl.col("ts").is_null() | (pl.col("ts").diff().over("symbol") <= pl.duration(microseconds=0))
    )


def ohlc_inconsistent(bars: pl.DataFrame) -> pl.DataFrame:
    low, high = pl.col("low"), pl.col("high")
    return bars.filter(
        (low > pl.col("open"))
        | (low > pl.col("close"))
        | (pl.col("open") > high)
        | (pl.col("close") > high)
        | (low > high)
    )


def negative_volume(bars: pl.DataFrame) -> pl.DataFrame:
    return bars.filter(pl.col("volume").is_null() | (pl.col("volume") < 0))


# name -> (rule, description shown in the UI)
BAR_RULES: dict[str, tuple[Callable[[pl.DataFrame], pl.DataFrame], str]] = {
    "prices_not_null": (
        null_prices,
        f"open, high, low and close are present, finite numbers below {MAX_PRICE:g}",
    ),
    "timestamps_strictly_increasing": (
        non_increasing_timestamps,
        "per symbol, each bar starts after the previous one: chronological, no duplicates",
    ),
    "ohlc_consistent": (ohlc_inconsistent, "low <= open, close <= high"),
    "volume_non_negative": (negative_volume, "volume is present and >= 0"),
}
