"""Aggregation over clean bars: the daily summary and the price moves worth an alert."""

from __future__ import annotations

import polars as pl

from finance_assets.lib.markets import Market
from finance_assets.lib.schema import (
    DAILY_SUMMARY_SCHEMA,
    UTC_TS,
    conform,
    empty,
    ordered_sum,
)

# --- aggregation -----------------------------------------------------------------------------


def daily_summary(
    bars: pl.DataFrame, market: Market, daily_bars: pl.DataFrame | None = None
) -> pl.DataFrame:
    """One row per (trading_date, symbol) from a session's 5-minute bars, or from the provider's
    daily bar where the session has no 5-minute bars for the symbol (`daily_bars`).

    vwap = Σ(typical price × volume) / Σ volume with typical price = (high + low + close) / 3;
    open_to_close_pct = close / open − 1; range_pct = (high − low) / open; return_pct = close /
    previous session's close − 1 (null when that session is not in `bars` or `daily_bars`).
    Percentages × 100. A row from a daily bar has `bar_count` 0 and no VWAP: a daily bar does not
    say how the volume was spread over the day's prices, so none is invented.
    """
    sessions = _sessions_from_bars(bars, market)
    if daily_bars is not None and not daily_bars.is_empty():
        from_daily = (
            daily_bars.lazy()
            .with_columns(trading_date=pl.col("ts").dt.convert_time_zone(market.timezone).dt.date())
            .select(
                "trading_date",
                "symbol",
                "open",
                "high",
                "low",
                "close",
                "volume",
                _pv=pl.lit(None, pl.Float64),
                bar_count=pl.lit(0, pl.UInt32),
            )
            .collect()
            .join(
                sessions.select("trading_date", "symbol"), on=["trading_date", "symbol"], how="anti"
            )
        )
        sessions = pl.concat([sessions, from_daily.cast(sessions.schema)])
    if sessions.is_empty():
        return empty(DAILY_SUMMARY_SCHEMA)
    dates = sessions.get_column("trading_date").unique().to_list()
    previous = pl.DataFrame(
        {"trading_date": dates, "_prev_date": [market.previous_session(d) for d in dates]},
        schema={"trading_date": pl.Date, "_prev_date": pl.Date},
    )
    prev_close = sessions.select(
        pl.col("trading_date").alias("_prev_date"), "symbol", prev_close="close"
    )
    summary = (
        sessions.join(previous, on="trading_date", how="left")
        .join(prev_close, on=["_prev_date", "symbol"], how="left")
        .with_columns(
            vwap=pl.when(pl.col("volume") > 0).then(pl.col("_pv") / pl.col("volume")),
            open_to_close_pct=(pl.col("close") / pl.col("open") - 1) * 100,
            range_pct=(pl.col("high") - pl.col("low")) / pl.col("open") * 100,
            return_pct=(pl.col("close") / pl.col("prev_close") - 1) * 100,
        )
        .sort("trading_date", "symbol")
    )
    return conform(summary, DAILY_SUMMARY_SCHEMA)


def _sessions_from_bars(bars: pl.DataFrame, market: Market) -> pl.DataFrame:
    """Each (trading_date, symbol)'s OHLCV, Σ(typical price × volume) and bar count."""
    schema = {
        "trading_date": pl.Date(),
        "symbol": pl.String(),
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Int64(),
        "_pv": pl.Float64(),
        "bar_count": pl.UInt32(),
    }
    if bars.is_empty():
        return pl.DataFrame(schema=schema)
    return (
        bars.lazy()
        .with_columns(trading_date=pl.col("ts").dt.convert_time_zone(market.timezone).dt.date())
        .sort("symbol", "ts")
        .group_by("trading_date", "symbol")
        .agg(
            open=pl.col("open").first(),
            high=pl.col("high").max(),
            low=pl.col("low").min(),
            close=pl.col("close").last(),
            volume=pl.col("volume").sum(),
            _pv=ordered_sum(
                (pl.col("high") + pl.col("low") + pl.col("close")) / 3 * pl.col("volume")
            ),
            bar_count=pl.len(),
        )
        .collect()
        .cast(schema)
    )


