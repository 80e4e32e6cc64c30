"""The landing zone on S3: `S3LandingStore` against moto's S3 server on loopback (no request
leaves the machine), and the landing sensor over an `s3://` root, as it runs in production."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

pytest.importorskip("moto.server")

from finance_assets.defs.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from finance_assets.defs.market.landing import build_landing_sensor
from finance_assets.lib import landing
from finance_assets.lib.markets import Market
from finance_assets.resources.landing import (
    LANDING_FILE_TAG,
    LANDING_SHA256_TAG,
    LandingZoneResource,
)

HEADER = "Date,Open,High,Low,Close,Adj Close,Volume\n"


def yahoo_csv(*rows: tuple[str, float]) -> bytes:
    """Rows of (date, close): a plausible bar around each close (as in test_landing.py)."""
    lines = [HEADER]
    for day, close in rows:
        lines.append(f"{day},{close - 1:.6f},{close + 2:.6f},{close - 2:.6f},{close:.6f},")
        lines.append(f"{close:.6f},{int(close * 100_000)}\n")
    return "".join(lines).encode()


def keys(s3: Any, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", []))


def put(s3: Any, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)


# --- the store -------------------------------------------------------------------------------


def test_open_store_picks_s3_by_scheme(aws_env: str, tmp_path: Path) -> None:
    store = landing.open_store("s3://finance-bucket/landing/", "us")
    assert isinstance(store, landing.S3LandingStore)
    assert (store.bucket, store.prefix) == ("finance-bucket", "landing/us/")
    assert store.uri("AAPL.csv") == "s3://finance-bucket/landing/us/AAPL.csv"
    # The endpoint is boto3's own reading of AWS_ENDPOINT_URL_S3.
    assert store.client.meta.endpoint_url == aws_env
    assert landing.open_store("s3://finance-bucket", "uk").uri("A.csv") == (
        "s3://finance-bucket/uk/A.csv"
    )
    assert isinstance(landing.open_store(str(tmp_path), "us"), landing.LocalLandingStore)
    with pytest.raises(ValueError, match="bucket name"):
        landing.open_store("s3:///landing", "us")
    with pytest.raises(landing.UnsafeKey):
        landing.open_store("s3://finance-bucket/a/../b", "us")
    with pytest.raises(NotImplementedError):
        landing.open_store("gs://finance-bucket/landing", "us")


def test_list_read_write_move_round_trip(s3: Any, bucket: str) -> None:
    store = landing.open_store(f"s3://{bucket}/landing", "us")
    assert store.list_files() == []
    store.write("MSFT.csv", b"m")
    store.write("AAPL.csv", b"a" * 10)
    store.write("rejected/OLD.csv", b"o")  # deeper: not a file of the folder
    store.write(".processed/AAPL.csv.json", b"{}")
    put(s3, bucket, "landing/us/", b"")  # a console-made "folder" marker
    put(s3, bucket, "landing/usx/NOT_US.csv", b"x")  # shares the prefix's first characters
    put(s3, bucket, "landing/us/deep/er/NESTED.csv", b"x")

    files = store.list_files()
    assert [(o.name, o.size) for o in files] == [("AAPL.csv", 10), ("MSFT.csv", 1)]
    now = dt.datetime.now(dt.UTC)
    for obj in files:
        assert obj.modified.tzinfo is not None
        assert abs(obj.modified - now) < dt.timedelta(minutes=1)

    assert store.read("AAPL.csv") == b"a" * 10
    store.write("AAPL.csv", b"new")  # replaces
    assert store.read("AAPL.csv") == b"new"
    with pytest.raises(FileNotFoundError):
        store.read("GONE.csv")

    store.move("MSFT.csv", "rejected/MSFT.csv")
    assert store.read("rejected/MSFT.csv") == b"m"
    with pytest.raises(FileNotFoundError):
        store.read("MSFT.csv")
    store.write("OLD.csv", b"o2")
    store.move("OLD.csv", "rejected/OLD.csv")  # replacing an earlier rejection
    assert store.read("rejected/OLD.csv") == b"o2"
    with pytest.raises(FileNotFoundError):
        store.move("GONE.csv", "rejected/GONE.csv")
    assert [o.name for o in store.list_files()] == ["AAPL.csv"]
    assert "landing/usx/NOT_US.csv" in keys(s3, bucket)


def test_listing_pages(s3: Any, bucket: str) -> None:
    store = landing.open_store(f"s3://{bucket}/landing", "us")
    assert isinstance(store, landing.S3LandingStore)
    store.page_size = 2  # five files and a sub-folder: four pages
    names = [f"F{i}.csv" for i in range(5)]
    for name in reversed(names):
        store.write(name, name.encode())
    store.write("rejected/X.csv", b"x")
    assert [o.name for o in store.list_files()] == names


def test_unsafe_keys_are_refused(s3: Any, bucket: str) -> None:
    store = landing.open_store(f"s3://{bucket}/landing", "us")
    put(s3, bucket, "secret.csv", b"secret")
    for key in ("../secret.csv", "../../secret.csv", "/secret.csv", "a/../../secret.csv", ".", ""):
        with pytest.raises(landing.UnsafeKey):
            store.read(key)
        with pytest.raises(landing.UnsafeKey):
            store.write(key, b"x")
    with pytest.raises(landing.UnsafeKey):
        store.move("AAPL.csv", "../AAPL.csv")
    assert keys(s3, bucket) == ["secret.csv"]


def test_storage_failures_are_os_errors(aws_env: str) -> None:
    # OSError, as a local folder's failures are: `scan` notes a file it cannot read or move
    # and goes on; a missing bucket fails the listing (and so the tick, which is retried).
    store = landing.S3LandingStore("no-such-bucket-here", "landing/us")
    with pytest.raises(OSError, match="NoSuchBucket"):
        store.list_files()
    with pytest.raises(OSError, match="NoSuchBucket"):
        store.write("AAPL.csv", b"x")
    # moto grants everything: a denial as botocore reports it.
    from botocore.exceptions import ClientError

    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "GetObject")
    assert isinstance(landing.S3LandingStore._os_error(denied, "AAPL.csv"), PermissionError)


def test_the_client_is_s3_resources_and_reads_aws_endpoint_url(
    aws_env: str, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The generic variable (every AWS service) works as well as the S3 one.
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3")
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_env)
    store = landing.open_store(f"s3://{bucket}/landing", "us")
    assert isinstance(store, landing.S3LandingStore)
    assert store.client.meta.endpoint_url == aws_env
    # dagster_aws.s3.S3Resource built it: its standard retry mode, max_attempts=5 retries.
    assert store.client.meta.config.retries == {"mode": "standard", "total_max_attempts": 6}
    store.write("AAPL.csv", b"a")
    assert [o.name for o in store.list_files()] == ["AAPL.csv"]


def test_the_landing_resource_configures_the_client(
    aws_env: str, s3: Any, bucket: str, us: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Endpoint, region and credentials from the resource's S3Resource fields, the secret
    through `dg.EnvVar`: nothing left in the environment for boto3's chain to find."""
    for name in ("AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name)
    monkeypatch.setenv("FINANCE_TEST_S3_SECRET", "testing-secret")
    resource = LandingZoneResource(
        root=f"s3://{bucket}/landing",
        endpoint_url=aws_env,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key=dg.EnvVar("FINANCE_TEST_S3_SECRET"),
        max_attempts=2,
    )
    body = yahoo_csv(("2026-11-17", 231.7))
    put(s3, bucket, "landing/us/AAPL.csv", body)
    context = dg.build_sensor_context(resources={"landing_zone": resource})
    result = build_landing_sensor(us, settle=NO_SETTLE)(context)
    assert isinstance(result, dg.SensorResult)
    (request,) = result.run_requests or []
    assert request.tags[LANDING_SHA256_TAG] == landing.content_hash(body)
    # As a run sees it (EnvVar resolved); `context.resources` holds the resource itself.
    with dg.build_resources({"landing_zone": resource}) as resources:
        resolved = resources.landing_zone
        assert isinstance(resolved, LandingZoneResource)
        assert resolved.aws_secret_access_key == "testing-secret"
        client = resolved.store(us).client
    assert client.meta.endpoint_url == aws_env
    assert client.meta.region_name == "eu-west-1"
    assert client.meta.config.retries == {"mode": "standard", "total_max_attempts": 3}
    # Without the credentials the same listing fails as a local folder's would: an OSError.
    bare = LandingZoneResource(root=f"s3://{bucket}/landing", endpoint_url=aws_env)
    with pytest.raises(OSError, match="NoCredentialsError"):
        bare.store(us).list_files()


# --- the sensor over an S3 prefix ------------------------------------------------------------


def tick(
    sensor: dg.SensorDefinition, root: str, cursor: str | None = None
) -> tuple[list[dg.RunRequest], str, str | None]:
    context = dg.build_sensor_context(
        cursor=cursor, resources={"landing_zone": LandingZoneResource(root=root)}
    )
    result = sensor(context)
    assert isinstance(result, dg.SensorResult)
    assert isinstance(result.cursor, str)
    skip = result.skip_reason.skip_message if result.skip_reason else None
    return list(result.run_requests or []), result.cursor, skip


# S3 sets an object's modification time to its upload (no utime): the sensor is built without
# the settling delay instead of dating files back as test_landing.py does.
NO_SETTLE = dt.timedelta(0)


def test_sensor_new_file_same_file_bad_file(s3: Any, bucket: str, us: Market) -> None:
    root = f"s3://{bucket}/landing"
    sensor = build_landing_sensor(us, settle=NO_SETTLE)
    body = yahoo_csv(("2026-11-17", 231.7), ("2026-11-18", 233.0))
    put(s3, bucket, "landing/us/AAPL.csv", body)

    (request,), cursor, _ = tick(sensor, root)
    sha = landing.content_hash(body)
    assert request.tags[RANGE_START_TAG] == "2026-11-17"
    assert request.tags[RANGE_END_TAG] == "2026-11-18"
    assert request.tags[LANDING_FILE_TAG] == "AAPL.csv"
    assert request.tags[LANDING_SHA256_TAG] == sha
    assert request.run_key == f"us-{sha}-1"

    # The same file again: nothing; the tick writes the ledger's marker.
    requests, cursor, skip = tick(sensor, root, cursor)
    assert requests == [] and skip is not None and "1 unchanged" in skip
    marker = json.loads(
        s3.get_object(Bucket=bucket, Key="landing/us/.processed/AAPL.csv.json")["Body"].read()
    )
    assert (marker["sha256"], marker["first"], marker["last"]) == (sha, "2026-11-17", "2026-11-18")

    # Uploaded again byte for byte (a new LastModified): still nothing.
    put(s3, bucket, "landing/us/AAPL.csv", body)
    requests, cursor, _ = tick(sensor, root, cursor)
    assert requests == []

    # A bad file: moved to rejected/ with the reason beside it; the sensor goes on.
    weekend = yahoo_csv(("2026-11-21", 230.0))
    put(s3, bucket, "landing/us/WEEKEND.csv", weekend)
    requests, cursor, skip = tick(sensor, root, cursor)
    assert requests == [] and skip is not None and "1 rejected" in skip
    assert "landing/us/WEEKEND.csv" not in keys(s3, bucket)
    rejected = s3.get_object(Bucket=bucket, Key="landing/us/rejected/WEEKEND.csv")
    assert rejected["Body"].read() == weekend
    reason = s3.get_object(Bucket=bucket, Key="landing/us/rejected/WEEKEND.csv.reason.txt")
    text = reason["Body"].read().decode()
    assert "not trading sessions" in text and landing.content_hash(weekend) in text
    # The rejected "folder" is not read again.
    assert tick(sensor, root, cursor)[0] == []

    # The run the request starts reads the file through the same store.
    provider = LandingZoneResource(root=root).provider_for_run(us, request.tags)
    assert provider is not None
    start = dt.datetime(2026, 11, 17, tzinfo=us.tz)
    (payload,) = provider.fetch_bars(us, us.universe, "1day", start, start + dt.timedelta(days=2))
    assert payload.body == body
    assert payload.request["uri"] == f"s3://{bucket}/landing/us/AAPL.csv"


def test_traversal_like_and_hidden_keys_are_ignored(s3: Any, bucket: str, us: Market) -> None:
    body = yahoo_csv(("2026-11-17", 231.7))
    # Keys S3 stores literally but a path would read as steps or hidden files.
    ignored = [".AAPL.csv", "..", "..\\AAPL.csv", "AAPL.csv.part", "notes.txt", "AAPL;x.csv"]
    for name in ignored:
        put(s3, bucket, f"landing/us/{name}", body)
    deeper = ["landing/us/../outside.csv", "landing/us//AAPL.csv", "landing/us/sub/NESTED.csv"]
    for key in deeper:
        put(s3, bucket, key, body)
    before = keys(s3, bucket)

    requests, _, skip = tick(build_landing_sensor(us, settle=NO_SETTLE), f"s3://{bucket}/landing")
    assert requests == []
    assert skip is not None and f"{len(ignored)} ignored" in skip and "0 new" in skip
    assert keys(s3, bucket) == before  # nothing moved, rejected or recorded

    result = landing.scan(
        landing.open_store(f"s3://{bucket}/landing", "us"),
        us,
        None,
        now=dt.datetime.now(dt.UTC),
        settle=NO_SETTLE,
    )
    assert sorted(result.ignored) == sorted(ignored)
    assert "separators" in result.ignored["..\\AAPL.csv"]
    assert "hidden" in result.ignored[".."]
