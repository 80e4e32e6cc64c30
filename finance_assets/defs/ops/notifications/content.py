"""What a notice says, read from Dagster: a check evaluation's or a run's details, turned into
the channel-independent `Notification` of `lib/notify.py`. Whatever cannot be read is left
out; the notice itself always goes out."""

from typing import Any

import dagster as dg

from finance_assets.defs.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from finance_assets.lib import notify
from finance_assets.lib.notify import Notification
from finance_assets.resources.notifier import Notifier

PARTITION_TAG = "dagster/partition"


def plain(value: Any) -> Any:
    """A metadata value as text or JSON-able data (markdown samples stay markdown, a table
    sample becomes one line per row)."""
    if isinstance(value, dg.TableMetadataValue):
        names = [column.name for column in value.schema.columns]
        rows = [" | ".join(str(record.data.get(n)) for n in names) for record in value.records]
        return "\n".join([" | ".join(names), *rows])
    inner = getattr(value, "value", value)
    if isinstance(inner, (str, int, float, bool)) or inner is None:
        return inner
    if isinstance(inner, (dict, list, tuple)):
        return inner
    return str(inner)


def run_partition(run: dg.DagsterRun | None) -> str | None:
    """The run's partition, or the range of a single-run backfill (`start … end`)."""
    if run is None:
        return None
    tags = run.tags
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG]
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start} … {end}"
    return None


def _spec_description(context: dg.SensorEvaluationContext, key: dg.AssetCheckKey) -> str | None:
    # The check's own description lives in its spec, in the code location, not in the event.
    try:
        repo = context.repository_def
        if repo is None or key not in repo.asset_graph.asset_check_keys:
            return None
        return repo.asset_graph.get_check_spec(key).description
    except Exception:
        return None


class RunCache:
    """Runs by id, each read once per tick (many check evaluations share a run)."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._runs: dict[str, dg.DagsterRun | None] = {}

    def get(self, run_id: str) -> dg.DagsterRun | None:
        if run_id not in self._runs:
            self._runs[run_id] = self.instance.get_run_by_id(run_id)
        return self._runs[run_id]


def check_notification(
    context: dg.SensorEvaluationContext,
    entry: dg.EventLogEntry,
    runs: RunCache,
    ui_url: str,
) -> Notification:
    """The notice of one failed check evaluation (an ASSET_CHECK_EVALUATION event)."""
    evaluation = entry.dagster_event.asset_check_evaluation_data
    key = dg.AssetCheckKey(evaluation.asset_key, evaluation.check_name)
    run_id = entry.run_id or None
    try:
        partition = evaluation.partition or run_partition(runs.get(run_id) if run_id else None)
        metadata = {k: plain(v) for k, v in evaluation.metadata.items()}
        description = evaluation.description or _spec_description(context, key)
    except Exception as err:
        # Whatever goes wrong while enriching, the notice itself still goes out.
        context.log.warning(f"could not read details of {key.to_user_string()}: {err}")
        partition, metadata, description = evaluation.partition, {}, evaluation.description
    return notify.check_failure_notification(
        asset_path=evaluation.asset_key.path,
        check_name=evaluation.check_name,
        severity=evaluation.severity.value,
        partition=partition,
        description=description,
        metadata=metadata,
        run_id=run_id,
        ui_url=ui_url,
    )


def _step_errors(instance: dg.DagsterInstance, run_id: str) -> tuple[str | None, list]:
    records = instance.get_records_for_run(
        run_id,
        of_type={dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.STEP_FAILURE},
        limit=50,
    ).records
    message, steps = None, []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.RUN_FAILURE:
            message = event.message
        else:
            error = event.step_failure_data.error
            steps.append((event.step_key or "?", root_error(error) or event.message or ""))
    return message, steps


def root_error(error: Any) -> str:
    """What went wrong in the step's own words: Dagster wraps the user's exception ("Error
    occurred while executing op", "Exceeded max_retries of 3"); the innermost cause is the
    provider's or the step's error, the outermost line says what gave up (kept, after it)."""
    if error is None:
        return ""
    chain = [error]
    while chain[-1].cause is not None:
        chain.append(chain[-1].cause)
    root = chain[-1].message.strip()
    if len(chain) == 1:
        return root
    outer = error.message.strip().splitlines()[0] if error.message.strip() else ""
    return f"{root}\n({outer})" if outer and outer not in root else root


def run_notification(
    instance: dg.DagsterInstance, run: dg.DagsterRun, kind: str, notifier: Notifier
) -> Notification:
    """The notice of a finished run: `run_failure` (with each failed step's error) or
    `run_success` (with its duration)."""
    partition = run_partition(run)
    if kind == "run_failure":
        try:
            message, steps = _step_errors(instance, run.run_id)
        except Exception as err:
            # Without the step errors the notice still goes out: the link leads to them.
            message, steps = f"(could not read the run's errors: {type(err).__name__})", []
        return notify.run_failure_notification(
            job_name=run.job_name,
            run_id=run.run_id,
            partition=partition,
            message=notifier.redact(message or ""),
            step_errors=[(step, notifier.redact(error)) for step, error in steps],
            ui_url=notifier.ui_url,
        )
    duration = None
    try:
        record = instance.get_run_record_by_id(run.run_id)
        if record is not None and record.start_time and record.end_time:
            duration = record.end_time - record.start_time
    except Exception:
        pass  # the duration is a nicety
    return notify.run_success_notification(
        job_name=run.job_name,
        run_id=run.run_id,
        partition=partition,
        duration_seconds=duration,
        ui_url=notifier.ui_url,
    )
