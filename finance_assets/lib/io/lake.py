"""The raw zone and the Parquet lake, on a local folder or an S3 prefix (`objects.py`): the
same code, the same layout, on both.

Layout (hive style, so DuckDB and Athena read it as partitioned tables):
- raw zone: `<root>/<market>/<asset>/dt=YYYY-MM-DD/<payload_id>.json` holds a body exactly as
  received, `<payload_id>.meta.json` beside it says what was asked for and when. `dt` is the
  exchange-local date the payload's window starts on. A payload a newer one supersedes is
  moved to `<root>/<market>/<asset>/_superseded/dt=YYYY-MM-DD/` (same names), where window
  readers do not look and "as known then" (`lib/as_of.py`) does; retention expires both alike.
- lake: `<root>/<market>/<asset>/dt=YYYY-MM-DD/part-0.parquet`, one file per asset per day,
  sorted by (symbol, ts): few, large files (10,000 small files wrote 15-45x slower), and row-group
  statistics prune by symbol. Replacing a window rewrites the day files it touches.

Every object is written whole or not at all (a local file goes to a temporary name and is
renamed; an S3 PUT is atomic), so a reader never sees half a file and a failure leaves the
previous one. The lake's day files are staged under hidden temporary names and published later
(`stage_window`; on S3 publishing is a server-side copy): that is how the lake follows the
warehouse's commit (`lake_warehouse.py`). Temporary objects of a killed writer are removed by
the next write to the same folder (locally when their PID is gone, on S3 after an hour).

A window staged for the warehouse's commit is marked first: `.pending-<window>.json` beside
the `dt=` folders (hidden, as staged files are) lists its staged objects and where they go. A
publish that fails after the commit (S3 answering CopyObject with 500s) leaves the marker and
the staged objects: readers of the window refuse it (`PendingPublish`), the reconciliation
names it, and the next write to the asset, or `publish_pending`, finishes the publish from the
staged objects before anything else.

Each function takes the asset's store (`ObjectStore`), or a path / `s3://` URI to open one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal
from zoneinfo import ZoneInfo

import polars as pl

from finance_assets.lib.answers import answered_symbols, supersedes
from finance_assets.lib.io.dead_letters import DeadLetter, dead_letter, envelope
from finance_assets.lib.io.objects import (
    TEMP_MARK,
    LocalObjectStore,
    ObjectInfo,
    ObjectStore,
    open_location,
    temp_key,
)
from finance_assets.lib.io.spans import Kept, kept_expr, refuse_kept_rows
from finance_assets.lib.providers.base import RawPayload

LAKE_FILE = "part-0.parquet"
# Where a raw payload goes once a newer one supersedes it: `<asset>/_superseded/dt=.../`,
# beside the `dt=` folders that window readers (and Spark's `dt=*` glob) take.
SUPERSEDED = "_superseded"
# Objects fetched at once from S3 (one GET each); a local folder reads one by one.
S3_READERS = 16

Location = ObjectStore | str | os.PathLike[str]

__all__ = [
    "LAKE_FILE",
    "PENDING",
    "SUPERSEDED",
    "TEMP_MARK",
    "PendingPublish",
    "RawPayloads",
    "StagedWindow",
    "Written",
    "dead_letter_payloads",
    "dt_partitions",
    "expired_payloads",
    "pending_publishes",
    "publish_pending",
    "read_history",
    "read_payloads",
    "read_window",
    "remove_partition",
    "stage_window",
    "store_of",
    "write_payloads",
]


def store_of(base: Location) -> ObjectStore:
    """`base` as a store: a store as it is, a path or URI opened (boto3's chain for S3)."""
    if isinstance(base, (str, os.PathLike)):
        return open_location(base)
    return base


def _dt(day: dt.date) -> str:
    return f"dt={day.isoformat()}"


def _midnight(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The start of local `day`, in UTC."""
    return dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)


def _days(start: dt.datetime, end: dt.datetime, tz: ZoneInfo) -> list[dt.date]:
    """Local dates touched by [start, end)."""
    first = start.astimezone(tz).date()
    last = (end - dt.timedelta(microseconds=1)).astimezone(tz).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def dt_partitions(base: Location) -> list[tuple[dt.date, str]]:
    """The `dt=` folders under `base`: (date, folder name), oldest first."""
    found = []
    for name in store_of(base).list_folders():
        if name.startswith("dt="):
            try:
                found.append((dt.date.fromisoformat(name[3:]), name))
            except ValueError:
                continue  # not ours
    return sorted(found)


def _day_files(store: ObjectStore, last: dt.date | None = None) -> dict[str, list[str]]:
    """The objects of each `dt=` folder up to `last` (all when None), by folder: locally a
    listing per folder, on S3 one listing of the whole prefix (a request per 1,000 objects,
    rather than one per folder)."""
    if isinstance(store, LocalObjectStore):
        out: dict[str, list[str]] = {}
        for day, folder in dt_partitions(store):
            if last is not None and day > last:
                break
            out[folder] = [o.name for o in store.list_files(folder)]
        return out
    out = {}
    for obj in store.list_tree():
        folder, _, name = obj.name.partition("/")
        if not folder.startswith("dt=") or "/" in name:
            continue
        try:
            day = dt.date.fromisoformat(folder[3:])
        except ValueError:
            continue  # not ours
        if last is None or day <= last:
            out.setdefault(folder, []).append(obj.name)
    return dict(sorted(out.items()))


def _read_all(store: ObjectStore, keys: Sequence[str]) -> list[bytes]:
    if isinstance(store, LocalObjectStore) or len(keys) < 2:
        return [store.read(k) for k in keys]
    # One GET per object: a few at once hide the round trips.
    with ThreadPoolExecutor(max_workers=min(S3_READERS, len(keys))) as pool:
        return list(pool.map(store.read, keys))


# --- raw zone --------------------------------------------------------------------------------


def write_payloads(
    base: Location,
    payloads: Iterable[RawPayload],
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
) -> Written:
    """Store each payload's body as received; set aside (`_superseded/`) older payloads that
    the window supersedes entirely (same window or inside it), and only for symbols the new
    payloads *answered*: a file set aside for one symbol keeps the others', and a symbol a
    batch answered with an error keeps its previous payloads until a later one answers it. An
    older payload that did not answer such a symbol either (an error then and now) goes all
    the same (`supersedes`): re-fetches of a failing symbol replace each other in the window's
    reads instead of piling up. Nothing is deleted: what was known before stays readable as
    history (`read_history`) until retention expires it. Returns the bodies' keys (and, in
    `set_aside`, those of the payloads set aside).

    All or nothing: when a write fails (a full disk, S3 refusing a PUT), the objects this call
    created are removed and nothing older is set aside."""
    store = store_of(base)
    written: list[str] = []
    created: list[str] = []
    new_ids: set[str] = set()
    answered: set[str] = set()
    asked: set[str] = set()
    existing: dict[str, set[str]] = {}  # folder -> names, listed once per folder
    try:
        for payload in payloads:
            folder = _dt(payload.window_start.astimezone(tz).date())
            body_key = f"{folder}/{payload.payload_id}.json"
            meta_key = f"{folder}/{payload.payload_id}.meta.json"
            meta = {
                "provider": payload.provider,
                "format": payload.format,
                "interval": payload.interval,
                "symbols": list(payload.symbols),
                "window_start": payload.window_start.isoformat(),
                "window_end": payload.window_end.isoformat(),
                "fetched_at": payload.fetched_at.isoformat(),
                "batch": payload.batch,
                "request": payload.request,
                "content_type": payload.content_type,
                "bytes": len(payload.body),
            }
            if folder not in existing:
                store.remove_stale_temps(folder)
                existing[folder] = {o.name for o in store.list_files(folder)}
            # The body before its metadata: readers find payloads by their metadata.
            for key, data in (
                (body_key, payload.body),
                (meta_key, json.dumps(meta, indent=1).encode()),
            ):
                if key not in existing[folder]:
                    created.append(key)
                store.write(key, data)
                existing[folder].add(key)
            written.append(body_key)
            new_ids.add(payload.payload_id)
            answered.update(answered_symbols(payload))
            asked.update(payload.symbols)
    except BaseException:
        for key in created:
            store.delete(key)
        raise
    aside: list[str] = []
    for old in _payload_metas(store, start, end):
        if old["payload_id"] in new_ids:
            continue
        inside = start <= old["window_start"] and old["window_end"] <= end
        if inside and supersedes(
            old["symbols"],
            lambda old=old: answered_symbols(_payload_of(old, store.read(old["key"]))),
            asked,
            answered,
        ):
            _set_aside(store, old["meta_key"], old["key"])
            aside.append(f"{SUPERSEDED}/{old['key']}")
    return Written(written, aside)


def _set_aside(store: ObjectStore, meta_key: str, body_key: str) -> None:
    """Move a superseded payload to `_superseded/` (same `dt=` folder and names): the window's
    readers no longer see it, and "as known then" (`lib/as_of.py`) still can. The envelope
    first: from then on no window reader finds the payload; a crash before the body moves
    leaves the body in its `dt=` folder, where `read_history` still finds it, readers ignore
    it (no envelope) and retention removes it with its folder."""
    store.move(meta_key, f"{SUPERSEDED}/{meta_key}")
    store.move(body_key, f"{SUPERSEDED}/{body_key}")


def _payload_metas(
    store: ObjectStore,
    start: dt.datetime,
    end: dt.datetime,
    unreadable: list[tuple[str, str, str]] | None = None,
) -> list[dict]:
    """Metadata of payloads whose window overlaps [start, end). An envelope that cannot be
    read is left out, and appended to `unreadable` as (folder, payload_id, reason)."""
    # A payload starts on its dt: none that starts after `end` can overlap.
    listing = _day_files(store, end.date() + dt.timedelta(days=1))
    meta_keys = [k for keys in listing.values() for k in keys if k.endswith(".meta.json")]
    found = []
    for meta_key, text in zip(meta_keys, _read_all(store, meta_keys), strict=True):
        folder, _, name = meta_key.rpartition("/")
        payload_id = name.removesuffix(".meta.json")
        try:
            meta = envelope(text)
        except ValueError as exc:
            if unreadable is not None:
                unreadable.append((folder, payload_id, f"envelope {name}: {exc}"))
            continue
        window_start = dt.datetime.fromisoformat(meta["window_start"])
        window_end = dt.datetime.fromisoformat(meta["window_end"])
        if window_start < end and start < window_end:
            found.append(
                {
                    **meta,
                    "payload_id": payload_id,
                    "window_start": window_start,
                    "window_end": window_end,
                    "key": f"{folder}/{payload_id}.json",
                    "meta_key": meta_key,
                }
            )
    return sorted(found, key=lambda m: m["payload_id"])


class Written(list[str]):
    """The bodies' keys a raw write stored (a list, as before), and the keys of the older
    payloads it set aside as superseded (`set_aside`), for the run's metadata."""

    def __init__(self, keys: Iterable[str] = (), set_aside: Iterable[str] = ()):
        super().__init__(keys)
        self.set_aside: list[str] = list(set_aside)


class RawPayloads(list[RawPayload]):
    """A window's payloads (a list, as before), and those moved to the dead-letter place while
    they were read (`dead_letters.dead_letter`), for the run to report."""

    def __init__(self, payloads: Iterable[RawPayload] = (), dead: Iterable[DeadLetter] = ()):
        super().__init__(payloads)
        self.dead_letters: list[DeadLetter] = list(dead)


def read_payloads(
    base: Location, start: dt.datetime, end: dt.datetime, *, run_id: str | None = None
) -> RawPayloads:
    """Every stored payload whose window overlaps [start, end), oldest fetch first.

    A payload whose envelope cannot be read (from any day up to the window's: its window is
    unknown) is moved to the dead-letter place, `run_id` named in its reason, and listed in
    the result's `dead_letters`; the others load."""
    store = store_of(base)
    unreadable: list[tuple[str, str, str]] = []
    metas = _payload_metas(store, start, end, unreadable)
    dead = [dead_letter(store, *bad, run_id=run_id) for bad in unreadable]
    bodies = _read_all(store, [m["key"] for m in metas])
    payloads = [_payload_of(meta, body) for meta, body in zip(metas, bodies, strict=True)]
    return RawPayloads(sorted(payloads, key=lambda p: (p.fetched_at, p.batch)), dead)


def read_history(
    base: Location, start: dt.datetime, end: dt.datetime
) -> tuple[list[RawPayload], list[str]]:
    """Every payload ever stored for a window overlapping [start, end) and not yet expired:
    the current ones and those set aside as superseded, oldest fetch first. Reads only (an
    unreadable envelope is not moved, as `read_payloads` would): returns (payloads, the
    envelopes left out and why)."""
    store = store_of(base)
    problems: list[tuple[str, str, str]] = []
    current = _payload_metas(store, start, end, problems)
    old_store = store.child(SUPERSEDED)
    old = _payload_metas(old_store, start, end, problems)
    # A body whose envelope was set aside and which was not moved yet (a crash between the
    # two moves) is still in its `dt=` folder.
    keys = [(store, m["key"]) for m in current] + [
        (old_store if old_store.exists(m["key"]) else store, m["key"]) for m in old
    ]
    bodies = _read_all_from(keys)
    payloads = [_payload_of(m, b) for m, b in zip([*current, *old], bodies, strict=True)]
    unique = {p.payload_id: p for p in payloads}  # once, should a move have copied it twice
    return (
        sorted(unique.values(), key=lambda p: (p.fetched_at, p.batch)),
        [f"{folder}/{payload_id}: {reason}" for folder, payload_id, reason in problems],
    )


def _read_all_from(keys: Sequence[tuple[ObjectStore, str]]) -> list[bytes]:
    if len(keys) < 2 or all(isinstance(s, LocalObjectStore) for s, _ in keys):
        return [s.read(k) for s, k in keys]
    with ThreadPoolExecutor(max_workers=min(S3_READERS, len(keys))) as pool:
        return list(pool.map(lambda item: item[0].read(item[1]), keys))


def dead_letter_payloads(
    base: Location,
    payloads: Iterable[RawPayload],
    reasons: dict[str, str],
    tz: ZoneInfo,
    run_id: str | None = None,
) -> list[DeadLetter]:
    """Move the payloads whose body could not be read (`reasons`: payload_id -> the parse
    error) to the dead-letter place, from the `dt=` folder of the local day their window
    starts on (where `write_payloads` filed them)."""
    store = store_of(base)
    return [
        dead_letter(
            store,
            _dt(p.window_start.astimezone(tz).date()),
            p.payload_id,
            reasons[p.payload_id],
            run_id=run_id,
        )
        for p in payloads
        if p.payload_id in reasons
    ]


def _payload_of(meta: dict, body: bytes) -> RawPayload:
    """A stored payload from its metadata (as `_payload_metas` reads it) and body."""
    return RawPayload(
        provider=meta["provider"],
        format=meta["format"],
        interval=meta["interval"],
        symbols=tuple(meta["symbols"]),
        window_start=meta["window_start"],
        window_end=meta["window_end"],
        fetched_at=dt.datetime.fromisoformat(meta["fetched_at"]),
        body=body,
        batch=meta["batch"],
        request=meta["request"],
        content_type=meta.get("content_type", "application/json"),
    )


def expired_payloads(base: Location, folder: str, cutoff: dt.date) -> list[str] | None:
    """Retention of one raw `dt=` folder: a payload is judged by the end of its window (its
    last local day before `cutoff`), not by the day it is filed under (its first): a 20-day
    payload filed under its first day stays until its last day is old enough. None when
    everything in the folder has expired (remove it whole), else the keys of the expired
    payloads (body and metadata; empty when none). A payload whose metadata does not say
    its window is judged by the folder's day; a body without metadata goes with its folder."""
    if not folder.startswith("dt=") or "/" in folder:
        raise ValueError(f"{folder} is not a dt= partition folder")
    store = store_of(base)
    filed = dt.date.fromisoformat(folder[3:])
    names = [o.name for o in store.list_files(folder)]
    meta_keys = [n for n in names if n.endswith(".meta.json")]
    expired, young = [], 0
    for meta_key, text in zip(meta_keys, _read_all(store, meta_keys), strict=True):
        try:
            end = json.loads(text).get("window_end")
            last = (dt.datetime.fromisoformat(end) - dt.timedelta(microseconds=1)).date()
        except (ValueError, TypeError, AttributeError):
            last = filed  # not our metadata: the folder's day is all there is to go by
        if last < cutoff:
            expired += [meta_key.removesuffix(".meta.json") + ".json", meta_key]
        else:
            young += 1
    return None if not young else expired


def remove_partition(base: Location, folder: str) -> int:
    """Delete one `dt=` folder under `base` (retention); refuses anything else. The number
    of objects removed."""
    if not folder.startswith("dt=") or "/" in folder:
        raise ValueError(f"{folder} is not a dt= partition folder")
    return store_of(base).delete_folder(folder)


# --- Parquet lake ----------------------------------------------------------------------------


# The markers of windows committed in the warehouse, not yet published: hidden objects beside the
# `dt=` folders (no folder of their own: nothing is left behind once they go).
PENDING = ".pending-"


class PendingPublish(RuntimeError):
    """A window's day files wait to be published: the lake lags the warehouse there, and a
    reader refuses it rather than answer from the older files."""


@dataclass
class StagedWindow:
    """Day files written under temporary names, waiting to be published (moved into place:
    a rename locally, a server-side copy on S3) or discarded; `removals` are the day files the
    window leaves empty; `sizes` the bytes of each staged file. `marker`: the key of its
    pending-publish marker, once `mark` wrote one."""

    store: ObjectStore
    moves: list[tuple[str, str]] = field(default_factory=list)
    removals: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    marker: str | None = None
    # Markers of earlier windows whose staged files were lost, for days this window rewrites
    # whole: they go once this window is published (`publish_pending`).
    inherited: list[str] = field(default_factory=list)
    # The marker stays after the publish: some of its days' staged files were lost.
    keep_marker: bool = False

    def mark(self) -> str:
        """Write the pending-publish marker: from now on readers of the window's days refuse
        them until `publish` (here, by the next writer or by `publish_pending`) clears it."""
        start = (self.start or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
        end = (self.end or start).astimezone(dt.UTC)
        key = f"{PENDING}{start:%Y%m%dT%H%M%S}-{end:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}.json"
        document = {
            "window_start": start.isoformat(),
            "window_end": end.isoformat(),
            "moves": [list(m) for m in self.moves],
            "removals": self.removals,
            "sizes": self.sizes,
            "staged_at": dt.datetime.now(dt.UTC).isoformat(),
        }
        self.store.write(key, json.dumps(document, indent=1).encode())
        self.marker = key
        return key

    def publish(self, attempts: int = 1, backoff: float = 1.0) -> list[ObjectInfo]:
        """Move every staged file into place (a rename per day locally: microseconds each),
        then clear the marker. Up to `attempts` tries, `backoff` seconds doubling between
        them, each going on from where the last stopped. On failure a marked window keeps its
        staged files and marker (the warehouse has committed them: `publish_pending` finishes
        it); an unmarked one is discarded."""
        done: list[ObjectInfo] = []
        for attempt in range(1, attempts + 1):
            try:
                self._publish_rest(done)
                break
            except OSError:
                if attempt == attempts:
                    if self.marker is None:
                        self.discard()
                    raise
                time.sleep(backoff * 2 ** (attempt - 1))
            except BaseException:
                if self.marker is None:
                    self.discard()
                raise
        return done

    def _publish_rest(self, done: list[ObjectInfo]) -> None:
        now = dt.datetime.now(dt.UTC)
        for tmp, key in self.moves[len(done) :]:
            self.store.move(tmp, key)
            done.append(ObjectInfo(key, self.sizes.get(tmp, 0), now))
        for key in self.removals:
            self.store.delete(key)
        if self.marker is not None and not self.keep_marker:
            self.store.delete(self.marker)
            self.marker = None
        while self.inherited:
            self.store.delete(self.inherited[-1])
            self.inherited.pop()

    def discard(self) -> None:
        for tmp, _ in self.moves:
            try:
                self.store.delete(tmp)
            except OSError:
                continue  # left for the next write to the folder (remove_stale_temps)
        if self.marker is not None:
            with contextlib.suppress(OSError):  # without staged files: the next writer's
                self.store.delete(self.marker)
                self.marker = None


@dataclass(frozen=True)
class Pending:
    """One pending-publish marker: the window, the day files it would write, its key, when it
    was staged."""

    key: str
    start: dt.datetime
    end: dt.datetime
    moves: list[tuple[str, str]]
    removals: list[str]
    sizes: dict[str, int]
    staged_at: dt.datetime

    @property
    def days(self) -> list[str]:
        return sorted(
            {k.split("/")[0] for _, k in self.moves} | {k.split("/")[0] for k in self.removals}
        )


def pending_publishes(
    base: Location, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[Pending]:
    """The asset's pending-publish markers (those whose window overlaps [start, end) when
    given), oldest window first. One listing of the asset's own objects (its `dt=` folders are
    not listed into)."""
    store = store_of(base)
    found = []
    for info in store.list_files():
        if not (info.name.startswith(PENDING) and info.name.endswith(".json")):
            continue
        document = json.loads(store.read(info.name))
        lo = dt.datetime.fromisoformat(document["window_start"])
        hi = dt.datetime.fromisoformat(document["window_end"])
        if start is not None and end is not None and not (lo < end and start < hi):
            continue
        found.append(
            Pending(
                info.name,
                lo,
                hi,
                [(str(a), str(b)) for a, b in document["moves"]],
                list(document["removals"]),
                dict(document.get("sizes", {})),
                dt.datetime.fromisoformat(document.get("staged_at") or document["window_end"]),
            )
        )
    return sorted(found, key=lambda p: (p.start, p.key))


def publish_pending(base: Location, min_age: dt.timedelta | None = None) -> list[str]:
    """Finish every pending publish of the asset at `base` from its staged objects, oldest
    first (each was committed in the warehouse before the next write began); returns the
    day files published. A staged object already moved (its key exists, the staged name does
    not) counts as published; one missing from both places raises `PendingPublish`, the
    marker kept: a re-run of that window rewrites the day (and clears the marker once
    published). `min_age`: only markers staged at least that long ago (a sweep beside running
    writers leaves theirs alone: a marker precedes its commit by the time the COPY takes)."""
    published, lost, _ = _finish_pending(store_of(base), min_age)
    if lost:
        raise PendingPublish("; ".join(lost.values()))
    return published


def _finish_pending(
    store: ObjectStore, min_age: dt.timedelta | None = None, rewrites: Iterable[str] = ()
) -> tuple[list[str], dict[str, str], list[str]]:
    """`publish_pending`'s work: (day files published, {marker: why it stays} for markers
    whose staged files are lost for days not in `rewrites`, the markers whose lost days are
    all in `rewrites`: the caller's window takes them over)."""
    published: list[str] = []
    lost: dict[str, str] = {}
    taken: list[str] = []
    rewritten = set(rewrites)
    now = dt.datetime.now(dt.UTC)
    for pending in pending_publishes(store):
        if min_age is not None and now - pending.staged_at < min_age:
            continue
        staged = StagedWindow(
            store, [], pending.removals, pending.sizes, pending.start, pending.end, pending.key
        )
        gone = []
        for tmp, key in pending.moves:
            if store.exists(tmp):
                staged.moves.append((tmp, key))
            elif not store.exists(key):
                gone.append(key)
        if gone:
            # Publish what is there; the marker stays until the lost days are rewritten.
            staged.keep_marker = True
            published += [info.name for info in staged.publish()]
            if set(gone) <= rewritten:
                taken.append(pending.key)
            else:
                lost[pending.key] = (
                    f"{store.uri(pending.key)}: the staged files of {', '.join(gone)} are gone; "
                    f"re-run [{pending.start}, {pending.end}) to rewrite them"
                )
            continue
        published += [info.name for info in staged.publish()]
    return published, lost, taken


def _refuse_pending(store: ObjectStore, start: dt.datetime, end: dt.datetime) -> None:
    pending = pending_publishes(store, start, end)
    if pending:
        days = ", ".join(sorted({d for p in pending for d in p.days}))
        first = pending[0]
        raise PendingPublish(
            f"{store.uri()}: {days} wait to be published (marker {store.uri(first.key)}): the "
            f"warehouse committed [{first.start}, {first.end}) and the lake still holds the "
            "older day files; the next write of the asset (or lake.publish_pending) "
            "publishes them"
        )


def stage_window(
    base: Location,
    df: pl.DataFrame,
    *,
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
    time_column: str = "ts",
    sort_by: tuple[str, ...] = ("symbol", "ts"),
    kept: Sequence[Kept] = (),
) -> StagedWindow:
    """Write the day files that replace the rows of [start, end) with `df` (except the rows in
    `kept` spans, which stay) under temporary names; nothing is visible until `publish`.
    A failure removes what was staged."""
    store = store_of(base)
    start_utc, end_utc = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    ts = pl.col(time_column)
    outside = df.filter((ts < start_utc) | (ts >= end_utc)).height
    if outside:
        raise ValueError(f"{outside} row(s) have {time_column} outside [{start}, {end})")
    refuse_kept_rows(df, kept, time_column, store.uri())
    # An earlier window committed but not published goes first: its day files are what this
    # window reads back for partial days, and its staged objects must not be taken for stale.
    # Days whose staged files were lost are rewritten by this window only if it covers them
    # whole; their marker goes when this window is published.
    whole = [
        f"{_dt(day)}/{LAKE_FILE}"
        for day in _days(start, end, tz)
        if start_utc <= _midnight(day, tz)
        and _midnight(day + dt.timedelta(days=1), tz) <= end_utc
        and not any(
            k.start < _midnight(day + dt.timedelta(days=1), tz) and _midnight(day, tz) < k.end
            for k in kept
        )
    ]
    _, lost, taken_over = _finish_pending(store, rewrites=whole)
    if lost:
        raise PendingPublish("; ".join(lost.values()))
    stays = (ts < start_utc) | (ts >= end_utc) | kept_expr(kept, time_column)
    staged = StagedWindow(store, start=start, end=end, inherited=taken_over)
    try:
        for day in _days(start, end, tz):
            key = f"{_dt(day)}/{LAKE_FILE}"
            day_start = dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)
            day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz).astimezone(
                dt.UTC
            )
            # One day's rows at a time: a long range never holds a second copy of itself.
            new = df.filter((ts >= day_start) & (ts < day_end))
            partial = not (start_utc <= day_start and day_end <= end_utc)
            touches_kept = any(k.start < day_end and day_start < k.end for k in kept)
            # Whether the day file exists matters only when rows of it stay, or none come.
            if (partial or touches_kept or new.is_empty()) and store.exists(key):
                if partial or touches_kept:
                    # Keep the day's rows outside the window, and those of kept spans.
                    old = store.read_parquet([key], stays)
                    new = pl.concat([old, new.select(old.columns)], how="vertical")
                if new.is_empty():
                    staged.removals.append(key)
                    continue
            if new.is_empty():
                continue
            store.remove_stale_temps(_dt(day))
            tmp = temp_key(key)
            staged.moves.append((tmp, key))  # before writing: a failed write is discarded
            staged.sizes[tmp] = store.write_parquet(new.sort(list(sort_by)), tmp)
    except BaseException:
        staged.discard()
        raise
    return staged


def read_window(
    base: Location,
    *,
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
    time_column: str = "ts",
    pending: Literal["refuse", "ignore"] = "refuse",
) -> pl.DataFrame | None:
    """Rows of [start, end) from the day files it touches; None when there are none.
    `PendingPublish` when a day of the window waits to be published (the lake lags the
    warehouse there), unless `pending="ignore"` (the reconciliation, which names it)."""
    store = store_of(base)
    if pending == "refuse":
        _refuse_pending(store, start, end)
    days = _days(start, end, tz)
    if isinstance(store, LocalObjectStore) or len(days) <= 2:
        files = [key for day in days if store.exists(key := f"{_dt(day)}/{LAKE_FILE}")]
    else:
        # A range on S3: one listing instead of a HEAD per day.
        present = {k for keys in _day_files(store, days[-1]).values() for k in keys}
        files = [key for day in days if (key := f"{_dt(day)}/{LAKE_FILE}") in present]
    if not files:
        return None
    ts = pl.col(time_column)
    return store.read_parquet(
        files, (ts >= start.astimezone(dt.UTC)) & (ts < end.astimezone(dt.UTC))
    )
