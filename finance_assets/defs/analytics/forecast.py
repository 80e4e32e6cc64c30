"""`<market>/price_forecast`: the next session's close per symbol, with its walk-forward
backtest against the naive and historical-mean forecasts in the metadata."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import polars as pl

from finance_assets.defs.common.assets import (
    output_unless_failed,
    rule_check,
    warehouse_table,
    with_sessions_before,
)
from finance_assets.defs.common.automation import DAILY
from finance_assets.defs.common.partitions import daily_partitions, refuse_invalid_partitions
from finance_assets.lib.analytics import forecast
from finance_assets.lib.io.managers import table_preview
from finance_assets.lib.markets import Market

# Sessions of history each forecast may learn from (about a year).
HISTORY_SESSIONS = 250

DESCRIPTIONS = {
    "model": "ridge (Ridge regression of the next return on the last 5), naive (tomorrow = "
    "today) or historical_mean (mean of every close known)",
    "trading_date": "the last session known: the forecast is made after its close",
    "target_date": "the session forecast: the next one",
    "last_close": "close of trading_date",
    "forecast_close": "the forecast close of target_date",
    "forecast_return_pct": "forecast_close / last_close − 1, in %",
    "actual_close": "close of target_date when it was known at the run (the backtest); null "
    "for the live forecast",
    "train_sessions": "sessions up to trading_date the forecast was made from",
}


def _score_metadata(scores: pl.DataFrame) -> dict[str, object]:
    overall = scores.filter(pl.col("symbol") == "ALL")
    meta: dict[str, object] = {"backtest": table_preview(scores, 50)}
    if "ridge" not in overall.get_column("model").to_list():
        # The model's first forecast comes after LAGS + MIN_TRAIN + 1 sessions; it is scored
        # once the session after it is in.
        needed = forecast.LAGS + forecast.MIN_TRAIN + 2
        meta["backtest_note"] = dg.MetadataValue.text(
            f"too little history to backtest the model: it needs {needed} sessions of a "
            "symbol (the baselines are scored where they can be)"
        )
    meta["backtest_targets"] = int(overall.get_column("targets").max() or 0)
    for row in overall.iter_rows(named=True):
        model = row["model"]
        meta[f"mae_pct_{model}"] = dg.MetadataValue.float(float(row["mae_pct"]))
        accuracy = row["directional_accuracy"]
        meta[f"directional_accuracy_{model}"] = (
            dg.MetadataValue.float(float(accuracy))
            if accuracy is not None
            else dg.MetadataValue.text("n/a: forecasts no move")
        )
    if overall.height:
        meta["lowest_mae"] = dg.MetadataValue.text(str(overall.sort("mae_pct").row(0)[0]))
    return meta


def price_forecast_asset(market: Market) -> dg.AssetsDefinition:
    key = dg.AssetKey([market.key, "price_forecast"])

    @dg.asset(
        ins={
            "daily_summary": with_sessions_before([market.key, "daily_summary"], HISTORY_SESSIONS)
        },
        **warehouse_table(
            market,
            "analytics",
            daily_partitions(market),
            name="price_forecast",
            partition_expr="trading_date",
            by_date=True,
            primary_key=forecast.FORECAST_KEY,
            schema=forecast.FORECAST_SCHEMA,
            descriptions=DESCRIPTIONS,
            schedule=DAILY,
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "forecasts_after_their_data",
                asset=key,
                blocking=True,
                description="every forecast's target session is after the last session it "
                "was made from (no look-ahead)",
            )
        ],
        description=(
            f"Next-session close per symbol of {market.name} from scikit-learn's Ridge on the "
            "last 5 daily returns, beside the naive (tomorrow = today) and historical-mean "
            f"forecasts; up to {HISTORY_SESSIONS} sessions of history. The metadata holds a "
            "walk-forward backtest (every forecast made only from the sessions before its "
            "target): MAE (% of the last close) and directional accuracy of each. On a random "
            f"walk the naive forecast is the one to beat. Table `{market.key}.price_forecast`."
        ),
    )
    def _forecast(
        context: dg.AssetExecutionContext, daily_summary: pl.DataFrame
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        refuse_invalid_partitions(context, market)
        window = context.partition_time_window
        first, last = window.start.date(), (window.end - dt.timedelta(seconds=1)).date()
        closes = (
            daily_summary.select("trading_date", "symbol", "close")
            if daily_summary.width
            else pl.DataFrame(schema={"trading_date": pl.Date, "symbol": pl.String})
        )
        made = forecast.walk_forward(closes) if closes.height else forecast.empty_forecasts()
        # The live forecast's target: the next session on the exchange's calendar.
        made = made.with_columns(
            target_date=pl.coalesce(
                "target_date",
                pl.col("trading_date").map_elements(market.next_session, return_dtype=pl.Date),
            )
        )
        scores = forecast.scores(made)
        out = made.filter(pl.col("trading_date").is_between(first, last))
        ahead = out.filter(pl.col("target_date") <= pl.col("trading_date"))
        yield from output_unless_failed(
            key,
            out,
            [rule_check("forecasts_after_their_data", ahead, out.height)],
            {"forecasts": out.height, **_score_metadata(scores)},
            keys=context.partition_keys,
        )

    return _forecast
