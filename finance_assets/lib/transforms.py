"""Pure transformations over polars frames: parse payloads, clean and validate, aggregate.

No Dagster imports: the assets, the asset checks, the benchmarks and the tests all call these.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from finance_assets.lib.markets import BAR_MINUTES, Market
from finance_assets.lib.providers.alpha_vantage import parse_alpha_vantage
from finance_assets.lib.providers.base import PayloadFormatError, RawPayload
from finance_assets.lib.providers.csv_files import PROVIDER as LANDING_PROVIDER
from finance_assets.lib.providers.csv_files import parse_yahoo_csv
from finance_assets.lib.providers.twelve_data_series import (
    parse_twelve_data,
    twelve_data_errors,
)
from finance_assets.lib.providers.yahoo_chart import parse_yahoo_chart
from finance_assets.lib.schema import (
    BAR_SCHEMA,
    DAILY_SUMMARY_SCHEMA,
    MAX_PRICE,
    MAX_VOLUME,
    PRICE_COLUMNS,
    QUARANTINE_SCHEMA,
    RAW_RECORD_FIELDS,
    RAW_RECORD_SCHEMA,
    UTC_TS,
    conform,
    empty,
)


@dataclass
class ParsedPayloads:
    """Raw records (all fields still text) plus per-symbol errors the provider reported."""

    records: pl.DataFrame
    errors: dict[str, str] = field(default_factory=dict)
    # (payload_id, symbol) pairs a payload answered for, with its window and fetch time.
    coverage: pl.DataFrame = field(default_factory=lambda: pl.DataFrame())


# --- parsing ---------------------------------------------------------------------------------


def failed_symbols(payloads: Iterable[RawPayload]) -> dict[str, str]:
    """Symbols the providers answered with an error, for the formats that report them inline
    (a 200 response whose batch holds an error per symbol). Other formats' clients raise."""
    scanners = {"twelve_data": twelve_data_errors}
    errors: dict[str, str] = {}
    for payload in payloads:
        scan = scanners.get(payload.format)
        if scan:
            errors.update(scan(payload.body))
    return errors


PARSERS: dict[str, Callable[[bytes | str, str], tuple[pl.DataFrame, dict[str, str]]]] = {
    "twelve_data": parse_twelve_data,
    "alpha_vantage": parse_alpha_vantage,
    "yahoo_csv": parse_yahoo_csv,
    "yahoo_chart": parse_yahoo_chart,
}


def parse_payloads(payloads: Iterable[RawPayload]) -> ParsedPayloads:
    """Parse every payload with its format's parser and keep, for each (symbol, time), only the
    newest payload that covers it: re-fetching a window supersedes what an earlier, wider fetch
    said about it, so re-running a partition never duplicates."""
    record_frames: list[pl.DataFrame] = []
    coverage_rows: list[dict[str, object]] = []
    errors: dict[str, str] = {}
    for payload in payloads:
        parser = PARSERS.get(payload.format)
        if parser is None:
            raise PayloadFormatError(
                f"payload {payload.payload_id} has unknown format {payload.format!r}; "
                f"known: {sorted(PARSERS)}"
            )
        records, payload_errors = parser(payload.body, payload.payload_id)
        if len(payload.symbols) == 1:
            # A body that does not name its symbol (a Yahoo CSV export) is for the one symbol
            # its envelope names.
            records = records.with_columns(pl.col("symbol").fill_null(payload.symbols[0]))
        errors.update(payload_errors)
        record_frames.append(records)
        for symbol in records.get_column("symbol").unique().to_list():
            coverage_rows.append(
                {
                    "payload_id": payload.payload_id,
                    "symbol": symbol,
                    "fetched_at": payload.fetched_at,
                    "window_start": payload.window_start,
                    "window_end": payload.window_end,
                }
            )
    coverage = pl.DataFrame(
        coverage_rows,
        schema={
            "payload_id": pl.String,
            "symbol": pl.String,
            "fetched_at": UTC_TS,
            "window_start": UTC_TS,
            "window_end": UTC_TS,
        },
    )
    # Diagonal: a parser may add optional columns (yahoo_chart's adj_close); others get nulls.
    records = (
        pl.concat(record_frames, how="diagonal") if record_frames else empty(RAW_RECORD_SCHEMA)
    )
    return ParsedPayloads(records=records, errors=errors, coverage=coverage)


