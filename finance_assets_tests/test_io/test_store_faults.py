"""One-sided faults while writing the lake and the warehouse, injected for real: a backend killed
mid-COPY (`pg_terminate_backend`), a `statement_timeout`, a read-only lake folder (a read-only
bind mount), a full disk (a 64 KiB tmpfs). After each, both stores hold the rows they held
before, and no temporary file is left behind."""

from __future__ import annotations

import datetime as dt
import errno
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import polars as pl
import psycopg
import pytest

from finance_assets.defs.common.partitions import daily_partitions
from finance_assets.lib.io import lake, postgres
from finance_assets.lib.io.managers import LakeWarehouseIOManager, WarehouseResource
from finance_assets.lib.schema import BAR_KEY
from finance_assets.providers.simulated_market import SimulatedMarket
from finance_assets_tests.test_io.day_bars import day_bars

DAY = "2026-11-18"
SCHEMA = "t_faults"
TEMP = ".tmp-"  # temporary files: .<name>.tmp-<pid>...


def _temps(folder: Path) -> list[Path]:
    return sorted(folder.rglob(f".*{TEMP}*"))


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"mount {' '.join(args)} is not permitted here: {done.stderr.strip()}")


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    """Folders the test mounts over; unmounted in teardown, whatever happened."""
    mounted: list[Path] = []
    yield mounted
    for folder in reversed(mounted):
        subprocess.run(["umount", str(folder)], check=False)


class Store:
    """A daily-partitioned bars asset written by the project's LakeWarehouseIOManager."""

    def __init__(self, tmp_path: Path, url: str, market) -> None:
        self.lake_dir = tmp_path / "lake"
        self.url = url
        self.market = market
        self.table = f"{SCHEMA}.bars"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")

    def write(self, frame: pl.DataFrame, url: str | None = None) -> dg.ExecuteInProcessResult:
        @dg.asset(
            key=[SCHEMA, "bars"],
            partitions_def=daily_partitions(self.market),
            io_manager_key="both",
            metadata={"partition_expr": "ts", "primary_key": BAR_KEY},
        )
        def bars() -> pl.DataFrame:
            return frame

        warehouse = WarehouseResource(url=url or self.url)
        return dg.materialize(
            [bars],
            partition_key=DAY,
            resources={
                "both": LakeWarehouseIOManager(lake_root=str(self.lake_dir), warehouse=warehouse)
            },
            raise_on_error=False,
        )

    def rows(self) -> tuple[list[tuple], list[tuple]]:
        with psycopg.connect(self.url) as conn:
            in_pg = conn.execute(f"SELECT * FROM {self.table} ORDER BY ts, symbol").fetchall()
        files = sorted((self.lake_dir / SCHEMA / "bars").rglob(lake.LAKE_FILE))
        in_lake = pl.read_parquet(files).sort("ts", "symbol").rows() if files else []
        return in_pg, in_lake


@pytest.fixture
def store(tmp_path, pg_url, us) -> Store:
    return Store(tmp_path, pg_url, us)


def _hold_key(url: str, row: dict) -> psycopg.Connection:
    """An open transaction that inserted `row`'s key: a COPY of the same key waits on it."""
    conn = psycopg.connect(url)
    columns = ", ".join(row)
    conn.execute(
        f"INSERT INTO {SCHEMA}.bars ({columns}) VALUES ({', '.join(['%s'] * len(row))})",
        list(row.values()),
    )
    return conn


