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
from finance_assets.lib.io.dead_letters import DEAD_LETTER, DeadLetter, envelope, reason_note
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


def _move_to_dead_letter(
    spark: SparkSession, raw_root: str, folder: str, payload_id: str, reason: str, run_id: str
) -> DeadLetter:
    """`lib.io.dead_letters.dead_letter` through Hadoop's FileSystem (the driver's view of the
    raw zone, `s3://` and `s3a://` included; the cluster has no Dagster for the object
    stores): the reason first, then the envelope, then the body."""
    jvm = spark.sparkContext._jvm
    conf = spark.sparkContext._jsc.hadoopConfiguration()
    root = raw_root.rstrip("/")
    source = posixpath.join(root, folder)
    target = posixpath.join(root, DEAD_LETTER, folder)
    path = jvm.org.apache.hadoop.fs.Path
    fs = path(root).getFileSystem(conf)
    fs.setWriteChecksum(False)  # no `.crc` files beside a local raw zone's objects
    fs.mkdirs(path(target))
    body = posixpath.join(source, f"{payload_id}.json")
    meta = posixpath.join(source, f"{payload_id}.meta.json")
    out = fs.create(path(posixpath.join(target, f"{payload_id}.reason.json")), True)
    try:
        out.write(bytearray(reason_note(body, meta, reason, run_id)))
    finally:
        out.close()
    for key in (meta, body):
        if fs.exists(path(key)) and not fs.rename(
            path(key), path(posixpath.join(target, posixpath.basename(key)))
        ):
            raise OSError(f"could not move {key} to {target}")
    return DeadLetter(body, reason, posixpath.join(target, f"{payload_id}.json"))


def dead_letter_bodies(
    spark: SparkSession,
    raw_root: str,
    envelopes: Sequence[Envelope],
    reasons: dict[str, str],
    run_id: str,
) -> list[DeadLetter]:
    """Move the payloads whose body the executors could not parse (`reasons`: payload_id ->
    the parser's message) to the dead-letter place, as the polars clean asset does."""
    return [
        _move_to_dead_letter(
            spark,
            raw_root,
            posixpath.basename(posixpath.dirname(e.body_path)),
            e.payload_id,
            reasons[e.payload_id],
            run_id,
        )
        for e in envelopes
        if e.payload_id in reasons
    ]


def read_envelopes(
    spark: SparkSession,
    raw_root: str,
    start: dt.datetime,
    end: dt.datetime,
    run_id: str = "",
) -> Envelopes:
    """Envelopes of the payloads whose window overlaps [start, end), oldest fetch first (the
    order of `lib.io.lake.read_payloads`): `<raw_root>/dt=YYYY-MM-DD/*.meta.json`. A format
    the polars path has no parser for is refused here, by the payload's name. An envelope that
    cannot be read (`lib.io.dead_letters.envelope`) is moved to the dead-letter place with its body
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
            meta = envelope(text)
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
    dead = [_move_to_dead_letter(spark, raw_root, *bad, run_id=run_id) for bad in unreadable]
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
