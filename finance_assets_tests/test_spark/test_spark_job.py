"""The Spark job's pieces on their own: the parser, the number grammar, the local times, the
mirrored constants, the arguments; on the shared local[2] session where Spark is needed."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import polars as pl
import pytest

from finance_assets.lib import schema, transforms
from finance_assets.lib.markets import BAR_MINUTES, markets_from_env
from finance_assets.lib.providers import twelve_data_series

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "spark"))
import bars_job
import bars_spark

NY = ZoneInfo("America/New_York")


def test_the_mirrored_rules_are_the_projects():
    assert bars_spark.MAX_PRICE == schema.MAX_PRICE
    assert bars_spark.MAX_VOLUME == schema.MAX_VOLUME
    assert bars_spark.PRICE_COLUMNS == schema.PRICE_COLUMNS
    assert bars_spark.RAW_RECORD_FIELDS == schema.RAW_RECORD_FIELDS
    assert bars_spark.BAR_MINUTES == BAR_MINUTES
    assert bars_spark._EXCHANGES == twelve_data_series._EXCHANGES
    markets = markets_from_env({})
    assert {k: (m.calendar_name, m.timezone) for k, m in markets.items()} == bars_spark.MARKETS


def test_every_twelve_data_sample_parses_as_the_polars_parser_does(samples):
    bodies = sorted((samples / "twelvedata").glob("*.json"))
    assert bodies
    for path in bodies:
        body = path.read_bytes()
        try:
            expected, _ = transforms.parse_twelve_data(body, "p1")
        except transforms.PayloadFormatError:
            with pytest.raises(bars_spark.PayloadError):
                list(bars_spark.parse_twelve_data(body, "p1", 0, "America/New_York"))
            continue
        rows = list(bars_spark.parse_twelve_data(body, "p1", 0, "America/New_York"))
        got = pl.DataFrame(
            [r[:-1] for r in rows],
            schema=["payload_id", "porder", "pos", "symbol", "currency", *schema.RAW_RECORD_FIELDS],
            orient="row",
        ).select(list(schema.RAW_RECORD_SCHEMA))
        assert got.equals(expected), path.name


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
    assert [bars_spark.local_to_utc_us(c, NY) for c in cases] == expected
    assert expected[2] is None and expected[0] is not None


def test_numbers_read_as_polars_reads_them(spark_session):
    texts = [
        "1.5", " 2 ", "+3", "-4", "1e5", "1E-2", ".5", "5.", "inf", "-inf", "Infinity", "+inf",
        "NaN", "-nan", "INF", "1d", "1f", "0x10", "1_0", "abc", "", "  ", "1,5", "1.5.1", "1e",
        "e5", None, "\u00a012\u00a0",
    ]  # fmt: skip
    expected = pl.Series(texts).str.strip_chars().cast(pl.Float64, strict=False).to_list()
    frame = spark_session.createDataFrame([(t,) for t in texts], "v string")
    got = [r[0] for r in frame.select(bars_spark._number("v")).collect()]
    assert len(got) == len(expected)
    for text, want, have in zip(texts, expected, got, strict=True):
        if want is not None and want != want:  # NaN
            assert have is not None and have != have, text
        else:
            assert have == want, text


def test_other_formats_are_refused_by_name(spark_session, tmp_path):
    folder = tmp_path / "dt=2026-11-20"
    folder.mkdir()
    meta = {
        "provider": "alpha_vantage",
        "format": "alpha_vantage",
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
    with pytest.raises(bars_spark.PayloadError, match=r"\['alpha_vantage'\].*polars path"):
        bars_spark.read_payload_index(spark_session, str(tmp_path), start, start + dt.timedelta(1))


def test_an_empty_raw_zone_has_no_payloads(spark_session, tmp_path):
    start = dt.datetime(2026, 11, 20, tzinfo=NY)
    assert bars_spark.read_payload_index(spark_session, str(tmp_path), start, start) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--market", "jp"], "invalid choice: 'jp'"),
        (["--start", "2026-13-01"], "is not a date"),
        (["--end", "2026-11-01"], "is before --start"),
        (["--steps", "everything"], "valid steps are raw_to_parquet, daily_summary"),
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
