"""Where a run's steps execute, and under which IAM role.

`FINANCE_STEP_EXECUTOR=default` (the default) runs every step in the run's own process, one
after another (Dagster's in-process executor): Dagster's own default starts a process per step,
each loading the code location again (~5 s a step, measured), which a daily run of eight steps
paid eight times. `multiprocess` is Dagster's default (a process per step, steps in parallel);
`ecs` (production, with `EcsRunLauncher`) starts each step as an ECS task of its
own (`dagster_aws.ecs.ecs_executor`), so each can run under its component's role: the ingest
steps (raw payloads) under `FINANCE_INGEST_ROLE_ARN`, every other step under
`FINANCE_TRANSFORM_ROLE_ARN` (deployment/aws/platform.yaml). The roles reach ECS through each
op's `ecs/task_overrides` tag (`defs/common.step_tags`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import dagster as dg

from finance_assets.lib.settings import EnvSettings, SettingsError

Component = Literal["ingest", "transform"]
EXECUTORS = ("default", "multiprocess", "ecs")
ROLE_VARIABLES: Mapping[Component, str] = {
    "ingest": "FINANCE_INGEST_ROLE_ARN",
    "transform": "FINANCE_TRANSFORM_ROLE_ARN",
}
# arn:<partition>:iam::<12-digit account>:role/<path/name>, IAM's own character set.
_ROLE_ARN = re.compile(r"arn:aws(-cn|-us-gov|-iso|-iso-b)?:iam::\d{12}:role/[\w+=,.@/-]{1,512}")


@dataclass(frozen=True)
class StepExecution:
    executor: str = "default"
    roles: Mapping[str, str] = field(default_factory=dict)  # component -> role ARN


def check_step_execution(settings: EnvSettings, env: str) -> StepExecution:
    """The executor and the step roles, each bad value recorded on `settings`."""
    executor = settings.choice("FINANCE_STEP_EXECUTOR", "default", EXECUTORS, "a step executor")
    roles: dict[str, str] = {}
    for component, name in ROLE_VARIABLES.items():
        value = settings.raw(name)
        if value is None:
            if executor == "ecs":
                settings.problem(
                    f"{name} is not set: FINANCE_STEP_EXECUTOR=ecs runs the {component} steps "
                    "under that role"
                )
        elif not _ROLE_ARN.fullmatch(value):
            settings.problem(
                f"{name}={value!r} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)"
            )
        else:
            roles[component] = value
    if executor == "ecs" and env != "prod":
        # The ECS executor starts steps from a run task EcsRunLauncher made: elsewhere every
        # run would fail at its first step.
        settings.problem(
            f"FINANCE_STEP_EXECUTOR=ecs needs FINANCE_ENV=prod (EcsRunLauncher); "
            f"FINANCE_ENV is {env!r}"
        )
    if executor == "ecs" and len(roles) < len(ROLE_VARIABLES):
        executor = "default"  # recorded above; no half-tagged definitions
    return StepExecution(executor, roles if executor == "ecs" else {})


def step_execution_from_env(environ: Mapping[str, str] | None = None) -> StepExecution:
    """The checked settings of `environ` (the process environment by default)."""
    environ = os.environ if environ is None else environ
    settings = EnvSettings(environ)
    env = (environ.get("FINANCE_ENV") or "local").strip().lower()
    found = check_step_execution(settings, env)
    settings.check()
    return found


def step_executor(execution: StepExecution) -> dg.ExecutorDefinition:
    """The code location's executor: ECS tasks, a process per step, or the run's own process."""
    if execution.executor == "ecs":
        from dagster_aws.ecs import ecs_executor

        return ecs_executor
    if execution.executor == "multiprocess":
        return dg.multiprocess_executor
    return dg.in_process_executor


__all__ = [
    "EXECUTORS",
    "ROLE_VARIABLES",
    "Component",
    "SettingsError",
    "StepExecution",
    "check_step_execution",
    "step_execution_from_env",
    "step_executor",
]
