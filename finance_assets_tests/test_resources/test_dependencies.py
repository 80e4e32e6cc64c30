"""What `pip install .` brings is enough for everything the package imports outside its
optional extras: `make demo` installs only that, and then suggests the lake query (which once
failed with `No module named 'duckdb'`, DuckDB being in the dev extras only)."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Imported only by the parts that need their extra (`spark`, `ui`), inside functions.
OPTIONAL = {"pyspark": "spark", "dagster_pyspark": "spark", "dagster_pipes": "spark"}


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _closure(names: set[str]) -> set[str]:
    """The distributions `names` install, with their own requirements (no extras)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [_name(r) for r in requires if "extra ==" not in r]
    return seen


def _imported_modules() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "finance_assets").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"finance_assets", "__future__"}


def test_every_import_of_the_package_is_installed_by_its_core_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    installed = _closure({_name(r) for r in project["dependencies"]})
    providers = metadata.packages_distributions()
    missing = {}
    for module in sorted(_imported_modules()):
        if module in OPTIONAL:
            extra = project["optional-dependencies"][OPTIONAL[module]]
            assert any(_name(r) in _closure({_name(x) for x in extra}) for r in extra), module
            continue
        distributions = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        if not distributions & installed:
            missing[module] = sorted(distributions) or ["(no distribution found)"]
    assert not missing, f"imported but not in [project.dependencies]: {missing}"
    assert "duckdb" in installed
