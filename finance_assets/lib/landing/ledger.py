"""The ledger: `.processed/<name>.json`, one marker per file name in a market's landing folder.

A marker holds the content hash of the version that was ingested (and its size and modification
time, so that an untouched file is recognised without reading it), and how many versions of
that name were ingested so far.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from finance_assets.lib.landing.location import LandingStore

PROCESSED_DIR = ".processed"


@dataclass(frozen=True)
class LedgerEntry:
    """The version of a file name that was handed to a run."""

    name: str
    sha256: str
    size: int
    modified: str  # ISO, UTC: with `size`, recognises an untouched file without reading it
    revision: int  # versions of this name ingested so far, this one included
    first: str
    last: str
    symbols: tuple[str, ...]
    rows: int
    run_key: str
    recorded_at: str

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LedgerEntry:
        return cls(**{**data, "symbols": tuple(data["symbols"])})

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "symbols": list(self.symbols)}


class Ledger:
    """`.processed/<name>.json` per file name: one small object each, so that no tick rewrites
    a shared file (and on S3 no read-modify-write races)."""

    def __init__(self, store: LandingStore) -> None:
        self.store = store

    @staticmethod
    def key(name: str) -> str:
        return f"{PROCESSED_DIR}/{name}.json"

    def get(self, name: str) -> LedgerEntry | None:
        try:
            return LedgerEntry.from_dict(json.loads(self.store.read(self.key(name))))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError):
            return None  # an unreadable marker: the file is judged again

    def put(self, entry: LedgerEntry) -> None:
        self.store.write(self.key(entry.name), json.dumps(entry.to_dict(), indent=1).encode())
