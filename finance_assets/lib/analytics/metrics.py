"""The numbers behind the report and the BI views, as polars functions: the views compute the
same in SQL (`views.py`), and the tests hold one against the other."""

from __future__ import annotations

import polars as pl

# Rolling windows in sessions, and the fewest observations a statistic is given for: a
# 20-session window is the market's usual month; below 5 points a deviation means little.
WINDOW = 20
MIN_OBSERVATIONS = 5
# A day's volume is unusual at 2 standard deviations above its previous WINDOW sessions.
UNUSUAL_VOLUME_Z = 2.0
TRADING_DAYS_PER_YEAR = 252


def volume_zscores(summary: pl.DataFrame) -> pl.DataFrame:
    """Per (symbol, trading_date) of a daily summary: the volume's z-score against the previous
    WINDOW sessions (null with fewer than MIN_OBSERVATIONS of them), the 20-session volatility
    of the daily return (sample standard deviation over the window ending that day, in %; null
    below MIN_OBSERVATIONS returns) and `unusual_volume`."""
    prior = pl.col("volume").cast(pl.Float64).shift(1)
    frame = (
        summary.select("trading_date", "symbol", "return_pct", "volume")
        .sort("symbol", "trading_date")
        .with_columns(
            _mean=prior.rolling_mean(WINDOW, min_samples=1).over("symbol"),
            _std=prior.rolling_std(WINDOW, min_samples=2).over("symbol"),
            _n=prior.is_not_null()
            .cast(pl.Int64)
            .rolling_sum(WINDOW, min_samples=1)
            .over("symbol")
            .fill_null(0),
            _ret_n=pl.col("return_pct")
            .is_not_null()
            .cast(pl.Int64)
            .rolling_sum(WINDOW, min_samples=1)
            .over("symbol"),
            _vol=pl.col("return_pct").rolling_std(WINDOW, min_samples=2).over("symbol"),
        )
    )
    z = (pl.col("volume") - pl.col("_mean")) / pl.when(pl.col("_std") > 0).then(pl.col("_std"))
    return frame.select(
        "trading_date",
        "symbol",
        "return_pct",
        "volume",
        volatility_20d_pct=pl.when(pl.col("_ret_n") >= MIN_OBSERVATIONS).then(pl.col("_vol")),
        volume_zscore=pl.when(pl.col("_n") >= MIN_OBSERVATIONS).then(z),
    ).with_columns(unusual_volume=(pl.col("volume_zscore") >= UNUSUAL_VOLUME_Z).fill_null(False))


def intraday_vwap(bars: pl.DataFrame) -> pl.DataFrame:
    """5-minute bars with the session's running VWAP per symbol (the daily summary's VWAP at the
    close): Σ typical price × volume / Σ volume up to each bar."""
    typical = (pl.col("high") + pl.col("low") + pl.col("close")) / 3
    return (
        bars.select("symbol", "ts", "high", "low", "close", "volume")
        .sort("symbol", "ts")
        .with_columns(
            vwap=(typical * pl.col("volume")).cum_sum().over("symbol")
            / pl.col("volume").cum_sum().over("symbol").cast(pl.Float64)
        )
        .with_columns(pl.when(pl.col("vwap").is_finite()).then(pl.col("vwap")).alias("vwap"))
    )


def alerts_per_day(alerts: pl.DataFrame, timezone: str) -> pl.DataFrame:
    """Price alerts counted per exchange-local day, symbol, kind and direction."""
    return (
        alerts.with_columns(
            trading_date=pl.col("ts").dt.convert_time_zone(timezone).dt.date(),
        )
        .group_by("trading_date", "symbol", "kind", "direction")
        .agg(
            alerts=pl.len().cast(pl.Int64),
            max_abs_change_pct=pl.col("change_pct").abs().max(),
            first_alert_at=pl.col("ts").min(),
            last_alert_at=pl.col("ts").max(),
        )
        .sort("trading_date", "symbol", "kind", "direction")
    )