def supersede(
    records: pl.DataFrame, coverage: pl.DataFrame, winners: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Drop records that a newer payload for the same symbol also covers.

    `records` must carry `payload_id`, `symbol` and a typed `ts` (null when unparseable). A record
    with no usable `ts` is dropped when a newer payload for its symbol overlaps its payload's
    window at all. `winners` (rows of `coverage`, default all) are the payloads that may
    supersede: a file rejected as a whole must not take the place of the data it would replace.
    """
    if coverage.is_empty() or coverage.get_column("symbol").is_unique().all():
        return records  # every symbol came in one payload: nothing to supersede
    winners = coverage if winners is None else winners
    mine = coverage.select(
        "payload_id",
        "symbol",
        pl.col("fetched_at").alias("_mine_fetched"),
        pl.col("window_start").alias("_mine_start"),
        pl.col("window_end").alias("_mine_end"),
    )
    newer = winners.select(
        "symbol",
        pl.col("fetched_at").alias("_new_fetched"),
        pl.col("window_start").alias("_new_start"),
        pl.col("window_end").alias("_new_end"),
    )
    keyed = records.with_row_index("_row").join(mine, on=["payload_id", "symbol"], how="left")
    pairs = keyed.select("_row", "ts", "symbol", "_mine_fetched", "_mine_start", "_mine_end").join(
        newer, on="symbol", how="inner"
    )
    beaten = (
        pairs.filter(
            (pl.col("_new_fetched") > pl.col("_mine_fetched"))
            & pl.when(pl.col("ts").is_not_null())
            .then((pl.col("_new_start") <= pl.col("ts")) & (pl.col("ts") < pl.col("_new_end")))
            .otherwise(
                (pl.col("_new_start") < pl.col("_mine_end"))
                & (pl.col("_mine_start") < pl.col("_new_end"))
            )
        )
        .select("_row")
        .unique()
    )
    return keyed.join(beaten, on="_row", how="anti").sort("_row").select(records.columns)


def window_records(
    records: pl.DataFrame, coverage: pl.DataFrame, start: dt.datetime, end: dt.datetime
) -> pl.DataFrame:
    """The records that belong to the partition window [start, end).

    Payloads overlapping the window may cover other partitions too (a wider backfill): their
    bars outside the window belong to those partitions and are left out. A record that has no
    usable time, or lies outside what its own payload asked for, belongs to the partition its
    payload's window starts in (column `_home`), so it is quarantined exactly once.
    """
    start, end = _utc(start), _utc(end)
    windows = coverage.select(
        "payload_id", "symbol", _p_start="window_start", _p_end="window_end"
    ).unique(["payload_id", "symbol"])
    keyed = records.join(windows, on=["payload_id", "symbol"], how="left", maintain_order="left")
    home_here = (pl.col("_p_start") >= start) & (pl.col("_p_start") < end)
    in_window = (pl.col("ts") >= start) & (pl.col("ts") < end)
    asked = (pl.col("ts") >= pl.col("_p_start")) & (pl.col("ts") < pl.col("_p_end"))
    keep = (
        pl.when(pl.col("_p_start").is_null())
        .then(True)  # no coverage known: judge it here
        .when(pl.col("ts").is_null())
        .then(home_here)
        .otherwise(in_window | (~asked & home_here))
    )
    return (
        keyed.filter(keep)
        .with_columns(
            _home=pl.coalesce(pl.col("_p_start"), pl.lit(start)).clip(start, None).cast(UTC_TS)
        )
        .drop("_p_start", "_p_end")
    )


# --- cleaning --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedPayload:
    """A dropped file whose records are too often invalid to load any of them."""

    payload_id: str
    file: str  # the landing file's name
    sha256: str
    records: int  # the file's records
    invalid: int  # of which invalid on their own (bad values, duplicates within the file)
    reason: str  # what every record of it is quarantined with


@dataclass
class CleanResult:
    bars: pl.DataFrame  # BAR_SCHEMA, sorted by (symbol, ts), unique per (symbol, ts)
    quarantine: pl.DataFrame  # QUARANTINE_SCHEMA
    received: int
    # Files rejected as a whole, and how many of `received` (all quarantined) were theirs.
    rejected: list[RejectedPayload] = field(default_factory=list)
    rejected_records: int = 0

    @property
    def quarantine_rate(self) -> float:
        return self.quarantine.height / self.received if self.received else 0.0

    @property
    def accepted_quarantine_rate(self) -> float:
        """The quarantined share of the records of payloads that were not rejected as a whole:
        what the blocking check judges (a rejected file is judged, and named, on its own)."""
        received = self.received - self.rejected_records
        quarantined = self.quarantine.height - self.rejected_records
        return quarantined / received if received else 0.0


def with_bar_times(records: pl.DataFrame, market: Market, interval: str) -> pl.DataFrame:
    """Add `ts` (UTC bar start) from the exchange-local `datetime` text; null if unparseable.

    Intraday datetimes are exchange-local wall times. A daily bar's start is its session's open
    (early closes and holidays from the exchange calendar); a date that is no session gets null.
    """
    text = pl.col("datetime").str.strip_chars()
    if interval == "1day":
        day = text.str.to_date("%Y-%m-%d", strict=False)
        dates = records.select(day.alias("d")).get_column("d").drop_nulls().unique().to_list()
        # Sessions of the calendar's range only: a date outside it (1990, 9999) is no session
        # (the calendar raises on it) and its record is quarantined.
        sessions = set(market.sessions(min(dates), max(dates))) if dates else set()
        opens = {d: market.session_bounds(d)[0] for d in dates if d in sessions}
        lookup = pl.DataFrame(
            {"_day": list(opens), "ts": list(opens.values())},
            schema={"_day": pl.Date, "ts": UTC_TS},
        )
        return (
            records.with_columns(_day=day)
            .join(lookup, on="_day", how="left", maintain_order="left")
            .drop("_day")
        )
    # A batch repeats the same few thousand stamps for every symbol: convert each once.
    stamps = records.select(pl.col("datetime").unique()).with_columns(
        ts=text.str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
        .dt.replace_time_zone(market.timezone, ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
    )
    return records.join(stamps, on="datetime", how="left", nulls_equal=True, maintain_order="left")


def typed_fields(records: pl.DataFrame) -> pl.DataFrame:
    """Add the typed fields (`_open` .. `_close`, `_volume_f`, `_adj_close`) to raw records.

    Non-strict casts: text that is no number becomes null, which the checks quarantine.
    """
    # adj_close is optional (yahoo_chart sends it) and nullable in the contract: one that is not
    # a positive, finite price is stored null rather than costing the bar its place.
    adj_close = (
        pl.col("adj_close").str.strip_chars().cast(pl.Float64, strict=False)
        if "adj_close" in records.columns
        else pl.lit(None, dtype=pl.Float64)
    )
    return records.with_columns(
        [
            pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).alias(f"_{c}")
            for c in PRICE_COLUMNS
        ]
        + [
            pl.col("volume").str.strip_chars().cast(pl.Float64, strict=False).alias("_volume_f"),
            pl.when((adj_close > 0) & (adj_close < MAX_PRICE)).then(adj_close).alias("_adj_close"),
        ]
    )


def record_checks() -> list[pl.Expr]:
    """Per-record reasons (null = fine) over `typed_fields`' columns and `ts`: what a record
    must be on its own, whatever its window."""
    checks: list[pl.Expr] = [
        pl.when(pl.col("symbol").is_null() | (pl.col("symbol").str.len_chars() == 0)).then(
            pl.lit("symbol missing")
        ),
        pl.when(pl.col("ts").is_null()).then(
            pl.format("datetime missing or unparseable: {}", pl.col("datetime").fill_null("null"))
        ),
    ]
    for c in PRICE_COLUMNS:
        price = pl.col(f"_{c}")
        checks.append(
            pl.when(price.is_null() | price.is_nan())
            .then(pl.lit(f"{c} missing or not a number"))
            .when(price.is_infinite())
            .then(pl.lit(f"{c} not finite"))
            .when(price <= 0)
            .then(pl.lit(f"{c} not positive"))
            .when(price >= MAX_PRICE)
            .then(pl.lit(f"{c} out of range (>= {MAX_PRICE:g})"))
        )
    volume = pl.col("_volume_f")
    checks += [
        pl.when(volume.is_null() | volume.is_nan())
        .then(pl.lit("volume missing or not a number"))
        .when(volume < 0)
        .then(pl.lit("volume negative"))
        # inf included: no integer to store it as (a strict cast would fail the whole step).
        .when(volume >= MAX_VOLUME)
        .then(pl.lit("volume out of range (>= 2**63)"))
        .when(volume != volume.floor())
        .then(pl.lit("volume not a whole number")),
        pl.when(pl.col("_high") < pl.col("_low")).then(pl.lit("high < low")),
        pl.when((pl.col("_open") < pl.col("_low")) | (pl.col("_open") > pl.col("_high"))).then(
            pl.lit("open outside [low, high]")
        ),
        pl.when((pl.col("_close") < pl.col("_low")) | (pl.col("_close") > pl.col("_high"))).then(
            pl.lit("close outside [low, high]")
        ),
    ]
    return checks


def clean_bars(
    records: pl.DataFrame,
    *,
    asset: str,
    window_start: dt.datetime,
    window_end: dt.datetime,
    source: str,
    ingested_at: dt.datetime,
    valid_starts: pl.Series | None = None,
    rejected: Mapping[str, str] | None = None,
) -> CleanResult:
    """Type, validate and de-duplicate raw records.

    `records` carries the raw text fields plus a typed `ts`. Every record ends up in exactly one
    of the two outputs: clean bars, or the quarantine with every reason it failed.
    `valid_starts` (UTC bar starts) rejects bars off the session's 5-minute marks.
    `rejected` maps payload ids rejected as a whole to the reason: every record of theirs is
    quarantined with it (and its own reasons, if any), and none of them counts as a first
    occurrence that makes another payload's record a duplicate.
    """
    received = records.height
    start = _utc(window_start)
    end = _utc(window_end)
    has_adj_close = "adj_close" in records.columns
    typed = typed_fields(records)
    checks = record_checks()
    checks.append(
        pl.when((pl.col("ts") < start) | (pl.col("ts") >= end)).then(
            pl.lit("outside the partition window")
        )
    )
    if valid_starts is not None:
        checks.append(
            pl.when(
                pl.col("ts").is_not_null()
                & ~pl.col("ts").is_in(valid_starts.cast(UTC_TS).implode())
            ).then(pl.lit(f"not a {BAR_MINUTES}-minute bar start of a trading session"))
        )
    # Judge every row with cheap boolean tests; spell out reasons only for the failing few.
    failing = pl.any_horizontal([check.is_not_null() for check in checks])
    judged = typed.with_row_index("_order").with_columns(_failing=failing)
    # Of records that are otherwise valid, the first one received for a (symbol, ts) is kept;
    # later ones with the same key are duplicates, even when their prices differ.
    groups: list[str | pl.Expr] = ["_failing"]
    if rejected:
        reasons = pl.col("payload_id").replace_strict(
            dict(rejected), default=None, return_dtype=pl.String
        )
        judged = judged.with_columns(_rejected=reasons)
        groups.append(pl.col("_rejected").is_null())  # duplicates within each side only
    judged = judged.with_columns(
        _dup=~pl.col("_failing") & ~pl.struct("symbol", "ts").is_first_distinct().over(groups)
    )
    if rejected:
        judged = judged.with_columns(
            _failing=pl.col("_failing") | pl.col("_rejected").is_not_null()
        )
    good = judged.filter(~pl.col("_failing") & ~pl.col("_dup"))
    dup_reason = pl.when(pl.col("_dup")).then(pl.lit("duplicate (symbol, ts)"))
    bad = judged.filter(pl.col("_failing") | pl.col("_dup")).with_columns(
        _reason=pl.concat_str(
            [pl.col("_rejected"), dup_reason, *checks] if rejected else [dup_reason, *checks],
            separator="; ",
            ignore_nulls=True,
        )
    )

    bars = good.select(
        "symbol",
        "ts",
        open="_open",
        high="_high",
        low="_low",
        close="_close",
        adj_close="_adj_close",
        volume=pl.col("_volume_f").cast(pl.Int64),
        currency="currency",
        source=pl.lit(source),
        ingested_at=pl.lit(ingested_at).cast(UTC_TS),
    ).sort("symbol", "ts")
    quarantine = bad.sort("_order").select(
        asset=pl.lit(asset),
        partition_ts=pl.when(
            pl.col("ts").is_not_null() & (pl.col("ts") >= start) & (pl.col("ts") < end)
        )
        .then(pl.col("ts"))
        .otherwise(pl.col("_home") if "_home" in bad.columns else pl.lit(start).cast(UTC_TS)),
        symbol="symbol",
        ts_raw="datetime",
        reason="_reason",
        record=pl.struct(
            RAW_RECORD_FIELDS + (["adj_close"] if has_adj_close else [])
        ).struct.json_encode(),
        source=pl.lit(source),
        quarantined_at=pl.lit(ingested_at).cast(UTC_TS),
    )
    return CleanResult(
        bars=conform(bars, BAR_SCHEMA),
        quarantine=conform(quarantine, QUARANTINE_SCHEMA),
        received=received,
    )


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {value!r}")
    return value.astimezone(dt.UTC)


# --- aggregation -----------------------------------------------------------------------------


def daily_summary(bars: pl.DataFrame, market: Market) -> pl.DataFrame:
    """One row per (trading_date, symbol) from a session's 5-minute bars.

    vwap = Σ(typical price × volume) / Σ volume with typical price = (high + low + close) / 3;
    open_to_close_pct = close / open − 1; range_pct = (high − low) / open; return_pct = close /
    previous session's close − 1 (null when that session is not in `bars`). Percentages × 100.
    """
    if bars.is_empty():
        return empty(DAILY_SUMMARY_SCHEMA)
    sessions = (
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
            _pv=((pl.col("high") + pl.col("low") + pl.col("close")) / 3 * pl.col("volume")).sum(),
            bar_count=pl.len(),
        )
        .collect()
    )
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


# --- the whole clean step --------------------------------------------------------------------


def rows_per_window(times: pl.Series, starts: Sequence[dt.datetime]) -> list[int]:
    """How many of `times` fall in each window: window i runs from `starts[i]` (ascending) to
    the next start, the last one open-ended. Times before the first start count for none.

    A single-run backfill materialises many partitions from one frame: this gives each
    partition its own row count.
    """
    if not starts:
        return []
    if times.dtype.time_zone is None:  # type: ignore[attr-defined]
        raise ValueError(f"{times.name!r} must be timezone-aware, got {times.dtype}")
    bounds = pl.Series("start", [_utc(s) for s in starts]).cast(pl.Datetime("us", "UTC"))
    if not bounds.is_sorted():
        raise ValueError("window starts must be ascending")
    index = bounds.search_sorted(times.cast(pl.Datetime("us", "UTC")), side="right") - 1
    counts = index.filter(index >= 0).value_counts()
    found = dict(zip(counts[:, 0].to_list(), counts[:, 1].to_list(), strict=True))
    return [found.get(i, 0) for i in range(len(starts))]


def payload_groups(payloads: list[RawPayload]) -> list[list[RawPayload]]:
    """Payloads that share a symbol, directly or through others: one group is cleaned at a
    time (supersession only ever compares payloads of the same symbol), so a large backfill
    never holds every batch's intermediate frames at once."""
    parent: dict[str, str] = {}

    def find(symbol: str) -> str:
        while parent.setdefault(symbol, symbol) != symbol:
            parent[symbol] = parent[parent[symbol]]
            symbol = parent[symbol]
        return symbol

    for payload in payloads:
        roots = [find(s) for s in payload.symbols]
        for root in roots[1:]:
            parent[root] = roots[0]
    groups: dict[str, list[RawPayload]] = {}
    for payload in payloads:
        key = find(payload.symbols[0]) if payload.symbols else f"#{payload.payload_id}"
        groups.setdefault(key, []).append(payload)
    return list(groups.values())


def rejected_files(
    timed: pl.DataFrame, payloads: Sequence[RawPayload], max_invalid_rate: float
) -> list[RejectedPayload]:
    """The landing files among `payloads` whose records are invalid beyond `max_invalid_rate`.

    `timed`: the payloads' records with `ts` (`with_bar_times`). A dropped file is judged on
    its own and on all its records, whatever window a run reads of it and whatever else is
    stored for its dates: a record invalid by itself (`record_checks`) or a repeat of a
    (symbol, ts) within the file counts against it. Provider payloads are not judged here:
    their share is the blocking `quarantine_rate` check's, as a whole.
    """
    files = {p.payload_id: p for p in payloads if p.provider == LANDING_PROVIDER}
    if not files:
        return []
    mine = timed.filter(pl.col("payload_id").is_in(list(files)))
    if mine.is_empty():
        return []
    failing = pl.any_horizontal([check.is_not_null() for check in record_checks()])
    counts = (
        typed_fields(mine)
        .with_columns(_failing=failing)
        .with_columns(
            _dup=~pl.col("_failing")
            & ~pl.struct("symbol", "ts").is_first_distinct().over("payload_id", "_failing")
        )
        .group_by("payload_id")
        .agg(records=pl.len(), invalid=(pl.col("_failing") | pl.col("_dup")).sum())
        .sort("payload_id")
    )
    rejected = []
    for payload_id, records, invalid in counts.iter_rows():
        if invalid <= max_invalid_rate * records:
            continue
        request = files[payload_id].request
        name = str(request.get("file") or payload_id)
        rejected.append(
            RejectedPayload(
                payload_id=payload_id,
                file=name,
                sha256=str(request.get("sha256") or ""),
                records=records,
                invalid=invalid,
                reason=(
                    f"landing file {name} rejected as a whole: {invalid} of {records} records "
                    f"invalid ({invalid / records:.1%}, more than the {max_invalid_rate:.1%} "
                    "allowed)"
                ),
            )
        )
    return rejected


def clean_payloads(
    payloads: list[RawPayload],
    market: Market,
    interval: str,
    *,
    asset: str,
    window_start: dt.datetime,
    window_end: dt.datetime,
    ingested_at: dt.datetime,
    valid_starts: pl.Series | None = None,
    max_quarantine_rate: float | None = None,
) -> tuple[CleanResult, dict[str, str]]:
    """Parse, supersede, keep the window's records and clean them, group by group.

    Returns the combined result and the per-symbol errors the providers reported. The bars are
    contiguous per symbol and chronological within it (what the checks rely on); symbols are in
    order within a payload group, and groups in order of their first symbol.

    With `max_quarantine_rate`, a landing file whose own records are invalid beyond it is
    rejected as a whole (`rejected_files`): all its records are quarantined with a reason naming
    it, it supersedes nothing, and the other payloads' records of its dates load as if it had
    never been dropped. One bad file thus never blocks the provider's or a later file's data.
    """
    bars, quarantined, received, errors = [], [], 0, {}
    rejected: list[RejectedPayload] = []
    rejected_records = 0
    for group in payload_groups(payloads):
        parsed = parse_payloads(group)
        errors.update(parsed.errors)
        timed = with_bar_times(parsed.records, market, interval)
        rejects = (
            rejected_files(timed, group, max_quarantine_rate)
            if max_quarantine_rate is not None
            else []
        )
        ids = [r.payload_id for r in rejects]
        winners = parsed.coverage.filter(~pl.col("payload_id").is_in(ids)) if ids else None
        records = window_records(
            supersede(timed, parsed.coverage, winners),
            parsed.coverage,
            window_start,
            window_end,
        )
        result = clean_bars(
            records,
            asset=asset,
            window_start=window_start,
            window_end=window_end,
            source=",".join(sorted({p.provider for p in group})),
            ingested_at=ingested_at,
            valid_starts=valid_starts,
            rejected={r.payload_id: r.reason for r in rejects},
        )
        if rejects:
            # A rejected file is the source of no bar (its quarantined records keep its name).
            accepted = ",".join(sorted({p.provider for p in group if p.payload_id not in ids}))
            result.bars = result.bars.with_columns(source=pl.lit(accepted, dtype=pl.String))
            rejected += rejects
            rejected_records += records.filter(pl.col("payload_id").is_in(ids)).height
        bars.append(result.bars)
        quarantined.append(result.quarantine)
        received += result.received
    # Each symbol is in one group and each group's bars are sorted: ordered by their first
    # symbol, the groups concatenate without a copy. A global re-sort would hold a second copy
    # of a whole backfill (600 MB at 3M bars); the writers sort each day they write anyway.
    bars = [b for b in bars if b.height]
    bars.sort(key=lambda b: str(b.get_column("symbol").min()))
    combined = CleanResult(
        bars=pl.concat(bars, rechunk=False) if bars else empty(BAR_SCHEMA),
        quarantine=pl.concat(quarantined) if quarantined else empty(QUARANTINE_SCHEMA),
        received=received,
        rejected=rejected,
        rejected_records=rejected_records,
    )
    return combined, errors
