"""A market's session written to the warehouse as the demo and the schedules write it (5-minute
bars, posts, then the daily job: bars, summary, sentiment, alerts, forecast, report, BI views),
with every warehouse connection read off the wire: no BEGIN is sent inside an open transaction,
so PostgreSQL logs no "there is already a transaction in progress" (the container stack's log
showed it during a warehouse write)."""

from __future__ import annotations

import datetime as dt

import dagster as dg

from finance_assets.demo import run_market
from finance_assets_tests.pg_wire import WireRecorder
from finance_assets_tests.test_assets.test_end_to_end import _defs, env, fresh_schema  # noqa: F401


def test_a_session_of_every_job_sends_no_begin_inside_a_transaction(
    env,  # noqa: F811
    fresh_schema,  # noqa: F811
    us,
    monkeypatch,
):
    with WireRecorder(fresh_schema) as wire:
        monkeypatch.setenv("FINANCE_PG_URL", wire.url)
        defs = _defs(us)
        runs = run_market(
            defs, us, [dt.date(2026, 11, 18)], dg.DagsterInstance.ephemeral(), with_posts=True
        )
        assert runs.success, [r.dagster_run.run_id for r in runs if not r.success]
    statements = [s.statement for s in wire.sent]
    copied = {s.split('"')[3] for s in statements if s.startswith("COPY ") and "FROM STDIN" in s}
    # The writes went through the recorder (an empty record would pass the checks below).
    assert {"bars_5min", "daily_bars", "daily_summary"} <= copied, copied
    assert not wire.begins_inside_a_transaction(), wire.begins_inside_a_transaction()
    assert not [n for n in wire.notices if n.sqlstate == "25001"], wire.notices
