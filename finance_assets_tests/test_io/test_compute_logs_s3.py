"""`dagster.yaml`'s compute log manager, as production configures it, against moto's S3 server on
loopback: a run's step output lands under the bucket and prefix the environment names, and the
instance reads it back from there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

pytest.importorskip("moto.server")

from dagster._core.test_utils import instance_for_test

DAGSTER_YAML = Path(__file__).resolve().parents[2] / "dagster.yaml"


@dg.op
def shout() -> None:
    print("compute log line from the step")


@dg.job
def noisy() -> None:
    shout()


def test_step_logs_go_to_the_configured_bucket(
    s3: Any, bucket: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    compute_logs = yaml.safe_load(DAGSTER_YAML.read_text())["compute_logs"]
    assert compute_logs["class"] == "S3ComputeLogManager"
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_BUCKET", bucket)
    monkeypatch.setenv("DAGSTER_COMPUTE_LOG_PREFIX", "dagster/compute")
    config = {**compute_logs, "config": {**compute_logs["config"], "local_dir": str(tmp_path)}}
    with instance_for_test(overrides={"compute_logs": config}) as instance:
        result = noisy.execute_in_process(instance=instance)
        assert result.success
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
        assert keys and all(k.startswith("dagster/compute/storage/") for k in keys)
        out = [k for k in keys if k.endswith(".out")]
        assert out, keys
        body = s3.get_object(Bucket=bucket, Key=out[0])["Body"].read().decode()
        assert "compute log line from the step" in body
        manager = instance.compute_log_manager
        log_key = out[0].removeprefix("dagster/compute/storage/").removesuffix(".out").split("/")
        assert "compute log line" in manager.get_log_data(log_key).stdout.decode()
