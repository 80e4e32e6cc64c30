"""What the executors run: the polars path's own functions over the Arrow batches Spark hands
them (`mapInArrow` over partitions sorted by group: `by_group`).

- `clean_groups`: one payload group (payloads that share symbols: supersession only ever
  compares payloads of the same symbol) -> `transforms.clean_payloads` -> `answers.kept_spans`,
  exactly the polars clean step (`lib.clean_step.clean_window`) restricted to the group;
- `summarise_symbols`: one symbol's stored bars -> `transforms.daily_summary`.

A group's function returns one table: the bars, the quarantined records and one
`group` row (the group's tallies, provider errors, rejected files and kept spans, as JSON) share
OUTPUT_SCHEMA, told apart by `kind`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator
from typing import Any

import polars as pl
import pyarrow as pa

from finance_assets.lib import answers, transforms
from finance_assets.lib.markets import Market
from finance_assets.lib.schema import BAR_SCHEMA, DAILY_SUMMARY_SCHEMA, QUARANTINE_SCHEMA
from finance_assets.spark.raw import to_payload

_ARROW = {
    pl.String(): pa.string(),
    pl.Float64(): pa.float64(),
    pl.Int64(): pa.int64(),
    pl.Date(): pa.date32(),
    pl.Datetime("us", "UTC"): pa.timestamp("us", tz="UTC"),
}
_SPARK = {
    pa.string(): "string",
    pa.float64(): "double",
    pa.int64(): "bigint",
    pa.date32(): "date",
    pa.timestamp("us", tz="UTC"): "timestamp",
}


def _fields(schema: dict[str, pl.DataType]) -> list[pa.Field]:
    return [pa.field(name, _ARROW[dtype]) for name, dtype in schema.items()]


BAR_COLUMNS = list(BAR_SCHEMA)
QUARANTINE_COLUMNS = list(QUARANTINE_SCHEMA)
OUTPUT_ARROW = pa.schema(
    [
        pa.field("kind", pa.string()),  # bar, quarantine or group
        *_fields(BAR_SCHEMA),
        *(f for f in _fields(QUARANTINE_SCHEMA) if f.name not in BAR_SCHEMA),
        pa.field("note", pa.string()),  # the group row's JSON
    ]
)
SUMMARY_ARROW = pa.schema(_fields(DAILY_SUMMARY_SCHEMA))


def spark_ddl(schema: pa.Schema) -> str:
    """The Spark schema string of an Arrow schema of the types above."""
    return ", ".join(f"`{f.name}` {_SPARK[f.type]}" for f in schema)


def _conform(frame: pl.DataFrame, schema: pa.Schema) -> pa.Table:
    """`frame` as a table of exactly `schema` (missing columns null, plain strings: Spark
    takes no string_view or large_string back from Python)."""
    columns = [
        frame.get_column(f.name).to_arrow().cast(f.type)
        if f.name in frame.columns
        else pa.nulls(frame.height, f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


def by_group(
    key: str, function: Callable[[pa.Table], pa.Table]
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """`function` once per `key` value, for `mapInArrow` over partitions that hold each key's
    rows whole and in a run (`repartition(key).sortWithinPartitions(key)`): one group's rows
    are in memory at a time. (`groupBy(key).applyInArrow(function)` is the same on Spark 4;
    this runs on Spark 3.5 too, EMR 7's.)"""

    def apply(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        pending: list[pa.RecordBatch] = []
        current = None
        for batch in batches:
            keys = batch.column(key).to_pylist()
            start = 0
            for i in range(1, len(keys) + 1):
                if i == len(keys) or keys[i] != keys[start]:
                    if keys[start] != current and pending:
                        yield from _run(function, pending)
                        pending = []
                    current = keys[start]
                    pending.append(batch.slice(start, i - start))
                    start = i
        if pending:
            yield from _run(function, pending)

    return apply


def _run(
    function: Callable[[pa.Table], pa.Table], batches: list[pa.RecordBatch]
) -> Iterator[pa.RecordBatch]:
    yield from function(pa.Table.from_batches(batches)).to_batches()


def clean_groups(
    market: Market,
    interval: str,
    *,
    asset: str,
    start: dt.datetime,
    end: dt.datetime,
    ingested_at: dt.datetime,
    max_quarantine_rate: float | None,
) -> Callable[[pa.Table], pa.Table]:
    """The function run per payload group (a table of raw.PAYLOAD_SCHEMA)."""
    valid_starts = None
    if interval == "5min":
        valid_starts = pl.Series(
            "ts", market.bar_starts(start.astimezone(dt.UTC), end.astimezone(dt.UTC))
        )
    # The universe's silent symbols are the driver's to find (`silent_spans`): within a group,
    # the symbols asked for are the group's.
    group_market = dataclasses.replace(market, universe=())

    def clean(table: pa.Table) -> pa.Table:
        payloads = [
            to_payload(meta, body)
            for meta, body in zip(
                table.column("meta").to_pylist(), table.column("body").to_pylist(), strict=True
            )
        ]
        # The order of `lib.io.lake.read_payloads`: by file name, then oldest fetch first.
        ids = table.column("payload_id").to_pylist()
        order = sorted(range(len(payloads)), key=lambda i: ids[i])
        payloads = [payloads[i] for i in order]
        payloads.sort(key=lambda p: (p.fetched_at, p.batch))
        result, errors = transforms.clean_payloads(
            payloads,
            group_market,
            interval,
            asset=asset,
            window_start=start,
            window_end=end,
            ingested_at=ingested_at,
            valid_starts=valid_starts,
            max_quarantine_rate=max_quarantine_rate,
        )
        unreadable = result.unreadable  # answered nothing: `kept_spans` leaves them out
        result, kept, unanswered = answers.kept_spans(
            payloads, result, (), start, end, market=market, interval=interval
        )
        note = {
            "grp": table.column("grp")[0].as_py() if table.num_rows else "",
            "received": result.received,
            "rejected_records": result.rejected_records,
            "errors": errors,
            "unanswered": unanswered,
            "rejected": [dataclasses.asdict(r) for r in result.rejected],
            "kept": [[k.symbol, k.start.isoformat(), k.end.isoformat()] for k in kept],
            "unreadable": unreadable,
        }
        frames = [
            result.bars.with_columns(kind=pl.lit("bar")),
            result.quarantine.with_columns(kind=pl.lit("quarantine")),
            pl.DataFrame({"kind": ["group"], "note": [json.dumps(note)]}),
        ]
        return _conform(pl.concat(frames, how="diagonal_relaxed"), OUTPUT_ARROW)

    return clean


def summarise_symbols(market: Market) -> Callable[[pa.Table], pa.Table]:
    """The function run per symbol over its stored bars (BAR_SCHEMA columns).

    Each day is summarised from its own bars and the day before's (for the return): the same
    rows in the same order whatever window a run reads, so a re-run gives the same sums to the
    last bit (polars sums a group's floats in an order that depends on the frame around it)."""

    def summarise(table: pa.Table) -> pa.Table:
        columns = ["symbol", "ts", "open", "high", "low", "close", "volume"]
        bars = pl.from_arrow(table.select(columns))
        assert isinstance(bars, pl.DataFrame)
        day = pl.col("ts").dt.convert_time_zone(market.timezone).dt.date()
        bars = bars.sort("ts").with_columns(_day=day)
        days = bars.get_column("_day").unique().sort().to_list()
        summaries = [
            transforms.daily_summary(
                bars.filter(pl.col("_day").is_in(days[max(i - 1, 0) : i + 1])).drop("_day"),
                market,
            ).filter(pl.col("trading_date") == today)
            for i, today in enumerate(days)
        ]
        frame = pl.concat(summaries) if summaries else bars.clear()
        return _conform(frame, SUMMARY_ARROW)

    return summarise


def notes(rows: list[Any]) -> list[dict[str, Any]]:
    """The groups' JSON notes, in group order (the order the polars step merges them in)."""
    found = [json.loads(r["note"]) for r in rows]
    return sorted(found, key=lambda n: n["grp"])
