"""Where report files go: `<reports root>/<market>/dt=YYYY-MM-DD/<name>`, beside the lake.

The one place a report touches storage, so that the reports can follow the lake to another
store: each file is written to a temporary name and renamed into place (a reader never sees
half a page; a failed write leaves the previous one)."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Mapping
from pathlib import Path


def reports_root(lake_root: str | os.PathLike[str]) -> Path:
    """The reports folder beside the lake's (`data/lake` → `data/reports`)."""
    return Path(lake_root).parent / "reports"


def report_dir(root: str | os.PathLike[str], market: str, day: dt.date) -> Path:
    return Path(root) / market / f"dt={day.isoformat()}"


def write_report(
    root: str | os.PathLike[str], market: str, day: dt.date, files: Mapping[str, bytes]
) -> dict[str, Path]:
    """Write `files` (name → bytes) for one market and day; returns name → path written."""
    folder = report_dir(root, market, day)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, data in files.items():
        path = folder / name
        tmp = folder / f".{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        written[name] = path
    return written
