"""Parity: on the same raw zone the Spark job and the polars clean step give the same bars (row
for row after sorting), the same quarantine (counts, reasons, records) and the same daily
summary, simulated faults, re-fetches and hand-made bad records included."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from finance_assets.lib import transforms
from finance_assets.lib.io import lake
from finance_assets.lib.providers import SimulatedMarket
from finance_assets.lib.providers.base import RawPayload

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "spark"))
import bars_job

SYMBOLS = ("AAPL", "MSFT", "NVDA")
FIRST, LAST = dt.date(2026, 11, 16), dt.date(2026, 11, 18)


def _odd_payload(us) -> RawPayload:
    """Records that exercise every reason the simulated faults do not."""

    def rec(stamp, o="100", h="101", lo="99", c="100.5", v="1000"):
        return {"datetime": stamp, "open": o, "high": h, "low": lo, "close": c, "volume": v}

    values = [
        rec("2026-11-17 10:00:00", o=" 100.25 "),
        rec("2026-11-17 10:05:00", o="1d"),  # Java reads 1d as 1.0; polars does not
        rec("2026-11-17 10:10:00", h="inf"),
        rec("2026-11-17 10:15:00", lo="NaN"),
        rec("2026-11-17 10:20:00", c="-3"),
        rec("2026-11-17 10:25:00", h="2e12"),
        rec("2026-11-17 10:30:00", v="-5"),
        rec("2026-11-17 10:35:00", v="1e19"),
        rec("2026-11-17 10:40:00", v="10.5"),
        rec("2026-11-17 10:45:00", v=None),
        rec("2026-11-17 10:47:00"),  # off the 5-minute marks
        rec("2026-11-17 08:00:00"),  # before the open
        rec("2026-11-19 10:00:00"),  # after the window
        rec("not a time"),
        rec(None),
        {"datetime": "2026-11-17 10:50:00", "open": 100, "high": 101.5, "low": 99,
         "close": 100, "volume": 7},  # numbers, not text
        rec("2026-11-17 10:55:00"),
        rec("2026-11-17 10:55:00", v="2000"),  # the same bar again
    ]  # fmt: skip
    body = {
        "ZZZ": {
            "meta": {"symbol": "ZZZ", "currency": "USD", "exchange": "NYSE"},
            "values": values,
            "status": "ok",
        },
        "BAD": {"code": 404, "message": "symbol not found", "status": "error"},
    }
    start = dt.datetime.combine(FIRST, dt.time(), us.tz)
    end = dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time(), us.tz)
    return RawPayload(
        provider="twelve_data",
        format="twelve_data",
        interval="5min",
        symbols=("ZZZ", "BAD"),
        window_start=start,
        window_end=end,
        fetched_at=dt.datetime(2026, 11, 19, 1, tzinfo=dt.UTC),
        body=json.dumps(body).encode(),
    )


@pytest.fixture(scope="module")
def raw_zone(tmp_path_factory, us) -> Path:
    """Three sessions with 5 % faults; the middle one fetched again later with other faults
    (it supersedes the first fetch's records of that day); and the hand-made payload."""
    root = tmp_path_factory.mktemp("spark-raw") / "us" / "raw_intraday_quotes"
    start = dt.datetime.combine(FIRST, dt.time(9, 30), us.tz)
    end = dt.datetime.combine(LAST, dt.time(16), us.tz)
    first = SimulatedMarket(
        fault_rate=0.05, batch_size=2, clock=lambda: dt.datetime(2026, 11, 18, 22, tzinfo=dt.UTC)
    )
    lake.write_payloads(root, first.fetch_bars(us, SYMBOLS, "5min", start, end), start, end, us.tz)
    day2 = dt.datetime.combine(FIRST + dt.timedelta(days=1), dt.time(9, 30), us.tz)
    again = SimulatedMarket(
        fault_rate=0.2, clock=lambda: dt.datetime(2026, 11, 18, 23, tzinfo=dt.UTC)
    )
    refetch = again.fetch_bars(us, SYMBOLS[:2], "5min", day2, day2 + dt.timedelta(hours=6.5))
    lake.write_payloads(root, refetch, day2, day2 + dt.timedelta(hours=6.5), us.tz)
    odd = _odd_payload(us)
    lake.write_payloads(root, [odd], odd.window_start, odd.window_end, us.tz)
    return root


@pytest.fixture(scope="module")
def both(raw_zone, us, spark_session, tmp_path_factory):
    start = dt.datetime.combine(FIRST, dt.time(), us.tz)
    end = dt.datetime.combine(LAST + dt.timedelta(days=1), dt.time(), us.tz)
    payloads = lake.read_payloads(raw_zone, start, end)
    assert len(payloads) == 4
    result, errors = transforms.clean_payloads(
        payloads,
        us,
        "5min",
        asset=bars_job.ASSET,
        window_start=start,
        window_end=end,
        ingested_at=dt.datetime.now(dt.UTC),
        valid_starts=pl.Series("ts", us.bar_starts(start, end)),
    )
    assert errors == {"BAD": "404: symbol not found"}
    out = tmp_path_factory.mktemp("spark-out")
    argv = ["--raw", str(raw_zone), "--out", str(out), "--market", "us"]
    argv += ["--start", FIRST.isoformat(), "--end", LAST.isoformat()]
    figures = bars_job.main(argv, spark=spark_session)
    return result, figures, out


def _read(folder: Path) -> pl.DataFrame:
    return pl.read_parquet(folder / "**" / "*.parquet", hive_partitioning=True)


def test_same_bars_row_for_row(both):
    result, figures, out = both
    spark_bars = _read(out / "bars_by_symbol")
    columns = [c for c in result.bars.columns if c != "ingested_at"]
    expected = result.bars.select(columns).sort("symbol", "ts")
    got = spark_bars.select(columns).sort("symbol", "ts")
    assert got.schema == expected.schema
    assert got.equals(expected)
    assert figures["rows_loaded"] == expected.height > 3 * 78 * 2
    assert figures["partitions_written"] == 3 * 3 + 1  # ZZZ has valid bars on one day


def test_same_quarantine_reasons_and_records(both):
    result, figures, out = both
    columns = ["partition_ts", "symbol", "ts_raw", "reason", "record", "source"]
    expected = result.quarantine.select(columns).sort(columns, nulls_last=True)
    got = _read(out / "quarantine").select(columns).sort(columns, nulls_last=True)
    assert got.equals(expected)
    reasons = dict(expected.group_by("reason").len().iter_rows())
    assert figures["quarantine_reasons"] == reasons
    assert figures["rows_quarantined"] == expected.height == result.quarantine.height
    assert figures["records_received"] == result.received
    # The simulated faults and the hand-made records are all there.
    text = " | ".join(reasons)
    for reason in [
        "duplicate (symbol, ts)",
        "high < low",
        "missing or not a number",
        "open missing or not a number",
        "high not finite",
        "close not positive",
        "high out of range (>= 1e+12)",
        "volume negative",
        "volume out of range (>= 2**63)",
        "volume not a whole number",
        "not a 5-minute bar start of a trading session",
        "outside the partition window",
        "datetime missing or unparseable: not a time",
        "datetime missing or unparseable: null",
    ]:
        assert reason in text, reason


def test_timestamps_are_micros_in_utc(both):
    _, _, out = both
    files = sorted((out / "bars_by_symbol").glob("symbol=*/date=*/*.parquet"))
    assert files and all(f.parent.name.startswith("date=2026-11-1") for f in files)
    schema = pq.read_schema(files[0])
    assert str(schema.field("ts").type) == "timestamp[us, tz=UTC]"
    column = pq.ParquetFile(files[0]).metadata.schema.column(schema.get_field_index("ts"))
    assert column.physical_type == "INT64"  # not INT96


def test_same_daily_summary(both, us):
    result, figures, out = both
    expected = transforms.daily_summary(result.bars, us).sort("trading_date", "symbol")
    got = _read(out / "daily_summary").select(expected.columns).sort("trading_date", "symbol")
    assert figures["summary_rows"] == expected.height == got.height
    exact = ["trading_date", "symbol", "open", "high", "low", "close", "volume", "bar_count"]
    assert got.select(exact).equals(expected.select(exact))
    assert (
        got.get_column("return_pct").null_count() == expected.get_column("return_pct").null_count()
    )
    for column in ["vwap", "open_to_close_pct", "range_pct", "return_pct", "prev_close"]:
        # Sums over another order: equal to the last few bits.
        a, b = got.get_column(column), expected.get_column(column)
        assert ((a - b).abs() <= 1e-9 * b.abs().fill_null(1) + 1e-12).fill_null(True).all(), column
