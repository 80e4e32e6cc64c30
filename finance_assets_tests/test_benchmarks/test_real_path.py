"""The pieces of `benchmarks/real_path.py` that a run depends on and that can break silently: the
moved Dagster clock in processes it starts, the tick it plans (the one the schedule would
request), and stopping what it started. A whole run takes minutes (dagster dev, the daemon's
30-second loops): it is run by hand, not here; nothing here checks a time."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "real_path.py"


@pytest.fixture(scope="module")
def real_path():
    spec = importlib.util.spec_from_file_location("real_path", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_dagster_clock_is_moved_in_the_processes_started_with_it(real_path, tmp_path):
    clock = real_path.DagsterClock(tmp_path / "clock", 3 * 3600.0)
    # The child moves its own clock file between two reads, as the benchmark does to processes
    # already running; the offset is re-read at most once a second.
    code = (
        "import sys, time\n"
        "from dagster._time import get_current_datetime, get_current_timestamp\n"
        "print(get_current_timestamp() - time.time())\n"
        "print((get_current_datetime().timestamp() - time.time()))\n"
        "open(sys.argv[1], 'w').write('60.0')\n"
        "time.sleep(1.2)\n"
        "print(get_current_timestamp() - time.time())\n"
    )
    env = clock.env({**os.environ, "PYTHONPATH": str(SCRIPT.parents[1])})
    done = subprocess.run(
        [sys.executable, "-c", code, str(clock.file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    first, first_dt, moved = (float(v) for v in done.stdout.split())
    assert abs(first - 3 * 3600) < 60 and abs(first_dt - 3 * 3600) < 60
    assert abs(moved - 60) < 30
    # Without the variable nothing is moved.
    plain = subprocess.run(
        [
            sys.executable,
            "-c",
            "import time; from dagster._time import get_current_timestamp;"
            " print(get_current_timestamp() - time.time())",
        ],
        env={k: v for k, v in env.items() if k != "REAL_PATH_CLOCK_FILE"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert abs(float(plain.stdout)) < 30, plain.stderr


def test_the_planned_tick_is_the_one_the_schedule_requests(real_path):
    from finance_assets.defs.market.schedules import bar_to_request
    from finance_assets.lib.markets import markets_from_env

    saturday = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
    plan = real_path.make_plan(20, saturday)
    assert plan["day"] == "2026-12-07"  # the next session, so the moved clock runs ahead
    assert plan["one"]["sessions"] == ["2026-12-04", "2026-12-04"]
    assert plan["one"]["partitions"] == 78
    # 2026-11-06 .. 2026-12-04: Thanksgiving closed, the day after closes at 13:00 (42 bars).
    assert plan["many"]["sessions"] == ["2026-11-06", "2026-12-04"]
    assert plan["many"]["partitions"] == 19 * 78 + 42
    tick = real_path.tick_for(plan, real_path.TICK_BAR_INDEX)
    assert tick["key"] == "2026-12-07-10:00"
    market = markets_from_env({})["us"]
    request = bar_to_request(market, dt.datetime.fromtimestamp(tick["tick"], dt.UTC))
    assert isinstance(request, dg.RunRequest) and request.partition_key == tick["key"]
    assert tick["window"][1] - tick["window"][0] == 300


def test_stopping_a_process_stops_its_whole_group(real_path, tmp_path):
    processes = real_path.Processes()
    # A parent that ignores SIGTERM and a child of its own: both must go.
    script = "trap '' TERM; sleep 300 & echo $! > child.pid; wait"
    process = processes.start(
        ["sh", "-c", f"cd {tmp_path} && {script}"], dict(os.environ), tmp_path / "log"
    )
    pid_file = tmp_path / "child.pid"
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.1)
    child = int(pid_file.read_text())
    processes.stop(process, grace=1)
    assert process.poll() is not None and processes.started == []
    assert _gone(child)


def _gone(pid: int, timeout: float = 10) -> bool:
    """Exited: no such process, or a zombie left to a PID 1 that does not reap (a container)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("current", [0.0, 17.25, -3600.5])
@pytest.mark.parametrize("lead", [0.0, 14.7, 29.9, 30.1, 59.0])
def test_the_clock_jumps_by_whole_minutes_before_the_tick(real_path, current, lead):
    """The scheduler sleeps to the next minute of the clock it read: the jump to just before
    the tick keeps that minute (else the tick is evaluated up to a minute late)."""
    wanted = current + 600 - lead  # the offset that would put the clock LEAD_S + lead early
    offset = real_path.minute_aligned_offset(current, wanted)
    assert (offset - current) % 60 == pytest.approx(0) or (offset - current) % 60 == pytest.approx(
        60
    )
    before_tick = real_path.LEAD_S + (wanted - offset)  # seconds from the jump to the tick
    assert real_path.LEAD_S / 2 <= before_tick < real_path.LEAD_S / 2 + 60
