"""A second opinion on every price: the primary provider's bars against a reference provider's,
per (symbol, bar), for a fixed sample of the universe. Pure: no Dagster, no store.

`compare_bars` pairs the two providers' bars and judges each pair: the close within
`close_bp` basis points of the primary's, the volume within `volume_share` of the larger of
the two. A bar one provider has and the other lacks is a finding too (never agreement), and
`daily_agreement` counts them per exchange-local day for the report's agreement rate.
Nothing here writes the primary's rows: the comparison is its own table.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from finance_assets.lib.schema import UTC_TS

# What a pair's `status` says, in the order a reader acts on it.
AGREE = "agree"
CLOSE = "close_differs"
VOLUME = "volume_differs"
BOTH = "close_and_volume_differ"
CURRENCY = "currency_differs"
NO_REFERENCE = "no_reference_bar"
NO_PRIMARY = "no_primary_bar"
STATUSES = (AGREE, CLOSE, VOLUME, BOTH, CURRENCY, NO_REFERENCE, NO_PRIMARY)

AGREEMENT_SCHEMA: dict[str, pl.DataType] = {
    "ts": UTC_TS,
    "symbol": pl.String(),
    "trading_date": pl.Date(),
    "primary_source": pl.String(),
    "reference_source": pl.String(),
    "primary_close": pl.Float64(),
    "reference_close": pl.Float64(),
    "close_diff_bp": pl.Float64(),
    "primary_volume": pl.Int64(),
    "reference_volume": pl.Int64(),
    "volume_diff_share": pl.Float64(),
    "status": pl.String(),
    "agrees": pl.Boolean(),
    "close_bp_limit": pl.Float64(),
    "volume_share_limit": pl.Float64(),
}
AGREEMENT_KEY = ["ts", "symbol"]

DAILY_AGREEMENT_SCHEMA: dict[str, pl.DataType] = {
    "trading_date": pl.Date(),
    "pairs": pl.Int64(),
    "compared": pl.Int64(),
    "agreed": pl.Int64(),
    "close_disagreements": pl.Int64(),
    "volume_disagreements": pl.Int64(),
    "missing_reference": pl.Int64(),
    "missing_primary": pl.Int64(),
    "agreement_rate": pl.Float64(),
    "max_close_diff_bp": pl.Float64(),
}
DAILY_AGREEMENT_KEY = ["trading_date"]

# Quotes in pence (London) against quotes in pounds: the same price in another unit.
_MINOR_UNITS = {"GBp": ("GBP", 0.01), "GBX": ("GBP", 0.01), "ZAc": ("ZAR", 0.01)}


@dataclass(frozen=True)
class Tolerance:
    """How far two providers may differ on one bar and still agree."""

    close_bp: float  # |reference close / primary close - 1| x 10,000, at most
    volume_share: float  # |reference volume - primary volume| / the larger, at most

    def __post_init__(self) -> None:
        if not self.close_bp > 0:
            raise ValueError(f"close_bp must be above 0, got {self.close_bp}")
        if not 0 < self.volume_share <= 1:
            raise ValueError(f"volume_share must be above 0 and at most 1, got {self.volume_share}")


def reference_sample(universe: Sequence[str], count: int) -> list[str]:
    """`count` symbols of `universe`, the same every day: ranked by a hash of the symbol (not
    by the universe's order, so the sample spreads across the alphabet and sectors), sorted.
    A symbol joining or leaving the universe moves at most one symbol in or out."""
    if count < 1:
        raise ValueError(f"a reference sample needs at least 1 symbol, got {count}")
    ranked = sorted(set(universe), key=lambda s: hashlib.sha256(s.encode()).hexdigest())
    return sorted(ranked[:count])


def _in_major_units(bars: pl.DataFrame) -> pl.DataFrame:
    """close in the currency's major unit, and that unit (pence -> pounds)."""
    currency = pl.col("currency")
    factor = pl.lit(1.0)
    unit = currency
    for minor, (major, scale) in _MINOR_UNITS.items():
        factor = pl.when(currency == minor).then(pl.lit(scale)).otherwise(factor)
        unit = pl.when(currency == minor).then(pl.lit(major)).otherwise(unit)
    return bars.with_columns(close_major=pl.col("close") * factor, unit=unit)


def _side(bars: pl.DataFrame, symbols: Sequence[str], prefix: str) -> pl.DataFrame:
    picked = bars.filter(pl.col("symbol").is_in(list(symbols))).select(
        "symbol", "ts", "close", "volume", "currency", "source"
    )
    columns = ("close", "volume", "currency", "source", "close_major", "unit")
    return _in_major_units(picked).rename({c: f"{prefix}_{c}" for c in columns})


def compare_bars(
    primary: pl.DataFrame,
    reference: pl.DataFrame,
    symbols: Sequence[str],
    tolerance: Tolerance,
    tz: dt.tzinfo,
) -> pl.DataFrame:
    """One row per (symbol, bar) either provider has for `symbols` (AGREEMENT_SCHEMA), sorted
    by (ts, symbol). Both frames are in the canonical bar schema (`symbol, ts, close, volume,
    currency, source`, ...); `tz` is the exchange's, for the trading date.

    close_diff_bp = (reference / primary - 1) x 10,000 on closes in the same unit (pence are
    made pounds); volume_diff_share = |reference - primary| / the larger volume (0 when both
    are 0; null when either provider sent no volume, which is then not judged)."""
    left = _side(primary, symbols, "primary")
    right = _side(reference, symbols, "reference")
    pairs = left.join(right, on=["symbol", "ts"], how="full", coalesce=True)
    both = pl.col("primary_close").is_not_null() & pl.col("reference_close").is_not_null()
    diff_bp = (pl.col("reference_close_major") / pl.col("primary_close_major") - 1) * 10_000
    larger = pl.max_horizontal("primary_volume", "reference_volume")
    share = (
        pl.when(pl.col("primary_volume").is_null() | pl.col("reference_volume").is_null())
        .then(None)
        .when(larger == 0)
        .then(0.0)
        .otherwise((pl.col("reference_volume") - pl.col("primary_volume")).abs() / larger)
    )
    units_differ = (
        pl.col("primary_unit").is_not_null()
        & pl.col("reference_unit").is_not_null()
        & (pl.col("primary_unit") != pl.col("reference_unit"))
    )
    pairs = pairs.with_columns(
        close_diff_bp=pl.when(both & ~units_differ).then(diff_bp),
        volume_diff_share=pl.when(both).then(share),
    )
    close_off = pl.col("close_diff_bp").abs() > tolerance.close_bp
    # A null share (a provider without volume) is not judged.
    volume_off = pl.col("volume_diff_share").fill_null(0.0) > tolerance.volume_share
    status = (
        pl.when(pl.col("reference_close").is_null())
        .then(pl.lit(NO_REFERENCE))
        .when(pl.col("primary_close").is_null())
        .then(pl.lit(NO_PRIMARY))
        .when(units_differ)
        .then(pl.lit(CURRENCY))
        .when(close_off & volume_off)
        .then(pl.lit(BOTH))
        .when(close_off)
        .then(pl.lit(CLOSE))
        .when(volume_off)
        .then(pl.lit(VOLUME))
        .otherwise(pl.lit(AGREE))
    )
    out = pairs.with_columns(
        status=status,
        trading_date=pl.col("ts").dt.convert_time_zone(str(tz)).dt.date(),
        close_bp_limit=pl.lit(float(tolerance.close_bp)),
        volume_share_limit=pl.lit(float(tolerance.volume_share)),
    ).with_columns(agrees=pl.col("status") == AGREE)
    return (
        out.select([pl.col(c).cast(t) for c, t in AGREEMENT_SCHEMA.items()])
        .sort(AGREEMENT_KEY)
        .pipe(lambda f: f if f.height else pl.DataFrame(schema=AGREEMENT_SCHEMA))
    )


def daily_agreement(pairs: pl.DataFrame) -> pl.DataFrame:
    """Per exchange-local day (DAILY_AGREEMENT_SCHEMA): the pairs, those both providers had a
    bar for (`compared`), those that agree, each kind of disagreement, and the agreement rate
    = agreed / compared (null on a day nothing could be compared: never a healthy 100 %)."""
    if pairs.is_empty():
        return pl.DataFrame(schema=DAILY_AGREEMENT_SCHEMA)
    status = pl.col("status")
    compared = (~status.is_in([NO_REFERENCE, NO_PRIMARY])).sum()
    return (
        pairs.group_by("trading_date")
        .agg(
            pairs=pl.len(),
            compared=compared,
            agreed=(status == AGREE).sum(),
            close_disagreements=status.is_in([CLOSE, BOTH, CURRENCY]).sum(),
            volume_disagreements=status.is_in([VOLUME, BOTH]).sum(),
            missing_reference=(status == NO_REFERENCE).sum(),
            missing_primary=(status == NO_PRIMARY).sum(),
            max_close_diff_bp=pl.col("close_diff_bp").abs().max(),
        )
        .with_columns(
            agreement_rate=pl.when(pl.col("compared") > 0).then(
                pl.col("agreed") / pl.col("compared")
            )
        )
        .select([pl.col(c).cast(t) for c, t in DAILY_AGREEMENT_SCHEMA.items()])
        .sort("trading_date")
    )


def disagreements(pairs: pl.DataFrame, tz: dt.tzinfo, limit: int = 20) -> list[str]:
    """The pairs that do not agree, one line each naming the bar and the size of the
    difference (the check's description and metadata), the largest close differences first."""
    bad = pairs.filter(~pl.col("agrees")).sort(
        pl.col("close_diff_bp").abs(), descending=True, nulls_last=True
    )
    lines = []
    for row in bad.head(limit).iter_rows(named=True):
        when = row["ts"].astimezone(tz).strftime("%Y-%m-%d %H:%M")
        bar = f"{row['symbol']} {when}"
        status = row["status"]
        if status == NO_REFERENCE:
            lines.append(f"{bar}: no reference bar ({row['primary_source']} has one)")
            continue
        if status == NO_PRIMARY:
            lines.append(f"{bar}: no primary bar ({row['reference_source']} has one)")
            continue
        parts = []
        if status == CURRENCY:
            parts.append("prices in different currencies")
        if row["close_diff_bp"] is not None and abs(row["close_diff_bp"]) > row["close_bp_limit"]:
            parts.append(
                f"close {row['primary_close']:g} vs {row['reference_close']:g} "
                f"({row['close_diff_bp']:+.1f} bp, limit {row['close_bp_limit']:g} bp)"
            )
        share = row["volume_diff_share"]
        if share is not None and share > row["volume_share_limit"]:
            parts.append(
                f"volume {row['primary_volume']:,} vs {row['reference_volume']:,} "
                f"({share:.1%} apart, limit {row['volume_share_limit']:.1%})"
            )
        lines.append(f"{bar}: {'; '.join(parts)}")
    return lines
