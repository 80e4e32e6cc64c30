"""Dagster's project conventions: `dg` finds and loads the project, each domain contributes its
own definitions from the `defs/` folder, jobs select assets by the schedule they declare, no
domain imports another, and a private Dagster import stands only where the storage classes and
the in-process launcher need one (pinned here, so an upgrade that moves a name fails here)."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from finance_assets.definitions import build_domain_defs
from finance_assets.defs.common.automation import DAILY, EVERY_5MIN, schedule_tags
from finance_assets.defs.common.partitions import daily_partitions
from finance_assets.resources import build_resources

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "finance_assets"
DOMAINS = ("analytics", "cluster", "market", "ops", "social", "vendor", "warehouse")
# Where a private Dagster name is imported, and why (nothing public offers it).
PRIVATE_IMPORTS_ALLOWED = {
    # Instance storage classes: Dagster's plug-in interface for storage has no public base.
    "dagster_instance/pooled_storage.py",
    "dagster_instance/local_storage.py",
    # Runs created with the code location's job origin, so the UI can re-execute the demo's
    # runs: no public API creates one outside the webserver and the daemon.
    "launch.py",
}


def _dg(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    home = tmp_path / "dagster_home"
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    venv = Path(sys.executable).parent
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "FINANCE_DATA_DIR": str(tmp_path / "data"),
        "VIRTUAL_ENV": str(venv.parent),
        "PATH": f"{venv}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [str(venv / "dg"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_dg_checks_and_lists_the_project(tmp_path):
    checked = _dg("check", "defs", "--use-active-venv", tmp_path=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "All definitions loaded successfully" in checked.stdout + checked.stderr
    listed = _dg("list", "defs", "--json", tmp_path=tmp_path)
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout[listed.stdout.index("{") :])
    assets = {a["asset_key"] for a in found["assets"]}
    schedules = {s["name"] for s in found["schedules"]}
    for market in ("us", "uk"):
        assert {f"{market}/bars_5min", f"{market}/daily_summary", f"{market}/bi_views"} <= assets
        assert {f"{market}_bars_5min_schedule", f"{market}_daily_schedule"} <= schedules
    assert "retention_daily" in schedules


def test_every_domain_contributes_its_own_definitions():
    """Each domain folder holds the `@dg.definitions` it contributes; the root lists none."""
    for domain in DOMAINS:
        folder = PACKAGE / "defs" / domain
        contributing = [
            path
            for path in folder.rglob("*.py")
            if any(
                isinstance(node, ast.FunctionDef)
                and any(ast.unparse(d) == "dg.definitions" for d in node.decorator_list)
                for node in ast.parse(path.read_text()).body
            )
        ]
        assert contributing, f"defs/{domain} contributes no @dg.definitions"
    root = (PACKAGE / "definitions.py").read_text()
    assert not any(f"defs.{domain}" in root for domain in DOMAINS)


def _imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_domain_imports_another():
    for domain in DOMAINS:
        for path in (PACKAGE / "defs" / domain).rglob("*.py"):
            for module in _imported_modules(path):
                if not module.startswith("finance_assets.defs."):
                    continue
                other = module.split(".")[2]
                assert other in (domain, "common"), (
                    f"{path.relative_to(ROOT)} imports {module}: share it through defs/common/"
                )


def test_private_dagster_imports_stand_only_where_needed_and_still_resolve():
    found: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dagster._"):
                found.setdefault(str(path.relative_to(PACKAGE)), set()).update(
                    f"{node.module}:{alias.name}" for alias in node.names
                )
    assert set(found) <= PRIVATE_IMPORTS_ALLOWED, set(found) - PRIVATE_IMPORTS_ALLOWED
    for names in found.values():
        for name in names:
            module, attribute = name.split(":")
            assert hasattr(importlib.import_module(module), attribute), (
                f"{name} moved in this Dagster version"
            )


@pytest.fixture
def us_defs(us, monkeypatch, tmp_path):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path))
    return dg.Definitions.merge(
        build_domain_defs([us]), dg.Definitions(resources=build_resources())
    )


def test_a_new_asset_joins_its_schedule_by_its_own_tag(us, us_defs):
    """An asset declared in any domain with `schedule=daily` runs in the market's daily job,
    and not in the other market's nor in the 5-minute job: nothing else is edited."""

    @dg.asset(
        key=["us", "new_daily_metric"],
        partitions_def=daily_partitions(us),
        tags=schedule_tags(us, DAILY),
    )
    def new_daily_metric() -> None: ...

    defs = dg.Definitions.merge(us_defs, dg.Definitions(assets=[new_daily_metric]))
    key = dg.AssetKey(["us", "new_daily_metric"])

    def executable(job: str) -> set[dg.AssetKey]:
        return set(defs.resolve_job_def(job).asset_layer.asset_graph.executable_asset_keys)

    assert key in executable("us_daily_job")
    assert key not in executable("us_bars_5min_job")
    assert key not in executable("us_landing_job")


def test_jobs_hold_exactly_the_assets_that_declare_their_schedule(us, us_defs):
    graph = us_defs.resolve_asset_graph()
    jobs = {EVERY_5MIN: "us_bars_5min_job", DAILY: "us_daily_job", "hourly": "us_posts_job"}
    for schedule, job in jobs.items():
        declared = {
            key
            for key in graph.get_all_asset_keys()
            if graph.get(key).tags.get("schedule") == schedule and graph.get(key).is_executable
        }
        in_job = set(us_defs.resolve_job_def(job).asset_layer.asset_graph.executable_asset_keys)
        assert declared and in_job == declared, job
    daily_graph = us_defs.resolve_job_def("us_daily_job").asset_layer.asset_graph
    daily = {key.to_user_string() for key in daily_graph.executable_asset_keys}
    assert daily == {
        "us/raw_daily_quotes",
        "us/daily_bars",
        "us/corporate_actions",
        "us/adjusted_daily_bars",
        "us/daily_summary",
        "us/daily_sentiment",
        "us/stock_sentiment_daily",
        "us/market_report",
        "us/price_forecast",
        "us/bi_views",
    }


def test_an_unknown_schedule_is_refused(us):
    with pytest.raises(ValueError, match="unknown schedule 'weekly'"):
        schedule_tags(us, "weekly")
