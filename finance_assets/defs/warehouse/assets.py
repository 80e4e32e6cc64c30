"""Warehouse aggregates per market (PostgreSQL), each with blocking checks on its key."""

import datetime as dt
from collections.abc import Iterator

import dagster as dg
import polars as pl

from finance_assets.defs.common.assets import (
    output_unless_failed,
    rule_check,
    unique_keys_check,
    warehouse_table,
    with_sessions_before,
)
from finance_assets.defs.common.automation import DAILY, EVERY_5MIN
from finance_assets.defs.common.partitions import (
    daily_partitions,
    five_minute_partitions,
    refuse_invalid_partitions,
)
from finance_assets.defs.warehouse.alerts import build_price_alert_hook
from finance_assets.lib import quality, transforms
from finance_assets.lib.io import lake
from finance_assets.lib.markets import Market
from finance_assets.lib.schema import DAILY_SUMMARY_KEY, DAILY_SUMMARY_SCHEMA, UTC_TS
from finance_assets.resources.thresholds import AlertSettingsResource
from finance_assets.resources.zones import StorageResource


def _daily_summary_asset(market: Market) -> dg.AssetsDefinition:
    partitions_def = daily_partitions(market)
    key = dg.AssetKey([market.key, "daily_summary"])

    @dg.asset(
        ins={
            # The session before each day too: its close is the base of the day's return.
            "bars_5min": with_sessions_before([market.key, "bars_5min"], 1),
            # Where a session has no 5-minute bars for a symbol (a daily-only pipeline, a date
            # before the 5-minute partitions start), its daily bar.
            "daily_bars": with_sessions_before([market.key, "daily_bars"], 1),
        },
        **warehouse_table(
            market,
            "warehouse",
            partitions_def,
            name="daily_summary",
            partition_expr="trading_date",
            by_date=True,
            primary_key=DAILY_SUMMARY_KEY,
            schema=DAILY_SUMMARY_SCHEMA,
            schedule=DAILY,
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "one_row_per_symbol_and_session",
                asset=key,
                blocking=True,
                description="each (symbol, trading_date) once, and only on trading sessions",
            ),
            dg.AssetCheckSpec(
                "vwap_within_range",
                asset=key,
                blocking=True,
                description="the VWAP of each day lies within its [low, high]",
            ),
            dg.AssetCheckSpec(
                "every_session_summarised",
                asset=key,
                blocking=True,
                description="every trading session of the window has rows: an empty day is "
                "a missing input (neither 5-minute nor daily bars), never a healthy one",
            ),
        ],
        description=(
            f"One row per symbol and trading day of {market.name}, from that day's 5-minute "
            "bars: open, high, low, close, volume, VWAP = Σ((high+low+close)/3 × volume) / "
            "Σ volume, open-to-close %, high-low range % of the open, return % against the "
            "previous session's close, bar count. Where a day has no 5-minute bars for a "
            "symbol, from its daily bar (`bar_count` 0, no VWAP: a daily bar cannot give one). "
            f"Table `{market.key}.daily_summary`."
        ),
    )
    def _summary(
        context: dg.AssetExecutionContext, bars_5min: pl.DataFrame, daily_bars: pl.DataFrame
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        refuse_invalid_partitions(context, market)
        window = context.partition_time_window
        summary = transforms.daily_summary(bars_5min, market, daily_bars)
        first, last = window.start.date(), window.end.date()
        # The extra leading session was read only for its close.
        summary = summary.filter(
            (pl.col("trading_date") >= first) & (pl.col("trading_date") < last)
        )
        intraday = summary.filter(pl.col("bar_count") > 0)
        # An expression, not the column's max as a literal: with no intraday row that max is
        # None, and polars warns of a comparison with None.
        short = intraday.filter(pl.col("bar_count") < pl.col("bar_count").max())
        sessions = market.sessions(first, last - dt.timedelta(days=1))
        summarised = set(summary.get_column("trading_date").to_list())
        empty_sessions = [day for day in sessions if day not in summarised]
        off_key = pl.concat(
            [
                quality.duplicate_keys(summary, DAILY_SUMMARY_KEY),
                quality.rows_off_session(summary, sessions),
            ]
        ).unique(maintain_order=True)
        checks = [
            rule_check("one_row_per_symbol_and_session", off_key, summary.height),
            rule_check("vwap_within_range", quality.vwap_outside_range(summary), summary.height),
            _sessions_check(market, sessions, empty_sessions),
        ]
        yield from output_unless_failed(
            key,
            summary,
            checks,
            {
                "sessions": summary.get_column("trading_date").n_unique(),
                "short_sessions": short.height,
                "rows_from_daily_bars": summary.height - intraday.height,
            },
            keys=context.partition_keys,
        )

    return _summary


def _sessions_check(
    market: Market, sessions: list[dt.date], empty: list[dt.date]
) -> dg.AssetCheckResult:
    """`every_session_summarised`: a traded session without a row is a missing input."""
    metadata: dict[str, object] = {"sessions": len(sessions), "sessions_without_rows": len(empty)}
    if empty:
        shown = ", ".join(map(str, empty[:10])) + (
            f" and {len(empty) - 10} more" if len(empty) > 10 else ""
        )
        metadata["missing"] = (
            f"no 5-minute or daily bars of {market.key} for {shown}: materialise "
            f"{market.key}/daily_bars (or {market.key}/bars_5min) for them first"
        )
    return dg.AssetCheckResult(
        check_name="every_session_summarised", passed=not empty, metadata=metadata
    )


def _price_moves_asset(market: Market) -> dg.AssetsDefinition:
    bars_key = dg.AssetKey([market.key, "bars_5min"])
    key = dg.AssetKey([market.key, "price_moves"])

    @dg.asset(
        deps=[bars_key],
        # The run delivers the alerts it wrote (the sensor is the retry path).
        hooks={build_price_alert_hook(market)},
        **warehouse_table(
            market,
            "warehouse",
            five_minute_partitions(market),
            name="price_moves",
            partition_expr="ts",
            primary_key=transforms.PRICE_ALERT_KEY,
            schema=transforms.PRICE_ALERT_SCHEMA,
            table="price_alerts",
            schedule=EVERY_5MIN,
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "unique_keys",
                asset=key,
                blocking=True,
                description="each (ts, symbol, kind) once: a move is alerted once",
            )
        ],
        description=(
            f"Price moves of {market.name} at or beyond the threshold (FINANCE_PRICE_MOVE_PCT, "
            "default 1 %): against the previous session's close, once per crossing (not again "
            "every five minutes while the price stays beyond), and against the previous bar. "
            f"Table `{market.key}.price_alerts`: symbol, time, price, reference, change %."
        ),
    )
    def _moves(
        context: dg.AssetExecutionContext, storage: StorageResource, alerts: AlertSettingsResource
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        window = context.partition_time_window
        # Whole sessions from the previous one on: the reference close and the crossing state
        # at the window's start come from bars before it.
        first = market.previous_session(window.start.astimezone(market.tz).date())
        history = lake.read_window(
            storage.lake(bars_key),
            start=market.session_bounds(first)[0],
            end=window.end,
            tz=market.tz,
        )
        if history is None:
            history = pl.DataFrame(schema={"symbol": pl.String, "ts": UTC_TS, "close": pl.Float64})
        moves = transforms.detect_price_moves(history, market, alerts.price_move_threshold_pct)
        start, end = window.start.astimezone(dt.UTC), window.end.astimezone(dt.UTC)
        moves = moves.filter((pl.col("ts") >= start) & (pl.col("ts") < end))
        yield from output_unless_failed(
            key,
            moves,
            [unique_keys_check(moves, transforms.PRICE_ALERT_KEY)],
            {
                "alerts": moves.height,
                "symbols_alerted": moves.get_column("symbol").n_unique(),
                # A setting, not a measurement: text, so the UI does not plot it.
                "threshold_pct": dg.MetadataValue.text(str(alerts.price_move_threshold_pct)),
            },
            keys=context.partition_keys,
        )

    return _moves


def build_warehouse_assets(market: Market) -> list[dg.AssetsDefinition]:
    return [_daily_summary_asset(market), _price_moves_asset(market)]
