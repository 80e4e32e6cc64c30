"""Objects under a root, one interface over a local folder (`LocalObjectStore`) and an S3
prefix (`S3ObjectStore`, its client from `dagster_aws.s3.S3Resource`), chosen by `open_location`
from the root's scheme. The landing zone, the raw zone and the lake all go through it, so the
code above (layout, supersession, day-file rewrites, retention) is the same on both.

Keys are relative, `/`-separated (`dt=2026-11-18/part-0.parquet`); a segment that is empty,
`.` or `..`, or holds a backslash or NUL is refused (`UnsafeKey`): a key means the same on both
stores. Failures surface as OSError on both (FileNotFoundError for a missing key or bucket,
PermissionError when access is denied), never with a credential in the text. Parquet goes
through polars: a local path, or `s3://` through polars' own object store, configured from the
same S3Resource (endpoint, region, credentials of boto3's chain, the retry budget).
"""

from __future__ import annotations

import os

from finance_assets.lib.io.objects.base import (
    PARQUET_OPTIONS,
    STALE_AFTER,
    TEMP_MARK,
    ObjectInfo,
    ObjectStore,
    UnsafeKey,
    check_parts,
    temp_key,
)
from finance_assets.lib.io.objects.local import LocalObjectStore
from finance_assets.lib.io.objects.s3 import S3ObjectStore, os_error
from finance_assets.lib.io.objects.s3_resource import S3Resource

# --- choosing one ----------------------------------------------------------------------------


def is_s3(root: str) -> bool:
    return root.startswith("s3://")


def split_root(root: str, what: str = "") -> tuple[str | None, str]:
    """(bucket, prefix) of `s3://bucket[/prefix]`, (None, path) of a path or a `file://` URI;
    another scheme is refused, the message starting with `what` (what the root is for)."""
    if "://" not in root:
        return None, root
    scheme, _, rest = root.partition("://")
    if scheme == "s3":
        bucket, _, prefix = rest.partition("/")
        return bucket, prefix
    if scheme != "file":
        raise NotImplementedError(
            f"{what}{root!r}: only local folders (a path or file://) and S3 "
            "(s3://bucket/prefix) are implemented"
        )
    return None, rest


def open_location(root: str | os.PathLike[str], s3: S3Resource | None = None) -> ObjectStore:
    """The store at `root`: a path, a `file://` URI, or `s3://bucket[/prefix]` (through `s3`'s
    client; boto3's chain when None)."""
    bucket, rest = split_root(os.fspath(root))
    return LocalObjectStore(rest) if bucket is None else S3ObjectStore(bucket, rest, s3=s3)


__all__ = [
    "PARQUET_OPTIONS",
    "STALE_AFTER",
    "TEMP_MARK",
    "LocalObjectStore",
    "ObjectInfo",
    "ObjectStore",
    "S3ObjectStore",
    "UnsafeKey",
    "check_parts",
    "is_s3",
    "open_location",
    "os_error",
    "split_root",
    "temp_key",
]
