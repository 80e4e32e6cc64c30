"""The Spark job's pieces on their own: each format's parser against the polars one, the number
grammar, the local times and dates, the mirrored constants, the arguments, what is shipped; on
the shared local[2] session where Spark is needed."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import polars as pl
import pytest

from finance_assets.lib import schema, transforms
from finance_assets.lib.markets import BAR_MINUTES, markets_from_env
from finance_assets.lib.providers.base import PayloadFormatError
from finance_assets.providers.alpha_vantage import client as alpha_vantage
from finance_assets.providers.twelve_data import parser as twelve_data_series
from finance_assets.providers.yfinance import csv_export as csv_files
from finance_assets.providers.yfinance import parser as yahoo_chart
from finance_assets.resources import spark_pipes as spark_resource
from finance_assets.resources.thresholds import DataQualityResource

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "spark"))
import bars_clean
import bars_format_alpha_vantage
import bars_format_twelve_data
import bars_format_yahoo_chart
import bars_format_yahoo_csv
import bars_job
import bars_raw
import bars_rules

NY = ZoneInfo("America/New_York")
# A payload id in the raw zone's form (window, fetch time, batch), and other ids.
PAYLOAD_IDS = (
    "20201001T000000Z_20201101T000000Z_20201101T000000000000Z_b0000",
    "20171218T000000Z_20171219T000000Z_20171219T000000000000Z_b0000",
    "20241002T133000Z_20241002T160000Z_20241003T000000000000Z_b0000",
    "not-a-window",
)
TEXT = ["symbol", "currency", *schema.RAW_RECORD_FIELDS, "adj_close"]


def test_the_mirrored_rules_are_the_projects(us):
    assert bars_rules.MAX_PRICE == schema.MAX_PRICE
    assert bars_rules.MAX_VOLUME == schema.MAX_VOLUME
    assert bars_rules.PRICE_COLUMNS == schema.PRICE_COLUMNS
    assert bars_rules.RAW_RECORD_FIELDS == schema.RAW_RECORD_FIELDS
    assert bars_rules.BAR_MINUTES == BAR_MINUTES
    assert bars_rules.LANDING_PROVIDER == csv_files.PROVIDER
    assert DataQualityResource().max_quarantine_rate == bars_rules.MAX_QUARANTINE_RATE
    markets = markets_from_env({})
    assert {k: (m.calendar_name, m.timezone) for k, m in markets.items()} == bars_rules.MARKETS
    calendar = xcals.get_calendar(us.calendar_name, start=bars_rules.CALENDAR_START)
    assert calendar.first_session == us.calendar.first_session
    assert bars_format_twelve_data.EXCHANGES == twelve_data_series._EXCHANGES
    assert bars_format_alpha_vantage.SUFFIXES == alpha_vantage._SUFFIXES
    assert bars_format_alpha_vantage.TZ_ALIASES == alpha_vantage._TZ_ALIASES
    assert bars_format_alpha_vantage.INTRADAY_LABEL == alpha_vantage.INTRADAY_LABEL
    assert bars_format_yahoo_chart.SUFFIXES == yahoo_chart._SUFFIXES
    assert bars_format_yahoo_csv._HEADER == csv_files._HEADER
    assert bars_format_yahoo_csv._REQUIRED == csv_files._REQUIRED
    assert sorted(bars_raw.PARSERS) == sorted(transforms.PARSERS)


def _polars(fmt: str, body: bytes, payload_id: str) -> tuple[pl.DataFrame, dict[str, str]]:
    records, errors = transforms.PARSERS[fmt](body, payload_id)
    return records.drop("payload_id"), errors


def _spark(fmt: str, body: bytes, payload_id: str) -> tuple[pl.DataFrame, dict[str, str]]:
    records, errors = bars_raw.PARSERS[fmt](body, payload_id)
    return pl.DataFrame(list(records), schema=TEXT, orient="row"), errors


def assert_parsed_alike(fmt: str, body: bytes, payload_id: str) -> int:
    """The job's parser gives the polars parser's records and errors, or refuses the body as
    it does; returns the records."""
    try:
        expected, errors = _polars(fmt, body, payload_id)
    except PayloadFormatError:
        with pytest.raises(bars_rules.PayloadError):
            _spark(fmt, body, payload_id)
        return 0
    got, got_errors = _spark(fmt, body, payload_id)
    # adj_close: only the formats that have it add the column (null elsewhere).
    assert ("adj_close" in expected.columns) == (fmt in bars_raw.ADJ_CLOSE_FORMATS), fmt
    if "adj_close" not in expected.columns:
        assert got.get_column("adj_close").null_count() == got.height
        got = got.drop("adj_close")
    assert got.equals(expected.select(got.columns)), (fmt, payload_id)
    assert got_errors == errors
    return got.height


@pytest.mark.parametrize(
    ("fmt", "folder", "pattern"),
    [
        ("twelve_data", "twelvedata", "*.json"),
        ("alpha_vantage", "alphavantage", "*.json"),
        ("yahoo_chart", "yahoo", "*.json"),
        ("yahoo_csv", "ohlcv", "*.csv"),
    ],
)
def test_every_sample_parses_as_the_polars_parser_does(samples, fmt, folder, pattern):
    bodies = sorted((samples / folder).glob(pattern))
    assert bodies
    parsed = sum(
        assert_parsed_alike(fmt, path.read_bytes(), payload_id)
        for path in bodies
        for payload_id in PAYLOAD_IDS
    )
    assert parsed > 0


BAD_BODIES = {
    "twelve_data": [
        b"not json",
        b"[1, 2]",
        b"\xef\xbb\xbf{}",  # a byte-order mark: orjson refuses it
        b'{"values": [{"datetime": "2026-11-20 09:30:00", "open": NaN}]}',
        b'{"values": [{"open": 1e400}]}',
        b'{"values": [{"datetime": "x", "open": 18446744073709551616, "high": true,'
        b' "low": {"a": "\xc3\xa9"}, "close": [1, 2.5], "volume": null}],'
        b' "meta": {"symbol": "BT.A", "exchange": "LSE", "currency": "GBp"}}',
        b'{"AAA": {"status": "error", "code": 400, "message": "no"}, "BBB": {"values": []}}',
        b'{"AAA": [1]}',
        b'{"AAA": {"values": [1]}}',
        b'{"AAA": {"meta": {}}}',
        b"\xff\xfe{}",
    ],
    "alpha_vantage": [
        b'{"Note": "Thank you for using Alpha Vantage"}',
        b'{"Meta Data": {}, "Time Series (5min)": {}, "Time Series (Daily)": {}}',
        b'{"Meta Data": {"2. Symbol": "BT-A.LON", "6. Time Zone": "US/Eastern"},'
        b' "Time Series (5min)": {"2020-10-05 09:30:00": {"1. open": 1.5, "2. high": null},'
        b' " 2020-10-05 09:35:00 ": {"4. close": "x"}, "bad": {}}}',
        b'{"Meta Data": {"2. Symbol": "X", "6. Time Zone": "Mars/Base"},'
        b' "Time Series (5min)": {"2020-10-05 09:30:00": {}}}',
        b'{"Meta Data": {"2. Symbol": "X"}, "Time Series (5min)": {"k": 1}}',
        b'{"Meta Data": {"2. Symbol": "X"}, "Time Series (5min)": []}',
    ],
    "yahoo_chart": [
        b'{"chart": {"result": null, "error": {"code": "Not Found", "description": "gone"}}}',
        b'{"chart": {"result": []}}',
        b'{"chart": {"result": [{"meta": {"symbol": "BRK-B", "dataGranularity": "5m",'
        b' "gmtoffset": -14400}, "timestamp": [1601904600, null, "x", 1601905200.5, true],'
        b' "indicators": {"quote": [{"open": [1, null, 2, "3", {"a": 1}]}]}}]}}',
        b'{"chart": {"result": [{"meta": {"symbol": "X", "dataGranularity": "5m"},'
        b' "timestamp": [1], "indicators": {"quote": [{}]}}]}}',
        b'{"chart": {"result": [{"meta": {"symbol": "X", "dataGranularity": "5m",'
        b' "exchangeTimezoneName": "America/New_York"}, "timestamp": [1, 2],'
        b' "indicators": {"quote": [{"open": [1]}]}}]}}',
        b'{"chart": {"result": [{"meta": {"symbol": " "}}]}}',
        b'{"chart": []}',
    ],
    "yahoo_csv": [
        b"",
        b"Date,Open\n",
        b"\xef\xbb\xbfdate,open,high,low,close,volume,symbol\n2020-01-02,1,2,0.5,1,10,brk-b\n"
        b" 2020-01-03 ,x,,,,,\n\n,,,,,,\n2020-01-06,1,2,0.5,1,10,  \n",
        b"Date,Open,High,Low,Close,Volume\n1/2/2020,1,2,0.5,1,10\n",
        b"Date,Open,High,Low,Close,Volume\n1/13/2020,1,2,0.5,1,10\n2/1/2020,1,2,1,1,1\n",
        b"Date,Open,High,Low,Close,Volume\n13/1/2020,1,2,0.5,1,10\n1/13/2020,1,2,1,1,1\n",
        b"Date,Open,High,Low,Close,Volume\n2020-13-02,1,2,0.5,1,10\n",
        b"Date,Open,High,Low,Close,Volume\n2020-01-02,1,2,3\n",
        b"Date,Open,High,Low,Close,Volume\n\xff\n",
        b'Date,Open,High,Low,Close,Volume\n2020-01-02,"1\n',
        b"Date,Open,High,Low,Close,Volume,Adj Close,Bid\n",
    ],
}


@pytest.mark.parametrize("fmt", sorted(BAD_BODIES))
def test_odd_and_broken_bodies_are_read_or_refused_alike(fmt):
    for body in BAD_BODIES[fmt]:
        for payload_id in PAYLOAD_IDS:
            assert_parsed_alike(fmt, body, payload_id)


def test_local_times_follow_polars_in_dst_gaps_and_overlaps():
    cases = [
        "2026-11-20 09:30:00",
        " 2026-11-20 15:55:00 ",
        "2026-03-08 02:30:00",  # skipped by the spring-forward: no such time
        "2026-11-01 01:30:00",  # twice: the earlier (EDT) is taken
        "2026-11-20T09:30:00",
        "20/11/2026 09:30",
        "",
        None,
    ]
    expected = (
        pl.Series(cases)
        .str.strip_chars()
        .str.to_datetime("%Y-%m-%d %H:%M:%S", strict=False, time_unit="us")
        .dt.replace_time_zone("America/New_York", ambiguous="earliest", non_existent="null")
        .dt.convert_time_zone("UTC")
        .dt.epoch("us")
        .to_list()
    )
    assert [bars_rules.local_to_utc_us(c, NY) for c in cases] == expected
    assert expected[2] is None and expected[0] is not None


def test_daily_dates_follow_polars():
    cases = [
        "2026-11-20", " 2026-11-20 ", "2026-1-5", "2026-11-2", "+2026-11-20", "26-11-20",
        "2026-11-31", "2026-02-29", "2028-02-29", "02026-11-20", "2026-011-20", "20261120",
        "2026/11/20", "2026-11-20 09:30:00", "2026-11-20T00:00", "2026-11-20x", "0000-01-01",
        "", None,
    ]  # fmt: skip
    dates = pl.Series(cases).str.strip_chars().str.to_date("%Y-%m-%d", strict=False)
    expected = dates.cast(pl.String).to_list()
    got = [day and day.isoformat() for day in map(bars_rules.local_day, cases)]
    for text, want, have in zip(cases, expected, got, strict=True):
        # polars' year 0 is no date Python has: neither is a session.
        assert have == want or (want == "0000-01-01" and have is None), text


def test_numbers_read_as_polars_reads_them(spark_session):
    texts = [
        "1.5", " 2 ", "+3", "-4", "1e5", "1E-2", ".5", "5.", "inf", "-inf", "Infinity", "+inf",
        "NaN", "-nan", "INF", "1d", "1f", "0x10", "1_0", "abc", "", "  ", "1,5", "1.5.1", "1e",
        "e5", None, "\u00a012\u00a0",
    ]  # fmt: skip
    expected = pl.Series(texts).str.strip_chars().cast(pl.Float64, strict=False).to_list()
    frame = spark_session.createDataFrame([(t,) for t in texts], "v string")
    got = [r[0] for r in frame.select(bars_clean._number("v")).collect()]
    assert len(got) == len(expected)
    for text, want, have in zip(texts, expected, got, strict=True):
        if want is not None and want != want:  # NaN
            assert have is not None and have != have, text
        else:
            assert have == want, text


def test_an_unknown_format_is_refused_by_name_as_the_polars_path_does(spark_session, tmp_path):
    folder = tmp_path / "dt=2026-11-20"
    folder.mkdir()
    meta = {
        "provider": "someone",
        "format": "parquet_dump",
        "interval": "5min",
        "symbols": ["AAPL"],
        "window_start": "2026-11-20T09:30:00-05:00",
        "window_end": "2026-11-20T16:00:00-05:00",
        "fetched_at": "2026-11-20T21:00:00+00:00",
        "batch": 0,
    }
    (folder / "p.meta.json").write_text(json.dumps(meta))
    (folder / "p.json").write_text("{}")
    start = dt.datetime(2026, 11, 20, tzinfo=NY)
    with pytest.raises(bars_rules.PayloadError) as refused:
        bars_raw.read_payload_index(spark_session, str(tmp_path), start, start + dt.timedelta(1))
    assert str(refused.value) == (
        f"payload p has unknown format 'parquet_dump'; known: {sorted(transforms.PARSERS)}"
    )


def test_an_empty_raw_zone_has_no_payloads(spark_session, tmp_path):
    start = dt.datetime(2026, 11, 20, tzinfo=NY)
    assert bars_raw.read_payload_index(spark_session, str(tmp_path), start, start) == []


def test_every_module_the_job_imports_is_shipped():
    """spark-submit's --py-files (local, EMR, EMR Serverless) and the in-process shipping cover
    the same files: every `bars_*` module the job loads."""
    imported = sorted(Path(f).name for f in bars_job.library_files())
    assert imported == spark_resource.library_files()
    assert len(imported) == 10 and "bars_job.py" not in imported
    assert spark_resource.job_files() == sorted([*imported, "bars_job.py"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--market", "jp"], "invalid choice: 'jp'"),
        (["--start", "2026-13-01"], "is not a date"),
        (["--end", "2026-11-01"], "is before --start"),
        (["--steps", "everything"], "valid steps are raw_to_parquet, daily_summary"),
        (["--interval", "1hour"], "invalid choice: '1hour'"),
        (["--interval", "1day", "--steps", "daily_summary"], "aggregates 5-minute bars"),
        (["--max-quarantine-rate", "5"], "is not within [0, 1]"),
    ],
)
def test_bad_arguments_name_the_value(argv, message, capsys):
    base = {"--raw": "r", "--out": "o", "--market": "us", "--start": "2026-11-16"}
    base["--end"] = "2026-11-20"
    for flag, value in zip(argv[::2], argv[1::2], strict=True):
        base[flag] = value
    with pytest.raises(SystemExit):
        bars_job.parse_args([item for pair in base.items() for item in pair])
    assert message in capsys.readouterr().err


def test_the_steps_follow_the_interval():
    base = ["--raw", "r", "--out", "o", "--market", "us", "--start", "2026-11-16"]
    base += ["--end", "2026-11-20"]
    assert bars_job.parse_args(base).steps == ["raw_to_parquet", "daily_summary"]
    daily = bars_job.parse_args([*base, "--interval", "1day"])
    assert daily.steps == ["raw_to_parquet"] and daily.interval == "1day"
    assert daily.calendar_start == dt.date.fromisoformat(bars_rules.CALENDAR_START)
