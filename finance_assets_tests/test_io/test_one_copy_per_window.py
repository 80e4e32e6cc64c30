"""A window is written with one COPY however many time slices it is sent in: the ADBC driver
opens a transaction per ingest call, and a call per slice made PostgreSQL log "there is
already a transaction in progress" for every slice after the first (seen in the container
stack's logs)."""

from __future__ import annotations

import datetime as dt

import polars as pl
import psycopg
from adbc_driver_manager import dbapi

from finance_assets.lib.io import postgres
from finance_assets_tests.pg_wire import WireRecorder

DAYS = [dt.datetime(2026, 11, d, 15, 0, tzinfo=dt.UTC) for d in (16, 17, 18, 19, 20)]


def test_a_window_of_many_slices_is_one_ingest_in_key_order(pg_url, monkeypatch):
    calls = []
    ingest = dbapi.Cursor.adbc_ingest

    def counting(self, table_name, data, *args, **kwargs):
        calls.append(table_name)
        return ingest(self, table_name, data, *args, **kwargs)

    monkeypatch.setattr(dbapi.Cursor, "adbc_ingest", counting)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS one_copy CASCADE")
    frame = pl.DataFrame(
        {
            "ts": [day + dt.timedelta(minutes=5 * i) for day in DAYS for i in (2, 0, 1)],
            "symbol": ["MSFT", "AAPL", "AAPL"] * len(DAYS),
            "close": [float(i) for i in range(3 * len(DAYS))],
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    table = postgres.WindowTable("one_copy", "bars", "ts")
    start, end = dt.datetime(2026, 11, 16, tzinfo=dt.UTC), dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    postgres.replace_window(
        pg_url, frame, table, start=start, end=end, primary_key=["ts", "symbol"], chunk="1d"
    )
    assert calls == ["bars"]  # five daily slices, one ingest
    stored = postgres.read_window(pg_url, table, start=start, end=end)
    assert stored.sort("ts", "symbol").equals(frame.sort("ts", "symbol"))
    with psycopg.connect(pg_url) as conn:
        # Sent in key order, slice after slice: the heap holds the rows as (ts, symbol) sorts.
        physical = conn.execute("SELECT ts, symbol FROM one_copy.bars ORDER BY ctid").fetchall()
    assert physical == sorted(physical)


def test_a_window_write_sends_no_begin_inside_a_transaction(pg_url):
    """What the driver sends, read off the wire: one transaction per write, no BEGIN while one
    is open, so PostgreSQL has nothing to warn about (SQLSTATE 25001)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS no_begin CASCADE")
    frame = pl.DataFrame(
        {
            "ts": [day + dt.timedelta(minutes=5 * i) for day in DAYS for i in range(3)],
            "symbol": ["AAPL"] * (3 * len(DAYS)),
            "close": [float(i) for i in range(3 * len(DAYS))],
        }
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    table = postgres.WindowTable("no_begin", "bars", "ts")
    start, end = dt.datetime(2026, 11, 16, tzinfo=dt.UTC), dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    with WireRecorder(pg_url) as wire:
        for _ in range(2):  # the second replaces the first's rows
            postgres.replace_window(
                wire.url, frame, table, start=start, end=end, primary_key=["ts", "symbol"],
                chunk="1d",
            )  # fmt: skip
        stored = postgres.read_window(wire.url, table, start=start, end=end)
    assert stored.height == frame.height
    statements = [s.statement for s in wire.sent]
    # The recorder saw the writes themselves (an empty record would pass the checks below).
    assert sum(s.startswith("COPY ") and "FROM STDIN" in s for s in statements) == 2, statements
    assert not wire.begins_inside_a_transaction(), wire.begins_inside_a_transaction()
    assert not [n for n in wire.notices if n.sqlstate == "25001"], wire.notices
