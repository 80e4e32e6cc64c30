"""Run one of the code location's own jobs in this process, recorded as the webserver would
record it: with the job's origin in the `finance_assets` code location.

`JobDefinition.execute_in_process` records runs without an origin, so the UI offers no
"Re-execute" for them ("not available in your definitions") and files them under no code
location. The demo's runs are ordinary runs of the jobs the schedules use, so a user can open,
re-execute and backfill from each of them.

It imports Dagster internals (`dagster._core`) because no public API creates a run with a
remote job origin outside the webserver and the daemon (the other modules that import
internals say why at their top: `dagster_instance/pooled_storage.py`,
`dagster_instance/local_storage.py`, `defs/common/partitions.py`). The demo's tests
(`test_ui/test_demo.py`, `test_ui/test_ui_browser.py`) re-execute such runs, so an upgrade that
moves these names fails there first.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping

import dagster as dg
from dagster._core.definitions.job_base import InMemoryJob
from dagster._core.definitions.repository_definition.valid_definitions import (
    SINGLETON_REPOSITORY_NAME,
)
from dagster._core.execution.api import JobExecutionResult, execute_run
from dagster._core.remote_origin import (
    ManagedGrpcPythonEnvCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

# As `workspace.yaml` names the code location: the UI matches runs to jobs by these names.
LOCATION_NAME = "finance_assets"
MODULE_NAME = "finance_assets.definitions"
ATTRIBUTE = "defs"
# Steps run in this process: the demo and the tests pay ~0.1 s a run instead of a subprocess
# per step. A re-execution from the UI may pick another executor.
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def job_origin(job_name: str) -> RemoteJobOrigin:
    """The origin of `job_name` in the code location `workspace.yaml` loads."""
    location = ManagedGrpcPythonEnvCodeLocationOrigin(
        loadable_target_origin=LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=MODULE_NAME,
            attribute=ATTRIBUTE,
            working_directory=os.getcwd(),
        ),
        location_name=LOCATION_NAME,
    )
    return RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME).get_job_origin(job_name)


def run_job(
    defs: dg.Definitions,
    job_name: str,
    instance: dg.DagsterInstance,
    *,
    tags: Mapping[str, str],
    asset_selection: Iterable[dg.AssetKey] | None = None,
) -> JobExecutionResult:
    """Run the job `job_name` of `defs` (optionally a subset of its assets) to completion.

    Never raises for a failed step: the result says (`success`, `failure_reasons`).
    """
    job_def = defs.resolve_job_def(job_name)
    selection = frozenset(asset_selection) if asset_selection is not None else None
    run = instance.create_run_for_job(
        job_def=job_def,
        run_config={**IN_PROCESS, **QUIET},
        tags={**job_def.run_tags, **tags},
        asset_selection=selection,
        remote_job_origin=job_origin(job_name),
    )
    return execute_run(InMemoryJob(job_def), run, instance)


def failure_reasons(result: dg.ExecutionResult) -> list[str]:
    """`<step>: <first line of its error>` for every failed step (or the run's own failure)."""
    reasons = []
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            error = event.step_failure_data.error
            # Dagster wraps the user's exception ("Error occurred while executing op"): the
            # innermost cause is what the user needs to read.
            while error is not None and error.cause is not None:
                error = error.cause
            text = (error.message if error else "").strip()
            first = text.splitlines()[0] if text else "failed"
            reasons.append(f"{event.step_key}: {first}")
    if not reasons and not result.success:
        reasons.append("the run failed before any step (see its logs)")
    return reasons
