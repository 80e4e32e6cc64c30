"""The raw zone in Spark: the payloads' envelopes, their bodies parsed on the executors by
their format's parser, and what each payload covers (as `lib/io/lake.read_payloads` and
`lib/transforms/parsing` read them)."""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import bars_format_alpha_vantage
import bars_format_twelve_data
import bars_format_yahoo_chart
import bars_format_yahoo_csv
from bars_rules import PayloadError, local_day, local_to_utc_us
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

# format (the envelope's `format`) -> its parser: body, payload id -> (records, errors).
PARSERS = {
    "twelve_data": bars_format_twelve_data.parse,
    "alpha_vantage": bars_format_alpha_vantage.parse,
    "yahoo_chart": bars_format_yahoo_chart.parse,
    "yahoo_csv": bars_format_yahoo_csv.parse,
}
# The formats whose records carry adj_close: a payload group holding one has the column, so
# its quarantined records' JSON names it (null for the other payloads' records).
ADJ_CLOSE_FORMATS = frozenset({"yahoo_chart", "yahoo_csv"})

_TEXT = ["symbol", "currency", "datetime", "open", "high", "low", "close", "volume", "adj_close"]
PARSED_SCHEMA = T.StructType(
    [
        T.StructField("payload_id", T.StringType()),
        T.StructField("porder", T.LongType()),  # the payload's place: oldest fetch first
        T.StructField("pos", T.LongType()),  # the record's place in its payload
        *(T.StructField(name, T.StringType()) for name in _TEXT),
        T.StructField("ts_us", T.LongType()),  # 5min: UTC bar start, epoch us; null: unreadable
        T.StructField("day", T.DateType()),  # 1day: the session date; null: no date
        T.StructField("error", T.StringType()),  # a provider's message (`symbol`: its key)
    ]
)


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
    file: str | None = None  # a landing file's name (the envelope's request)


@dataclass
class RawRecords:
    """The parsed bodies (persisted), their records and the providers' per-symbol errors."""

    parsed: DataFrame
    records: DataFrame
    errors: dict[str, str]

    def unpersist(self) -> None:
        self.parsed.unpersist()


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
        if meta["format"] not in PARSERS:
            raise PayloadError(
                f"payload {payload_id} has unknown format {meta['format']!r}; "
                f"known: {sorted(PARSERS)}"
            )
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
                file=(meta.get("request") or {}).get("file"),
            )
        )
    found.sort(key=lambda p: p.payload_id)
    found.sort(key=lambda p: (p.fetched_at, p.batch))
    return found


def parse_body(
    body: bytes, payload: tuple[str, int, str, tuple[str, ...]], timezone: str, interval: str
) -> Iterator[tuple[object, ...]]:
    """One body -> PARSED_SCHEMA rows. A body that does not name its symbol (a landing CSV
    without a Symbol column) is for the one symbol its envelope names (`parse_payloads`)."""
    payload_id, porder, fmt, symbols = payload
    records, errors = PARSERS[fmt](body, payload_id)
    pos = 0
    for key, message in errors.items():
        yield (payload_id, porder, pos, key, *[None] * 8, None, None, message)
        pos += 1
    tz = ZoneInfo(timezone)
    only = symbols[0] if len(symbols) == 1 else None
    stamps: dict[str | None, object] = {}
    for record in records:
        stamp = record[2]
        if stamp not in stamps:
            stamps[stamp] = local_to_utc_us(stamp, tz) if interval == "5min" else local_day(stamp)
        when = stamps[stamp]
        symbol = only if record[0] is None else record[0]
        ts_us, day = (when, None) if interval == "5min" else (None, when)
        yield (payload_id, porder, pos, symbol, *record[1:], ts_us, day, None)
        pos += 1


