"""Parity: on the same raw zone the Spark job and the polars clean step give the same bars (row
for row after sorting), the same quarantine (counts, reasons, records), the same provider
errors and landing-file rejections, and the same daily summary.

Two raw zones hold every format the polars path parses (`raw_zones.py`): three 5-minute
sessions of Twelve Data (the simulated market's faults, a re-fetch, hand-made bad records),
Alpha Vantage and Yahoo chart payloads; seven weeks of daily bars of the same providers plus
landing-zone CSV files. Each carries its format's faults: bad numbers, missing fields, null
placeholders, error answers, duplicate and overlapping payloads across providers.
"""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import polars as pl
import pyarrow.parquet as pq
import pytest

from finance_assets.lib import transforms
from finance_assets.lib.io import lake
from finance_assets.spark import job as bars_job
from finance_assets_tests.test_spark import raw_zones
from finance_assets_tests.test_spark.raw_zones import DAILY, INTRADAY, local, read_back

ZONES = {"5min": ("raw_intraday_quotes", INTRADAY), "1day": ("raw_daily_quotes", DAILY)}


def _run_both(interval: str, us, spark_session, tmp_path_factory) -> SimpleNamespace:
    folder, (first, last) = ZONES[interval]
    root = tmp_path_factory.mktemp(f"raw-{interval}") / "us" / folder
    build = raw_zones.intraday_zone if interval == "5min" else raw_zones.daily_zone
    answered = build(root, us)
    start, end = local(first), local(last + dt.timedelta(days=1))
    payloads = lake.read_payloads(root, start, end)
    asset = bars_job.ASSETS[interval]
    result, errors = transforms.clean_payloads(
        payloads,
        us,
        interval,
        asset=asset,
        window_start=start,
        window_end=end,
        ingested_at=dt.datetime.now(dt.UTC),
        valid_starts=pl.Series("ts", us.bar_starts(start, end)) if interval == "5min" else None,
        max_quarantine_rate=bars_job.MAX_QUARANTINE_RATE,
    )
    out = tmp_path_factory.mktemp(f"spark-{interval}")
    argv = ["--raw", str(root), "--out", str(out), "--market", "us", "--interval", interval]
    argv += ["--start", first.isoformat(), "--end", last.isoformat()]
    figures = bars_job.main(argv, spark=spark_session)
    return SimpleNamespace(
        interval=interval,
        asset=asset,
        payloads=payloads,
        answered=answered,
        result=result,
        errors=errors,
        figures=figures,
        out=out,
        tz=us.tz,
    )


@pytest.fixture(scope="module")
def intraday(us, spark_session, tmp_path_factory) -> SimpleNamespace:
    return _run_both("5min", us, spark_session, tmp_path_factory)


@pytest.fixture(scope="module")
def daily(us, spark_session, tmp_path_factory) -> SimpleNamespace:
    return _run_both("1day", us, spark_session, tmp_path_factory)


@pytest.fixture(params=["5min", "1day"])
def both(request) -> SimpleNamespace:
    return request.getfixturevalue("intraday" if request.param == "5min" else "daily")


def test_every_format_is_in_the_raw_zone(both):
    formats = {p.format for p in both.payloads}
    expected = {"twelve_data", "alpha_vantage", "yahoo_chart"}
    assert formats == (expected if both.interval == "5min" else expected | {"yahoo_csv"})
    assert both.figures["payloads"] == len(both.payloads)
    assert both.figures["payload_formats"] == {
        f: sum(p.format == f for p in both.payloads) for f in sorted(formats)
    }


def test_same_bars_row_for_row(both):
    spark_bars = read_back(both.out / both.asset)
    columns = [c for c in both.result.bars.columns if c != "ingested_at"]
    expected = both.result.bars.select(columns).sort("symbol", "ts")
    got = spark_bars.select(columns).sort("symbol", "ts")
    assert got.schema == expected.schema
    assert got.equals(expected)
    assert both.figures["rows_loaded"] == expected.height
    # Every provider's format gave bars to each symbol it answered (`source`: the providers of
    # the symbol's payload group).
    for provider, symbols in both.answered.items():
        mine = expected.filter(pl.col("source").str.contains(provider))
        assert set(symbols) <= set(mine.get_column("symbol")), provider


def test_same_partition_folders(both):
    days = pl.col("ts").dt.convert_time_zone("America/New_York").dt.date().cast(pl.String)
    expected = both.result.bars.select("symbol", date=days).unique()
    folders = sorted(
        (p.parent.name[len("symbol=") :], p.name[len("date=") :])
        for p in (both.out / both.asset).glob("symbol=*/date=*")
    )
    assert folders == sorted(expected.iter_rows())
    assert both.figures["partitions_written"] == len(folders)


