"""Shared fixtures: a real PostgreSQL database per test session, moto's S3 server on loopback,
the shared samples, markets."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest

from finance_assets.lib.markets import Market, markets_from_env

# Beside the checkout (where CI has them); FINANCE_SAMPLES_DIR elsewhere (a git worktree).
SAMPLES = Path(
    os.environ.get("FINANCE_SAMPLES_DIR")
    or Path(__file__).resolve().parents[2] / "shared" / "samples"
)
LOCAL_PG = "postgresql://postgres@127.0.0.1:5432/postgres"


def _answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3):
            return True
    except psycopg.OperationalError:
        return False


@pytest.fixture(scope="session")
def pg_server_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """FINANCE_TEST_PG_URL, else the server on 127.0.0.1:5432, else the embedded one."""
    url = os.environ.get("FINANCE_TEST_PG_URL")
    if url:
        return url
    if _answers(LOCAL_PG):
        return LOCAL_PG
    from finance_assets.lib.io.postgres import embedded_server_url

    return embedded_server_url(tmp_path_factory.mktemp("embedded-pg"))


def demo_env(tmp_path: Path, url: str) -> dict[str, str]:
    """The environment `make demo` runs in, of the test's own: a Dagster home holding the
    instance `make demo` makes (Dagster's storage on the embedded PostgreSQL of the data
    folder), the data folder under `tmp_path`, the warehouse at `url`, and none of the caller's
    FINANCE_/MARKET_DATA/POSTS_/DEMO_/DAGSTER_ settings."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    repo = Path(__file__).resolve().parents[1]
    shutil.copy(repo / "deployment" / "local" / "dagster.yaml", home / "dagster.yaml")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FINANCE_", "MARKET_DATA", "POSTS_", "DEMO_", "DAGSTER_"))
    }
    env.update(FINANCE_DATA_DIR=str(tmp_path / "data"), FINANCE_PG_URL=url, DAGSTER_HOME=str(home))
    return env


@contextmanager
def fresh_database(server_url: str, prefix: str = "finance_test") -> Iterator[str]:
    """A new database on the server, dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(server_url)
    info["dbname"] = name
    try:
        yield _as_uri(info)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh database for this test session, dropped afterwards."""
    with fresh_database(pg_server_url) as url:
        yield url


def _as_uri(info: dict[str, object]) -> str:
    """A libpq URI (what ADBC takes), also for a socket-directory host."""
    from urllib.parse import quote

    user = quote(str(info.get("user", "postgres")))
    password = info.get("password")
    auth = f"{user}:{quote(str(password))}@" if password else f"{user}@"
    host = str(info.get("host", ""))
    port = info.get("port")
    dbname = quote(str(info["dbname"]))
    if host.startswith("/"):
        return f"postgresql://{auth}/{dbname}?host={quote(host)}" + (
            f"&port={port}" if port else ""
        )
    return f"postgresql://{auth}{host}{':' + str(port) if port else ''}/{dbname}"


@pytest.fixture(scope="session")
def us() -> Market:
    return markets_from_env({})["us"]


@pytest.fixture(scope="session")
def uk() -> Market:
    return markets_from_env({})["uk"]


@pytest.fixture
def samples() -> Path:
    if not SAMPLES.is_dir():
        pytest.skip(
            f"shared samples not found at {SAMPLES} (CI has them beside the repo; elsewhere "
            "set FINANCE_SAMPLES_DIR)"
        )
    return SAMPLES


# --- S3: moto's server on loopback -----------------------------------------------------------

# moto accepts any credentials: these dummies are distinctive, so a test can show that they
# never reach a log line or metadata.
DUMMY_KEY_ID = "AKIAMOTODUMMYKEY0001"
DUMMY_SECRET = "moto-dummy-secret-0f3c9a7e"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free loopback port, for the session (its state is process-wide
    anyway: every test uses buckets of its own). Stopped at the end."""
    moto_server = pytest.importorskip("moto.server")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def aws_test_environment(endpoint: str, folder: Path) -> dict[str, str]:
    """Dummy credentials and the endpoint, from the environment only: a store builds its client
    exactly as in production, and nothing on this machine (a profile, a proxy, the instance
    metadata service) is consulted."""
    return {
        "AWS_ACCESS_KEY_ID": DUMMY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(folder / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(folder / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
        "AWS_ENDPOINT_URL_S3": endpoint,
    }


@pytest.fixture
def aws_env(s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """`aws_test_environment` in this test's environment; the endpoint."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in aws_test_environment(s3_endpoint, tmp_path).items():
        monkeypatch.setenv(name, value)
    return s3_endpoint


@pytest.fixture
def s3(aws_env: str) -> Any:
    """A client of our own, to arrange and inspect buckets beside the stores."""
    import boto3

    return boto3.client("s3")


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"finance-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    return name


# --- MongoDB: a wire-protocol server on loopback -----------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The MongoDB wire-protocol server (nx-27017, beside the interpreter) on a free loopback
    port, in memory, for the module; stopped by its PID afterwards."""
    port = _free_port()
    folder = tmp_path_factory.mktemp("mongo")
    server = Path(sys.executable).with_name("nx-27017")
    process = subprocess.Popen(
        [
            str(server),
            "--host",
            "127.0.0.1",
            "-p",
            str(port),
            "--db",
            "memory",
            "--log-file",
            str(folder / "log"),
            "--pid-file",
            str(folder / "pid"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the MongoDB wire-protocol server did not start")
        yield f"mongodb://127.0.0.1:{port}/?directConnection=true"
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # stop it by its PID
        process.wait(timeout=10)


# --- Spark (the `.[spark]` extra) --------------------------------------------------------------


@pytest.fixture(scope="session")
def spark_session():
    """One local[2] SparkSession for every Spark test (a session costs ~10 s to start), built by
    dagster-pyspark from the settings the job itself runs with."""
    import sys

    from dagster_pyspark.resources import spark_session_from_config

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "spark"))
    import bars_job

    session = spark_session_from_config(
        {
            "spark.master": "local[2]",
            "spark.app.name": "finance_assets tests",
            "spark.ui.enabled": "false",
            # Test data is small: 200 shuffle partitions would cost more than the work.
            "spark.sql.shuffle.partitions": "2",
            "spark.default.parallelism": "2",
            **bars_job.SPARK_CONF,
        }
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def env_defs(monkeypatch, tmp_path, pg_url, us):
    """The us market's definitions on a fresh `us` schema and data folder, with a test
    instance: `(defs, instance)`."""
    import dagster as dg

    from finance_assets.definitions import build_domain_defs
    from finance_assets.resources import build_resources

    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    for name in ("FINANCE_SIM_FAULT_RATE", "FINANCE_ENV", "MARKET_DATA_PROVIDER", "POSTS_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")
    defs = dg.Definitions.merge(
        build_domain_defs([us]), dg.Definitions(resources=build_resources())
    )
    with dg.instance_for_test() as instance:
        yield defs, instance
