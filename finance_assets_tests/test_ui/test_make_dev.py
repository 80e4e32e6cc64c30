"""`make dev` as a user runs it: the UI answers on the port given, starting prints no warning,
and one Ctrl-C (SIGINT to its process group, as a terminal sends it) stops the webserver, the
daemon, the code server and the embedded PostgreSQL the local instance started."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _processes_using(folder: Path) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if str(folder) in line and "ps -ww" not in line]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


def test_make_dev_serves_the_port_given_and_one_ctrl_c_stops_everything(tmp_path):
    if not (REPO / ".venv" / "bin" / "dg").exists():
        pytest.skip("make dev runs from the repository's .venv (make test installs it)")
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("FINANCE_", "DAGSTER_"))},
        "DAGSTER_HOME": str(tmp_path / "home"),
        "FINANCE_DATA_DIR": str(tmp_path / "data"),
    }
    log = tmp_path / "make_dev.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["make", "dev", f"PORT={port}"],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while not _answers(f"http://127.0.0.1:{port}/server_info"):
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "the UI did not answer in 240 s"
            time.sleep(1)
        # The local instance started the embedded PostgreSQL under the data folder.
        assert any("postgres" in line for line in _processes_using(tmp_path / "data"))
        started = time.monotonic()
        os.killpg(process.pid, signal.SIGINT)
        process.wait(timeout=120)
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
    deadline = time.monotonic() + 15
    while _processes_using(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _processes_using(tmp_path), _processes_using(tmp_path)
    text = log.read_text()
    # Nothing on a clean start warns: neither Python warnings nor Dagster's own.
    warnings = [
        line
        for line in text.splitlines()
        if re.search(r"\w+Warning: |dagster - WARNING", line)
        and "BuildBackendWarning" not in line  # pip's, when make installs the ui extra first
    ]
    assert not warnings, warnings
    print(f"make dev stopped {stopped_in:.1f} s after one SIGINT")
