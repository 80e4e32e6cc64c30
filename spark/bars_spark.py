"""The clean step of finance_assets in PySpark: raw-zone payloads -> canonical 5-minute bars and
quarantined records, and the daily summary.

A mirror of `finance_assets/lib/transforms.py` (parse_twelve_data, with_bar_times, supersede,
window_records, clean_bars, daily_summary) that a cluster runs without the package: it imports
only pyspark, the standard library and exchange_calendars (the calendar the project uses). The
parity test (finance_assets_tests/test_spark/test_spark_parity.py) holds the two to the same
rows, the same quarantine reasons and the same constants; a divergence fails it.

Scope: payloads of format `twelve_data` (the simulated market's and Twelve Data's), interval
5min. Other formats (Alpha Vantage, Yahoo, landing-zone CSV files) are refused by name.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

# --- the project's rules, mirrored (the parity test compares them with lib/schema.py) --------
MAX_PRICE = 1e12
MAX_VOLUME = 2.0**63
BAR_MINUTES = 5
PRICE_COLUMNS = ["open", "high", "low", "close"]
RAW_RECORD_FIELDS = ["datetime", "open", "high", "low", "close", "volume"]
# market key -> (exchange calendar, timezone), as lib/markets.py defines them.
MARKETS = {"us": ("XNYS", "America/New_York"), "uk": ("XLON", "Europe/London")}
# Twelve Data answers London symbols without their suffix (lib/providers/twelve_data.py).
_EXCHANGES = {".L": ("LSE", "XLON")}
SUPPORTED_FORMATS = ("twelve_data",)
# polars' text -> Float64 grammar (a strict subset of what Java's parseDouble takes: `1d`,
# `0x1p3` are numbers there and not here).
_NUMBER = r"^[+-]?((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)$"
_INF = r"^(?i)[+]?inf(inity)?$"
_NEG_INF = r"^(?i)-inf(inity)?$"
_NAN = r"^(?i)[+-]?nan$"

RECORD_SCHEMA = T.StructType(
    [
        T.StructField("payload_id", T.StringType()),
        T.StructField("porder", T.LongType()),  # the payload's place: oldest fetch first
        T.StructField("pos", T.LongType()),  # the record's place in its series
        T.StructField("symbol", T.StringType()),
        T.StructField("currency", T.StringType()),
        *(T.StructField(name, T.StringType()) for name in RAW_RECORD_FIELDS),
        T.StructField(
            "ts_us", T.LongType()
        ),  # UTC bar start, epoch microseconds; null: unparseable
    ]
)


class PayloadError(ValueError):
    """A payload the job cannot read (not JSON, not the format's shape, a format it lacks)."""


@dataclass(frozen=True)
class Payload:
    """A raw-zone payload's envelope (`<payload_id>.meta.json`) and where its body is."""

    payload_id: str
    provider: str
    format: str
    symbols: tuple[str, ...]
    window_start: dt.datetime
    window_end: dt.datetime
    fetched_at: dt.datetime
    batch: int
    body_path: str


@dataclass
class CleanFrames:
    bars: DataFrame
    quarantine: DataFrame
    received: DataFrame  # the window's records after supersession (received = bars + quarantine)
    judged: DataFrame  # persisted: every received record with its verdict

    def unpersist(self) -> None:
        self.judged.unpersist()


# --- the raw zone ----------------------------------------------------------------------------


def read_payload_index(
    spark: SparkSession, raw_root: str, start: dt.datetime, end: dt.datetime
) -> list[Payload]:
    """Envelopes of the payloads whose window overlaps [start, end), oldest fetch first (the
    order `lib/io/lake.read_payloads` gives): `<raw_root>/dt=YYYY-MM-DD/*.meta.json`."""
    pattern = posixpath.join(raw_root.rstrip("/"), "dt=*", "*.meta.json")
    try:
        files = spark.sparkContext.wholeTextFiles(pattern).collect()
    except Exception as exc:  # Hadoop raises on a glob that matches nothing
        if "matches 0 files" in str(exc) or "does not exist" in str(exc):
            return []
        raise
    last_day = end.date() + dt.timedelta(days=1)
    found = []
    for path, text in files:
        folder = posixpath.basename(posixpath.dirname(path))
        try:
            if dt.date.fromisoformat(folder[3:]) > last_day:
                continue  # a payload starts on its dt: none after `end` can overlap
        except ValueError:
            continue  # not a partition folder of ours
        meta = json.loads(text)
        payload_id = posixpath.basename(path).removesuffix(".meta.json")
        window_start = dt.datetime.fromisoformat(meta["window_start"])
        window_end = dt.datetime.fromisoformat(meta["window_end"])
        if not (window_start < end and start < window_end):
            continue
        found.append(
            Payload(
                payload_id=payload_id,
                provider=meta["provider"],
                format=meta["format"],
                symbols=tuple(meta["symbols"]),
                window_start=window_start,
                window_end=window_end,
                fetched_at=dt.datetime.fromisoformat(meta["fetched_at"]),
                batch=int(meta.get("batch", 0)),
                body_path=posixpath.join(posixpath.dirname(path), f"{payload_id}.json"),
            )
        )
    found.sort(key=lambda p: p.payload_id)
    found.sort(key=lambda p: (p.fetched_at, p.batch))
    unsupported = sorted({p.format for p in found} - set(SUPPORTED_FORMATS))
    if unsupported:
        raise PayloadError(
            f"payload format(s) {unsupported} in {raw_root}: the Spark job reads "
            f"{list(SUPPORTED_FORMATS)} only; clean these with the polars path"
        )
    return found


def canonical_symbol(symbol: str, exchange: str | None, mic_code: str | None) -> str:
    for suffix, (code, mic) in _EXCHANGES.items():
        if (exchange == code or mic_code == mic) and not symbol.endswith(suffix):
            return symbol + suffix
    return symbol


def _as_text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def local_to_utc_us(text: str | None, tz: ZoneInfo) -> int | None:
    """Exchange-local `YYYY-MM-DD HH:MM:SS` -> UTC epoch microseconds; None when unparseable or
    inside a DST gap; the earlier of two in a DST overlap (polars: ambiguous="earliest",
    non_existent="null")."""
    if text is None:
        return None
    try:
        naive = dt.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    aware = naive.replace(tzinfo=tz, fold=0)
    if aware.astimezone(dt.UTC).astimezone(tz).replace(tzinfo=None) != naive:
        return None  # a wall time the clocks skipped
    delta = aware.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def parse_twelve_data(
    body: bytes, payload_id: str, porder: int, timezone: str
) -> Iterator[tuple[object, ...]]:
    """A Twelve Data `/time_series` body (single or batch) -> RECORD_SCHEMA rows; symbols the
    provider answered with an error have no rows (as `lib/transforms.parse_twelve_data`)."""
    try:
        document = json.loads(body)
    except ValueError as exc:
        raise PayloadError(f"payload {payload_id or '?'} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PayloadError(
            f"payload {payload_id or '?'}: expected a JSON object, got {type(document).__name__}"
        )
    if "values" in document or "meta" in document or document.get("status") == "error":
        series = {str((document.get("meta") or {}).get("symbol", "")): document}
    else:
        series = document
    tz = ZoneInfo(timezone)
    stamps: dict[str | None, int | None] = {}
    for key, item in series.items():
        if not isinstance(item, dict):
            raise PayloadError(f"payload {payload_id or '?'}: entry {key!r} is not an object")
        if item.get("status") == "error":
            continue
        values = item.get("values")
        if not isinstance(values, list):
            raise PayloadError(f"payload {payload_id or '?'}: symbol {key!r} has no 'values' list")
        if values and not all(isinstance(v, dict) for v in values):
            raise PayloadError(
                f"payload {payload_id or '?'}: symbol {key!r} values are not records"
            )
        meta = item.get("meta") or {}
        symbol = canonical_symbol(
            str(meta.get("symbol") or key), meta.get("exchange"), meta.get("mic_code")
        )
        currency = meta.get("currency")
        for pos, value in enumerate(values):
            fields = [_as_text(value.get(name)) for name in RAW_RECORD_FIELDS]
            stamp = fields[0]
            if stamp not in stamps:
                stamps[stamp] = local_to_utc_us(stamp, tz)
            yield (payload_id, porder, pos, symbol, currency, *fields, stamps[stamp])


def raw_records(
    spark: SparkSession, payloads: Sequence[Payload], timezone: str
) -> tuple[DataFrame, DataFrame]:
    """(records, coverage) of `payloads`: RECORD_SCHEMA rows parsed on the executors, and the
    (payload_id, symbol) pairs with each payload's fetch time and window."""
    if not payloads:
        return spark.createDataFrame([], RECORD_SCHEMA), _coverage(spark, [], None)
    order = {p.payload_id: i for i, p in enumerate(payloads)}
    paths = ",".join(p.body_path for p in payloads)

    def parse(item: tuple[str, bytes]) -> Iterator[tuple[object, ...]]:
        payload_id = posixpath.basename(item[0]).removesuffix(".json")
        return parse_twelve_data(item[1], payload_id, order[payload_id], timezone)

    rdd = spark.sparkContext.binaryFiles(paths).flatMap(parse)
    records = spark.createDataFrame(rdd, RECORD_SCHEMA).withColumn(
        "ts", F.timestamp_micros("ts_us")
    )
    return records, _coverage(spark, payloads, records)


def _coverage(spark: SparkSession, payloads: Sequence[Payload], records: DataFrame | None):
    schema = T.StructType(
        [
            T.StructField("payload_id", T.StringType()),
            T.StructField("fetched_at", T.TimestampType()),
            T.StructField("window_start", T.TimestampType()),
            T.StructField("window_end", T.TimestampType()),
            T.StructField("source", T.StringType()),
        ]
    )
    sources = payload_sources(payloads)
    rows = [
        (p.payload_id, p.fetched_at, p.window_start, p.window_end, sources[p.payload_id])
        for p in payloads
    ]
    envelopes = spark.createDataFrame(rows, schema)
    if records is None:
        return envelopes.withColumn("symbol", F.lit(None).cast("string"))
    # Coverage is what a payload answered (its records' symbols), as in parse_payloads.
    pairs = records.select("payload_id", "symbol").distinct()
    return pairs.join(F.broadcast(envelopes), "payload_id")


def payload_sources(payloads: Sequence[Payload]) -> dict[str, str]:
    """payload_id -> the `source` its bars carry: the providers of its payload group (payloads
    sharing a symbol, directly or through others: `lib/transforms.payload_groups`)."""
    parent: dict[str, str] = {}

    def find(symbol: str) -> str:
        while parent.setdefault(symbol, symbol) != symbol:
            parent[symbol] = parent[parent[symbol]]
            symbol = parent[symbol]
        return symbol

    for p in payloads:
        roots = [find(s) for s in p.symbols]
        for root in roots[1:]:
            parent[root] = roots[0]
    groups: dict[str, set[str]] = {}
    keys = {}
    for p in payloads:
        key = find(p.symbols[0]) if p.symbols else f"#{p.payload_id}"
        keys[p.payload_id] = key
        groups.setdefault(key, set()).add(p.provider)
    return {pid: ",".join(sorted(groups[key])) for pid, key in keys.items()}


# --- supersession and the window --------------------------------------------------------------


def supersede(records: DataFrame, coverage: DataFrame) -> DataFrame:
    """Drop records that a newer payload for the same symbol also covers (a record with no
    usable `ts`: when the newer payload's window overlaps its payload's at all)."""
    mine = coverage.select(
        "payload_id",
        "symbol",
        F.col("fetched_at").alias("_mine_fetched"),
        F.col("window_start").alias("_mine_start"),
        F.col("window_end").alias("_mine_end"),
    )
    newer = coverage.select(
        F.col("symbol").alias("_n_symbol"),
        F.col("fetched_at").alias("_new_fetched"),
        F.col("window_start").alias("_new_start"),
        F.col("window_end").alias("_new_end"),
    )
    keyed = records.join(mine, ["payload_id", "symbol"], "left")
    beaten = (
        (F.col("symbol") == F.col("_n_symbol"))
        & (F.col("_new_fetched") > F.col("_mine_fetched"))
        & F.when(
            F.col("ts").isNotNull(),
            (F.col("_new_start") <= F.col("ts")) & (F.col("ts") < F.col("_new_end")),
        ).otherwise(
            (F.col("_new_start") < F.col("_mine_end")) & (F.col("_mine_start") < F.col("_new_end"))
        )
    )
    return keyed.join(F.broadcast(newer), beaten, "left_anti").drop(
        "_mine_fetched", "_mine_start", "_mine_end"
    )


def window_records(
    records: DataFrame, coverage: DataFrame, start: dt.datetime, end: dt.datetime
) -> DataFrame:
    """The records that belong to [start, end), each with `_home`: the partition a record with
    no usable time (or outside what its payload asked for) is quarantined in."""
    windows = coverage.select(
        "payload_id",
        "symbol",
        F.col("window_start").alias("_p_start"),
        F.col("window_end").alias("_p_end"),
    ).dropDuplicates(["payload_id", "symbol"])
    keyed = records.join(F.broadcast(windows), ["payload_id", "symbol"], "left")
    lo, hi = F.lit(start), F.lit(end)
    home_here = (F.col("_p_start") >= lo) & (F.col("_p_start") < hi)
    in_window = (F.col("ts") >= lo) & (F.col("ts") < hi)
    asked = (F.col("ts") >= F.col("_p_start")) & (F.col("ts") < F.col("_p_end"))
    keep = (
        F.when(F.col("_p_start").isNull(), F.lit(True))
        .when(F.col("ts").isNull(), home_here)
        .otherwise(in_window | (~asked & home_here))
    )
    home = F.coalesce(F.col("_p_start"), lo)
    return (
        keyed.filter(keep)
        .withColumn("_home", F.when(home < lo, lo).otherwise(home))
        .drop("_p_start", "_p_end")
    )


# --- cleaning --------------------------------------------------------------------------------


def _number(column: str) -> Column:
    """Text -> double as polars casts it (strip, then the grammar above); null otherwise."""
    text = F.regexp_replace(F.col(column), r"(?U)^\s+|\s+$", "")
    return (
        F.when(text.rlike(_NUMBER), text.try_cast("double"))
        .when(text.rlike(_INF), F.lit(float("inf")))
        .when(text.rlike(_NEG_INF), F.lit(float("-inf")))
        .when(text.rlike(_NAN), F.lit(float("nan")))
    )


def record_checks(start: dt.datetime, end: dt.datetime) -> list[Column]:
    """Per-record reasons (null = fine), in `lib/transforms.clean_bars`' order and wording."""
    checks = [
        F.when(F.col("symbol").isNull() | (F.length("symbol") == 0), F.lit("symbol missing")),
        F.when(
            F.col("ts").isNull(),
            F.concat(
                F.lit("datetime missing or unparseable: "), F.coalesce("datetime", F.lit("null"))
            ),
        ),
    ]
    for c in PRICE_COLUMNS:
        price = F.col(f"_{c}")
        checks.append(
            F.when(price.isNull() | F.isnan(price), F.lit(f"{c} missing or not a number"))
            .when(F.abs(price) == float("inf"), F.lit(f"{c} not finite"))
            .when(price <= 0, F.lit(f"{c} not positive"))
            .when(price >= MAX_PRICE, F.lit(f"{c} out of range (>= {MAX_PRICE:g})"))
        )
    volume = F.col("_volume_f")
    checks += [
        F.when(volume.isNull() | F.isnan(volume), F.lit("volume missing or not a number"))
        .when(volume < 0, F.lit("volume negative"))
        .when(volume >= MAX_VOLUME, F.lit("volume out of range (>= 2**63)"))
        .when(volume != F.floor(volume).cast("double"), F.lit("volume not a whole number")),
        F.when(F.col("_high") < F.col("_low"), F.lit("high < low")),
        F.when(
            (F.col("_open") < F.col("_low")) | (F.col("_open") > F.col("_high")),
            F.lit("open outside [low, high]"),
        ),
        F.when(
            (F.col("_close") < F.col("_low")) | (F.col("_close") > F.col("_high")),
            F.lit("close outside [low, high]"),
        ),
        F.when(
            (F.col("ts") < F.lit(start)) | (F.col("ts") >= F.lit(end)),
            F.lit("outside the partition window"),
        ),
        F.when(
            F.col("ts").isNotNull() & ~F.col("_bar_start"),
            F.lit(f"not a {BAR_MINUTES}-minute bar start of a trading session"),
        ),
    ]
    return checks


def session_frame(
    spark: SparkSession, market: str, first: dt.date, last: dt.date
) -> tuple[DataFrame, dict[dt.date, dt.date]]:
    """(sessions, previous): the market's sessions in [first, last] (local `_day`, UTC `_s_open`
    and `_s_close`) and each session's previous session, from exchange_calendars."""
    import exchange_calendars as xcals

    calendar_name, _ = MARKETS[market]
    calendar = xcals.get_calendar(calendar_name, start=(first - dt.timedelta(days=40)).isoformat())
    schedule = calendar.schedule.loc[: last.isoformat()]
    days = [d.date() for d in schedule.index]
    rows = [
        (day, o.to_pydatetime(), c.to_pydatetime())
        for day, o, c in zip(days, schedule["open"], schedule["close"], strict=True)
        if day >= first
    ]
    previous = dict(zip(days[1:], days[:-1], strict=True))
    schema = "_day date, _s_open timestamp, _s_close timestamp"
    return spark.createDataFrame(rows, schema), previous


def clean(
    records: DataFrame,
    coverage: DataFrame,
    sessions: DataFrame,
    *,
    timezone: str,
    asset: str,
    start: dt.datetime,
    end: dt.datetime,
    ingested_at: dt.datetime,
) -> CleanFrames:
    """Supersede, keep the window's records, validate and de-duplicate: every record lands in
    exactly one of bars (first valid one per (symbol, ts)) and quarantine (every reason)."""
    received = window_records(supersede(records, coverage), coverage, start, end)
    typed = received.select(
        "*",
        *(_number(c).alias(f"_{c}") for c in PRICE_COLUMNS),
        _number("volume").alias("_volume_f"),
        F.to_date(F.from_utc_timestamp("ts", timezone)).alias("_day"),
    )
    step = BAR_MINUTES * 60 * 1_000_000
    marks = typed.join(F.broadcast(sessions), "_day", "left").withColumn(
        "_bar_start",
        F.coalesce(
            (F.col("ts") >= F.col("_s_open"))
            & (F.col("ts") < F.col("_s_close"))
            & (((F.col("ts_us") - F.unix_micros("_s_open")) % step) == 0),
            F.lit(False),
        ),
    )
    checks = record_checks(start, end)
    judged = marks.withColumn("_failing", F.greatest(*(c.isNotNull() for c in checks))).withColumn(
        "_dup",
        ~F.col("_failing") & (F.row_number().over(_first_received("symbol", "ts", "_failing")) > 1),
    )
    # Bars and quarantine are two reads of one judgement: computed once.
    judged = judged.join(
        F.broadcast(coverage.select("payload_id", "source").dropDuplicates(["payload_id"])),
        "payload_id",
        "left",
    ).persist()
    good = judged.filter(~F.col("_failing") & ~F.col("_dup"))
    bars = good.select(
        "symbol",
        "ts",
        F.col("_open").alias("open"),
        F.col("_high").alias("high"),
        F.col("_low").alias("low"),
        F.col("_close").alias("close"),
        F.lit(None).cast("double").alias("adj_close"),  # twelve_data sends none
        F.col("_volume_f").cast("long").alias("volume"),
        "currency",
        "source",
        F.lit(ingested_at).alias("ingested_at"),
    )
    bad = judged.filter(F.col("_failing") | F.col("_dup"))
    dup_reason = F.when(F.col("_dup"), F.lit("duplicate (symbol, ts)"))
    in_window = F.col("ts").isNotNull() & (F.col("ts") >= F.lit(start)) & (F.col("ts") < F.lit(end))
    quarantine = bad.select(
        F.lit(asset).alias("asset"),
        F.when(in_window, F.col("ts")).otherwise(F.col("_home")).alias("partition_ts"),
        "symbol",
        F.col("datetime").alias("ts_raw"),
        F.concat_ws("; ", dup_reason, *checks).alias("reason"),
        F.to_json(F.struct(*RAW_RECORD_FIELDS), {"ignoreNullFields": "false"}).alias("record"),
        "source",
        F.lit(ingested_at).alias("quarantined_at"),
    )
    return CleanFrames(bars=bars, quarantine=quarantine, received=received, judged=judged)


def _first_received(*keys: str):
    from pyspark.sql import Window

    return Window.partitionBy(*keys).orderBy("porder", "pos")


# --- aggregation -----------------------------------------------------------------------------


def daily_summary(bars: DataFrame, timezone: str, previous: dict[dt.date, dt.date]) -> DataFrame:
    """One row per (trading_date, symbol), as `lib/transforms.daily_summary`: vwap over typical
    prices, open-to-close and range in %, return against the previous session's close (null
    when that session is not in `bars`)."""
    spark = bars.sparkSession
    day = F.to_date(F.from_utc_timestamp("ts", timezone))
    sessions = (
        bars.withColumn("trading_date", day)
        .groupBy("trading_date", "symbol")
        .agg(
            F.min_by("open", "ts").alias("open"),
            F.max("high").alias("high"),
            F.min("low").alias("low"),
            F.max_by("close", "ts").alias("close"),
            F.sum("volume").alias("volume"),
            F.sum((F.col("high") + F.col("low") + F.col("close")) / 3 * F.col("volume")).alias(
                "_pv"
            ),
            F.count(F.lit(1)).alias("bar_count"),
        )
    )
    prev = spark.createDataFrame(list(previous.items()), "trading_date date, _prev_date date")
    prev_close = sessions.select(
        F.col("trading_date").alias("_prev_date"), "symbol", F.col("close").alias("prev_close")
    )
    return (
        sessions.join(F.broadcast(prev), "trading_date", "left")
        .join(prev_close, ["_prev_date", "symbol"], "left")
        .select(
            "trading_date",
            "symbol",
            "open",
            "high",
            "low",
            "close",
            "volume",
            F.when(F.col("volume") > 0, F.col("_pv") / F.col("volume")).alias("vwap"),
            ((F.col("close") / F.col("open") - 1) * 100).alias("open_to_close_pct"),
            ((F.col("high") - F.col("low")) / F.col("open") * 100).alias("range_pct"),
            ((F.col("close") / F.col("prev_close") - 1) * 100).alias("return_pct"),
            "prev_close",
            "bar_count",
        )
    )