def test_same_quarantine_reasons_and_records(both):
    columns = ["asset", "partition_ts", "symbol", "ts_raw", "reason", "record", "source"]
    expected = both.result.quarantine.select(columns).sort(columns, nulls_last=True)
    got = read_back(both.out / "quarantine").select(columns).sort(columns, nulls_last=True)
    assert got.equals(expected)
    reasons = dict(expected.group_by("reason").len().iter_rows())
    assert both.figures["quarantine_reasons"] == reasons
    assert both.figures["rows_quarantined"] == expected.height
    assert both.figures["records_received"] == both.result.received
    # Every provider had records quarantined: the faults of every format were judged.
    for provider in both.answered:
        assert expected.filter(pl.col("source").str.contains(provider)).height, provider


INTRADAY_REASONS = [
    "duplicate (symbol, ts)",
    "high < low",
    "open missing or not a number",
    "high missing or not a number",
    "close missing or not a number",
    "volume missing or not a number",
    "high not finite",
    "close not positive",
    "low not positive",
    "high out of range (>= 1e+12)",
    "volume negative",
    "volume out of range (>= 2**63)",
    "volume not a whole number",
    "not a 5-minute bar start of a trading session",
    "outside the partition window",
    "datetime missing or unparseable: not a time",
    "datetime missing or unparseable: null",
    "datetime missing or unparseable: 2026-11-18 9:30",
    "datetime missing or unparseable: 1763476200",
]
DAILY_REASONS = [
    "landing file NVDA.csv rejected as a whole: 5 of 37 records invalid (13.5%, more than "
    "the 5.0% allowed)",
    "symbol missing",
    "duplicate (symbol, ts)",
    "low out of range (>= 1e+12)",
    "open missing or not a number",
    "volume missing or not a number",
    "datetime missing or unparseable: 2026-13-01",
    "datetime missing or unparseable: 2026-10-10",
]


def test_the_faults_of_every_format_are_there(both):
    text = " | ".join(both.figures["quarantine_reasons"])
    for reason in INTRADAY_REASONS if both.interval == "5min" else DAILY_REASONS:
        assert reason in text, reason


def test_same_provider_errors_and_rejected_files(both):
    assert both.figures["provider_errors"] == both.errors
    assert both.figures["rejected_files"] == {r.file: r.reason for r in both.result.rejected}
    if both.interval == "5min":
        assert set(both.errors) == {"BAD", "?"}  # Alpha Vantage and Yahoo do not name it
        assert both.result.rejected == []
    else:
        assert [r.file for r in both.result.rejected] == ["NVDA.csv"]


def test_a_rejected_file_is_the_source_of_no_bar(daily):
    nvda = daily.result.bars.filter(pl.col("symbol") == "NVDA")
    assert nvda.height and set(nvda.get_column("source")) == {"simulated"}
    rejected = daily.result.quarantine.filter(pl.col("reason").str.starts_with("landing file"))
    assert rejected.height == 37
    assert set(rejected.get_column("source")) == {"landing_zone,simulated"}


def test_adj_close_is_kept_where_the_format_has_it(daily):
    goog = daily.result.bars.filter(pl.col("symbol") == "GOOG")
    assert goog.get_column("adj_close").null_count() == 3  # -5, "x" and null stored as null
    # The landing files' Adj Close (AAPL.csv supersedes Twelve Data's AAPL); none for MSFT.
    landed = daily.result.bars.filter(pl.col("symbol").is_in(["AAPL", "BRK.B", "SPY"]))
    assert landed.height > 100 and landed.get_column("adj_close").null_count() == 0
    msft = daily.result.bars.filter(pl.col("symbol") == "MSFT")
    assert msft.height and msft.get_column("adj_close").null_count() == msft.height


def test_timestamps_are_micros_in_utc(both):
    files = sorted((both.out / both.asset).glob("symbol=*/date=*/*.parquet"))
    assert files
    schema = pq.read_schema(files[0])
    assert str(schema.field("ts").type) == "timestamp[us, tz=UTC]"
    column = pq.ParquetFile(files[0]).metadata.schema.column(schema.get_field_index("ts"))
    assert column.physical_type == "INT64"  # not INT96


def test_same_daily_summary(intraday, us):
    result, figures, out = intraday.result, intraday.figures, intraday.out
    expected = transforms.daily_summary(result.bars, us).sort("trading_date", "symbol")
    got = read_back(out / "daily_summary").select(expected.columns).sort("trading_date", "symbol")
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
