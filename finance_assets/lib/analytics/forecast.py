"""Next-session close per symbol, and a walk-forward backtest of the model against two
baselines, every forecast made only from sessions before its target:

- `ridge`: scikit-learn's Ridge regression of the next daily return on the previous LAGS
  returns, refitted before every target on the returns known then; close × (1 + return).
- `naive`: tomorrow's close = today's.
- `historical_mean`: the mean of every close known so far (the textbook "mean method").

On a random walk (the simulated market is one) nothing beats `naive` on average: the backtest
says so rather than hiding it. Directional accuracy is the share of targets whose move (up or
down against the last close) the forecast called; `naive` calls no move, so it has none.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

if TYPE_CHECKING:
    import numpy as np  # imported by the fit: loading the code location fits nothing

MODELS = ("ridge", "naive", "historical_mean")
LAGS = 5
# The fewest (lags → return) examples a Ridge fit is made from; fewer and only the baselines
# forecast (every model is scored over the same targets, so the comparison stays fair).
MIN_TRAIN = 20
RIDGE_ALPHA = 1.0

FORECAST_SCHEMA: dict[str, pl.DataType] = {
    "trading_date": pl.Date(),  # the last session known: the forecast is made after its close
    "symbol": pl.String(),
    "model": pl.String(),
    "target_date": pl.Date(),  # the session forecast (the next one)
    "last_close": pl.Float64(),
    "forecast_close": pl.Float64(),
    "forecast_return_pct": pl.Float64(),
    "actual_close": pl.Float64(),  # null until the target session has closed
    "train_sessions": pl.Int64(),  # how many sessions the forecast was made from
}
FORECAST_KEY = ["trading_date", "symbol", "model"]


@dataclass(frozen=True)
class _Step:
    as_of: dt.date
    target: dt.date | None
    last_close: float
    actual: float | None
    known: np.ndarray  # closes up to and including as_of: all a forecast may see


def _steps(dates: Sequence[dt.date], closes: np.ndarray) -> Iterator[_Step]:
    for i, day in enumerate(dates):
        last = i + 1 == len(dates)
        yield _Step(
            as_of=day,
            target=None if last else dates[i + 1],
            last_close=float(closes[i]),
            actual=None if last else float(closes[i + 1]),
            known=closes[: i + 1],
        )


def _ridge(known: np.ndarray) -> float | None:
    """The next close from the closes known, or None with too little history."""
    returns = known[1:] / known[:-1] - 1
    examples = len(returns) - LAGS
    if examples < MIN_TRAIN:
        return None
    import numpy as np
    from sklearn.linear_model import Ridge  # ~0.5 s to import: only when a model is fitted

    windows = np.lib.stride_tricks.sliding_window_view(returns, LAGS + 1)
    model = Ridge(alpha=RIDGE_ALPHA).fit(windows[:, :LAGS], windows[:, LAGS])
    predicted = float(model.predict(returns[-LAGS:].reshape(1, -1))[0])
    return float(known[-1] * (1 + predicted))


def empty_forecasts() -> pl.DataFrame:
    return pl.DataFrame(schema=FORECAST_SCHEMA)


def walk_forward(closes: pl.DataFrame) -> pl.DataFrame:
    """One forecast per model, symbol and session of `closes` (trading_date, symbol, close):
    the next session's close, made from the closes up to that session only. Where the next
    session is in `closes`, `actual_close` holds it (the backtest); the last session's
    forecast is the live one (`target_date` null: the caller names the next session)."""
    rows: list[dict[str, object]] = []
    ordered = closes.drop_nulls("close").sort("symbol", "trading_date")
    for (symbol,), group in ordered.group_by("symbol", maintain_order=True):
        dates = group.get_column("trading_date").to_list()
        values = group.get_column("close").to_numpy().astype(float)
        for step in _steps(dates, values):
            ridge = _ridge(step.known)
            forecasts = {
                "ridge": ridge,
                "naive": step.last_close,
                "historical_mean": float(step.known.mean()),
            }
            for model, value in forecasts.items():
                rows.append(
                    {
                        "trading_date": step.as_of,
                        "symbol": symbol,
                        "model": model,
                        "target_date": step.target,
                        "last_close": step.last_close,
                        "forecast_close": value,
                        "forecast_return_pct": None
                        if value is None
                        else (value / step.last_close - 1) * 100,
                        "actual_close": step.actual,
                        "train_sessions": len(step.known),
                    }
                )
    frame = pl.DataFrame(rows, schema=FORECAST_SCHEMA, orient="row")
    return frame.filter(pl.col("forecast_close").is_not_null())


def scores(forecasts: pl.DataFrame) -> pl.DataFrame:
    """MAE (price units and % of the last close) and directional accuracy per model and
    symbol, and over all symbols (`symbol` = "ALL"), over the targets every model forecast."""
    scored = forecasts.filter(pl.col("actual_close").is_not_null())
    # The same targets for every model: those where the model with the least history spoke.
    common = (
        scored.group_by("trading_date", "symbol")
        .agg(pl.col("model").n_unique().alias("_n"))
        .filter(pl.col("_n") == scored.get_column("model").n_unique())
        .drop("_n")
    )
    scored = scored.join(common, on=["trading_date", "symbol"]).with_columns(
        _err=(pl.col("forecast_close") - pl.col("actual_close")).abs(),
        _called=(pl.col("forecast_close") - pl.col("last_close")).sign(),
        _moved=(pl.col("actual_close") - pl.col("last_close")).sign(),
    )
    aggregations = [
        pl.len().cast(pl.Int64).alias("targets"),
        pl.col("_err").mean().alias("mae"),
        (pl.col("_err") / pl.col("last_close")).mean().mul(100).alias("mae_pct"),
        # A forecast of no move calls no direction: no accuracy rather than a made-up one.
        pl.when((pl.col("_called") != 0).any())
        .then((pl.col("_called") == pl.col("_moved")).mean())
        .alias("directional_accuracy"),
    ]
    per_symbol = scored.group_by("model", "symbol").agg(aggregations)
    overall = scored.group_by("model").agg(aggregations).with_columns(symbol=pl.lit("ALL"))
    order = {m: i for i, m in enumerate(MODELS)}
    return (
        pl.concat([per_symbol, overall.select(per_symbol.columns)])
        .with_columns(pl.col("mae").cast(pl.Float64), pl.col("mae_pct").cast(pl.Float64))
        .sort(pl.col("model").replace_strict(order, default=len(order)), "symbol")
    )
