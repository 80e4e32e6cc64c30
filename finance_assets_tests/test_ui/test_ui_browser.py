"""The Dagster UI in a real browser (Debian's headless Chromium driven by Playwright), as a new
user sees it after materialising a couple of days: no failed check, no failed run; then a
two-session backfill launched from the asset's Materialize dialog runs no freshness step and
sends no notification.

`dagster dev` (webserver, daemon, code server) runs on 127.0.0.1 and a free port in its own
session, and is stopped by its PID. Screenshots go to the test's temp folder only.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from finance_assets.defs.common.partitions import INTRADAY_FMT, five_minute_partitions
from finance_assets_tests.browser import CHROMIUM, CHROMIUM_ARGS

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.browser


def _playwright():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)")
    return pytest.importorskip("playwright.sync_api")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(base: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert not body.get("errors"), body
    return body["data"]


def _wait(what: str, condition, timeout: float, every: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except OSError:
            value = None  # the webserver is not up yet
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


SENSOR_TICKS = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { ticks(limit: 1) { status timestamp } } }
  }
}
"""


def _last_tick(base: str, name: str) -> float | None:
    selector = {
        "repositoryLocationName": "finance_assets",
        "repositoryName": "__repository__",
        "sensorName": name,
    }
    data = _graphql(base, SENSOR_TICKS, {"selector": selector})["sensorOrError"]
    ticks = data.get("sensorState", {}).get("ticks", []) if "sensorState" in data else []
    return ticks[0]["timestamp"] if ticks else None


def _two_sessions(market) -> tuple[str, str, int]:
    """The first and last 5-minute bars of two closed sessions, and the partitions between."""
    first, last = market.last_sessions(3)[:2]
    start = market.session_bounds(first)[0].astimezone(market.tz).strftime(INTRADAY_FMT)
    end = market.session_bounds(last)[1] - dt.timedelta(minutes=5)
    end_key = end.astimezone(market.tz).strftime(INTRADAY_FMT)
    keys = five_minute_partitions(market).get_partition_keys_in_range(
        dg.PartitionKeyRange(start, end_key)
    )
    return start, end_key, len(keys)


