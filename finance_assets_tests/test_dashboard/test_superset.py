"""Superset's dashboards, provisioned from deployment/superset/ and opened in a real browser.

Superset comes from its own venv (deployment/superset/requirements.txt), installed once into
`.cache/superset-venv` (git-ignored; FINANCE_SUPERSET_VENV moves it) and reused while the
requirements are unchanged. The warehouse is filled by a real run of the pipeline (the demo, as
`make demo` runs it, six sessions of both markets: enough for the 20-session volatility and the
volume z-score to have values), into a database of its own; the read-only role and Superset's
metadata database get names of their own too, all dropped afterwards. Superset runs with
gunicorn on a free port in its own session and is stopped by its PID.

Without Superset's files (the bundle's spec against the views' columns) in the first test;
the rest install and run Superset.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest

from finance_assets import dashboard
from finance_assets.lib.analytics import views
from finance_assets_tests.conftest import demo_env, fresh_database
from finance_assets_tests.superset_checks import (
    CHROMIUM,
    DEMO_DAYS,
    SPEC,
    api,
    bundle,
    check_dashboards,
    login_token,
)

REPO = Path(__file__).resolve().parents[2]


def test_the_datasets_columns_are_the_views_columns(pg_server_url):
    """The spec lists each view's columns and types (Superset does not read them on import):
    they must be what the views have, or a chart names a column that is not there."""
    with fresh_database(pg_server_url, "finance_superset_spec") as url:
        views.create_views(url, "us", "America/New_York")
        with psycopg.connect(url) as conn:
            for view, dataset in SPEC["datasets"].items():
                rows = conn.execute(
                    "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = %s::regclass AND attnum > 0 ORDER BY attnum",
                    (f"us.{view}",),
                ).fetchall()
                want = {c: t.lower() for c, t in dataset["columns"].items()}
                got = dict(rows)
                assert got == want, view
    assert set(SPEC["datasets"]) == set(views.VIEWS)
    for name, chart in SPEC["charts"].items():
        assert chart["dataset"] in SPEC["datasets"], name
        assert set(chart["groupby"]) <= set(SPEC["datasets"][chart["dataset"]]["columns"]), name
    for row in SPEC["dashboard"]["rows"]:
        assert sum(row["charts"].values()) <= 12, row  # Superset's grid is 12 columns wide


def test_the_bundle_has_stable_ids_and_every_reference_resolves():
    files = bundle.bundle_files("postgresql+psycopg2://r:p@h/w", ["us", "uk"], SPEC)
    again = bundle.bundle_files("postgresql+psycopg2://r:p@h/w", ["us", "uk"], SPEC)
    import yaml

    docs = {path: yaml.safe_load(text) for path, text in files.items()}
    assert {p: d.get("uuid") for p, d in docs.items()} == {
        p: yaml.safe_load(t).get("uuid") for p, t in again.items()
    }
    uuids = {d["uuid"] for d in docs.values() if "uuid" in d}
    assert len(uuids) == len(docs) - 1  # every object but metadata.yaml, none shared
    for path, doc in docs.items():
        for ref in ("database_uuid", "dataset_uuid"):
            if ref in doc:
                assert doc[ref] in uuids, (path, ref)
        if path.startswith("dashboards/"):
            charts = [v for v in doc["position"].values() if isinstance(v, dict)]
            shown = [c["meta"]["uuid"] for c in charts if c.get("type") == "CHART"]
            assert len(shown) == len(bundle.charts_of(SPEC)) and set(shown) <= uuids
    with pytest.raises(ValueError, match="no dashboard for market"):
        bundle.bundle_files("postgresql://x", ["jp"], SPEC)


# --- Superset itself -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def superset_python() -> Path:
    venv = Path(os.environ.get("FINANCE_SUPERSET_VENV") or REPO / ".cache" / "superset-venv")
    return dashboard.ensure_venv(venv)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _demo(tmp_path: Path, url: str) -> None:
    """`make demo` into the warehouse database `url`: a real run of both markets."""
    env = demo_env(tmp_path, url)
    log = tmp_path / "demo.log"
    with log.open("w") as out:  # a file, not a pipe: a helper left behind must not block us
        done = subprocess.run(
            [sys.executable, "-m", "finance_assets.demo", "--days", str(DEMO_DAYS)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1200,
        )
    assert done.returncode == 0, log.read_text()[-3000:]


@pytest.fixture(scope="module")
def superset(superset_python, pg_server_url, tmp_path_factory):
    """Superset provisioned over a warehouse the demo filled; yields (base URL, settings,
    warehouse URL)."""
    tmp_path = tmp_path_factory.mktemp("superset")
    suffix = uuid.uuid4().hex[:8]
    with fresh_database(pg_server_url, "finance_superset") as url:
        _demo(tmp_path, url)
        info = psycopg.conninfo.conninfo_to_dict(url)
        settings = dashboard.Provisioning(
            admin_url=url,
            warehouse_db=str(info["dbname"]),
            secret_key=uuid.uuid4().hex * 2,
            admin_password=uuid.uuid4().hex,
            reader_role=f"bi_reader_{suffix}",
            superset_user=f"superset_{suffix}",
            superset_db=f"superset_{suffix}",
            markets="us,uk",
        )
        server = None
        try:
            env = dashboard.provision(superset_python, settings, tmp_path / "home")
            port = _free_port()
            server = dashboard.start_server(superset_python, env, port, tmp_path / "superset.log")
            base = f"http://127.0.0.1:{port}"
            dashboard.wait_healthy(base, server)
            yield base, settings, url
        finally:
            if server is not None:
                dashboard.stop_server(server)
            with psycopg.connect(pg_server_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{settings.superset_db}" WITH (FORCE)')
    # The warehouse database (and with it the reader's grants) is gone: the roles can go too.
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        for role in (settings.reader_role, settings.superset_user):
            conn.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_the_read_only_role_reads_the_views_and_nothing_else(superset):
    _, settings, url = superset
    info = psycopg.conninfo.conninfo_to_dict(url)
    info.update(user=settings.reader_role)
    info.pop("password", None)
    with psycopg.connect(**info) as conn:
        for market in ("us", "uk"):
            for view in views.VIEWS:
                conn.execute(f"SELECT count(*) FROM {market}.{view}").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT count(*) FROM us.daily_summary")
        conn.rollback()
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("CREATE TABLE us.t (x int)")


@pytest.mark.browser
def test_each_market_dashboard_renders_every_chart_with_the_warehouse_data(superset, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)")
    base, settings, url = superset
    check_dashboards(base, settings.admin_user, settings.admin_password, url, tmp_path)


def test_the_views_have_the_demo_sessions(superset):
    """The data the browser test compared against is the demo's: both markets, every view."""
    _, _, url = superset
    with psycopg.connect(url) as conn:
        for market in ("us", "uk"):
            days = conn.execute(
                f"SELECT count(DISTINCT trading_date), max(trading_date) "
                f"FROM {market}.bi_daily_performance"
            ).fetchone()
            assert days[0] == DEMO_DAYS and days[1] <= dt.date.today(), market
            z = conn.execute(
                f"SELECT count(volume_zscore) FROM {market}.bi_volatility_volume"
            ).fetchone()[0]
            assert z > 0, market