def _copy_waiting(url: str, timeout: float = 20.0) -> int:
    """The pid of the backend whose COPY waits for the held key."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            found = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND query LIKE 'COPY%%' AND wait_event_type = 'Lock'"
            ).fetchone()
            if found:
                return found[0]
            time.sleep(0.02)
    raise AssertionError("no COPY waiting on the held key")


def _background(fn) -> tuple[threading.Thread, dict]:
    out: dict = {}
    thread = threading.Thread(target=lambda: out.setdefault("result", fn()))
    thread.start()
    return thread, out


def _old_then_new(store: Store, us) -> tuple[pl.DataFrame, dict]:
    """Writes the old rows; returns the new ones and a key only they have."""
    old = day_bars(us, ["AAPL", "MSFT"], ingested_minute=0)
    new = day_bars(us, ["AAPL", "MSFT", "NVDA"], ingested_minute=30)
    assert store.write(old).success
    # The last key of the COPY (sent in key order), a key the old rows do not have.
    held = new.sort(BAR_KEY).row(-1, named=True)
    assert held["symbol"] == "NVDA"
    return new, held


def test_backend_killed_mid_copy_leaves_both_stores_as_they_were(store, us, pg_url):
    new, held = _old_then_new(store, us)
    before = store.rows()
    blocker = _hold_key(pg_url, held)
    try:
        thread, out = _background(lambda: store.write(new))
        pid = _copy_waiting(pg_url)
        with psycopg.connect(pg_url, autocommit=True) as conn:
            assert conn.execute("SELECT pg_terminate_backend(%s)", [pid]).fetchone()[0]
        thread.join(60)
    finally:
        blocker.rollback()
        blocker.close()
    assert not out["result"].success
    assert store.rows() == before
    assert not _temps(store.lake_dir)


def test_statement_timeout_leaves_both_stores_as_they_were(store, us, pg_url):
    new, held = _old_then_new(store, us)
    before = store.rows()
    blocker = _hold_key(pg_url, held)
    try:
        result = store.write(new, url=f"{pg_url}?options=-c%20statement_timeout%3D500")
    finally:
        blocker.rollback()
        blocker.close()
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "statement timeout" in str(failure.event_specific_data)
    assert store.rows() == before
    assert not _temps(store.lake_dir)


def test_read_only_lake_rolls_the_warehouse_back(store, us, mounts):
    new, _ = _old_then_new(store, us)
    before = store.rows()
    folder = store.lake_dir / SCHEMA / "bars" / f"dt={DAY}"
    _mount("--bind", str(folder), str(folder))
    mounts.append(folder)
    _mount("-o", "remount,ro,bind", str(folder))
    result = store.write(new)
    assert not result.success
    assert store.rows() == before
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    text = str(failure.event_specific_data)
    assert "Read-only file system" in text and "rolled back" in text


def test_full_disk_under_the_lake_leaves_no_temp_file_and_the_old_rows(store, us, mounts):
    old = day_bars(us, ["AAPL"], ingested_minute=0)
    folder = store.lake_dir / SCHEMA / "bars"
    folder.mkdir(parents=True)
    _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder))
    mounts.append(folder)
    assert store.write(old).success
    before = store.rows()
    # Noise compresses badly: far more than 64 KiB of Parquet.
    big = pl.concat([day_bars(us, [f"S{i:03d}"], ingested_minute=30) for i in range(40)])
    big = big.with_columns(volume=pl.int_range(pl.len()) * 7919 % 1_000_003)
    result = store.write(big)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "No space left on device" in str(failure.event_specific_data)
    assert store.rows() == before
    assert not _temps(folder)


def test_full_disk_under_the_raw_zone_leaves_no_partial_payload(tmp_path, us, mounts):
    base = tmp_path / "raw" / "us" / "raw_intraday_quotes"
    base.mkdir(parents=True)
    _mount("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(base))
    mounts.append(base)
    sim = SimulatedMarket()
    start = dt.datetime(2026, 11, 18, tzinfo=us.tz)
    end = start + dt.timedelta(days=1)
    small = sim.fetch_bars(us, ["AAPL"], "5min", start, end)
    lake.write_payloads(base, small, start, end, us.tz)
    before = {p: p.read_bytes() for p in base.rglob("*") if p.is_file()}
    # A week of five symbols is far beyond 64 KiB.
    big = sim.fetch_bars(us, list(us.universe), "5min", start, start + dt.timedelta(days=7))
    with pytest.raises(OSError) as raised:
        lake.write_payloads(base, big, start, start + dt.timedelta(days=7), us.tz)
    assert raised.value.errno == errno.ENOSPC
    after = {p: p.read_bytes() for p in base.rglob("*") if p.is_file()}
    assert after == before  # no temp file, no half-written payload, nothing older dropped
    assert lake.read_payloads(base, start, end)[0].body == small[0].body


def test_a_killed_writers_temp_files_go_with_the_next_write(tmp_path, us):
    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = tmp_path / "lake" / "bars" / f"dt={DAY}"
    folder.mkdir(parents=True)
    leftover = folder / f".{lake.LAKE_FILE}{TEMP}{dead.pid}-0000abcd"
    leftover.write_bytes(b"half a parquet file")
    frame = day_bars(us, ["AAPL"], ingested_minute=0)
    start = dt.datetime(2026, 11, 18, tzinfo=us.tz)
    lake.stage_window(
        tmp_path / "lake" / "bars", frame, start=start, end=start + dt.timedelta(days=1), tz=us.tz
    ).publish()
    assert not leftover.exists()
    assert pl.read_parquet(folder / lake.LAKE_FILE).height == frame.height


def test_kept_spans_stay_in_both_stores(tmp_path, pg_url, us):
    """A symbol a provider did not answer keeps its rows in both stores; the others are
    replaced."""
    from finance_assets.lib.io import lake_warehouse
    from finance_assets.lib.io.spans import Kept

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    start = dt.datetime(2026, 11, 18, tzinfo=us.tz)
    end = start + dt.timedelta(days=1)
    old = day_bars(us, ["AAPL", "MSFT"], ingested_minute=0)
    new = day_bars(us, ["AAPL"], ingested_minute=30)
    both = lake_warehouse.Stores(tmp_path, pg_url, postgres.WindowTable(SCHEMA, "kept"), us.tz)
    args = dict(start=start, end=end, primary_key=BAR_KEY)
    both.write(old, **args)
    kept = [Kept("MSFT", start, end)]
    both.write(new, kept=kept, **args)
    in_lake, in_pg = both.read(start, end)
    expected = pl.concat([new, old.filter(pl.col("symbol") == "MSFT")]).sort(BAR_KEY)
    assert in_lake.sort(BAR_KEY).equals(expected)
    assert in_pg.sort(BAR_KEY).equals(expected)
    # New rows inside a kept span are refused: they would duplicate the kept ones.
    with pytest.raises(ValueError, match="kept"):
        both.write(old, kept=kept, **args)