@pytest.fixture
def dagster_dev(pg_url, tmp_path, monkeypatch):
    """A local instance with two sessions of the market materialised by the code location's
    own jobs, then `dagster dev` on it: yields (base URL, instance, data dir, log)."""
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        "DAGSTER_HOME": str(home),
        "FINANCE_DATA_DIR": str(data),
        "FINANCE_PG_URL": pg_url,
        "FINANCE_MARKETS": "us",
        "DAGSTER_EVENT_BATCH_SIZE": "1000",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for name in ("FINANCE_SCHEDULES", "FINANCE_ENV", "FINANCE_SIM_FAULT_RATE", "SLACK_BOT_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    from finance_assets.definitions import build_defs
    from finance_assets.lib.markets import markets_from_env

    us = markets_from_env()["us"]
    defs = build_defs()
    first, last = us.last_sessions(3)[:2]
    start, end, _ = _two_sessions(us)
    instance = dg.DagsterInstance.get()
    for job, tags in (
        ("us_bars_5min_job", (start, end)),
        ("us_daily_job", (first.isoformat(), last.isoformat())),
    ):
        result = defs.resolve_job_def(job).execute_in_process(
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": tags[0],
                "dagster/asset_partition_range_end": tags[1],
            },
            raise_on_error=False,
        )
        assert result.success, job

    port = _free_port()
    log_path = tmp_path / "dagster_dev.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("dagster")),
                "dev",
                "-w",
                str(REPO / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=REPO,
            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(
            "the code location to load",
            lambda: (
                '"RepositoryLocation"'
                in json.dumps(
                    _graphql(
                        base,
                        "{ workspaceOrError { ... on Workspace { locationEntries {"
                        " locationOrLoadError { __typename } } } } }",
                    )
                )
            ),
            timeout=120,
        )
        yield base, instance, data, log_path
    finally:
        # dagster dev stops its webserver, daemon and code server on SIGTERM.
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session, started above
            process.wait(timeout=10)
        instance.dispose()


def test_the_ui_after_a_couple_of_days_and_a_backfill_launched_from_it(dagster_dev, tmp_path, us):
    sync_api = _playwright()
    base, instance, data, _ = dagster_dev
    notices = data / "notifications.jsonl"
    # The daemon's first ticks of the freshness and notification sensors have happened.
    for sensor in ("freshness_sensor", "check_failure_notifications"):
        _wait(f"a tick of {sensor}", lambda s=sensor: _last_tick(base, s), timeout=180)

    start, end, partitions = _two_sessions(us)
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})

        def visit(path: str, ready: str | re.Pattern) -> str:
            page.goto(base + path)
            page.get_by_text(ready).first.wait_for(timeout=60_000)
            skip = page.get_by_role("button", name="Skip")  # the first-visit community dialog
            if skip.count():
                skip.click()
            page.wait_for_timeout(1500)
            page.screenshot(path=str(tmp_path / f"{path.strip('/').replace('/', '_')}.png"))
            return page.inner_text("body")

        runs = visit("/runs", "us_daily_job")
        assert "us_bars_5min_job" in runs and "Success" in runs
        assert "Failure" not in runs, runs
        checks = visit("/assets/us/bars_5min?view=checks", "volume_non_negative")
        assert checks.count("Succeeded") >= 6 and "Failed" not in checks, checks
        # Nobody started a schedule: the feed is not judged, not red.
        feed = visit("/assets/us/bars_5min_feed?view=checks", "fresh")
        assert "Failed" not in feed, feed

        # A two-session backfill from the Materialize dialog, as a user launches one.
        visit("/assets/us/bars_5min?view=checks", "volume_non_negative")
        page.get_by_role("button", name="Materialize…").click()
        page.get_by_text("partitions are outside this range").wait_for(timeout=60_000)
        selection = page.locator("div[role=dialog] input[type=text]").first
        selection.fill(f"[{start}...{end}]")
        selection.press("Enter")
        # exact: the checks table behind the dialog may also say "N partitions, <range>"
        page.get_by_text(f"{partitions} partitions", exact=True).wait_for(timeout=30_000)
        page.get_by_role("button", name="Launch backfill").click()
        toast = page.get_by_text(re.compile(r"Created backfill \w+"))
        toast.wait_for(timeout=60_000)
        backfill_id = toast.inner_text().split()[-1]

        backfill = _wait(
            "the backfill to finish",
            lambda: (
                (b := instance.get_backfill(backfill_id)) and b.status.value != "REQUESTED" and b
            ),
            timeout=300,
        )
        assert backfill.status.value == "COMPLETED_SUCCESS", backfill.status
        page_text = visit(f"/runs/b/{backfill_id}", re.compile("bars_5min"))
        assert "100% completed" in page_text  # an asset backfill: progress per asset
        assert "fresh" not in page_text
        browser.close()

    (run,) = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    assert run.status == dg.DagsterRunStatus.SUCCESS
    steps = {
        s.key for s in instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id).steps
    }
    assert steps == {"us__bars_5min"}  # and no freshness step
    ended = instance.get_run_record_by_id(run.run_id).end_time
    # The notification sensor has read past the backfill's events, and had nothing to send.
    _wait(
        "check_failure_notifications to tick after the backfill",
        lambda: (_last_tick(base, "check_failure_notifications") or 0) > ended,
        timeout=120,
    )
    sent = notices.read_text().splitlines() if notices.exists() else []
    assert sent == [], sent
    failed = [
        r
        for r in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
        ).records
        if not r.event_log_entry.dagster_event.asset_check_evaluation_data.passed
    ]
    assert failed == []
