"""Run notices: `run_failure_notifications`, `run_success_notifications` (one factory, one per
run status) and `run_notification_retries`.

Dagster advances a run-status sensor's cursor even when its function fails, so the ledger of
what each run is owed is kept on the run itself (tags `finance/notify*`) and the retry sensor
re-sends it. That ledger is what `dagster_slack.make_slack_on_run_failure_sensor` lacks: a post
that fails there is lost.
"""

import json
from dataclasses import dataclass
from typing import Any

import dagster as dg

from finance_assets.defs.ops.notifications import delivery
from finance_assets.defs.ops.notifications.content import run_notification
from finance_assets.defs.ops.notifications.delivery import Tick
from finance_assets.resources.notifier import Notifier

RUN_NOTICE_TAG = "finance/notify"
RUN_PENDING_TAG = "finance/notify_pending"


def _run_state(run: dg.DagsterRun) -> dict[str, Any] | None:
    """This run's delivery state, or None. Re-executions copy their parent's tags: a state that
    names another run is the parent's, not this run's."""
    try:
        state = json.loads(run.tags.get(RUN_NOTICE_TAG, ""))
    except ValueError:
        return None
    return state if isinstance(state, dict) and state.get("run") == run.run_id else None


def notify_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, kind: str, notifier: Notifier, tick: Tick
) -> list[str]:
    """Sends what this run is still owed and records it on the run; returns what is owed."""
    state = _run_state(run) or {"run": run.run_id, "kind": kind, "sent": [], "pending": []}
    todo = [c for c in notifier.channels(kind) if c not in state["sent"]]
    notification = run_notification(instance, run, kind, notifier)
    undelivered = tick.deliver(notification, todo)
    state.update(
        kind=kind,
        sent=sorted(set(state["sent"]) | (set(todo) - set(undelivered))),
        pending=undelivered,
    )
    instance.add_run_tags(
        run.run_id,
        {
            RUN_NOTICE_TAG: json.dumps(state, separators=(",", ":")),
            RUN_PENDING_TAG: "1" if undelivered else "0",
        },
    )
    return undelivered


@dataclass(frozen=True)
class RunNotice:
    """What one run-status sensor notifies: a run status, its route (`ROUTES` key) and name."""

    status: dg.DagsterRunStatus
    kind: str
    name: str
    description: str
    default_status: dg.DefaultSensorStatus


RUN_FAILURE = RunNotice(
    status=dg.DagsterRunStatus.FAILURE,
    kind="run_failure",
    name="run_failure_notifications",
    description="Posts a notice for every failed run (chat channel and e-mail); what could "
    "not be delivered is re-sent by run_notification_retries.",
    default_status=dg.DefaultSensorStatus.RUNNING,
)
RUN_SUCCESS = RunNotice(
    status=dg.DagsterRunStatus.SUCCESS,
    kind="run_success",
    name="run_success_notifications",
    description="Posts a notice for every successful run (NOTIFY_ON_SUCCESS=1 starts it).",
    default_status=dg.DefaultSensorStatus.STOPPED,
)


def build_run_status_sensor(
    notice: RunNotice,
    *,
    name: str | None = None,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus | None = None,
) -> dg.SensorDefinition:
    """A notice per run of this code location reaching `notice.status`, on the channels its
    route names; what is not delivered stays owed on the run's tags."""

    @dg.run_status_sensor(
        run_status=notice.status,
        name=name or notice.name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status or notice.default_status,
        description=notice.description,
    )
    def _run_notices(context: dg.RunStatusSensorContext, notifier: Notifier) -> None:
        # Never raise: Dagster would advance past the run anyway. What is owed is on its tags.
        tick = Tick(notifier, context.log, {})
        notify_run(context.instance, context.dagster_run, notice.kind, notifier, tick)

    return _run_notices


def build_run_failure_sensor(**options: Any) -> dg.SensorDefinition:
    """`run_failure_notifications`: chat and e-mail, running by default."""
    return build_run_status_sensor(RUN_FAILURE, **options)


def build_run_success_sensor(**options: Any) -> dg.SensorDefinition:
    """`run_success_notifications`: chat; stopped unless NOTIFY_ON_SUCCESS."""
    return build_run_status_sensor(RUN_SUCCESS, **options)


def build_run_notice_retry_sensor(
    name: str = "run_notification_retries",
    *,
    minimum_interval_seconds: int = 60,
    limit: int = 50,
    stale_after_seconds: float = 600,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """Re-sends run notices still owed (tag finance/notify_pending=1). Cursor: Retry-After holds."""

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Re-sends run failure/success notices that could not be delivered.",
    )
    def _retries(context: dg.SensorEvaluationContext, notifier: Notifier) -> dg.SkipReason:
        hold = json.loads(context.cursor) if context.cursor else {}
        tick = Tick(notifier, context.log, {str(k): float(v) for k, v in hold.items()})
        records = context.instance.get_run_records(
            dg.RunsFilter(tags={RUN_PENDING_TAG: "1"}), limit=limit, ascending=True
        )
        owed = 0
        for record in records:
            run = record.dagster_run
            state = _run_state(run)
            if state is None:
                # A parent's tags copied by a re-execution. Leave a fresh failure to its sensor;
                # once that has had its chance, the copied flag only clutters this query.
                ended = record.end_time or record.update_timestamp.timestamp()
                if run.is_finished and delivery.now() - ended > stale_after_seconds:
                    context.instance.add_run_tags(run.run_id, {RUN_PENDING_TAG: "0"})
                continue
            owed += len(notify_run(context.instance, run, state["kind"], notifier, tick))
        context.update_cursor(json.dumps(tick.live_hold()))
        return dg.SkipReason(
            f"{len(records)} run(s) owed notices; sent {tick.sent}, {owed} still owed"
        )

    return _retries
