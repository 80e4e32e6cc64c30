"""Re-running a window: afterwards every (symbol, date) of the window holds exactly what the run
produced (a pair whose bars are now all quarantined loses its folder, a date whose quarantine
is now empty loses its quarantine folder), and no date outside the window is touched; the stored
rows of a symbol the provider did not answer stay (`lib.answers.kept_spans`)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path

import polars as pl

from finance_assets.lib.clean_step import clean_window
from finance_assets.lib.io import lake
from finance_assets.providers.simulated_market import SimulatedMarket
from finance_assets.spark import job as bars_job
from finance_assets_tests.test_spark.raw_zones import SESSION, fetched, local, read_back

DAYS = [dt.date(2026, 11, 16), dt.date(2026, 11, 17), dt.date(2026, 11, 18)]
MIDDLE = DAYS[1].isoformat()


def _job(spark, raw: Path, out: Path, first: dt.date, last: dt.date) -> dict:
    argv = ["--raw", str(raw), "--out", str(out), "--market", "us"]
    return bars_job.main([*argv, "--start", first.isoformat(), "--end", last.isoformat()], spark)


def _msft_middle_session(us, raw: Path, at: dt.datetime, *, bad: bool) -> None:
    """MSFT's middle session fetched again at `at`; every record high < low when `bad`."""
    opening = local(DAYS[1], 9, 30)
    (payload,) = SimulatedMarket(clock=lambda: at).fetch_bars(
        us, ["MSFT"], "5min", opening, opening + SESSION
    )
    if bad:
        document = json.loads(payload.body)
        for value in document["values"]:
            value["high"] = "1.0"
        payload = dataclasses.replace(payload, body=json.dumps(document).encode())
    lake.write_payloads(raw, [payload], opening, opening + SESSION, us.tz)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.parquet"))}


def _outside(out: Path) -> dict[str, bytes]:
    """Every file of the dates outside the re-run window, by path (Spark names each run's files
    anew: the same names and bytes mean nothing touched them)."""
    return {
        path: body
        for table in ("bars_by_symbol", "quarantine", "daily_summary")
        if (out / table).exists()
        for path, body in _files(out / table).items()
        if f"date={MIDDLE}" not in path
    }


def test_a_rerun_replaces_its_window_whole(us, spark_session, tmp_path):
    raw = tmp_path / "raw" / "us" / "raw_intraday_quotes"
    out = tmp_path / "spark" / "us"
    opening, closing = local(DAYS[0], 9, 30), local(DAYS[-1], 16)
    clean = SimulatedMarket(clock=lambda: fetched(22, 18))
    payloads = clean.fetch_bars(us, ["AAPL", "MSFT"], "5min", opening, closing)
    lake.write_payloads(raw, payloads, opening, closing, us.tz)
    first = _job(spark_session, raw, out, DAYS[0], DAYS[-1])
    assert first["partitions_written"] == 6 and first["rows_quarantined"] == 0
    baseline = read_back(out / "bars_by_symbol").drop("ingested_at").sort("symbol", "ts")
    summary = read_back(out / "daily_summary").sort("trading_date", "symbol")
    untouched = _outside(out)

    # MSFT's middle session again, every bar bad: re-run that day alone.
    _msft_middle_session(us, raw, fetched(1, 19), bad=True)
    second = _job(spark_session, raw, out, DAYS[1], DAYS[1])
    bars = out / "bars_by_symbol"
    assert not (bars / "symbol=MSFT" / f"date={MIDDLE}").exists()
    assert (bars / "symbol=AAPL" / f"date={MIDDLE}").is_dir()
    assert second["partitions_written"] == 1 and second["partitions_removed"] == 1
    assert second["rows_quarantined"] == 78
    quarantine = read_back(out / "quarantine" / "asset=bars_by_symbol")
    assert quarantine.height == 78 and set(quarantine.get_column("symbol")) == {"MSFT"}
    assert set(quarantine.get_column("date").cast(pl.String)) == {MIDDLE}
    middle = read_back(out / "daily_summary" / f"date={MIDDLE}")
    assert middle.get_column("symbol").to_list() == ["AAPL"]
    assert _outside(out) == untouched
    stored = read_back(bars).drop("ingested_at").sort("symbol", "ts")
    assert stored.equals(
        baseline.filter(~((pl.col("symbol") == "MSFT") & (pl.col("date") == DAYS[1])))
    )

    # Good again (a newer fetch): the pair's folder is back, the day's quarantine folder gone.
    _msft_middle_session(us, raw, fetched(2, 19), bad=False)
    third = _job(spark_session, raw, out, DAYS[1], DAYS[1])
    assert third["rows_quarantined"] == 0 and third["partitions_written"] == 2
    assert not (out / "quarantine" / "asset=bars_by_symbol" / f"date={MIDDLE}").exists()
    assert read_back(bars).drop("ingested_at").sort("symbol", "ts").equals(baseline)
    again = read_back(out / "daily_summary").sort("trading_date", "symbol")
    assert again.equals(summary)
    assert _outside(out) == untouched


