"""The embedded PostgreSQL of `make demo` / `make dev` stops when its last live user exits, even
when another user was killed (SIGKILL: no exit hook ran, so it never left the server's list of
users and the server used to run on, holding the data folder)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

JOIN = (
    "import sys, time; from finance_assets.lib.io.postgres import embedded_server_url; "
    "print(embedded_server_url(sys.argv[1]), flush=True); time.sleep(float(sys.argv[2]))"
)


def _servers_of(folder: Path) -> list[str]:
    out = subprocess.run(["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [
        line
        for line in out.splitlines()
        if str(folder) in line and "postgres" in line and "ps -ww" not in line
    ]


def test_a_killed_user_does_not_keep_the_embedded_server_running(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed = subprocess.Popen(
        [sys.executable, "-c", JOIN, str(data), "600"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        assert killed.stdout.readline().startswith("postgresql://")
        assert _servers_of(data)
    finally:
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait(timeout=30)
    assert _servers_of(data)  # the killed user could not stop it
    last = subprocess.run(
        [sys.executable, "-c", JOIN, str(data), "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert last.returncode == 0 and last.stdout.startswith("postgresql://"), last.stderr
    deadline = time.monotonic() + 30
    while _servers_of(data) and time.monotonic() < deadline:
        time.sleep(0.5)
    left = _servers_of(data)
    for line in left:  # never leave a server behind, whatever the verdict
        os.kill(int(line.split()[0]), signal.SIGTERM)
    assert not left, left
