"""A backfill launched the way the UI launches one: GraphQL `launchPartitionBackfill` against the
code location (served by a real gRPC code server), executed by the backfill daemon's own
iteration, with runs in their own processes. Dagster puts every check of the selected assets
into such a run; none of them may be a freshness check, and no notification may follow."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from pathlib import Path

import dagster as dg
from dagster._core.execution.backfill import BulkActionStatus
from dagster._core.test_utils import instance_for_test
from dagster._daemon.backfill import execute_backfill_iteration
from dagster_graphql.test.utils import define_out_of_process_workspace, execute_dagster_graphql

from finance_assets.definitions import build_defs
from finance_assets.defs.common.partitions import INTRADAY_FMT, five_minute_partitions
from finance_assets.defs.market import freshness as freshness_module
from finance_assets.defs.ops.notifications import Notifier, build_check_failure_sensor

WORKSPACE = Path(__file__).resolve().parents[2] / "workspace.yaml"

START_SCHEDULE = """
mutation StartSchedule($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message stack }
  }
}
"""

LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
  }
}
"""


def _two_sessions_of_bars(market) -> list[str]:
    """Every 5-minute partition of two closed sessions (not today's), as the UI lists them."""
    first, last = market.last_sessions(3)[:2]
    start = market.session_bounds(first)[0]
    end = market.session_bounds(last)[1] - dt.timedelta(minutes=5)
    return five_minute_partitions(market).get_partition_keys_in_range(
        dg.PartitionKeyRange(
            start.astimezone(market.tz).strftime(INTRADAY_FMT),
            end.astimezone(market.tz).strftime(INTRADAY_FMT),
        )
    )


def _run_backfill(process_context, instance, backfill_id: str, timeout: float = 240) -> None:
    """What the daemon does: iterate the backfill, let its runs finish, until it is done."""
    logger = logging.getLogger("backfill_test")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        errors = [e for e in execute_backfill_iteration(process_context, logger) if e]
        assert not errors, errors
        backfill = instance.get_backfill(backfill_id)
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        if backfill.status != BulkActionStatus.REQUESTED and all(r.is_finished for r in runs):
            return
        time.sleep(1)
    statuses = [(r.run_id, r.status) for r in runs]
    raise AssertionError(f"backfill {backfill_id} did not finish in {timeout} s: {statuses}")


def test_a_backfill_launched_like_the_ui_runs_no_freshness_check(pg_url, tmp_path, monkeypatch, us):
    data = tmp_path / "data"
    for name, value in {
        "FINANCE_DATA_DIR": str(data),
        "FINANCE_PG_URL": pg_url,
        "FINANCE_MARKETS": "us",
        "DAGSTER_EVENT_BATCH_SIZE": "1000",
    }.items():
        monkeypatch.setenv(name, value)
    keys = _two_sessions_of_bars(us)
    assert len(keys) >= 2 * 78 - 1

    with (
        instance_for_test(temp_dir=str(tmp_path), synchronous_run_coordinator=True) as instance,
        define_out_of_process_workspace(str(WORKSPACE), None, instance) as process_context,
    ):
        result = execute_dagster_graphql(
            process_context.create_request_context(),
            LAUNCH_BACKFILL,
            {
                "backfillParams": {
                    "assetSelection": [
                        {"path": ["us", "raw_intraday_quotes"]},
                        {"path": ["us", "bars_5min"]},
                    ],
                    "partitionNames": keys,
                    "title": "two sessions, as from the UI",
                }
            },
        )
        launched = result.data["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        backfill_id = launched["backfillId"]
        _run_backfill(process_context, instance, backfill_id)

        assert instance.get_backfill(backfill_id).status == BulkActionStatus.COMPLETED_SUCCESS
        runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
        assert len(runs) == 1  # a single-run backfill
        run = runs[0]
        assert run.status == dg.DagsterRunStatus.SUCCESS
        plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
        steps = {step.key for step in plan.steps}
        assert steps and not [s for s in steps if "fresh" in s], steps
        checks = {key.name for key in run.asset_check_selection or ()}
        assert {"prices_not_null", "quarantine_rate"} <= checks
        assert "fresh" not in checks
        evaluations = instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        names = {
            r.event_log_entry.dagster_event.asset_check_evaluation_data.check_name
            for r in evaluations
        }
        assert "prices_not_null" in names and "fresh" not in names

        # Nothing to report: the notification sensor reads what the backfill recorded, and the
        # freshness sensor judges no feed while no schedule runs (a local setup, as after the demo).
        defs = build_defs()
        freshness = defs.get_sensor_def("freshness_sensor")
        with dg.build_sensor_context(instance=instance, definitions=defs) as context:
            assert not freshness.evaluate_tick(context).asset_events
        assert _notify(instance, data) == []

        # Turned on in the UI, the 5-minute schedule makes its feed judged, once a bar has come
        # due since; the verdict is about now, on the feed, with no partition.
        started = execute_dagster_graphql(
            process_context.create_request_context(),
            START_SCHEDULE,
            {"selector": _schedule_selector(process_context, "us_bars_5min_schedule")},
        ).data["startSchedule"]
        assert started["scheduleState"]["status"] == "RUNNING", started
        monkeypatch.setattr(
            freshness_module, "_now", lambda: _next_open(us) + dt.timedelta(hours=1)
        )
        with dg.build_sensor_context(instance=instance, definitions=defs) as context:
            events = freshness.evaluate_tick(context).asset_events
        assert [(e.asset_key.to_user_string(), e.passed, e.partition) for e in events] == [
            ("us/bars_5min_feed", False, None)
        ]
        for event in events:  # what the daemon does with a sensor's asset events
            instance.report_runless_asset_event(event)
        assert [n["title"] for n in _notify(instance, data)] == [
            "Check fresh failed on us/bars_5min_feed"
        ]


def _notify(instance, data: Path) -> list[dict]:
    """One tick of check_failure_notifications; the notices it wrote to the local file."""
    notices = data / "notifications.jsonl"
    with dg.build_sensor_context(
        instance=instance, resources={"notifier": Notifier(notifications_file=str(notices))}
    ) as context:
        build_check_failure_sensor().evaluate_tick(context)
    lines = notices.read_text().splitlines() if notices.exists() else []
    return [json.loads(line) for line in lines]


def _schedule_selector(process_context, name: str) -> dict[str, str]:
    location = process_context.create_request_context().code_locations[0]
    repository = next(iter(location.get_repositories().values()))
    return {
        "repositoryLocationName": location.name,
        "repositoryName": repository.name,
        "scheduleName": name,
    }


def _next_open(market) -> dt.datetime:
    """The open of the next session that starts after now."""
    now = dt.datetime.now(dt.UTC)
    day = now.astimezone(market.tz).date()
    while not (market.is_session(day) and market.session_bounds(day)[0] > now):
        day += dt.timedelta(days=1)
    return market.session_bounds(day)[0]
