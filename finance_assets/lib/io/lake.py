"""The raw zone and the Parquet lake on a local folder.

Layout (hive style, so DuckDB and Athena read it as partitioned tables):
- raw zone: `<root>/<market>/<asset>/dt=YYYY-MM-DD/<payload_id>.json` holds a body exactly as
  received, `<payload_id>.meta.json` beside it says what was asked for and when. `dt` is the
  exchange-local date the payload's window starts on.
- lake: `<root>/<market>/<asset>/dt=YYYY-MM-DD/part-0.parquet`, one file per asset per day,
  sorted by (symbol, ts): few, large files (10,000 small files wrote 15-45x slower), and row-group
  statistics prune by symbol. Replacing a window rewrites the day files it touches.

Every file is written to a temporary name (`.<name>.tmp-<pid>...`) and renamed into place, so a
reader never sees half a file and a failure leaves the previous file. A failed write removes its
temporary files (a full disk leaves nothing behind); those of a killed process are removed by
the next write to the same folder. The lake's files can be staged and published later
(`stage_window`), which is how the lake follows the warehouse's commit (`stores.py`).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl

from finance_assets.lib.answers import answered_symbols
from finance_assets.lib.io.spans import Kept, kept_expr, refuse_kept_rows
from finance_assets.lib.providers.base import RawPayload

LAKE_FILE = "part-0.parquet"
TEMP_MARK = ".tmp-"


def _dt_dir(base: Path, day: dt.date) -> Path:
    return base / f"dt={day.isoformat()}"


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{uuid.uuid4().hex[:8]}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove temporary files in `folder` left by processes that no longer run (a kill between
    writing and renaming); those of running writers are left alone. (PIDs are this machine's:
    the lake and raw zone are local folders, not shared between hosts.)"""
    removed = []
    if not folder.is_dir():
        return removed
    for tmp in folder.glob(f".*{TEMP_MARK}*"):
        pid = tmp.name.rsplit(TEMP_MARK, 1)[1].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # ENOSPC half-way: no partial file stays behind
        raise


def _days(start: dt.datetime, end: dt.datetime, tz: ZoneInfo) -> list[dt.date]:
    """Local dates touched by [start, end)."""
    first = start.astimezone(tz).date()
    last = (end - dt.timedelta(microseconds=1)).astimezone(tz).date()
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def dt_partitions(base: Path) -> list[tuple[dt.date, Path]]:
    if not base.is_dir():
        return []
    found = []
    for child in base.iterdir():
        if child.is_dir() and child.name.startswith("dt="):
            try:
                found.append((dt.date.fromisoformat(child.name[3:]), child))
            except ValueError:
                continue  # not ours
    return sorted(found)


# --- raw zone --------------------------------------------------------------------------------


def write_payloads(
    base: Path, payloads: Iterable[RawPayload], start: dt.datetime, end: dt.datetime, tz: ZoneInfo
) -> list[Path]:
    """Store each payload's body as received; drop older payloads that the window supersedes
    entirely (same window or inside it), and only for symbols the new payloads *answered*: a
    file dropped for one symbol keeps the others', and a symbol a batch answered with an error
    keeps its previous payloads until a later one answers it.

    All or nothing: when a write fails (a full disk), the files this call created are removed
    and nothing older is dropped."""
    written: list[Path] = []
    created: list[Path] = []
    new_ids: set[str] = set()
    answered: set[str] = set()
    try:
        for payload in payloads:
            folder = _dt_dir(base, payload.window_start.astimezone(tz).date())
            body_path = folder / f"{payload.payload_id}.json"
            meta_path = folder / f"{payload.payload_id}.meta.json"
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
            remove_stale_temps(folder)
            # The body before its metadata: readers find payloads by their metadata.
            for path, data in (
                (body_path, payload.body),
                (meta_path, json.dumps(meta, indent=1).encode()),
            ):
                if not path.exists():
                    created.append(path)
                _atomic_write(path, data)
            written.append(body_path)
            new_ids.add(payload.payload_id)
            answered.update(answered_symbols(payload))
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        raise
    for old in _payload_metas(base, start, end):
        if old["payload_id"] in new_ids:
            continue
        inside = start <= old["window_start"] and old["window_end"] <= end
        if inside and set(old["symbols"]) <= answered:
            old["path"].unlink(missing_ok=True)
            old["meta_path"].unlink(missing_ok=True)
    return written


def _payload_metas(base: Path, start: dt.datetime, end: dt.datetime) -> list[dict]:
    """Metadata of payloads whose window overlaps [start, end)."""
    found = []
    for day, folder in dt_partitions(base):
        # A payload starts on its dt: none that starts after `end` can overlap.
        if day > end.date() + dt.timedelta(days=1):
            break
        for meta_path in folder.glob("*.meta.json"):
            meta = json.loads(meta_path.read_text())
            window_start = dt.datetime.fromisoformat(meta["window_start"])
            window_end = dt.datetime.fromisoformat(meta["window_end"])
            if window_start < end and start < window_end:
                payload_id = meta_path.name.removesuffix(".meta.json")
                found.append(
                    {
                        **meta,
                        "payload_id": payload_id,
                        "window_start": window_start,
                        "window_end": window_end,
                        "path": folder / f"{payload_id}.json",
                        "meta_path": meta_path,
                    }
                )
    return sorted(found, key=lambda m: m["payload_id"])


