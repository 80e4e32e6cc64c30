"""A clean start prints no warning: the definitions loaded in a new interpreter with Python's
default warning filters (what a user of `make dev`, the code server or the demo sees) leave
stderr empty. Dagster's beta and preview notices included: definitions.py files away the ones
the project accepts knowingly."""

from __future__ import annotations

import os
import subprocess
import sys

LOAD = """
from finance_assets.definitions import defs
repo = defs.get_repository_def()
repo.load_all_definitions()
print(len(repo.get_all_jobs()), "jobs")
"""


def test_loading_the_definitions_prints_no_warning(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINANCE_", "DAGSTER_"))}
    env.pop("PYTHONWARNINGS", None)
    env.update(DAGSTER_HOME=str(home), FINANCE_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [sys.executable, "-c", LOAD], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[1:] == ["jobs"] and int(done.stdout.split()[0]) > 0, done.stdout
    assert done.stderr == "", done.stderr[-3000:]
