"""The raw zone's dead-letter place: payloads nothing can read, moved out of the way.

A body that cannot be parsed at all (a truncated download, an HTML error page answered with a
200) or an envelope (`<payload_id>.meta.json`) that is not JSON would fail every later run of
its window until someone deleted it by hand. Such a payload is moved, body and envelope as
they were, to `<asset>/_dead_letter/dt=YYYY-MM-DD/` beside the `dt=` folders, with
`<payload_id>.reason.json` naming the error, the file, when and which run moved it. The rest of
the window loads; the run's metadata names what it moved.

Why a folder beside the raw zone rather than rows in the quarantine table: the quarantine holds
*records* of a partition window (received = loaded + quarantined), and an unreadable payload
has no records and, for a bad envelope, no known window; left in place, it would be read and
refused again by every run, and by the Spark job, which reads the raw zone itself. Moved, the
raw zone holds only what can be read, the evidence is kept byte for byte, and putting a fixed
file back is a move in the other direction. Readers never look in it: the raw zone's readers
take `dt=` folders only (`lake.dt_partitions`, `_day_files`, the Spark glob `dt=*`), and
retention leaves it alone (an operator empties it).

Order of the moves: the reason first, then the envelope (readers find payloads by their
envelope, so from then on none sees it), then the body. A crash in between leaves at worst a
body without an envelope in its `dt=` folder, which readers ignore and retention removes; on
S3 a move is a copy then a delete, so nothing is ever in neither place.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the Spark job imports this module without the object stores (Dagster's)
    from finance_assets.lib.io.objects import ObjectStore

DEAD_LETTER = "_dead_letter"

__all__ = ["DEAD_LETTER", "DeadLetter", "dead_letter", "envelope", "reason_note"]

# What a stored payload is rebuilt from (`lake._payload_of`, the Spark job's `raw.to_payload`).
_ENVELOPE_FIELDS = (
    "provider",
    "format",
    "interval",
    "symbols",
    "window_start",
    "window_end",
    "fetched_at",
    "batch",
    "request",
)


def envelope(text: bytes | str) -> dict:
    """A stored envelope (`<payload_id>.meta.json`) as written; a ValueError naming what is
    wrong when it is not JSON, not an object, lacks a field or holds a time without offset."""
    try:
        meta = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise ValueError(f"not JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"not a JSON object but a {type(meta).__name__}")
    missing = [f for f in _ENVELOPE_FIELDS if f not in meta]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    for name in ("window_start", "window_end", "fetched_at"):
        try:
            stamp = dt.datetime.fromisoformat(meta[name])
        except (TypeError, ValueError):
            raise ValueError(f"{name} {meta[name]!r} is not an ISO datetime") from None
        if stamp.tzinfo is None:
            raise ValueError(f"{name} {meta[name]!r} has no UTC offset")
    return meta


def reason_note(body_uri: str, envelope_uri: str, reason: str, run_id: str | None) -> bytes:
    """The `<payload_id>.reason.json` of a dead-lettered payload: what, why, when, which run."""
    note = {
        "file": body_uri,
        "envelope": envelope_uri,
        "error": reason,
        "dead_lettered_at": dt.datetime.now(dt.UTC).isoformat(),
        "run_id": run_id,
    }
    return json.dumps(note, indent=1).encode()


@dataclass(frozen=True)
class DeadLetter:
    """One payload moved to the dead-letter place: its file (as it was in the raw zone), why,
    and where it is now."""

    file: str
    reason: str
    moved_to: str

    def as_dict(self) -> dict[str, str]:
        return {"file": self.file, "reason": self.reason, "moved_to": self.moved_to}


def dead_letter(
    store: ObjectStore, folder: str, payload_id: str, reason: str, run_id: str | None = None
) -> DeadLetter:
    """Move payload `payload_id` of `dt=` folder `folder` (body and envelope, whichever exist)
    to `_dead_letter/<folder>/`, with `<payload_id>.reason.json` beside them."""
    if not folder.startswith("dt=") or "/" in folder:
        raise ValueError(f"{folder!r} is not a dt= partition folder")
    target = f"{DEAD_LETTER}/{folder}"
    body, meta = f"{folder}/{payload_id}.json", f"{folder}/{payload_id}.meta.json"
    note = reason_note(store.uri(body), store.uri(meta), reason, run_id)
    store.write(f"{target}/{payload_id}.reason.json", note)
    for key in (meta, body):
        if store.exists(key):
            store.move(key, f"{target}/{key.rpartition('/')[2]}")
    return DeadLetter(store.uri(body), reason, store.uri(f"{target}/{payload_id}.json"))