def test_a_window_without_any_bar_removes_its_summary_too(us, spark_session, tmp_path):
    raw = tmp_path / "raw"
    out = tmp_path / "out"
    opening = local(DAYS[0], 9, 30)
    (payload,) = SimulatedMarket(clock=lambda: fetched(22, 18)).fetch_bars(
        us, ["AAPL"], "5min", opening, opening + SESSION
    )
    lake.write_payloads(raw, [payload], opening, opening + SESSION, us.tz)
    _job(spark_session, raw, out, DAYS[0], DAYS[0])
    assert (out / "daily_summary" / f"date={DAYS[0]}").is_dir()
    document = json.loads(payload.body)
    for value in document["values"]:
        value["volume"] = "-1"
    bad = dataclasses.replace(
        payload, fetched_at=fetched(1, 19), body=json.dumps(document).encode()
    )
    lake.write_payloads(raw, [bad], opening, opening + SESSION, us.tz)
    figures = _job(spark_session, raw, out, DAYS[0], DAYS[0])
    assert figures["rows_loaded"] == 0 and figures["summary_rows"] == 0
    assert not list((out / "bars_by_symbol").glob("symbol=*/date=*"))
    assert not (out / "daily_summary" / f"date={DAYS[0]}").exists()
    assert figures["summary_partitions_removed"] == 1


def test_a_symbol_the_provider_did_not_answer_keeps_its_stored_rows(us, spark_session, tmp_path):
    """A re-fetch of the middle session's morning answers AAPL and refuses MSFT (an error inside
    the batch): MSFT's stored morning stays as it was, its afternoon (still the older payload's)
    is written again, as the polars clean step keeps them."""
    raw = tmp_path / "raw" / "us" / "raw_intraday_quotes"
    out = tmp_path / "spark" / "us"
    opening, closing = local(DAYS[0], 9, 30), local(DAYS[-1], 16)
    payloads = SimulatedMarket(clock=lambda: fetched(22, 18)).fetch_bars(
        us, ["AAPL", "MSFT"], "5min", opening, closing
    )
    lake.write_payloads(raw, payloads, opening, closing, us.tz)
    _job(spark_session, raw, out, DAYS[0], DAYS[-1])
    baseline = read_back(out / "bars_by_symbol").drop("ingested_at").sort("symbol", "ts")

    morning = (local(DAYS[1], 9, 30), local(DAYS[1], 12, 45))
    (refetch,) = SimulatedMarket(clock=lambda: fetched(1, 19)).fetch_bars(
        us, ["AAPL", "MSFT"], "5min", *morning
    )
    document = json.loads(refetch.body)
    document["MSFT"] = {"code": 429, "message": "out of API credits", "status": "error"}
    refetch = dataclasses.replace(refetch, body=json.dumps(document).encode())
    lake.write_payloads(raw, [refetch], *morning, us.tz)
    figures = _job(spark_session, raw, out, DAYS[1], DAYS[1])

    assert figures["unanswered_symbols"] == {"MSFT": "429: out of API credits"}
    assert figures["partitions_written"] == 2 and figures["partitions_kept"] == 0
    stored = read_back(out / "bars_by_symbol").drop("ingested_at").sort("symbol", "ts")
    assert stored.equals(baseline)
    # What the job wrote itself is the polars step's result: MSFT's morning left out.
    start, end = local(DAYS[1]), local(DAYS[2])
    polars = clean_window(
        lake.read_payloads(raw, start, end),
        us,
        "5min",
        asset="bars_by_symbol",
        start=start,
        end=end,
        ingested_at=dt.datetime.now(dt.UTC),
    )
    assert [(k.symbol, k.start, k.end) for k in polars.kept if k.symbol == "MSFT"] == [
        ("MSFT", morning[0].astimezone(dt.UTC), morning[1].astimezone(dt.UTC))
    ]
    assert figures["rows_loaded"] == polars.result.bars.height
    msft = polars.result.bars.filter(pl.col("symbol") == "MSFT")
    assert msft.height and msft.get_column("ts").min() == morning[1].astimezone(dt.UTC)
