"""Canonical schemas: the data contracts between the raw zone, the lake and the warehouse."""

from __future__ import annotations

import polars as pl

UTC_TS = pl.Datetime("us", "UTC")

# One bar, whatever the provider or interval. `ts` is the bar's start in UTC.
BAR_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "ts": UTC_TS,
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "adj_close": pl.Float64(),  # providers that adjust for splits/dividends; null otherwise
    "volume": pl.Int64(),
    "currency": pl.String(),  # as the provider states it: USD, GBp (pence) ...
    "source": pl.String(),
    "ingested_at": UTC_TS,
}
BAR_KEY = ["ts", "symbol"]  # time first: deleting one partition's window is a range scan
PRICE_COLUMNS = ["open", "high", "low", "close"]
# Prices at or above this are no price (the dearest share trades below 1e6 in its currency,
# pence quotes included): 1e308 is finite, but a vwap or a range over it overflows to inf.
# Below it, price x the largest volume (9.2e30) stays finite.
MAX_PRICE = 1e12
# Volumes are stored as BIGINT / Int64: from 2**63 on, a volume has no integer to go to.
MAX_VOLUME = 2.0**63

# A record as a provider sent it, before typing: every field is text (or null).
RAW_RECORD_FIELDS = ["datetime", "open", "high", "low", "close", "volume"]
RAW_RECORD_SCHEMA: dict[str, pl.DataType] = {
    "payload_id": pl.String(),
    "symbol": pl.String(),
    "currency": pl.String(),
    **{name: pl.String() for name in RAW_RECORD_FIELDS},
}

# Dead-letter rows: never silently lost, always with the reason and the record as received.
QUARANTINE_SCHEMA: dict[str, pl.DataType] = {
    "asset": pl.String(),
    "partition_ts": UTC_TS,  # start of the partition the record was delivered for
    "symbol": pl.String(),
    "ts_raw": pl.String(),
    "reason": pl.String(),
    "record": pl.String(),  # JSON of the fields as received
    "source": pl.String(),
    "quarantined_at": UTC_TS,
}

DAILY_SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "trading_date": pl.Date(),
    "symbol": pl.String(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Int64(),
    "vwap": pl.Float64(),
    "open_to_close_pct": pl.Float64(),
    "range_pct": pl.Float64(),
    "return_pct": pl.Float64(),
    "prev_close": pl.Float64(),
    "bar_count": pl.Int64(),
}
DAILY_SUMMARY_KEY = ["trading_date", "symbol"]

# A split or a dividend as a provider's body carries it (`providers/spec.py` `ActionParser`):
# `ratio` new shares per old (4.0 for a 4-for-1 split), `amount` per share in the price's
# currency; the other of the two is null.
ACTION_RECORD_SCHEMA: dict[str, pl.DataType] = {
    "ex_date": pl.Date(),  # exchange-local: the first session that trades without it
    "symbol": pl.String(),
    "kind": pl.String(),  # "split" or "dividend"
    "ratio": pl.Float64(),
    "amount": pl.Float64(),
}
# The `<market>.corporate_actions` table: one row per (ex_date, symbol, kind), deduplicated
# across providers; `source` lists every provider that reported it (comma-separated).
CORPORATE_ACTION_SCHEMA: dict[str, pl.DataType] = {**ACTION_RECORD_SCHEMA, "source": pl.String()}
CORPORATE_ACTION_KEY = ["ex_date", "symbol", "kind"]

# The `<market>.adjusted_daily_bars` table: each daily bar's prices adjusted for the splits and
# dividends known now, and what the provider's own adj_close should be on its basis.
ADJUSTED_BAR_SCHEMA: dict[str, pl.DataType] = {
    "trading_date": pl.Date(),
    "symbol": pl.String(),
    "ts": UTC_TS,
    "close": pl.Float64(),  # as stored in daily_bars
    "factor": pl.Float64(),
    "adj_open": pl.Float64(),
    "adj_high": pl.Float64(),
    "adj_low": pl.Float64(),
    "adj_close": pl.Float64(),
    "adj_volume": pl.Float64(),
    "provider_adj_close": pl.Float64(),
    "expected_provider_adj_close": pl.Float64(),
    "source": pl.String(),
}
ADJUSTED_BAR_KEY = ["trading_date", "symbol"]


def empty(schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return pl.DataFrame(schema=schema)


def conform(df: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    """Select and cast `df` to `schema`, naming any missing column."""
    missing = [name for name in schema if name not in df.columns]
    if missing:
        raise ValueError(f"frame is missing column(s) {missing}; has {df.columns}")
    return df.select([pl.col(name).cast(dtype) for name, dtype in schema.items()])


def ordered_sum(expr: pl.Expr) -> pl.Expr:
    """Σ `expr` over a group, added in the group's row order (nulls as 0).

    Polars' `sum()` in a group_by adds a group's floats in an order its engine picks per call
    (measured with polars 2.1: the same frame summed 300 times gave different last bits in a third
    of the calls), so a re-run would not reproduce its own figures to the bit. A running sum's
    last value depends only on the group's rows and their order.
    """
    return expr.fill_null(0).cum_sum().last()