def read_payloads(base: Path, start: dt.datetime, end: dt.datetime) -> list[RawPayload]:
    """Every stored payload whose window overlaps [start, end), oldest fetch first."""
    payloads = []
    for meta in _payload_metas(base, start, end):
        payloads.append(
            RawPayload(
                provider=meta["provider"],
                format=meta["format"],
                interval=meta["interval"],
                symbols=tuple(meta["symbols"]),
                window_start=meta["window_start"],
                window_end=meta["window_end"],
                fetched_at=dt.datetime.fromisoformat(meta["fetched_at"]),
                body=meta["path"].read_bytes(),
                batch=meta["batch"],
                request=meta["request"],
                content_type=meta.get("content_type", "application/json"),
            )
        )
    return sorted(payloads, key=lambda p: (p.fetched_at, p.batch))


def remove_partition(folder: Path) -> None:
    """Delete one `dt=` folder (retention); refuses anything else."""
    if not folder.name.startswith("dt="):
        raise ValueError(f"{folder} is not a dt= partition folder")
    shutil.rmtree(folder)


# --- Parquet lake ----------------------------------------------------------------------------


@dataclass
class StagedWindow:
    """Day files written under temporary names, waiting to be published (renamed into place)
    or discarded; `removals` are the day files the window leaves empty."""

    moves: list[tuple[Path, Path]] = field(default_factory=list)
    removals: list[Path] = field(default_factory=list)

    def publish(self) -> list[Path]:
        """Rename every staged file into place (a rename per day: microseconds each)."""
        done = []
        try:
            for tmp, path in self.moves:
                tmp.replace(path)
                done.append(path)
            for path in self.removals:
                path.unlink(missing_ok=True)
        except BaseException:
            self.discard()
            raise
        return done

    def discard(self) -> None:
        for tmp, _ in self.moves:
            tmp.unlink(missing_ok=True)


def stage_window(
    base: Path,
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
    start_utc, end_utc = start.astimezone(dt.UTC), end.astimezone(dt.UTC)
    ts = pl.col(time_column)
    outside = df.filter((ts < start_utc) | (ts >= end_utc)).height
    if outside:
        raise ValueError(f"{outside} row(s) have {time_column} outside [{start}, {end})")
    refuse_kept_rows(df, kept, time_column, str(base))
    stays = (ts < start_utc) | (ts >= end_utc) | kept_expr(kept, time_column)
    staged = StagedWindow()
    try:
        for day in _days(start, end, tz):
            path = _dt_dir(base, day) / LAKE_FILE
            day_start = dt.datetime.combine(day, dt.time(), tz).astimezone(dt.UTC)
            day_end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tz).astimezone(
                dt.UTC
            )
            # One day's rows at a time: a long range never holds a second copy of itself.
            new = df.filter((ts >= day_start) & (ts < day_end))
            partial = not (start_utc <= day_start and day_end <= end_utc)
            touches_kept = any(k.start < day_end and day_start < k.end for k in kept)
            if path.exists() and (partial or touches_kept):
                # Keep the day's rows outside the window, and those of kept spans.
                old = pl.scan_parquet(path).filter(stays).collect()
                new = pl.concat([old, new.select(old.columns)], how="vertical")
            if new.is_empty():
                if path.exists():
                    staged.removals.append(path)
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temps(path.parent)
            tmp = _temp_name(path)
            staged.moves.append((tmp, path))  # before writing: a failed write is discarded
            new.sort(list(sort_by)).write_parquet(tmp, compression="zstd", statistics=True)
    except BaseException:
        staged.discard()
        raise
    return staged


def write_window(
    base: Path,
    df: pl.DataFrame,
    *,
    start: dt.datetime,
    end: dt.datetime,
    tz: ZoneInfo,
    time_column: str = "ts",
    sort_by: tuple[str, ...] = ("symbol", "ts"),
    kept: Sequence[Kept] = (),
) -> list[Path]:
    """Replace the rows of [start, end) with `df`, one file per local day (stage, publish)."""
    staged = stage_window(
        base, df, start=start, end=end, tz=tz, time_column=time_column, sort_by=sort_by, kept=kept
    )
    return staged.publish()


def read_window(
    base: Path, *, start: dt.datetime, end: dt.datetime, tz: ZoneInfo, time_column: str = "ts"
) -> pl.DataFrame | None:
    """Rows of [start, end) from the day files it touches; None when there are none."""
    files = [
        path for day in _days(start, end, tz) if (path := _dt_dir(base, day) / LAKE_FILE).exists()
    ]
    if not files:
        return None
    ts = pl.col(time_column)
    return (
        pl.scan_parquet(files)
        .filter((ts >= start.astimezone(dt.UTC)) & (ts < end.astimezone(dt.UTC)))
        .collect()
    )
