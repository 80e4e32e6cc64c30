"""Shared fixtures: a real PostgreSQL database per test session, the shared samples, markets."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from finance_assets.lib.markets import Market, markets_from_env

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "samples"
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
        pytest.skip(f"shared samples not found at {SAMPLES} (CI has them beside the repo)")
    return SAMPLES


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
