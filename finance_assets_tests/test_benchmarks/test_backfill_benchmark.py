"""The backfill benchmark still runs end to end (a small workload: its figures are not checked
here, only that every phase runs, agrees on the row count and prints its machine-readable line)."""

import re
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "backfill.py"


def test_backfill_benchmark_runs_every_phase(pg_server_url: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(BENCHMARK),
            "--symbols",
            "3",
            "--days",
            "1",
            "--pg-url",
            pg_server_url,
            "--lake",
            "s3",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    phases = ("dagster run", "dagster floor", "data path", "data path, S3 (moto)", "baseline")
    for phase in (*phases, "one-day reload"):
        assert phase in out, out
    # 3 symbols x one session of 78 bars, landed by every path (the script asserts the counts).
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(
        r"rows=234 rows_per_s=\d+ baseline_rows_per_s=\d+ ratio=\d+\.\d\d peak_rss_mb=\d+", last
    ), last
