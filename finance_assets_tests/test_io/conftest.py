"""Fixtures of the storage tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from finance_assets_tests.test_io.s3_faults import start_fault_proxy


@pytest.fixture
def proxy(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The fault proxy in front of moto; every client of the test goes through it."""
    faults, server = start_fault_proxy(aws_env)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", faults.url)
    try:
        yield faults
    finally:
        server.shutdown()
        server.server_close()
