"""The object-store interface both stores implement, and the key rules they share."""

from __future__ import annotations

import datetime as dt
import os
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import polars as pl

TEMP_MARK = ".tmp-"
# An S3 temporary object older than this is a dead writer's (S3 has no PIDs to ask).
STALE_AFTER = dt.timedelta(hours=1)
# Where boto3 reads an endpoint from the environment (the service's own variable first).
_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "statistics": True}


@dataclass(frozen=True)
class ObjectInfo:
    """An object (a file): its key relative to the store, size and modification time."""

    name: str
    size: int
    modified: dt.datetime  # UTC


class UnsafeKey(ValueError):
    """A key that would leave its root (`..`, absolute, a symlink out)."""


def check_parts(text: str, what: str = "key") -> list[str]:
    """`text`'s path segments, refused when one is empty, `.` or `..`, or holds a backslash or
    a NUL. (`..` and empty segments are literal names on S3, but tools that map keys to paths,
    the CLI's sync or s3fs mounts, read them as steps.)"""
    parts = text.split("/")
    for part in parts:
        if part in ("", ".", "..") or "\\" in part or "\x00" in part:
            raise UnsafeKey(f"unsafe {what} {text!r}")
    return parts


def temp_key(key: str) -> str:
    """A hidden name beside `key` for writing it (`.<name>.tmp-<pid>-<random>`): Athena,
    DuckDB's globs and polars skip hidden files."""
    folder, _, name = key.rpartition("/")
    return f"{folder + '/' if folder else ''}.{name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _join(*parts: str) -> str:
    return "/".join(p.strip("/") for p in parts if p.strip("/"))


class ObjectStore(Protocol):
    """The calls the zones make; `LocalObjectStore` and `S3ObjectStore` implement them."""

    def child(self, *parts: str) -> ObjectStore:
        """The store rooted at `parts` under this one."""
        ...

    def uri(self, key: str = "") -> str:
        """Where `key` lives, for lineage (never a secret)."""
        ...

    def list_files(self, folder: str = "") -> list[ObjectInfo]:
        """Objects directly in `folder` (not deeper), names relative to the store, sorted."""
        ...

    def list_folders(self, folder: str = "") -> list[str]:
        """Names of the sub-folders directly in `folder`, sorted."""
        ...

    def list_tree(self, folder: str = "") -> list[ObjectInfo]:
        """Every object under `folder`, at any depth, names relative to the store, sorted."""
        ...

    def exists(self, key: str) -> bool: ...

    def read(self, key: str) -> bytes:
        """The bytes of `key`; FileNotFoundError when absent."""
        ...

    def write(self, key: str, data: bytes) -> None:
        """Replace `key` with `data`, all or nothing."""
        ...

    def move(self, source: str, target: str) -> None:
        """Move `source` to `target`, replacing it."""
        ...

    def delete(self, key: str) -> None:
        """Remove `key` (nothing when absent)."""
        ...

    def delete_folder(self, folder: str) -> int:
        """Remove everything under `folder`; the number of objects removed."""
        ...

    def write_parquet(self, frame: pl.DataFrame, key: str) -> int:
        """Write `frame` as Parquet (zstd, statistics) to `key`; its size in bytes."""
        ...

    def read_parquet(self, keys: Sequence[str], predicate: pl.Expr | None = None) -> pl.DataFrame:
        """The rows of the Parquet objects `keys` that match `predicate`."""
        ...

    def remove_stale_temps(self, folder: str) -> list[str]:
        """Remove temporary objects in `folder` left by writers that died."""
        ...
