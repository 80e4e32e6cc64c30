"""The assets end to end, in process, against the real PostgreSQL and a temp data folder."""

import datetime as dt
import json

import dagster as dg
import polars as pl
import psycopg
import pytest

from finance_assets.definitions import build_domain_defs
from finance_assets.defs.market import assets as market_assets
from finance_assets.demo import range_tags, run_market
from finance_assets.lib.clock import intraday_range
from finance_assets.lib.io import lake
from finance_assets.lib.transforms import cleaning
from finance_assets.resources import build_resources

WEEK = [dt.date(2026, 11, d) for d in (16, 17, 18, 19, 20)]


@pytest.fixture
def env(monkeypatch, tmp_path, pg_url):
    """Resources of the local environment on a temp folder and this session's database."""
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    monkeypatch.delenv("FINANCE_SIM_FAULT_RATE", raising=False)
    monkeypatch.delenv("FINANCE_ENV", raising=False)
    return tmp_path / "data"


@pytest.fixture
def fresh_schema(pg_url, us):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {us.key} CASCADE")
    return pg_url


def _defs(market) -> dg.Definitions:
    return dg.Definitions.merge(
        build_domain_defs([market]), dg.Definitions(resources=build_resources())
    )


def run_assets(
    defs: dg.Definitions, instance: dg.DagsterInstance, name: str, keys, start: str, end: str
) -> dg.ExecuteInProcessResult:
    """A job of the us assets `keys` over the partition range [start, end], run to success."""
    job = dg.define_asset_job(name, selection=[dg.AssetKey(["us", k]) for k in keys])
    job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(name)
    result = job_def.execute_in_process(instance=instance, tags=range_tags(start, end))
    assert result.success
    return result


def _counts(url: str, schema: str) -> dict[str, int]:
    tables = ("bars_5min", "daily_bars", "daily_summary", "quarantine")
    with psycopg.connect(url) as conn:
        out = {}
        for table in tables:
            exists = conn.execute("SELECT to_regclass(%s)", [f"{schema}.{table}"]).fetchone()[0]
            out[table] = (
                conn.execute(f"SELECT count(*) FROM {schema}.{table}").fetchone()[0]
                if exists
                else 0
            )
        return out


def _materialized(instance: dg.DagsterInstance, key: dg.AssetKey) -> set[str]:
    return set(instance.get_materialized_partitions(key))


def test_one_day_end_to_end_and_rerun_is_identical(env, fresh_schema, us):
    defs = _defs(us)
    instance = dg.DagsterInstance.ephemeral()
    day = [dt.date(2026, 11, 18)]
    results = run_market(defs, us, day, instance)
    assert all(r.success for r in results)
    first = _counts(fresh_schema, "us")
    assert first == {"bars_5min": 5 * 78, "daily_bars": 5, "daily_summary": 5, "quarantine": 0}
    lake_files = sorted((env / "lake" / "us" / "bars_5min").rglob("*.parquet"))
    assert [f.parent.name for f in lake_files] == ["dt=2026-11-18"]
    assert pl.read_parquet(lake_files[0]).height == 5 * 78
    raw = [p for p in (env / "raw" / "us" / "raw_intraday_quotes").rglob("*.json")]
    assert len([p for p in raw if not p.name.endswith(".meta.json")]) == 1

    results = run_market(defs, us, day, instance)
    assert all(r.success for r in results)
    assert _counts(fresh_schema, "us") == first
    raw = [p for p in (env / "raw" / "us" / "raw_intraday_quotes").glob("dt=*/*.json")]
    assert len([p for p in raw if not p.name.endswith(".meta.json")]) == 1  # superseded, not piled
    # The first run's payload is set aside as history ("as known then"), not deleted.
    aside = (env / "raw" / "us" / "raw_intraday_quotes" / lake.SUPERSEDED).glob("dt=*/*.json")
    assert len([p for p in aside if not p.name.endswith(".meta.json")]) == 1

    summary = pl.read_database(
        "SELECT * FROM us.daily_summary ORDER BY symbol", psycopg.connect(fresh_schema)
    )
    assert summary.get_column("bar_count").to_list() == [78] * 5
    assert summary.get_column("return_pct").null_count() == 5  # the 17th is not loaded yet

    # Once the previous session is in, the day's return is measured against its close.
    assert all(r.success for r in run_market(defs, us, [dt.date(2026, 11, 17)], instance))
    assert all(r.success for r in run_market(defs, us, day, instance))
    with psycopg.connect(fresh_schema) as conn:
        rows = conn.execute(
            "SELECT s.symbol, s.return_pct, s.close, p.close FROM us.daily_summary s "
            "JOIN us.daily_summary p ON p.symbol = s.symbol AND p.trading_date = '2026-11-17' "
            "WHERE s.trading_date = '2026-11-18'"
        ).fetchall()
    assert len(rows) == 5
    for _, return_pct, close, prev_close in rows:
        assert return_pct == pytest.approx((close / prev_close - 1) * 100)


