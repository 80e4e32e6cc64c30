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
            # Every floor variant and two one-partition runs (besides the live tick).
            "--floor-checks",
            "declared,combined,none",
            "--partition-runs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for phase in (
        "dagster run",
        "dagster floor",
        "data path",
        "data path, S3 (moto)",
        "baseline",
        "one-day reload",
        "live tick",
        "one run per partition",
        "end to end vs baseline",
    ):
        assert phase in out, out
    assert "postgres storage (pooled)" in out  # the deployed storage by default
    # The four row rules folded into one check: three fewer.
    declared = int(re.search(r"declared checks: (\d+)", out).group(1))
    assert f"combined checks: {declared - 3};" in out and "none checks: 0;" in out, out
    assert "declared checks cost" in out and "one row-rule check instead of four" in out
    # The tick and each run landed their partition's 3 rows in both stores (else the script
    # exits 1 naming the partition).
    assert "to 3 rows in PostgreSQL and the lake" in out
    assert "(2 runs of 2026-10-30" in out
    # 3 symbols x one session of 78 bars, landed by every path (the script asserts the counts).
    last = out.strip().splitlines()[-1]
    assert re.fullmatch(
        r"rows=234 rows_per_s=\d+ baseline_rows_per_s=\d+ ratio=\d+\.\d\d peak_rss_mb=\d+", last
    ), last