# --- price moves -----------------------------------------------------------------------------

PRICE_ALERT_SCHEMA: dict[str, pl.DataType] = {
    "ts": UTC_TS,  # start of the bar that made the move
    "symbol": pl.String(),
    "kind": pl.String(),  # vs_prev_close | vs_prev_bar
    "direction": pl.String(),  # up | down
    "price": pl.Float64(),
    "reference": pl.Float64(),
    "change_pct": pl.Float64(),
    "threshold_pct": pl.Float64(),
}
PRICE_ALERT_KEY = ["ts", "symbol", "kind"]


def _alert_columns(kind: str, reference: str, change: str) -> list[pl.Expr]:
    """An alert row's columns: the move of `close` against `reference` (`change`, a ratio - 1)."""
    return [
        pl.col("ts"),
        pl.col("symbol"),
        pl.lit(kind).alias("kind"),
        pl.when(pl.col(change) > 0).then(pl.lit("up")).otherwise(pl.lit("down")).alias("direction"),
        pl.col("close").alias("price"),
        pl.col(reference).alias("reference"),
        (pl.col(change) * 100).alias("change_pct"),
    ]


def detect_price_moves(bars: pl.DataFrame, market: Market, threshold_pct: float) -> pl.DataFrame:
    """Moves of at least `threshold_pct` (e.g. 1.0 for 1 %), per symbol:

    - `vs_prev_close`: the close against the previous session's close, alerted once per crossing:
      when it first reaches the threshold (up or down), not again while it stays beyond, again
      after it came back inside and crossed anew.
    - `vs_prev_bar`: a bar's close against the bar before it in the same session.

    `bars` must cover whole sessions from the previous session's last bar on (the caller filters
    the alerts to its window); the first session in `bars` serves only as the reference close.
    """
    if threshold_pct <= 0:
        raise ValueError(f"threshold_pct must be positive, got {threshold_pct}")
    if bars.is_empty():
        return empty(PRICE_ALERT_SCHEMA)
    limit = threshold_pct / 100
    frame = (
        bars.select("symbol", "ts", "close")
        .sort("symbol", "ts")
        .with_columns(session=pl.col("ts").dt.convert_time_zone(market.timezone).dt.date())
    )
    closes = frame.group_by("symbol", "session").agg(session_close=pl.col("close").last())
    sessions = frame.get_column("session").unique().to_list()
    previous = pl.DataFrame(
        {"session": sessions, "_prev": [market.previous_session(d) for d in sessions]},
        schema={"session": pl.Date, "_prev": pl.Date},
    )
    frame = (
        frame.join(previous, on="session", how="left")
        .join(
            closes.rename({"session": "_prev", "session_close": "prev_close"}),
            on=["symbol", "_prev"],
            how="left",
        )
        .with_columns(
            prev_bar=pl.col("close").shift(1).over("symbol", "session"),
            vs_close=pl.col("close") / pl.col("prev_close") - 1,
        )
        .with_columns(
            # -1 below, 0 inside, +1 beyond the threshold; an alert where the state changes
            # into -1 or +1 from anything else (including the session's first bar).
            _state=pl.when(pl.col("vs_close") >= limit)
            .then(1)
            .when(pl.col("vs_close") <= -limit)
            .then(-1)
            .otherwise(0)
        )
        .with_columns(_before=pl.col("_state").shift(1).over("symbol", "session").fill_null(0))
    )
    crossings = frame.filter(
        pl.col("prev_close").is_not_null()
        & (pl.col("_state") != 0)
        & (pl.col("_state") != pl.col("_before"))
    ).select(_alert_columns("vs_prev_close", "prev_close", "vs_close"))
    bar_moves = (
        frame.with_columns(vs_bar=pl.col("close") / pl.col("prev_bar") - 1)
        .filter(pl.col("vs_bar").abs() >= limit)
        .select(_alert_columns("vs_prev_bar", "prev_bar", "vs_bar"))
    )
    alerts = pl.concat([crossings, bar_moves]).with_columns(
        threshold_pct=pl.lit(float(threshold_pct))
    )
    return conform(alerts, PRICE_ALERT_SCHEMA).sort("ts", "symbol", "kind")
