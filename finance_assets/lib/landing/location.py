"""Where a market's landing files are: one interface (`LandingStore`), over a local folder
(`LocalLandingStore`) and over an S3 prefix (`S3LandingStore`), chosen by `open_store` from the
root's scheme. Both are the object stores of `lib/io/objects.py` (the raw zone and the lake use
the same ones), the local one refusing symlinks out of the folder as well; the sensor, the
ledger and the runs call the same five methods on both.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Protocol

from finance_assets.lib.io.objects import (
    LocalObjectStore,
    ObjectInfo,
    S3ObjectStore,
    UnsafeKey,
    check_parts,
    split_root,
)
from finance_assets.lib.io.objects.s3_resource import S3Resource

# A file in a market's landing folder (top level only): name, size, modified (UTC).
LandingObject = ObjectInfo

__all__ = [
    "LandingObject",
    "LandingStore",
    "LocalLandingStore",
    "S3LandingStore",
    "UnsafeKey",
    "open_store",
]


class LandingStore(Protocol):
    """One market's landing folder. Keys are relative: `AAPL.csv`, `rejected/AAPL.csv`.

    A local folder implements it, and so does an S3 prefix, each call one request
    (`list_objects_v2` with `Delimiter="/"`, `get_object`, `put_object`, `copy_object` +
    `delete_object`), so the sensor and the runs do not change.
    """

    def list_files(self) -> list[LandingObject]:
        """Files directly in the folder (not in sub-folders), sorted by name."""
        ...

    def read(self, key: str) -> bytes:
        """The bytes of `key`; FileNotFoundError when absent."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Replace `key` with `data`, all or nothing."""
        ...

    def move(self, source: str, target: str) -> None:
        """Move `source` to `target`, replacing it."""
        ...

    def uri(self, key: str) -> str:
        """Where `key` lives, for lineage (never a secret)."""
        ...


class LocalLandingStore(LocalObjectStore):
    """A market's landing folder on the local file system (or a mounted volume). Users write
    into it: a symlinked folder or file must not lead outside it."""

    def _path(self, key: str) -> Path:
        if not key:
            return self.root
        path = self.root.joinpath(*check_parts(key, "landing-zone key"))
        root = self.root.resolve()
        if not path.resolve().is_relative_to(root):
            raise UnsafeKey(f"landing-zone key {key!r} resolves outside {root}")
        return path

    def read(self, key: str) -> bytes:
        path = self._path(key)
        if path.is_symlink():
            raise UnsafeKey(f"landing-zone key {key!r} is a symlink")
        return path.read_bytes()

    def uri(self, key: str = "") -> str:
        return (self._path(key) if key else self.root).resolve().as_uri()


class S3LandingStore(S3ObjectStore):
    """A market's landing folder as an S3 prefix: `s3://<bucket>/<prefix>/<key>`. `scan` notes
    a file it cannot read or move (an OSError, as on a local folder) and carries on."""


def open_store(root: str, market_key: str, s3: S3Resource | None = None) -> LandingStore:
    """The landing folder of one market under `root`: a path, a `file://` URI, or
    `s3://bucket[/prefix]` (the market's files under `s3://bucket/prefix/<market>/`, through
    `s3`'s client: boto3's chain when None)."""
    if not re.fullmatch(r"[a-z0-9_]+", market_key):
        raise UnsafeKey(f"market key {market_key!r} is not a folder name")
    bucket, rest = split_root(root, "landing zone ")
    if bucket is None:
        return LocalLandingStore(Path(rest) / market_key)
    prefix = rest.strip("/")
    return S3LandingStore(bucket, f"{prefix}/{market_key}" if prefix else market_key, s3=s3)