def test_single_run_backfill_of_five_days_is_one_run(env, fresh_schema, us):
    defs = _defs(us)
    instance = dg.DagsterInstance.ephemeral()
    selection = [
        dg.AssetKey(["us", "raw_intraday_quotes"]),
        dg.AssetKey(["us", "bars_5min"]),
    ]
    job = dg.define_asset_job("backfill", selection=selection)
    job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("backfill")
    result = job_def.execute_in_process(
        instance=instance, tags=range_tags(*intraday_range(us, WEEK))
    )
    assert result.success
    assert len(instance.get_runs()) == 1
    keys = _materialized(instance, dg.AssetKey(["us", "bars_5min"]))
    assert len(keys) == 5 * 78
    assert min(keys) == "2026-11-16-09:30" and max(keys) == "2026-11-20-15:55"
    assert _counts(fresh_schema, "us")["bars_5min"] == 5 * 5 * 78
    # One provider call for the whole range (5 symbols fit one batch).
    raw_event = next(
        e
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["us", "raw_intraday_quotes"])
    )
    assert raw_event.materialization.metadata["calls"].value == 1
    # Each partition of the range carries its own row count; the run's totals are labelled so.
    bars_events = [
        e.materialization
        for e in result.get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["us", "bars_5min"])
    ]
    assert len(bars_events) == 5 * 78
    assert {m.metadata["dagster/row_count"].value for m in bars_events} == {5}
    assert {m.metadata["run_rows_loaded"].value for m in bars_events} == {5 * 5 * 78}
    assert all("preview" not in m.metadata for m in bars_events)
    # A range run's check verdicts say which partitions they cover (Dagster records them
    # without a partition).
    covers = {
        c.check_name: c.metadata["verdict_covers"].value
        for c in result.get_asset_check_evaluations()
        if c.asset_key == dg.AssetKey(["us", "bars_5min"])
    }
    assert set(covers) >= {"stores_agree", "universe_complete", "prices_not_null"}
    assert all(
        v.startswith("390 partitions, 2026-11-16-09:30 to 2026-11-20-15:55")
        for v in covers.values()
    )


def test_long_ranges_carry_the_run_totals_only(env, fresh_schema, us, monkeypatch):
    # Beyond the limit, per-partition metadata would cost Dagster time quadratic in the range.
    monkeypatch.setattr(market_assets, "PARTITION_METADATA_LIMIT", 10)
    results = run_market(_defs(us), us, WEEK[:1], dg.DagsterInstance.ephemeral())
    assert all(r.success for r in results)
    bars_events = [
        e.materialization.metadata
        for e in results[0].get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["us", "bars_5min"])
    ]
    assert len(bars_events) == 78
    for meta in bars_events:
        assert "dagster/row_count" not in meta and "rows_loaded" not in meta
        assert meta["run_rows_loaded"].value == 5 * 78 and meta["run_partitions"].value == 78
        assert meta["run_row_count"].value == 5 * 78  # the IO manager's, labelled the same way
        # ... and say why the partition's own counts are missing.
        assert meta["partition_counts"].value.startswith("not recorded per partition: this run")


