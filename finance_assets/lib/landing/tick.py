"""One sensor tick's decisions (`scan`): which files of a market's landing folder become runs,
which are rejected (moved to `rejected/<name>` with `rejected/<name>.reason.txt` beside them),
which wait for a later tick. No Dagster here: the sensor turns the result into run requests.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field, replace
from typing import Any

from finance_assets.lib.landing.inspection import (
    MAX_FILE_BYTES,
    Inspection,
    LandingFileRejected,
    content_hash,
    inspect_file,
    too_large,
)
from finance_assets.lib.landing.ledger import Ledger, LedgerEntry
from finance_assets.lib.landing.location import LandingStore, UnsafeKey
from finance_assets.lib.landing.names import name_problem
from finance_assets.lib.markets import Market

REJECTED_DIR = "rejected"


@dataclass(frozen=True)
class Accepted:
    """A file version to ingest: one run over its sessions."""

    entry: LedgerEntry
    inspection: Inspection

    @property
    def run_key(self) -> str:
        return self.entry.run_key


@dataclass
class ScanResult:
    accepted: list[Accepted] = field(default_factory=list)
    rejected: dict[str, str] = field(default_factory=dict)  # name -> reason
    ignored: dict[str, str] = field(default_factory=dict)  # name -> why it is not read
    waiting: list[str] = field(default_factory=list)  # still being written, or over the limit
    unchanged: int = 0  # processed before (or re-dropped with the same content)
    cursor: str = ""
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        parts = [
            f"{len(self.accepted)} new",
            f"{len(self.rejected)} rejected",
            f"{self.unchanged} unchanged",
            f"{len(self.waiting)} waiting",
            f"{len(self.ignored)} ignored",
        ]
        return ", ".join(parts)


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat()


def _load_cursor(cursor: str | None, notes: list[str]) -> tuple[list[LedgerEntry], dict[str, int]]:
    if not cursor:
        return [], {}
    try:
        state = json.loads(cursor)
        emitted = [LedgerEntry.from_dict(data) for data in state["emitted"].values()]
        return emitted, {str(k): int(v) for k, v in state["pending"].items()}
    except (ValueError, TypeError, KeyError, AttributeError):
        # The ledger still knows every file but the last tick's; those are requested again
        # under the same run keys, which Dagster does not run twice.
        notes.append(f"unreadable cursor {cursor[:80]!r}: starting afresh")
        return [], {}


def reject(store: LandingStore, name: str, reason: str, *, now: dt.datetime, sha256: str) -> None:
    """Move a file to `rejected/` with `<name>.reason.txt` beside it (the latest rejection of a
    name replaces an earlier one)."""
    text = (
        f"{name} was rejected at {_iso(now)}\n"
        f"sha256: {sha256}\n"
        f"reason: {reason}\n"
        "Fix the file and drop it into the landing folder again.\n"
    )
    store.write(f"{REJECTED_DIR}/{name}.reason.txt", text.encode())
    store.move(name, f"{REJECTED_DIR}/{name}")


def scan(
    store: LandingStore,
    market: Market,
    cursor: str | None,
    *,
    now: dt.datetime,
    settle: dt.timedelta = dt.timedelta(seconds=10),
    max_files: int = 10,
    first_day: dt.date | None = None,
    last_day: dt.date | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> ScanResult:
    """Decide one sensor tick: which files become runs, which are rejected, which wait.

    The cursor (JSON) holds what the previous tick emitted and the sizes of files still being
    written. What the previous tick emitted is written to the ledger at the start of this one:
    Dagster stores a cursor only once the tick's runs are submitted, so a tick that failed
    half-way emits the same run keys again instead of leaving a file marked done without a run.

    A file is left for a later tick while it was modified less than `settle` ago or its size
    changed since the previous tick. At most `max_files` files are read per tick (files seen
    before and untouched are recognised from the ledger without reading them), one at a time,
    and none above `max_bytes` (rejected unread): the tick's memory is bounded by `max_bytes`.
    Every file problem is a rejection or a note, never an exception; a storage failure on the
    ledger is raised (the tick fails and is retried with the same cursor).
    """
    result = ScanResult()
    emitted_before, pending_before = _load_cursor(cursor, result.notes)
    ledger = Ledger(store)
    for entry in emitted_before:
        ledger.put(entry)
    emitted: dict[str, dict[str, Any]] = {}
    pending: dict[str, int] = {}
    read = 0
    for obj in store.list_files():
        problem = name_problem(obj.name)
        if problem:
            result.ignored[obj.name] = problem
            continue
        entry = ledger.get(obj.name)
        if entry and entry.size == obj.size and entry.modified == _iso(obj.modified):
            result.unchanged += 1
            continue
        if now - obj.modified < settle or pending_before.get(obj.name, obj.size) != obj.size:
            pending[obj.name] = obj.size
            result.waiting.append(obj.name)
            continue
        if read >= max_files:
            result.waiting.append(obj.name)
            continue
        read += 1
        if obj.size > max_bytes:
            # Refused unread: its bytes never enter the sensor's memory.
            _reject(store, result, obj.name, too_large(obj.size, max_bytes), "")
            continue
        try:
            body = store.read(obj.name)
        except (OSError, UnsafeKey) as exc:
            result.notes.append(f"{obj.name}: cannot be read now ({exc}); next tick")
            result.waiting.append(obj.name)
            continue
        sha = content_hash(body)
        if entry and entry.sha256 == sha:
            # Dropped again as it was: nothing to do, remember the new size and time.
            ledger.put(replace(entry, size=len(body), modified=_iso(obj.modified)))
            result.unchanged += 1
            continue
        try:
            inspection = inspect_file(
                obj.name, body, market, first_day=first_day, last_day=last_day, max_bytes=max_bytes
            )
        except LandingFileRejected as exc:
            _reject(store, result, obj.name, str(exc), sha)
            continue
        except Exception as exc:  # whatever the content does to a library, it is the content's
            _reject(store, result, obj.name, f"unreadable: {type(exc).__name__}: {exc}", sha)
            continue
        revision = (entry.revision if entry else 0) + 1
        new = LedgerEntry(
            name=obj.name,
            sha256=sha,
            size=len(body),
            modified=_iso(obj.modified),
            revision=revision,
            first=inspection.first.isoformat(),
            last=inspection.last.isoformat(),
            symbols=inspection.symbols,
            rows=inspection.rows,
            # The content decides the key, so Dagster drops a request it has already run;
            # the revision lets a name go back to an earlier content (A -> B -> A) and run.
            run_key=f"{market.key}-{sha}-{revision}",
            recorded_at=_iso(now),
        )
        emitted[obj.name] = new.to_dict()
        result.accepted.append(Accepted(new, inspection))
    result.cursor = json.dumps({"emitted": emitted, "pending": pending}, sort_keys=True)
    return result


def _reject(store: LandingStore, result: ScanResult, name: str, reason: str, sha: str) -> None:
    try:
        reject(store, name, reason, now=dt.datetime.now(dt.UTC), sha256=sha or "-")
    except OSError as exc:
        result.notes.append(f"{name}: rejected ({reason}) but could not be moved: {exc}")
        return
    result.rejected[name] = reason
