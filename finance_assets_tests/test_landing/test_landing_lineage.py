"""A landing file for one symbol over days the provider already loaded touches that symbol's
rows only: every other symbol's rows stay byte for byte (values, `source`, `ingested_at`) in
the warehouse and the lake."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import polars as pl
import psycopg

from finance_assets.demo import range_tags
from finance_assets.lib.io.objects import open_location
from finance_assets.lib.markets import Market
from finance_assets_tests.test_landing.test_landing_zone import (  # noqa: F401
    _defs,
    _sense_and_run,
    drop,
    env,
    yahoo_csv,
)

DAYS = ("2026-11-17", "2026-11-18")


def _warehouse(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT * FROM us.daily_bars ORDER BY symbol, ts").fetchall()


def _lake(data: Path) -> pl.DataFrame:
    store = open_location(str(data / "lake")).child("us", "daily_bars")
    keys = sorted(o.name for o in store.list_tree() if o.name.endswith(".parquet"))
    return store.read_parquet(keys).sort("symbol", "ts")


def test_a_landing_file_for_aapl_leaves_every_other_symbol_byte_for_byte(
    env: Path,  # noqa: F811
    pg_url: str,
    us: Market,
) -> None:
    defs = _defs(us, env)
    job = dg.define_asset_job(
        "provider_days",
        selection=[dg.AssetKey(["us", "raw_daily_quotes"]), dg.AssetKey(["us", "daily_bars"])],
    )
    job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(job.name)
    with dg.DagsterInstance.ephemeral() as instance:
        loaded = job_def.execute_in_process(instance=instance, tags=range_tags(*DAYS))
        assert loaded.success
        before = _warehouse(pg_url)
        lake_before = _lake(env)
        assert {r[0] for r in before} == set(us.universe) and len(before) == 2 * len(us.universe)
        assert {r[-2] for r in before} == {"simulated"}  # source

        drop(env / "landing" / "us", "AAPL.csv", yahoo_csv(("2026-11-18", 233.0)))
        (run,), _ = _sense_and_run(defs, instance, None)
        assert run.success

    after = _warehouse(pg_url)
    others = lambda rows: [r for r in rows if r[0] != "AAPL"]  # noqa: E731
    assert others(after) == others(before)  # every column, ingested_at and source included
    lake_after = _lake(env)
    not_aapl = pl.col("symbol") != "AAPL"
    assert lake_after.filter(not_aapl).equals(lake_before.filter(not_aapl))
    # AAPL's landed day carries the file's close and names both sources of its payloads;
    # its other day is as the provider loaded it.
    aapl = [(r[1].date().isoformat(), r[5], r[-2]) for r in after if r[0] == "AAPL"]
    assert aapl[1] == ("2026-11-18", 233.0, "landing_zone,simulated")
    assert next(r for r in after if r[0] == "AAPL") == next(r for r in before if r[0] == "AAPL")
    # Both stores still agree.
    assert lake_after.height == len(after)
