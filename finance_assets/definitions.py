"""The code location: every domain's definitions, loaded from the `defs/` folder by Dagster's
convention (each domain contributes its own through `@dg.definitions`), with the resources and
executor of the environment `FINANCE_ENV` names. Settings are checked first, all at once."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import dagster as dg

import finance_assets.defs
from finance_assets.defs.common.assets import TASK_OVERRIDES_TAG
from finance_assets.defs.common.markets import serving
from finance_assets.lib.markets import Market, markets_from_env
from finance_assets.lib.settings import SettingsError
from finance_assets.resources import build_resources
from finance_assets.resources.steps import step_execution_from_env, step_executor

# The project's root (pyproject.toml's folder when run from a checkout); the defs folder is found
# from the package itself, so an installed wheel (the container image) loads the same way.
PROJECT_ROOT = Path(__file__).resolve().parent.parent

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


def build_domain_defs(markets: Sequence[Market] | None = None) -> dg.Definitions:
    """Every domain's definitions (`defs/`), for `markets` (None: the configured ones), without
    the environment's resources: what the tests run a market with."""
    with serving(markets), warnings.catch_warnings():
        # The folder loader flags its own module scanning as a preview (a warning per module).
        warnings.simplefilter("ignore", dg.PreviewWarning)
        tree = dg.ComponentTree.from_module(
            defs_module=finance_assets.defs, project_root=PROJECT_ROOT
        )
        # The defs folder, not the tree's root: the root adds the JSON schema of every component
        # type the installed Dagster libraries register (a UI catalogue for components declared
        # in YAML, which this project does not use), and finding them imports every such library
        # (dagster-aws alone imports Dagster's test utilities): ~1 s of each load.
        return dg.Definitions.merge(
            tree.build_defs(tree.defs_module_path), dg.Definitions(component_tree=tree)
        )


def build_defs() -> dg.Definitions:
    # Every bad setting in one error, markets' and resources' alike, before anything is built.
    problems: list[str] = []
    try:
        markets_from_env()
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
    defs = dg.Definitions.merge(
        build_domain_defs(),
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
