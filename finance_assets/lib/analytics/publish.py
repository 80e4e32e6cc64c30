"""Where report files go: `<reports root>/<market>/dt=YYYY-MM-DD/<name>`, beside the lake.

The one place a report touches storage. It goes through the lake's object store
(`lib/io/objects`), so an S3 lake (`s3://bucket/prefix/lake`) gets its reports under
`s3://bucket/prefix/reports` and a local one under the folder beside it; each write is all or
nothing (a reader never sees half a page; a failed write leaves the previous one)."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path

from finance_assets.lib.io.objects import ObjectStore, is_s3, open_location
from finance_assets.lib.io.objects.s3_resource import S3Resource

__all__ = ["is_s3", "report_store", "reports_root", "write_report"]


def reports_root(lake_root: str | os.PathLike[str]) -> str:
    """The reports location beside the lake's (`data/lake` -> `data/reports`,
    `s3://b/p/lake` -> `s3://b/p/reports`)."""
    text = os.fspath(lake_root)
    if is_s3(text):
        bucket_and_prefix = text[len("s3://") :].rstrip("/")
        parent = bucket_and_prefix.rsplit("/", 1)[0] if "/" in bucket_and_prefix else ""
        if not parent:
            raise ValueError(f"{text!r}: an S3 lake needs a prefix for the reports beside it")
        return f"s3://{parent}/reports"
    return str(Path(text).parent / "reports")


def report_store(
    root: str | os.PathLike[str], market: str, day: dt.date, s3: S3Resource | None = None
) -> ObjectStore:
    """The store of one market's report of `day`."""
    return open_location(root, s3).child(market, f"dt={day.isoformat()}")


def write_report(
    root: str | os.PathLike[str],
    market: str,
    day: dt.date,
    files: Mapping[str, bytes],
    s3: S3Resource | None = None,
) -> dict[str, str]:
    """Write `files` (name -> bytes) for one market and day; returns name -> where it is (a
    path, or an s3:// URI)."""
    store = report_store(root, market, day, s3)
    written = {}
    for name, data in files.items():
        store.write(name, data)
        written[name] = store.uri(name)
    return written
