"""`make demo` at any hour: whole demo runs under a fake clock (libfaketime), and its parts.

The demo is run as a user runs it (`python -m finance_assets.demo`, a fresh data folder and
Dagster home, the real PostgreSQL) with the process clock set by libfaketime to instants that
broke it before: New York mid-session while London has closed, and the afternoon of an early
close.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from finance_assets import demo
from finance_assets.launch import job_origin
from finance_assets_tests.conftest import demo_env

FAKETIME = shutil.which("faketime")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo_db(pg_server_url):
    """A database of its own: the demo writes both markets' schemas."""
    from finance_assets_tests.conftest import fresh_database

    with fresh_database(pg_server_url, "finance_demo") as url:
        yield url


@pytest.mark.skipif(FAKETIME is None, reason="libfaketime's `faketime` (Debian: faketime)")
@pytest.mark.parametrize(
    ("instant", "sessions"),
    [
        # The instant of the first-run report: the UK posts ran into hours that did not exist.
        (
            "2026-12-01 19:50:00",
            {"us": "2026-11-30 .. 2026-11-30", "uk": "2026-12-01 .. 2026-12-01"},
        ),
        # Black Friday after New York's 13:00 close (an early close: 42 bars).
        (
            "2026-11-27 18:30:00",
            {"us": "2026-11-27 .. 2026-11-27", "uk": "2026-11-27 .. 2026-11-27"},
        ),
    ],
)
def test_the_demo_succeeds_under_a_fake_clock(tmp_path, demo_db, instant, sessions):
    log, errors = tmp_path / "demo.out", tmp_path / "demo.err"
    # Files, not pipes: a helper process Dagster leaves behind must not hold the test up.
    with log.open("w") as stdout, errors.open("w") as stderr:
        done = subprocess.run(
            [FAKETIME, instant, sys.executable, "-m", "finance_assets.demo", "--days", "1"],
            # Not FAKETIME_DONT_FAKE_MONOTONIC: with it, libfaketime makes time.sleep fail
            # (EINVAL), which kills Dagster's orphan watcher and leaves its log tailers running.
            env=demo_env(tmp_path, demo_db),
            stdout=stdout,
            stderr=stderr,
            timeout=300,
        )
    out = log.read_text()
    assert done.returncode == 0, out + errors.read_text()[-3000:]
    for market, span in sessions.items():
        assert f"1 sessions {span}" in out, out
        for job in ("bars_5min_job", "posts_job", "daily_job"):
            assert f"{market}_{job}:" in out and "FAILED" not in out, out
    # Complete summaries: every symbol of both markets, one session, posts counted.
    with psycopg.connect(demo_db) as conn:
        for market, span in sessions.items():
            day = span.split(" .. ")[0]
            rows = conn.execute(
                f"SELECT symbol, bar_count, post_count FROM {market}.stock_sentiment_daily "
                "WHERE trading_date = %s",
                [day],
            ).fetchall()
            assert len(rows) == 5, (market, rows)
            assert all(bars > 0 and posts is not None for _, bars, posts in rows), rows
    assert "┌┐" not in out and "Incomplete" not in out
    # A demo run prints no warning (Dagster's beta and preview notices included).
    warned = [line for line in errors.read_text().splitlines() if "Warning" in line]
    assert not warned, warned


def test_bad_demo_settings_are_usage_errors_naming_the_value(tmp_path):
    env = {**os.environ, "DEMO_DAYS": "abc"}
    done = subprocess.run(
        [sys.executable, "-m", "finance_assets.demo"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2 and "invalid int value: 'abc'" in done.stderr
    assert "Traceback" not in done.stderr
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    env = {**os.environ, "DEMO_END": future}
    env.pop("DEMO_DAYS", None)
    done = subprocess.run(
        [sys.executable, "-m", "finance_assets.demo"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 2, done.stderr
    assert f"end date {future} is in the future" in done.stderr
    assert "Traceback" not in done.stderr and "CheckError" not in done.stderr


def test_the_demo_runs_the_code_locations_jobs_with_their_origin(env_defs, us):
    """Runs the UI can re-execute: the location's job names and the location as origin."""
    defs, instance = env_defs
    runs = demo.run_market(defs, us, [dt.date(2026, 11, 18)], instance, with_posts=True)
    assert runs.success, [demo.failure_reasons(r) for r in runs]
    recorded = instance.get_runs()
    assert sorted(r.job_name for r in recorded) == [
        "us_bars_5min_job",
        "us_daily_job",
        "us_posts_job",
    ]
    for run in recorded:
        assert run.remote_job_origin == job_origin(run.job_name)
        assert (
            run.remote_job_origin.repository_origin.get_label() == "__repository__@finance_assets"
        )
        # The job exists under that name in the code location's definitions.
        assert defs.resolve_job_def(run.job_name) is not None
    # The UI files runs under a code location by this stored tag.
    label = {".dagster/repository": "__repository__@finance_assets"}
    assert len(instance.get_runs(filters=dg.RunsFilter(tags=label))) == 3


def test_a_failed_part_is_named_with_its_reason_never_an_empty_table(env_defs, us, monkeypatch):
    defs, instance = env_defs
    from finance_assets.lib import transforms

    def broken(*args, **kwargs):
        raise RuntimeError("provider parser exploded")

    monkeypatch.setattr(transforms, "clean_payloads", broken)
    day = [dt.date(2026, 11, 18)]
    runs = demo.run_market(defs, us, day, instance, with_posts=True)
    assert not runs.success
    reasons = demo.failure_reasons(runs[0])
    assert any("us__bars_5min" in r and "provider parser exploded" in r for r in reasons), reasons
    assert runs.skipped == [
        "skipped daily_summary, stock_sentiment_daily, market_report, price_forecast: "
        "the 5-minute run failed"
    ]
    url = dg.EnvVar("FINANCE_PG_URL").get_value()
    table, notes = demo.warehouse_summary(url, us, day)
    assert table.is_empty()
    assert notes == ["no daily summary in us.daily_summary for these sessions"]
