"""Loading the code location imports none of the heavy libraries it does not use while loading
(issue 23): every process Dagster starts (the code server, each run worker, each step worker
under the multiprocess executor) pays the import, and those libraries cost ~3 s of it.

Structural, not timed: the import runs in a fresh interpreter and `sys.modules` is read."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Imported where they are used (a step, a client, a calendar built), never by loading.
HEAVY = (
    "pandas",  # through exchange-calendars, and pyarrow.dataset under ADBC
    "exchange_calendars",  # the definitions read the calendar's cached summary
    "adbc_driver_manager",
    "pyarrow.dataset",
    "dagster_aws",  # its package imports Dagster's test utilities (~1.2 s)
    "dagster._core.test_utils",
    "boto3",
    "dagster_slack",
    "slack_sdk",
    "matplotlib",
    "sklearn",
    "statsmodels",
    "pyspark",
    "duckdb",
    "vaderSentiment",
    "yfinance",
    "curl_cffi",
    "numpy",  # the simulated providers and the forecast import it when they draw or fit
    "pymongo",  # where a MongoDB URI is checked or a client opened
)


def _modules_after_import(env: dict[str, str]) -> set[str]:
    code = "import sys, json, finance_assets.definitions; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_loading_the_code_location_imports_no_heavy_library(tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
        "FINANCE_DATA_DIR": str(tmp_path / "data"),
        "FINANCE_CACHE_DIR": str(tmp_path / "cache"),
    }
    # Twice: the first load builds the calendars (and caches their summaries), the second
    # reads the summaries; neither imports the heavy libraries at module level of the load.
    first = _modules_after_import(env)
    assert list((tmp_path / "cache").glob("calendar-*.json")), "no calendar summary cached"
    second = _modules_after_import(env)
    assert "finance_assets.definitions" in second
    assert not [name for name in HEAVY if name in second], "imported by loading the code location"
    # The first load builds the calendars (exchange-calendars, pandas) and nothing else heavy.
    built = {"pandas", "exchange_calendars", "numpy"}
    assert not [name for name in HEAVY if name in first and name not in built]
