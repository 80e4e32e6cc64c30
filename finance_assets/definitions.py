"""The code location: every domain's definitions for every configured market, and the resources
of the environment `FINANCE_ENV` names."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import dagster as dg

from finance_assets.defs.analytics import definitions as analytics
from finance_assets.defs.cluster import definitions as cluster
from finance_assets.defs.common import TASK_OVERRIDES_TAG
from finance_assets.defs.market import definitions as market
from finance_assets.defs.ops import definitions as ops
from finance_assets.defs.social import definitions as social
from finance_assets.defs.warehouse import definitions as warehouse
from finance_assets.lib.markets import Market, markets_from_env
from finance_assets.lib.settings import SettingsError
from finance_assets.resources import build_resources, current_env
from finance_assets.resources.steps import step_execution_from_env, step_executor

# Single-run backfills are the point of this project; Dagster flags the parameter as beta.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)
# The daily assets read the session before their first (its close is the base of the return;
# its posts after the close count): a mapping option Dagster still flags as beta.
warnings.filterwarnings(
    "ignore", message=".*allow_nonexistent_upstream_partitions.*", category=dg.BetaWarning
)
# Code references in the UI, likewise beta (20 warnings at every load otherwise).
warnings.filterwarnings(
    "ignore",
    message=".*(with_source_code_references|CodeReferencesMetadataValue|LocalFileCodeReference).*",
    category=dg.BetaWarning,
)


def build_domain_defs(
    markets: Sequence[Market], *, follow_schedules: bool = True
) -> dg.Definitions:
    """The data domains' definitions for `markets` (each domain builds its own), without the
    operations domain and without resources: what the tests run a market with."""
    return dg.Definitions.merge(
        market.build_defs(markets, follow_schedules=follow_schedules),
        warehouse.build_defs(markets),
        social.build_defs(markets),
        cluster.build_defs(markets),
        analytics.build_defs(markets),
    )


def build_defs() -> dg.Definitions:
    # Every bad setting in one error, markets' and resources' alike, before anything is built.
    problems: list[str] = []
    try:
        markets = list(markets_from_env().values())
    except SettingsError as exc:
        problems += exc.problems
    try:
        resources = build_resources()
    except SettingsError as exc:
        problems += exc.problems
    if problems:
        raise SettingsError(problems)
    # FINANCE_STEP_EXECUTOR=ecs: each step an ECS task under its component's role.
    execution = step_execution_from_env()
    # Locally a feed is judged only while its schedule runs; in production always.
    defs = dg.Definitions.merge(
        build_domain_defs(markets, follow_schedules=current_env() == "local"),
        ops.build_defs(),
        dg.Definitions(resources=resources, executor=step_executor(execution)),
    )
    if execution.executor == "ecs":
        check_step_roles(defs)
    return defs


def check_step_roles(defs: dg.Definitions) -> None:
    """Every asset step says its role (`defs.common.step_tags`): under the ECS executor one
    without would run under the run task's role, which reads and writes no data."""
    untagged = sorted(
        key.to_user_string()
        for asset in defs.assets or []
        if isinstance(asset, dg.AssetsDefinition) and asset.is_executable
        if TASK_OVERRIDES_TAG not in asset.op.tags
        for key in asset.keys
    )
    if untagged:
        raise ValueError(
            f"FINANCE_STEP_EXECUTOR=ecs: no step role on {', '.join(untagged)}: build their "
            "op_tags with defs.common.step_tags"
        )


defs = build_defs()
