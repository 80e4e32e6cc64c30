"""Data-quality rules over clean bars and warehouse tables. Each returns the violating rows
(empty = passed).

They re-check what cleaning promises, independently of the cleaning code, so the asset checks
catch a bug or a corruption that slips past it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence

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


# --- warehouse tables ------------------------------------------------------------------------


def duplicate_keys(frame: pl.DataFrame, key: Sequence[str]) -> pl.DataFrame:
    """Every row whose key occurs more than once (all copies, so a sample shows both)."""
    if frame.is_empty():
        return frame
    return frame.filter(pl.len().over(list(key)) > 1)


def rows_off_session(frame: pl.DataFrame, sessions: Iterable[dt.date]) -> pl.DataFrame:
    """Rows whose `trading_date` is not one of `sessions`."""
    return frame.filter(~pl.col("trading_date").is_in(list(sessions)))


def vwap_outside_range(summary: pl.DataFrame, tolerance: float = 1e-9) -> pl.DataFrame:
    """Rows whose VWAP lies outside the day's [low, high]: an average of typical prices, each
    within the bar's range, cannot (beyond float rounding, `tolerance` relative)."""
    slack = pl.max_horizontal(pl.col("low").abs(), pl.col("high").abs()) * tolerance
    vwap = pl.col("vwap")
    return summary.filter(
        vwap.is_not_null() & ((vwap < pl.col("low") - slack) | (vwap > pl.col("high") + slack))
    )
