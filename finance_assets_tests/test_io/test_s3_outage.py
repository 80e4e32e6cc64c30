"""S3 going away while the lake is staged (issue 24, item 6): moto's server behind a proxy that
drops connections without answering. The step fails naming the outage (the operation, the
bucket and key, botocore's connection error), never a bug of the error translation itself, and
both stores keep the rows they had."""

from __future__ import annotations

import psycopg
import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
    ResponseStreamingError,
)

from finance_assets.lib.io.objects.s3_resource import S3Resource

pytest.importorskip("moto.server")

from finance_assets.lib.io.objects import os_error
from finance_assets_tests.test_io.day_bars import day_bars
from finance_assets_tests.test_io.s3_faults import DROP
from finance_assets_tests.test_io.test_zones_s3 import (
    SCHEMA,
    _failure,
    _lake_rows,
    _warehouse,
    _write_bars,
    listing,
)

ENDPOINT = "http://127.0.0.1:9"


@pytest.mark.parametrize(
    ("exc", "kind", "named"),
    [
        (ClientError({}, "CopyObject"), OSError, "S3 CopyObject failed"),
        (
            ClientError(
                {
                    "Error": {
                        "Code": "InternalError",
                        "Message": "We encountered an internal error",
                    },
                    "ResponseMetadata": {"HTTPStatusCode": 500},
                },
                "CopyObject",
            ),
            OSError,
            "S3 CopyObject failed (HTTP 500): InternalError: We encountered",
        ),
        (
            ClientError({"ResponseMetadata": {"HTTPStatusCode": 500}}, "PutObject"),
            OSError,
            "(HTTP 500)",
        ),
        (
            EndpointConnectionError(endpoint_url=ENDPOINT),
            ConnectionError,
            "could not reach S3 (an S3 outage",
        ),
        (ConnectionClosedError(endpoint_url=ENDPOINT), ConnectionError, "ConnectionClosedError"),
        (
            ResponseStreamingError(error="IncompleteRead(0 bytes read)"),
            ConnectionError,
            "IncompleteRead",
        ),
        (ReadTimeoutError(endpoint_url=ENDPOINT), TimeoutError, "timed out"),
        (ConnectTimeoutError(endpoint_url=ENDPOINT), TimeoutError, "timed out"),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_every_botocore_error_shape_is_translated(exc, kind, named) -> None:
    error = os_error(exc, "s3://b/lake/k", "b", "PutObject" if "Client" not in repr(exc) else None)
    assert isinstance(error, kind) and isinstance(error, OSError)
    assert str(error).startswith("s3://b/lake/k: S3 ")
    assert named in str(error)


@pytest.mark.parametrize(
    "dropped",
    [("GET", "PUT", "HEAD", "DELETE", "POST"), ("HEAD",)],
    ids=["every_request", "head_only"],
)
def test_s3_dropping_connections_while_staging_names_the_outage(
    proxy, bucket, pg_url, us, dropped
) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")
    lake_root = f"s3://{bucket}/lake"
    s3 = S3Resource(max_attempts=2)
    old, new = day_bars(us, ["AAPL", "MSFT"], 0), day_bars(us, ["AAPL", "MSFT", "NVDA"], 30)
    assert _write_bars(us, old, lake_root, pg_url, s3).success
    before_wh, before_lake, keys_before = (
        _warehouse(pg_url),
        _lake_rows(lake_root),
        listing(lake_root),
    )

    for method in dropped:
        proxy.fail(method, f"/{bucket}", status=DROP)
    result = _write_bars(us, new, lake_root, pg_url, s3)
    assert not result.success
    text = _failure(result)
    assert "AttributeError" not in text
    assert "could not reach S3" in text and "ConnectionClosedError" in text
    assert f"s3://{bucket}/lake/" in text and "rolled back" in text
    assert any(m in text for m in ("S3 ListObjectsV2", "S3 HeadObject"))
    assert sum(1 for m, _, s in proxy.seen if s == DROP) >= 2  # botocore retried, then gave up

    proxy.clear()
    assert _warehouse(pg_url) == before_wh
    assert _lake_rows(lake_root).equals(before_lake)
    # No staged object left visible; a re-run converges.
    assert [k for k in listing(lake_root) if not k.rsplit("/", 1)[-1].startswith(".")] == (
        keys_before
    )
    assert _write_bars(us, new, lake_root, pg_url, s3).success
    assert len(_warehouse(pg_url)) == new.height
