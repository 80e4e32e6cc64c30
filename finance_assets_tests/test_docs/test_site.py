"""The documentation site builds with `mkdocs build --strict`: a broken link, a missing anchor,
a page left out of the nav or a nav entry without a page fails it (mkdocs.yml's `validation`
makes each a warning, and --strict makes a warning fatal). And what the pages say stays true of
the tree: every path they name exists, every environment variable the code reads is on the
settings page."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from finance_assets_tests.test_docs.markdown_links import DOCS, ROOT, code_spans, prose_lines

PAGES = sorted(DOCS.glob("*.md"))
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_site_builds_strictly(tmp_path: Path) -> None:
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's banner, not a build warning
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--clean"]
    command += ["--config-file", str(ROOT / "mkdocs.yml"), "--site-dir", str(site)]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    output = _ANSI.sub("", done.stdout + done.stderr)
    assert "No module named mkdocs" not in output, (
        "install the docs extra: pip install -e '.[docs]'"
    )
    warnings = [line for line in output.splitlines() if line.startswith(("WARNING", "ERROR"))]
    assert done.returncode == 0 and not warnings, output[-4000:]
    # Every page of the nav was rendered (mkdocs writes <page>/index.html for <page>.md).
    for page in PAGES:
        html = site / "index.html" if page.stem == "index" else site / page.stem / "index.html"
        assert html.exists(), f"{page.name} was not rendered to {html.relative_to(site)}"


def test_nav_names_every_page_once() -> None:
    config = yaml.load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"), Loader=yaml.BaseLoader)

    def files(node: object) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [f for value in node.values() for f in files(value)]
        return [f for item in node for f in files(item)]  # a list

    in_nav = files(config["nav"])
    assert sorted(in_nav) == sorted(p.name for p in PAGES), (
        "mkdocs.yml's nav and docs/*.md differ (each page once, under the heading a user looks "
        "for it)"
    )


# A path named in a code span: folders and files of the tree, not runtime paths (`data/...`,
# `<market>/...`), URLs or module attributes (`lib/answers.kept_spans`).
_PATH = re.compile(r"[\w.-]+(?:/[\w.-]+)+/?")
_EXTENSIONS = {".py", ".md", ".yaml", ".yml", ".toml", ".sql", ".sh", ".json", ".png", ".txt"}
# Made at run time, or beside the repository (`shared/`).
_NOT_IN_TREE = {"data", ".dagster_home", ".venv", "site", "landing", "raw", "lake", "shared", ".."}
# Where a path is written relative to: the repository, the package, the tests, spark/.
_BASES = (ROOT, ROOT / "finance_assets", ROOT / "finance_assets_tests")


def _names_a_tree_path(span: str) -> bool:
    span = span.removeprefix("./")
    if not _PATH.fullmatch(span) or span.split("/")[0] in _NOT_IN_TREE:
        return False
    return span.endswith("/") or Path(span).suffix in _EXTENSIONS


def test_paths_named_in_the_docs_exist() -> None:
    missing = []
    for page in [ROOT / "README.md", *PAGES]:
        for number, span in code_spans(page):
            if _names_a_tree_path(span) and not any((b / span).exists() for b in _BASES):
                missing.append(f"{page.relative_to(ROOT)}:{number}: `{span}`")
    assert not missing, "paths the docs name that are not in the tree:\n" + "\n".join(missing)


def _module_defines(module: Path, name: str) -> bool:
    pattern = rf"^(?:class|def) {re.escape(name)}\b|^{re.escape(name)}\s*[:=]"
    return re.search(pattern, module.read_text(encoding="utf-8"), re.MULTILINE) is not None


def test_dotted_names_in_the_docs_exist() -> None:
    """`finance_assets.a.b` (a module) or `finance_assets.a.b.Name` (a name defined in it)."""
    missing = []
    for page in [ROOT / "README.md", *PAGES]:
        for number, span in code_spans(page):
            if not re.fullmatch(r"finance_assets(?:\.\w+)+", span):
                continue
            parts = span.split(".")
            found = False
            for cut in range(len(parts), 0, -1):
                base = ROOT.joinpath(*parts[:cut])
                module = base.with_suffix(".py") if base.with_suffix(".py").exists() else None
                module = module or (base / "__init__.py" if base.is_dir() else None)
                if module is None:
                    continue
                rest = parts[cut:]
                found = not rest or (len(rest) == 1 and _module_defines(module, rest[0]))
                break
            if not found:
                missing.append(f"{page.relative_to(ROOT)}:{number}: `{span}`")
    assert not missing, "modules or names the docs cite that do not exist:\n" + "\n".join(missing)


# The prefixes of the project's own settings. AWS_* are boto3's and DAGSTER_* mostly Dagster's:
# those the project reads itself are named in the code like any other.
_SETTING = re.compile(
    r"(?:FINANCE|MARKET_DATA|POSTS|TWELVEDATA|ALPHAVANTAGE|YFINANCE|X|MONGODB|COMPREHEND|SLACK"
    r"|SMTP|NOTIFY|DAGSTER|DEMO)_[A-Z0-9]+(?:_[A-Z0-9]+)*"
)


def _env_names(node: object) -> list[str]:
    """The `env: NAME` values of a parsed dagster.yaml (Dagster's EnvVar config source)."""
    if isinstance(node, dict):
        own = [node["env"]] if isinstance(node.get("env"), str) else []
        return own + [name for value in node.values() for name in _env_names(value)]
    if isinstance(node, list):
        return [name for item in node for name in _env_names(item)]
    return []


def _settings_in_code() -> dict[str, str]:
    """Each variable the package reads (a string literal of that shape) or an instance's
    dagster.yaml takes from the environment, with where it was found."""
    found: dict[str, str] = {}
    for module in sorted((ROOT / "finance_assets").rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _SETTING.fullmatch(node.value)
            ):
                found.setdefault(node.value, str(module.relative_to(ROOT)))
    for instance in sorted((ROOT / "deployment").glob("*/dagster.yaml")):
        # The AWS instance is an Fn::Sub template: its `${Resource}`s stand in for themselves.
        text = re.sub(r"\$\{(\w+)\}", r"\1", instance.read_text(encoding="utf-8"))
        for name in _env_names(yaml.safe_load(text)):
            found.setdefault(name, str(instance.relative_to(ROOT)))
    return found


def test_every_setting_is_on_the_settings_page() -> None:
    """The settings page is the one list of environment variables: each one the code reads is
    named in the first column of a table row there (name, default, meaning), not merely
    mentioned in passing."""
    first_columns = [
        line.split("|")[1]
        for _, line in prose_lines(DOCS / "settings.md")
        if line.startswith("| ") and not line.startswith("| variable")
    ]
    documented = {name for cell in first_columns for name in re.findall(r"`([A-Z0-9_]+)`", cell)}
    found = _settings_in_code()
    assert len(found) > 40, f"only {len(found)} settings found: the scan no longer sees them"
    undocumented = sorted(
        f"{name} (read in {where})" for name, where in found.items() if name not in documented
    )
    assert not undocumented, "add a row to docs/settings.md for:\n" + "\n".join(undocumented)