def raw_records(
    spark: SparkSession, payloads: Sequence[Payload], timezone: str, interval: str
) -> RawRecords:
    """The payloads' bodies parsed on the executors (one task per body file)."""
    if not payloads:
        empty = spark.createDataFrame([], PARSED_SCHEMA).drop("error")
        return RawRecords(empty, empty, {})
    envelope = {
        p.payload_id: (p.payload_id, i, p.format, p.symbols) for i, p in enumerate(payloads)
    }
    paths = ",".join(p.body_path for p in payloads)

    def parse(item: tuple[str, bytes]) -> Iterator[tuple[object, ...]]:
        payload_id = posixpath.basename(item[0]).removesuffix(".json")
        return parse_body(item[1], envelope[payload_id], timezone, interval)

    rdd = spark.sparkContext.binaryFiles(paths).flatMap(parse)
    parsed = spark.createDataFrame(rdd, PARSED_SCHEMA).persist()
    failures = parsed.filter(F.col("error").isNotNull()).collect()  # a few: sorted here
    errors: dict[str, str] = {}
    # Later payloads' messages win, as `errors.update` in payload order.
    for row in sorted(failures, key=lambda r: (r["porder"], r["pos"])):
        errors[row["symbol"]] = row["error"]
    records = parsed.filter(F.col("error").isNull()).drop("error")
    return RawRecords(parsed, records, errors)


@dataclass(frozen=True)
class Group:
    """A payload's group (payloads sharing a symbol, directly or through others: the polars
    path cleans one group at a time) and what follows from it."""

    key: str
    source: str  # the group's providers: the `source` its rows carry
    adj_close: bool  # a format with adj_close is in the group


def payload_groups(payloads: Sequence[Payload]) -> dict[str, Group]:
    """payload_id -> its Group, as `lib/transforms.payload_groups` forms them."""
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
    keys = {p.payload_id: find(p.symbols[0]) if p.symbols else f"#{p.payload_id}" for p in payloads}
    members: dict[str, list[Payload]] = {}
    for p in payloads:
        members.setdefault(keys[p.payload_id], []).append(p)
    groups = {
        key: Group(
            key=key,
            source=",".join(sorted({p.provider for p in group})),
            adj_close=any(p.format in ADJ_CLOSE_FORMATS for p in group),
        )
        for key, group in members.items()
    }
    return {payload_id: groups[key] for payload_id, key in keys.items()}


def envelopes(
    spark: SparkSession, payloads: Sequence[Payload], rejected: dict[str, str]
) -> DataFrame:
    """One row per payload: its window, fetch time, group, sources and rejection (if any).

    `bar_source`: the providers of the group's payloads that were not rejected as a whole (a
    rejected landing file is the source of no bar); its quarantined records keep `source`."""
    groups = payload_groups(payloads)
    accepted: dict[str, set[str]] = {}
    for p in payloads:
        if p.payload_id not in rejected:
            accepted.setdefault(groups[p.payload_id].key, set()).add(p.provider)
    has_rejects = {groups[pid].key for pid in rejected}
    rows = []
    for p in payloads:
        group = groups[p.payload_id]
        bar_source = (
            ",".join(sorted(accepted.get(group.key, set())))
            if group.key in has_rejects
            else group.source
        )
        rows.append(
            (
                p.payload_id,
                p.fetched_at,
                p.window_start,
                p.window_end,
                group.key,
                group.source,
                bar_source,
                group.adj_close,
                rejected.get(p.payload_id),
            )
        )
    schema = (
        "payload_id string, fetched_at timestamp, window_start timestamp, window_end timestamp, "
        "grp string, source string, bar_source string, has_adj_close boolean, rejected string"
    )
    return spark.createDataFrame(rows, schema)


def coverage(records: DataFrame, envelope: DataFrame) -> DataFrame:
    """The (payload_id, symbol) pairs a payload answered (its records' symbols, as in
    `parse_payloads`), with its window, fetch time, group and rejection."""
    pairs = records.select("payload_id", "symbol").distinct()
    return pairs.join(F.broadcast(envelope), "payload_id")
