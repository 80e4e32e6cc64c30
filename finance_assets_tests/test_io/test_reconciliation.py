"""The blocking `stores_agree` check: the lake's rows against the warehouse's, per partition,
row for row. Through the real assets (single-run ranges included), and the comparison itself."""

import datetime as dt

import dagster as dg
import polars as pl
import psycopg

from finance_assets.demo import range_tags, run_market
from finance_assets.lib.clock import intraday_range
from finance_assets.lib.io.lake_warehouse import differing_partitions
from finance_assets_tests.test_assets.test_end_to_end import _defs, env, fresh_schema  # noqa: F401

DAYS = [dt.date(2026, 11, 17), dt.date(2026, 11, 18)]


def _check(result: dg.ExecuteInProcessResult, name: str = "stores_agree"):
    return next(c for c in result.get_asset_check_evaluations() if c.check_name == name)


def test_stores_agree_over_a_single_run_range_and_is_in_the_jobs(env, fresh_schema, us):  # noqa: F811
    defs = _defs(us)
    job = dg.define_asset_job(
        "range",
        selection=dg.AssetSelection.assets([us.key, "raw_intraday_quotes"], [us.key, "bars_5min"]),
    )
    job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("range")
    assert any(
        key.name == "stores_agree" for key in job_def.asset_layer.asset_graph.asset_check_keys
    )
    result = job_def.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=range_tags(*intraday_range(us, DAYS))
    )
    assert result.success
    check = _check(result)
    assert check.passed and check.blocking
    assert check.metadata["partitions_compared"].value == 2 * 78
    assert check.metadata["lake_rows"].value == check.metadata["warehouse_rows"].value == 780


def test_a_warehouse_that_alters_rows_fails_the_check_naming_the_partition(
    env,  # noqa: F811
    fresh_schema,  # noqa: F811
    us,
):
    defs = _defs(us)
    day = DAYS  # a two-day range: the check compares a day at a time and adds them up
    assert all(r.success for r in run_market(defs, us, day, dg.DagsterInstance.ephemeral()))
    # Someone's trigger rewrites one bar on its way into the warehouse: the lake keeps the
    # bar as written, the warehouse does not.
    with psycopg.connect(fresh_schema, autocommit=True) as conn:
        conn.execute(
            """
            CREATE FUNCTION us.nudge() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.symbol = 'AAPL' AND NEW.ts = '2026-11-18 15:00+00' THEN
                    NEW.close := NEW.close + 0.01;
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER nudge BEFORE INSERT ON us.bars_5min
                FOR EACH ROW EXECUTE FUNCTION us.nudge();
            """
        )
    intraday, daily = run_market(defs, us, day, dg.DagsterInstance.ephemeral())
    assert not intraday.success  # blocking: price_moves and daily_summary do not run
    check = _check(intraday)
    assert not check.passed
    assert check.metadata["differing_partitions"].value == ["2026-11-18-10:00"]
    assert check.metadata["differing_partition_count"].value == 1
    assert check.metadata["lake_rows"].value == check.metadata["warehouse_rows"].value == 780
    assert "only_in_lake" in check.metadata["differences"].value
    assert _check(daily).passed  # daily_bars has no such trigger


def _frame(rows):
    return pl.DataFrame(
        rows,
        schema={"symbol": pl.String, "ts": pl.Datetime("us", "UTC"), "close": pl.Float64},
        orient="row",
    )


def test_differing_partitions_is_row_exact():
    t = [dt.datetime(2026, 11, 18, 14, 30 + 5 * i, tzinfo=dt.UTC) for i in range(4)]
    keys = ["p0", "p1", "p2", "p3"]
    lake_rows = _frame([("A", t[0], 1.0), ("A", t[1], 2.0), ("B", t[2], None), ("A", t[3], 4.0)])
    same = _frame([("A", t[3], 4.0), ("B", t[2], None), ("A", t[1], 2.0), ("A", t[0], 1.0)])
    assert differing_partitions(lake_rows, same, t, keys) == {}
    # One value off in p1, a row missing in p3; nulls compare equal (p2).
    other = _frame([("A", t[0], 1.0), ("A", t[1], 2.0000001), ("B", t[2], None)])
    found = differing_partitions(lake_rows, other, t, keys)
    assert sorted(found) == ["p1", "p3"]
    assert found["p1"] == {
        "lake_rows": 1,
        "warehouse_rows": 1,
        "only_in_lake": 1,
        "only_in_warehouse": 1,
    }
    assert found["p3"]["warehouse_rows"] == 0
    # A duplicated row is a difference too, and an empty store against a full one.
    doubled = pl.concat([lake_rows, lake_rows.head(1)])
    assert sorted(differing_partitions(doubled, lake_rows, t, keys)) == ["p0"]
    assert sorted(differing_partitions(lake_rows, pl.DataFrame(), t, keys)) == keys
    assert differing_partitions(pl.DataFrame(), pl.DataFrame(), t, keys) == {}
