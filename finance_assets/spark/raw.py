"""The raw zone in Spark: the envelopes of a window's payloads (read on the driver) and their
bodies as one DataFrame row per payload, keyed by the payload group the polars clean step uses
(payloads that share symbols, `lib.transforms.payload_groups`)."""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from finance_assets.lib import transforms
from finance_assets.lib.io import lake
from finance_assets.lib.io.dead_letters import DeadLetter, dead_letter
from finance_assets.lib.io.objects import ObjectStore, open_location
from finance_assets.lib.providers.base import RawPayload

# One row per payload: its group, its envelope as stored (`<payload_id>.meta.json`) and its body.
PAYLOAD_SCHEMA = "grp string, payload_id string, meta string, body binary"


@dataclass(frozen=True)
class Envelope:
    """A payload's envelope: its id (the file name), the stored JSON and where its body is."""

    payload_id: str
    meta: str
    body_path: str

    def payload(self, body: bytes = b"") -> RawPayload:
        """The payload as `lib.io.lake.read_payloads` builds it (`body` empty on the driver:
        grouping and counting need only the envelope)."""
        return to_payload(self.meta, body)


def to_payload(meta_text: str, body: bytes) -> RawPayload:
    meta = json.loads(meta_text)
    return RawPayload(
        provider=meta["provider"],
        format=meta["format"],
        interval=meta["interval"],
        symbols=tuple(meta["symbols"]),
        window_start=dt.datetime.fromisoformat(meta["window_start"]),
        window_end=dt.datetime.fromisoformat(meta["window_end"]),
        fetched_at=dt.datetime.fromisoformat(meta["fetched_at"]),
        body=body,
        batch=meta["batch"],
        request=meta["request"],
        content_type=meta.get("content_type", "application/json"),
    )


class Envelopes(list[Envelope]):
    """A window's envelopes (a list), and the payloads moved to the dead-letter place while
    they were read (`lib.io.dead_letters`), as `lib.io.lake.RawPayloads` has them."""

    def __init__(self, envelopes: Iterable[Envelope] = (), dead: Iterable[DeadLetter] = ()):
        super().__init__(envelopes)
        self.dead_letters: list[DeadLetter] = list(dead)


def raw_store(raw_root: str) -> ObjectStore:
    """The raw zone as the polars path's object store (`s3a://` is Hadoop's name for `s3://`),
    to move what nothing can read out of it, on the driver."""
    if raw_root.startswith("s3a://"):
        raw_root = "s3://" + raw_root.removeprefix("s3a://")
    return open_location(raw_root)


def dead_letter_bodies(
    raw_root: str, envelopes: Sequence[Envelope], reasons: dict[str, str], run_id: str | None
) -> list[DeadLetter]:
    """Move the payloads whose body the executors could not parse (`reasons`: payload_id ->
    the parser's message) to the dead-letter place, as the polars clean asset does."""
    if not reasons:
        return []
    store = raw_store(raw_root)
    return [
        dead_letter(
            store,
            posixpath.basename(posixpath.dirname(e.body_path)),
            e.payload_id,
            reasons[e.payload_id],
            run_id=run_id,
        )
        for e in envelopes
        if e.payload_id in reasons
    ]


def read_envelopes(
    spark: SparkSession,
    raw_root: str,
    start: dt.datetime,
    end: dt.datetime,
    run_id: str | None = None,
) -> Envelopes:
    """Envelopes of the payloads whose window overlaps [start, end), oldest fetch first (the
    order of `lib.io.lake.read_payloads`): `<raw_root>/dt=YYYY-MM-DD/*.meta.json`. A format
    the polars path has no parser for is refused here, by the payload's name. An envelope that
    cannot be read (`lib.io.lake.envelope`) is moved to the dead-letter place with its body
    (`run_id` named in its reason) and listed in the result's `dead_letters`."""
    pattern = posixpath.join(raw_root.rstrip("/"), "dt=*", "*.meta.json")
    try:
        files = spark.sparkContext.wholeTextFiles(pattern).collect()
    except Exception as exc:  # Hadoop raises on a glob that matches nothing
        if "matches 0 files" in str(exc) or "does not exist" in str(exc):
            return []
        raise
    last_day = end.date() + dt.timedelta(days=1)
    found = []
    unreadable: list[tuple[str, str, str]] = []
    for path, text in files:
        folder = posixpath.basename(posixpath.dirname(path))
        try:
            if dt.date.fromisoformat(folder[3:]) > last_day:
                continue  # a payload starts on its dt: none after `end` can overlap
        except ValueError:
            continue  # not a partition folder of ours
        payload_id = posixpath.basename(path).removesuffix(".meta.json")
        try:
            meta = lake.envelope(text)
        except ValueError as exc:
            name = posixpath.basename(path)
            unreadable.append((folder, payload_id, f"envelope {name}: {exc}"))
            continue
        window_start = dt.datetime.fromisoformat(meta["window_start"])
        window_end = dt.datetime.fromisoformat(meta["window_end"])
        if not (window_start < end and start < window_end):
            continue
        if meta["format"] not in transforms.PARSERS:
            raise transforms.PayloadFormatError(
                f"payload {payload_id} has unknown format {meta['format']!r}; "
                f"known: {sorted(transforms.PARSERS)}"
            )
        body_path = posixpath.join(posixpath.dirname(path), f"{payload_id}.json")
        found.append((Envelope(payload_id, text, body_path), meta))
    found.sort(key=lambda item: item[0].payload_id)
    found.sort(
        key=lambda item: (dt.datetime.fromisoformat(item[1]["fetched_at"]), item[1]["batch"])
    )
    dead = []
    if unreadable:
        store = raw_store(raw_root)
        dead = [dead_letter(store, *bad, run_id=run_id) for bad in unreadable]
    return Envelopes([envelope for envelope, _ in found], dead)


def payload_frame(spark: SparkSession, envelopes: Sequence[Envelope]) -> DataFrame:
    """One row per payload (PAYLOAD_SCHEMA): the bodies read on the executors, each tagged
    with its payload group (`transforms.payload_groups`, on the envelopes alone)."""
    if not envelopes:
        return spark.createDataFrame([], PAYLOAD_SCHEMA)
    payloads = [e.payload() for e in envelopes]
    owner = {id(p): e for p, e in zip(payloads, envelopes, strict=True)}
    rows = []
    for number, group in enumerate(transforms.payload_groups(payloads)):
        for payload in group:
            envelope = owner[id(payload)]
            rows.append((f"g{number:06d}", envelope.payload_id, envelope.meta, envelope.body_path))
    index = spark.createDataFrame(rows, "grp string, payload_id string, meta string, path string")
    bodies = (
        spark.read.format("binaryFile")
        .load([e.body_path for e in envelopes])
        .select(F.col("path").alias("_uri"), F.col("content").alias("body"))
    )
    # binaryFile names a file by its qualified URI (file:/..., s3://...): match on the name.
    bodies = bodies.withColumn(
        "payload_id", F.regexp_replace(F.element_at(F.split("_uri", "/"), -1), r"\.json$", "")
    ).drop("_uri")
    return index.join(bodies, "payload_id").select("grp", "payload_id", "meta", "body")
