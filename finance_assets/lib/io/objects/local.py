"""An object store over a local folder (atomic renames; a dead writer's temporary files go
by its PID)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import polars as pl

from finance_assets.lib.io.objects.base import (
    PARQUET_OPTIONS,
    TEMP_MARK,
    ObjectInfo,
    _join,
    check_parts,
    temp_key,
)

# --- a local folder --------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalObjectStore:
    """Objects as files under a folder. Every write goes to a temporary name and is renamed
    into place, so a reader never sees half a file; a failed write removes its temporary file
    (a full disk leaves nothing behind)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r})"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*check_parts(key)) if key else self.root

    def child(self, *parts: str) -> LocalObjectStore:
        return LocalObjectStore(self._path(_join(*parts)))

    def uri(self, key: str = "") -> str:
        return str(self._path(key))

    def list_files(self, folder: str = "") -> list[ObjectInfo]:
        base = self._path(folder)
        if not base.is_dir():
            return []
        found = []
        with os.scandir(base) as entries:
            for entry in entries:
                try:
                    # Regular files only: a symlink could point anywhere on the machine.
                    if entry.is_symlink() or not entry.is_file(follow_symlinks=False):
                        continue
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # removed while we listed
                modified = dt.datetime.fromtimestamp(stat.st_mtime_ns / 1e9, dt.UTC)
                found.append(ObjectInfo(_join(folder, entry.name), stat.st_size, modified))
        return sorted(found, key=lambda o: o.name)

    def list_folders(self, folder: str = "") -> list[str]:
        base = self._path(folder)
        if not base.is_dir():
            return []
        return sorted(child.name for child in base.iterdir() if child.is_dir())

    def list_tree(self, folder: str = "") -> list[ObjectInfo]:
        found = list(self.list_files(folder))
        for sub in self.list_folders(folder):
            found += self.list_tree(_join(folder, sub))
        return sorted(found, key=lambda o: o.name)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(temp_key(path.name))
        try:
            tmp.write_bytes(data)
            tmp.replace(path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # ENOSPC half-way: no partial file stays behind
            raise

    def move(self, source: str, target: str) -> None:
        dst = self._path(target)
        dst.parent.mkdir(parents=True, exist_ok=True)
        self._path(source).replace(dst)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_folder(self, folder: str) -> int:
        path = self._path(folder)
        if not folder or not path.is_dir():
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count

    def write_parquet(self, frame: pl.DataFrame, key: str) -> int:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(path, **PARQUET_OPTIONS)
        return path.stat().st_size

    def read_parquet(self, keys: Sequence[str], predicate: pl.Expr | None = None) -> pl.DataFrame:
        scan = pl.scan_parquet([self._path(k) for k in keys])
        return (scan if predicate is None else scan.filter(predicate)).collect()

    def remove_stale_temps(self, folder: str) -> list[str]:
        """Temporary files of processes that no longer run (a kill between writing and
        renaming); those of running writers stay. (PIDs are this machine's: a local folder is
        not shared between hosts.)"""
        removed: list[str] = []
        base = self._path(folder)
        if not base.is_dir():
            return removed
        for tmp in base.glob(f".*{TEMP_MARK}*"):
            pid = tmp.name.rsplit(TEMP_MARK, 1)[1].split("-")[0]
            if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
                tmp.unlink(missing_ok=True)
                removed.append(_join(folder, tmp.name))
        return removed