def test_make_dashboard_serves_on_the_embedded_server_and_one_ctrl_c_stops_everything(
    superset_python, tmp_path
):
    """`make dashboard`'s command on a fresh data folder: it starts the embedded PostgreSQL
    (no FINANCE_PG_URL), provisions, serves on PORT and prints the address; one SIGINT stops
    Superset and the embedded server it started."""
    port = _free_port()
    data = tmp_path / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINANCE_", "SUPERSET_"))}
    env.update(FINANCE_DATA_DIR=str(data), PORT=str(port))
    log = tmp_path / "dashboard.log"
    venv = superset_python.parents[1]
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "finance_assets.dashboard", "--venv", str(venv)],
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 600
        while "Ctrl-C stops it" not in log.read_text():
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(2)
        text = log.read_text()
        assert f"http://127.0.0.1:{port}/dashboard/list/" in text
        password = (data / "superset" / "admin_password").read_text().strip()
        assert (data / "superset" / "admin_password").stat().st_mode & 0o077 == 0
        token = login_token(f"http://127.0.0.1:{port}", "admin", password)
        boards = api(f"http://127.0.0.1:{port}", "/api/v1/dashboard/", token)["result"]
        assert sorted(b["slug"] for b in boards) == ["market-uk", "market-us"]
        postmaster = data / "postgres" / "pgdata" / "postmaster.pid"
        assert postmaster.exists()

        process.send_signal(signal.SIGINT)  # Ctrl-C, to the command alone
        assert process.wait(timeout=60) == 0, log.read_text()[-3000:]
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5)
        deadline = time.monotonic() + 30
        while postmaster.exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not postmaster.exists(), "the embedded PostgreSQL kept running"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # its own session, started above
            process.wait()
