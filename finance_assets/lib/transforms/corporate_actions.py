"""Corporate actions as data: the splits and dividends providers send inline, deduplicated
across providers, the prices adjusted for them, and the comparison with a provider's own
`adj_close`. Pure polars, no Dagster: the `corporate_actions` and `adjusted_daily_bars` assets
(defs/market/corporate_actions.py) and the tests call these.

The adjustment is the one Yahoo and CRSP use, backwards from today: every price before an
ex-date is multiplied by `1 / ratio` for a split and by `1 - amount / previous close` for a
dividend (the close of the last session before the ex-date). A bar's factor is the product of
the factors of the actions after it.

Whether a stored bar already reflects a split depends on its provider and on when it was
fetched: Yahoo rewrites its history at a split (a bar fetched after the ex-date comes split
adjusted, close and volume), the others send prices as traded. So a split counts for a bar of a
`SPLIT_ADJUSTED_AT_FETCH` source only when it came after the bar was loaded (`ingested_at`, the
closest the bars keep to the fetch time). Dividends are never in a provider's close.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import polars as pl

from finance_assets.lib.providers.base import PayloadFormatError, RawPayload
from finance_assets.lib.schema import (
    ACTION_RECORD_SCHEMA,
    ADJUSTED_BAR_SCHEMA,
    CORPORATE_ACTION_KEY,
    CORPORATE_ACTION_SCHEMA,
    empty,
)
from finance_assets.providers import registry

SPLIT = "split"
DIVIDEND = "dividend"
KINDS = (SPLIT, DIVIDEND)

# Providers whose stored bars are split-adjusted as of their fetch (Yahoo's chart API and CSV
# export): a split before the fetch is already in their close and volume.
SPLIT_ADJUSTED_AT_FETCH = frozenset({"yfinance"})

# Two providers agree on a split's ratio or a dividend's amount within this relative difference
# (a dividend of 0.205 sent as 0.2050 or 0.20500001).
AGREEMENT_TOLERANCE = 1e-4

# The `adj_close_matches_provider` check's tolerance, in %: 5 basis points. A dividend of a
# typical size (0.2-2 % of the price) missed or mis-stated moves every earlier day by more;
# the providers' rounding (Yahoo sends float32, ~1e-5 %) stays far below.
ADJ_CLOSE_TOLERANCE_PCT = 0.05


@dataclass
class ActionsRead:
    """The actions the payloads carry, one row per (action, provider), and the payloads whose
    body could not be read (payload_id -> why)."""

    actions: pl.DataFrame
    unreadable: dict[str, str] = field(default_factory=dict)
    # Symbols whose payloads say nothing about corporate actions (a format without them, a
    # series without the columns): their adjusted prices miss whatever happened in the window.
    silent: set[str] = field(default_factory=set)


def actions_from_payloads(payloads: Iterable[RawPayload]) -> ActionsRead:
    """The splits and dividends of every payload whose format carries them inline
    (`ProviderSpec.actions`), each with the payload's provider as `source`. The symbols of a
    payload whose format or body says nothing about them are `silent`; a body its reader cannot
    read is named in `unreadable` (the bars' clean step dead-letters the same body)."""
    readers = registry.action_parsers()
    frames: list[pl.DataFrame] = []
    unreadable: dict[str, str] = {}
    silent: set[str] = set()
    for payload in payloads:
        read = readers.get(payload.format)
        try:
            frame = None if read is None else read(payload.body, payload.payload_id)
        except PayloadFormatError as exc:
            unreadable[payload.payload_id] = str(exc)
            continue
        if frame is None:
            silent.update(payload.symbols)
            continue
        if frame.is_empty():
            continue
        if len(payload.symbols) == 1:
            frame = frame.with_columns(pl.col("symbol").fill_null(payload.symbols[0]))
        frames.append(
            frame.select(list(ACTION_RECORD_SCHEMA)).with_columns(source=pl.lit(payload.provider))
        )
    actions = (
        pl.concat(frames).cast(CORPORATE_ACTION_SCHEMA)  # type: ignore[arg-type]
        if frames
        else empty(CORPORATE_ACTION_SCHEMA)
    )
    return ActionsRead(actions.unique(maintain_order=True), unreadable, silent)


def check_actions(actions: pl.DataFrame) -> None:
    """Raise `ValueError` naming the first action that cannot be used: an unknown kind, a split
    without a positive ratio, a dividend without a non-negative amount."""
    bad = actions.filter(
        ~pl.col("kind").is_in(KINDS)
        | pl.col("symbol").is_null()
        | pl.col("ex_date").is_null()
        | ((pl.col("kind") == SPLIT) & ~(pl.col("ratio") > 0))
        | ((pl.col("kind") == DIVIDEND) & ~(pl.col("amount") >= 0))
    )
    if bad.height:
        row = bad.row(0, named=True)
        raise ValueError(
            f"corporate action {row['symbol']} {row['ex_date']} kind={row['kind']!r}: "
            f"{'ratio' if row['kind'] == SPLIT else 'amount'}="
            f"{row['ratio'] if row['kind'] == SPLIT else row['amount']!r} is not usable "
            f"(a split needs a ratio > 0, a dividend an amount >= 0; kinds: {', '.join(KINDS)})"
        )


def deduplicate(
    actions: pl.DataFrame, tolerance: float = AGREEMENT_TOLERANCE
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One row per (ex_date, symbol, kind): `source` lists every provider that reported it
    (sorted, comma-separated) and the value is the first of them by name. Returns (deduplicated,
    conflicts): the actions whose providers disagree beyond `tolerance` (relative), one row per
    provider's value, for a check to name. A provider's own repeats count once."""
    check_actions(actions)
    value = pl.coalesce("ratio", "amount")
    rows = (
        actions.with_columns(_value=value)
        .unique([*CORPORATE_ACTION_KEY, "source", "_value"])
        .sort([*CORPORATE_ACTION_KEY, "source"])
    )
    spread = rows.group_by(CORPORATE_ACTION_KEY).agg(
        _lo=pl.col("_value").min(), _hi=pl.col("_value").max()
    )
    disagree = spread.filter(
        (pl.col("_hi") - pl.col("_lo")) > tolerance * pl.col("_hi").abs().clip(1e-12, None)
    ).select(CORPORATE_ACTION_KEY)
    conflicts = rows.join(disagree, on=CORPORATE_ACTION_KEY, how="semi").select(
        list(CORPORATE_ACTION_SCHEMA)
    )
    deduplicated = (
        rows.group_by(CORPORATE_ACTION_KEY, maintain_order=True)
        .agg(
            pl.col("ratio").first(),
            pl.col("amount").first(),
            pl.col("source").unique().sort().str.join(","),
        )
        .select(list(CORPORATE_ACTION_SCHEMA))
        .sort(CORPORATE_ACTION_KEY)
    )
    return deduplicated, conflicts


@dataclass
class Adjusted:
    bars: pl.DataFrame  # ADJUSTED_BAR_SCHEMA
    # Actions that could not be applied, with why (a dividend with no session before it).
    skipped: pl.DataFrame


def _local_date(column: str, tz: str) -> pl.Expr:
    return pl.col(column).dt.convert_time_zone(tz).dt.date()


def action_factors(bars: pl.DataFrame, actions: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Each action's price factor: `1 / ratio` for a split, `1 - amount / previous close` for a
    dividend (the close of the symbol's last bar before the ex-date, as stored). `bars` carry
    `symbol`, `trading_date` and `close`. Returns (factors: symbol, ex_date, kind, factor;
    skipped: the actions with no usable factor and why)."""
    check_actions(actions)
    splits = actions.filter(pl.col("kind") == SPLIT).select(
        "symbol", "ex_date", "kind", factor=1.0 / pl.col("ratio")
    )
    dividends = actions.filter(pl.col("kind") == DIVIDEND)
    closes = (
        bars.select("symbol", "trading_date", "close")
        .filter(pl.col("close").is_not_null())
        .sort("trading_date")
    )
    priced = (
        dividends.with_columns(_before=pl.col("ex_date") - pl.duration(days=1))
        .sort("_before")
        .join_asof(
            closes,
            left_on="_before",
            right_on="trading_date",
            by="symbol",
            strategy="backward",
            check_sortedness=False,
        )
        .with_columns(factor=1.0 - pl.col("amount") / pl.col("close"))
    )
    why = (
        pl.when(pl.col("close").is_null())
        .then(pl.lit("no bar before the ex-date: nothing to adjust"))
        .when(pl.col("factor") <= 0)
        .then(pl.lit("the amount is not below the previous close"))
    )
    priced = priced.with_columns(reason=why)
    skipped = priced.filter(pl.col("reason").is_not_null()).select(
        "symbol", "ex_date", "kind", "amount", prev_close="close", reason="reason"
    )
    usable = priced.filter(pl.col("reason").is_null()).select("symbol", "ex_date", "kind", "factor")
    return pl.concat([splits, usable]).sort("symbol", "ex_date"), skipped


def _products_after(
    frame: pl.DataFrame, date_column: str, cumulative: pl.DataFrame, prefix: str
) -> pl.DataFrame:
    """Join the products of the factors of the actions strictly after `date_column`
    (`<prefix>_all`, `<prefix>_split`; 1 where none come after)."""
    joined = frame.sort(date_column).join_asof(
        cumulative.rename({"ex_date": f"_{prefix}_ex"}).sort(f"_{prefix}_ex"),
        left_on=date_column,
        right_on=f"_{prefix}_ex",
        by="symbol",
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,
    )
    return joined.with_columns(
        pl.col("_all").fill_null(1.0).alias(f"{prefix}_all"),
        pl.col("_split").fill_null(1.0).alias(f"{prefix}_split"),
    ).drop("_all", "_split", f"_{prefix}_ex")


def adjust_daily_bars(
    bars: pl.DataFrame,
    actions: pl.DataFrame,
    tz: str,
    split_adjusted_sources: frozenset[str] = SPLIT_ADJUSTED_AT_FETCH,
) -> Adjusted:
    """Daily bars (BAR_SCHEMA) adjusted for `actions` (CORPORATE_ACTION_SCHEMA) in the
    exchange's time zone `tz` (ADJUSTED_BAR_SCHEMA, sorted by symbol and date).

    `factor` multiplies the stored prices (`adj_* = price x factor`, `adj_volume = volume /`
    the split part). `expected_provider_adj_close` is what the provider's own `adj_close` should
    be if it knows the same actions: a provider adjusts to the day it was asked, for actions
    up to then, some of which this platform may never see (those after the payload's window),
    so each load (`ingested_at`) of a symbol is compared on its own basis: the provider's
    ratio `adj_close / close` at the load's last bar, times this side's factors between each
    bar and that one. Null where the provider sent no adj_close."""
    b = bars.with_columns(
        trading_date=_local_date("ts", tz), _fetch_date=_local_date("ingested_at", tz)
    )
    factors, skipped = action_factors(b, actions)
    per_day = factors.group_by("symbol", "ex_date").agg(
        _f=pl.col("factor").product(),
        _s=pl.when(pl.col("kind") == SPLIT).then(pl.col("factor")).otherwise(1.0).product(),
    )
    # From the latest action back: the product of every action on or after each ex-date.
    cumulative = (
        per_day.sort("symbol", "ex_date", descending=[False, True])
        .with_columns(
            _all=pl.col("_f").cum_prod().over("symbol"),
            _split=pl.col("_s").cum_prod().over("symbol"),
        )
        .select("symbol", "ex_date", "_all", "_split")
    )
    b = b.with_columns(_from=pl.max_horizontal("trading_date", "_fetch_date"))
    b = _products_after(b, "trading_date", cumulative, "t")
    b = _products_after(b, "_from", cumulative, "f")
    retro = pl.col("source").is_in(list(split_adjusted_sources))
    # A split-adjusted-at-fetch bar already holds the splits up to its fetch: only later ones.
    split_part = pl.when(retro).then(pl.col("f_split")).otherwise(pl.col("t_split"))
    factor = pl.col("t_all") / pl.col("t_split") * split_part
    b = b.with_columns(factor=factor, _split_part=split_part)
    # Each load compared on its own basis: its last bar with a provider adj_close anchors it.
    provider = pl.col("adj_close")
    anchors = (
        b.filter(provider.is_not_null() & (pl.col("close") > 0))
        .sort("trading_date")
        .group_by("symbol", "ingested_at")
        .agg(
            _anchor_factor=pl.col("factor").last(),
            _anchor_ratio=(provider / pl.col("close")).last(),
        )
    )
    b = b.join(anchors, on=["symbol", "ingested_at"], how="left")
    expected = (
        pl.when(provider.is_not_null())
        .then(
            pl.col("close") * pl.col("factor") / pl.col("_anchor_factor") * pl.col("_anchor_ratio")
        )
        .otherwise(None)
    )
    out = b.select(
        "trading_date",
        "symbol",
        "ts",
        "close",
        "factor",
        adj_open=pl.col("open") * pl.col("factor"),
        adj_high=pl.col("high") * pl.col("factor"),
        adj_low=pl.col("low") * pl.col("factor"),
        adj_close=pl.col("close") * pl.col("factor"),
        adj_volume=pl.col("volume") / pl.col("_split_part"),
        provider_adj_close=provider,
        expected_provider_adj_close=expected,
        source="source",
    ).sort("symbol", "trading_date")
    return Adjusted(out.cast(ADJUSTED_BAR_SCHEMA), skipped)  # type: ignore[arg-type]


def adj_close_disagreements(
    adjusted: pl.DataFrame, tolerance_pct: float = ADJ_CLOSE_TOLERANCE_PCT
) -> pl.DataFrame:
    """The (symbol, trading_date) whose provider `adj_close` differs from the expected one by
    more than `tolerance_pct` %: symbol, trading_date, provider_adj_close,
    expected_provider_adj_close, diff_pct (provider / expected - 1, in %)."""
    if not tolerance_pct > 0:
        raise ValueError(f"tolerance_pct must be > 0, got {tolerance_pct!r}")
    return (
        adjusted.filter(pl.col("expected_provider_adj_close").is_not_null())
        .with_columns(
            diff_pct=(pl.col("provider_adj_close") / pl.col("expected_provider_adj_close") - 1)
            * 100
        )
        .filter(pl.col("diff_pct").abs() > tolerance_pct)
        .select(
            "symbol",
            "trading_date",
            "provider_adj_close",
            "expected_provider_adj_close",
            "diff_pct",
        )
        .sort("symbol", "trading_date")
    )


def describe_disagreements(disagreements: pl.DataFrame, limit: int = 20) -> str:
    """`AAPL 2020-08-31..2020-11-05 (48 days, up to -0.17 %)`, one symbol per line."""
    lines = []
    for (symbol,), days in disagreements.group_by(["symbol"], maintain_order=True):
        dates = days.get_column("trading_date")
        worst = days.get_column("diff_pct").abs().arg_max()
        lines.append(
            f"{symbol} {dates.min()}..{dates.max()} ({days.height} days, up to "
            f"{days.get_column('diff_pct')[worst or 0]:+.3f} %)"
        )
        if len(lines) == limit:
            break
    return "\n".join(lines)


def in_window(actions: pl.DataFrame, start: dt.date, end: dt.date) -> pl.DataFrame:
    """The actions whose ex-date lies in [start, end)."""
    return actions.filter((pl.col("ex_date") >= start) & (pl.col("ex_date") < end))