def test_faults_are_quarantined_with_reasons_and_checks_pass(env, fresh_schema, us, monkeypatch):
    monkeypatch.setenv("FINANCE_SIM_FAULT_RATE", "0.02")
    defs = _defs(us)
    instance = dg.DagsterInstance.ephemeral()
    results = run_market(defs, us, WEEK[:2], instance)
    assert all(r.success for r in results)
    counts = _counts(fresh_schema, "us")
    assert counts["quarantine"] > 0
    with psycopg.connect(fresh_schema) as conn:
        reasons = dict(
            conn.execute("SELECT asset, count(*) FROM us.quarantine GROUP BY asset").fetchall()
        )
        sample = conn.execute("SELECT reason, record FROM us.quarantine LIMIT 20").fetchall()
    assert reasons.get("bars_5min", 0) > 0
    for reason, record in sample:
        assert reason and json.loads(record)  # why, and the record as received
    # Received = loaded + quarantined, from the materializations' own metadata: for every
    # partition of the range, and for the run as a whole.
    bars_events = [
        e.materialization.metadata
        for e in results[0].get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["us", "bars_5min"])
    ]
    assert len(bars_events) == 2 * 78
    for meta in bars_events:
        received = meta["records_received"].value
        assert received == meta["rows_loaded"].value + meta["rows_quarantined"].value
        assert meta["dagster/row_count"].value == meta["rows_loaded"].value
    run = bars_events[0]
    assert (
        run["run_records_received"].value
        == run["run_rows_loaded"].value + run["run_rows_quarantined"].value
    )
    assert sum(m["rows_quarantined"].value for m in bars_events) == reasons["bars_5min"]
    assert run["run_rows_quarantined"].value == reasons["bars_5min"]
    assert sum(m["rows_loaded"].value for m in bars_events) == counts["bars_5min"]
    # Daily partitions of a range get their own counts too, each for its own session.
    daily = {
        e.materialization.partition: e.materialization.metadata["dagster/row_count"].value
        for e in results[-1].get_asset_materialization_events()
        if e.asset_key == dg.AssetKey(["us", "daily_bars"])
    }
    with psycopg.connect(fresh_schema) as conn:
        stored = conn.execute(
            "SELECT (ts AT TIME ZONE 'America/New_York')::date, count(*) FROM us.daily_bars"
            " GROUP BY 1"
        ).fetchall()
    assert daily == {f"{day:%Y-%m-%d}": n for day, n in stored}
    assert sorted(daily) == [f"{day:%Y-%m-%d}" for day in WEEK[:2]]
    checks = results[0].get_asset_check_evaluations()
    assert checks and all(c.passed for c in checks)


def test_corruption_past_cleaning_fails_a_blocking_check_and_stops_the_summary(
    env, fresh_schema, us, monkeypatch
):
    real_clean = cleaning.clean_bars

    def leaky_clean(*args, **kwargs):
        # A cleaning bug in the 5-minute path: one bar comes out twice.
        result = real_clean(*args, **kwargs)
        if kwargs["asset"] == "bars_5min":
            result.bars = pl.concat([result.bars, result.bars.head(1)]).sort("symbol", "ts")
        return result

    defs = _defs(us)
    good = run_market(defs, us, [WEEK[1]], dg.DagsterInstance.ephemeral())
    assert all(r.success for r in good)
    before = _counts(fresh_schema, "us")

    monkeypatch.setattr(cleaning, "clean_bars", leaky_clean)  # where clean_payloads finds it
    instance = dg.DagsterInstance.ephemeral()
    results = run_market(defs, us, [WEEK[1]], instance)
    intraday, daily = results
    assert not intraday.success
    failed = [c for c in intraday.get_asset_check_evaluations() if not c.passed]
    assert [c.check_name for c in failed] == ["timestamps_strictly_increasing"]
    assert failed[0].metadata["failing_rows"].value == 1
    assert "sample" in failed[0].metadata
    assert daily.success  # the daily bars do not depend on the 5-minute ones
    assert not _materialized(instance, dg.AssetKey(["us", "daily_summary"]))
    assert not _materialized(instance, dg.AssetKey(["us", "bars_5min"]))
    # Nothing bad was written and nothing stored before was lost.
    assert _counts(fresh_schema, "us") == before


def test_too_much_quarantined_blocks_the_bars_but_keeps_the_evidence(
    env, fresh_schema, us, monkeypatch
):
    monkeypatch.setenv("FINANCE_SIM_FAULT_RATE", "0.2")
    defs = _defs(us)
    instance = dg.DagsterInstance.ephemeral()
    intraday, _ = run_market(defs, us, [WEEK[3]], instance)
    assert not intraday.success
    failed = [c for c in intraday.get_asset_check_evaluations() if not c.passed]
    assert [c.check_name for c in failed] == ["quarantine_rate"]
    assert failed[0].metadata["quarantine_rate"].value > 0.05
    counts = _counts(fresh_schema, "us")
    assert counts["bars_5min"] == 0 and counts["daily_summary"] == 0
    with psycopg.connect(fresh_schema) as conn:
        quarantined = conn.execute(
            "SELECT count(*) FROM us.quarantine WHERE asset = 'bars_5min'"
        ).fetchone()[0]
    assert quarantined > 0.05 * 5 * 78  # the dead letters explain the failure
