"""`<market>/bars_by_symbol` through Dagster Pipes: spark-submit on local[2] end to end, and the
EMR and EMR Serverless submissions against moto's server.

moto accepts a job flow or a job run but executes nothing: a test double (a botocore hook on the
submission call) plays the cluster. It reads what the service holds (steps, configurations,
spark-submit parameters), checks the code in S3 and installs it as the bootstrap (EMR) or
`--py-files` (EMR Serverless) would, then runs the step on the shared
local Spark session with the Pipes environment the submission carried, and posts the output
where the client reads it: the Parquet back to S3, messages to S3 (EMR) or the driver's stdout
to CloudWatch Logs (EMR Serverless).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import io
import json
import os
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import dagster_pipes
import polars as pl
import pytest

from finance_assets.defs.cluster.assets import build_spark_assets
from finance_assets.lib.io import lake
from finance_assets.providers.simulated_market import SimulatedMarket
from finance_assets.resources.spark_pipes import (
    CLUSTER_PACKAGES,
    ENTRY,
    JOB_DIR,
    SparkPipesResource,
    package_wheel,
    split_s3_uri,
)
from finance_assets.spark import job as bars_job

boto3 = pytest.importorskip("boto3")
moto_server = pytest.importorskip("moto.server")
# What a process that imported the job from `path` reports: where the package came from and
# the markets it loads (package data read through importlib.resources, a zip or not).
_IMPORT_CHECK = (
    "import json, finance_assets, finance_assets.spark.job as job; "
    "from finance_assets.lib.markets import markets_from_env; "
    "print(json.dumps([finance_assets.__file__, sorted(markets_from_env({}))]))"
)

SYMBOLS = ("AAPL", "MSFT")
RANGE = {
    "dagster/asset_partition_range_start": "2026-11-16",
    "dagster/asset_partition_range_end": "2026-11-17",
}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, us) -> Path:
    """A raw zone with two sessions of two symbols, 5 % of records corrupted."""
    root = tmp_path_factory.mktemp("spark-data")
    start = dt.datetime(2026, 11, 16, 9, 30, tzinfo=us.tz)
    end = dt.datetime(2026, 11, 17, 16, tzinfo=us.tz)
    payloads = SimulatedMarket(fault_rate=0.05).fetch_bars(us, SYMBOLS, "5min", start, end)
    lake.write_payloads(root / "raw" / "us" / "raw_intraday_quotes", payloads, start, end, us.tz)
    return root


def _materialize(us, resource: SparkPipesResource) -> dg.ExecuteInProcessResult:
    return dg.materialize(build_spark_assets(us), resources={"spark_pipes": resource}, tags=RANGE)


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    events = result.asset_materializations_for_node("us__bars_by_symbol")
    assert events
    return {k: v.value for k, v in events[-1].metadata.items()}


def test_local_spark_submit_end_to_end(us, data_root, tmp_path):
    resource = SparkPipesResource(
        raw_root=str(data_root / "raw"),
        out_root=str(tmp_path / "spark"),
        master="local[2]",
        shuffle_partitions=2,
    )
    result = _materialize(us, resource)
    assert result.success
    meta = _metadata(result)
    assert meta["spark_application_id"].startswith("local-")
    assert meta["spark_master"] == "local[2]"
    assert meta["partitions_written"] == 4
    assert meta["rows_loaded"] == meta["dagster/row_count"] > 2 * 2 * 70
    assert meta["records_received"] == meta["rows_loaded"] + meta["rows_quarantined"]
    assert (
        meta["rows_quarantined"] > 0
        and sum(meta["quarantine_reasons"].values()) == (meta["rows_quarantined"])
    )
    bars = pl.read_parquet(tmp_path / "spark" / "us" / "bars_by_symbol" / "**" / "*.parquet")
    assert bars.height == meta["rows_loaded"]
    folders = (tmp_path / "spark" / "us" / "bars_by_symbol").glob("symbol=*/date=*")
    assert sorted(str(p.relative_to(p.parents[1])) for p in folders) == [
        f"symbol={s}/date=2026-11-{d}" for s in SYMBOLS for d in (16, 17)
    ]


# --- EMR and EMR Serverless on moto -----------------------------------------------------------


@pytest.fixture(scope="module")
def aws_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws(aws_endpoint, tmp_path, monkeypatch) -> Iterator[Any]:
    """Fake credentials and moto's endpoint for every service, from the environment only; the
    default boto3 session is fresh, so the doubles' hooks reach the clients the resource makes."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL": aws_endpoint,
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    boto3.setup_default_session()
    yield boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = None


def _upload_tree(s3, folder: Path, uri: str) -> None:
    bucket, prefix = split_s3_uri(uri)
    for path in folder.rglob("*"):
        if path.is_file():
            s3.put_object(
                Bucket=bucket, Key=f"{prefix}/{path.relative_to(folder)}", Body=path.read_bytes()
            )


def _download_tree(s3, uri: str, folder: Path) -> None:
    bucket, prefix = split_s3_uri(uri)
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            target = folder / item["Key"][len(prefix) + 1 :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())


class ClusterDouble:
    """Runs a submitted spark-submit step as a cluster would, on the local session."""

    def __init__(self, spark, s3, scratch: Path) -> None:
        self.spark, self.s3, self.scratch = spark, s3, scratch
        self.submitted: list[dict[str, Any]] = []

    def _get(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        return self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def check_entry(self, entry: str) -> None:
        """The entry point in S3 is spark/bars_job.py as it is here."""
        assert Path(entry).name == ENTRY
        assert self._get(entry) == (JOB_DIR / ENTRY).read_bytes(), entry

    def check_wheel(self, uri: str) -> bytes:
        """The wheel in S3 is the package this process runs, built now (same bytes)."""
        name, wheel = package_wheel()
        assert Path(uri).name.removesuffix(".zip").removesuffix(".whl") == name[: -len(".whl")]
        body = self._get(uri)
        assert body == wheel, uri
        return body

    def imports_from(self, path: Path) -> list[Any]:
        """A fresh Python with only `path` ahead of its site-packages imports the job: from
        there (not the checkout), with the package's data."""
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT_CHECK],
            capture_output=True,
            text=True,
            cwd=self.scratch,
            env={**os.environ, "PYTHONPATH": str(path)},
            check=True,
        )
        where, markets = json.loads(done.stdout)
        assert where.startswith(str(path)), where
        assert markets == ["uk", "us"]
        return markets

    def bootstrap(self, script: str) -> str:
        """Run the bootstrap's install steps here: the download from S3 and the wheel's
        install (into a folder instead of the node's Python); check the packages it installs.
        Returns the Python it installs into."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        site = self.scratch / "site-packages"
        local: dict[str, Path] = {}
        python, installed = None, None
        for line in script.splitlines()[2:]:
            words = shlex.split(line)
            if words[:3] == ["aws", "s3", "cp"]:
                source, target = words[-2:]
                local[target] = self.scratch / Path(target).name
                local[target].write_bytes(self.check_wheel(source))
            elif "--no-deps" in words:
                python = words[words.index("-m") - 1]
                assert words[0] == "sudo" and words[words.index("-m") + 1 :][:2] == [
                    "pip",
                    "install",
                ]
                subprocess.run(
                    [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                     "--target", str(site), str(local[words[-1]])],
                    check=True,
                )  # fmt: skip
            elif "pip" in words:
                installed = words[words.index("--quiet") + 1 :]
        assert installed == list(CLUSTER_PACKAGES)
        assert python is not None and local
        self.imports_from(site)
        return python

    def run(self, args: list[str], env: dict[str, str]) -> tuple[str, str, BaseException | None]:
        """The job's argv with S3 URIs in place of paths; returns (stdout, stderr, error)."""
        argv = list(args)
        raw_uri, out_uri = argv[argv.index("--raw") + 1], argv[argv.index("--out") + 1]
        raw, out = self.scratch / "raw", self.scratch / "out"
        _download_tree(self.s3, raw_uri, raw)  # EMRFS reads S3 on a cluster
        argv[argv.index("--raw") + 1], argv[argv.index("--out") + 1] = str(raw), str(out)
        stdout, stderr = io.StringIO(), io.StringIO()
        error = None
        saved = dict(os.environ)
        os.environ.update(env)
        # A cluster runs each step in a new process; here the previous step's closed Pipes
        # context would be reused: start from none, as a new process does.
        dagster_pipes.PipesContext._instance = None
        try:
            with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
                bars_job.main(argv, spark=self.spark)
        except (Exception, SystemExit) as exc:  # argparse exits: the step fails, like spark-submit
            error = exc
            stderr.write(f"{type(exc).__name__}: {exc}\n")
        finally:
            os.environ.clear()
            os.environ.update(saved)
        if out.exists():
            _upload_tree(self.s3, out, out_uri)
        return stdout.getvalue(), stderr.getvalue(), error


@pytest.fixture
def cloud(aws, spark_session, tmp_path, data_root):
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="finance")
    _upload_tree(s3, data_root / "raw", "s3://finance/raw")
    return ClusterDouble(spark_session, s3, tmp_path / "cluster"), s3


def _emr_double(session, double: ClusterDouble, fail: bool = False) -> None:
    emr = boto3.client("emr")
    failed: set[str] = set()

    def on_run_job_flow(parsed, **_: Any) -> None:
        cluster_id = parsed["JobFlowId"]
        cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
        double.submitted.append(cluster)
        # The Pipes environment, as the spark-env `export` classification carries it.
        spark_env = next(c for c in cluster["Configurations"] if c["Classification"] == "spark-env")
        env = spark_env["Configurations"][0]["Properties"]
        bootstrap = boto3.client("emr").list_bootstrap_actions(ClusterId=cluster_id)
        path = bootstrap["BootstrapActions"][0]["ScriptPath"]
        python = double.bootstrap(double._get(path).decode())
        for step in emr.list_steps(ClusterId=cluster_id)["Steps"]:
            args = step["Config"]["Args"]
            # The job runs in the Python the bootstrap installed the wheel into.
            assert args[:7] == [
                "spark-submit",
                "--deploy-mode",
                "cluster",
                "--conf",
                f"spark.pyspark.python={python}",
                "--conf",
                f"spark.yarn.appMasterEnv.PYSPARK_PYTHON={python}",
            ]
            double.check_entry(args[7])
            job_args = args[8:]
            if fail:
                job_args[job_args.index("--raw") + 1] = "s3://finance/nothing-here"
                job_args[job_args.index("--market") + 1] = "jp"
            out, err, error = double.run(job_args, env)
            log_bucket, log_prefix = split_s3_uri(cluster["LogUri"])
            for name, text in (("stdout", out), ("stderr", err)):
                key = f"{log_prefix}/{cluster_id}/steps/{step['Id']}/{name}.gz"
                double.s3.put_object(Bucket=log_bucket, Key=key, Body=gzip.compress(text.encode()))
            if error is not None or fail:
                failed.add(cluster_id)
        emr.terminate_job_flows(JobFlowIds=[cluster_id])

    def on_describe(parsed, **_: Any) -> None:
        # moto ends every cluster TERMINATED: report a failed step's cluster as AWS does.
        cluster = parsed.get("Cluster", {})
        if cluster.get("Id") in failed and cluster["Status"]["State"] == "TERMINATED":
            cluster["Status"]["State"] = "TERMINATED_WITH_ERRORS"
            cluster["Status"]["StateChangeReason"] = {"Message": "Steps completed with errors"}

    session.events.register("after-call.emr.RunJobFlow", on_run_job_flow)
    session.events.register("after-call.emr.DescribeCluster", on_describe)


def _emr_resource() -> SparkPipesResource:
    return SparkPipesResource(
        mode="emr",
        raw_root="s3://finance/raw",
        out_root="s3://finance/spark",
        code_uri="s3://finance/code/spark",
        emr_log_uri="s3://finance/emr-logs",
        poll_seconds=0.2,
    )


def test_emr_submission_runs_and_reports(us, aws, cloud):
    double, s3 = cloud
    _emr_double(aws, double)
    result = _materialize(us, _emr_resource())
    assert result.success
    (cluster,) = double.submitted
    assert cluster["ReleaseLabel"] == "emr-7.5.0"
    assert [a["Name"] for a in cluster["Applications"]] == ["Spark"]
    tags = {t["Key"]: t["Value"] for t in cluster["Tags"]}
    assert result.run_id in tags.values()
    meta = _metadata(result)
    assert meta["AWS EMR Cluster ID"] == cluster["Id"]
    assert meta["partitions_written"] == 4 and meta["rows_loaded"] > 0
    assert meta["spark_application_id"]
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="finance", Prefix="spark/us/")["Contents"]]
    assert any(k.startswith("spark/us/bars_by_symbol/symbol=AAPL/date=2026-11-17/") for k in keys)


def test_emr_failed_step_fails_the_asset(us, aws, cloud):
    double, _ = cloud
    _emr_double(aws, double, fail=True)
    result = dg.materialize(
        build_spark_assets(us),
        resources={"spark_pipes": _emr_resource()},
        tags=RANGE,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "TERMINATED_WITH_ERRORS" in str(failure)


def test_emr_serverless_submission_runs_and_reports(us, aws, cloud):
    double, _ = cloud
    serverless = boto3.client("emr-serverless")
    logs = boto3.client("logs")
    app = serverless.create_application(name="finance", releaseLabel="emr-7.5.0", type="SPARK")
    runs: list[dict[str, Any]] = []

    def on_start_job_run(parsed, **_: Any) -> None:
        run = serverless.get_job_run(
            applicationId=parsed["applicationId"], jobRunId=parsed["jobRunId"]
        )
        run = run["jobRun"]
        runs.append(run)
        submit = run["jobDriver"]["sparkSubmit"]
        words = shlex.split(submit["sparkSubmitParameters"])
        confs = [words[i + 1] for i, w in enumerate(words) if w == "--conf"]
        prefix = "spark.emr-serverless.driverEnv."
        env = dict(c[len(prefix) :].split("=", 1) for c in confs if c.startswith(prefix))
        double.check_entry(submit["entryPoint"])
        # --py-files: the wheel under a .zip name, imported from the zip as Spark's path has it.
        py_files = words[words.index("--py-files") + 1]
        assert py_files.endswith(".zip") and "," not in py_files
        zipped = double.scratch / Path(py_files).name
        zipped.parent.mkdir(parents=True, exist_ok=True)
        zipped.write_bytes(double.check_wheel(py_files))
        double.imports_from(zipped)
        out, err, error = double.run(list(submit["entryPointArguments"]), env)
        assert error is None, error
        group = "/aws/emr-serverless"
        driver = f"/applications/{run['applicationId']}/jobs/{run['jobRunId']}/SPARK_DRIVER"
        with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
            logs.create_log_group(logGroupName=group)
        now = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
        # Both of the driver's streams, as EMR Serverless logs them: the client reads stdout for
        # the messages and waits for a stderr stream (60 s, then it gives up on it).
        for name, text in (("stdout", out), ("stderr", err)):
            lines = [line for line in text.splitlines() if line.strip()]
            assert lines, name
            logs.create_log_stream(logGroupName=group, logStreamName=f"{driver}/{name}")
            logs.put_log_events(
                logGroupName=group,
                logStreamName=f"{driver}/{name}",
                logEvents=[{"timestamp": now, "message": line} for line in lines],
            )

    def on_get_application(parsed, **_: Any) -> None:
        # moto echoes the type as created (SPARK); AWS answers "Spark", which the client expects.
        if parsed.get("application", {}).get("type") == "SPARK":
            parsed["application"]["type"] = "Spark"

    aws.events.register("after-call.emr-serverless.StartJobRun", on_start_job_run)
    aws.events.register("after-call.emr-serverless.GetApplication", on_get_application)
    resource = SparkPipesResource(
        mode="emr_serverless",
        raw_root="s3://finance/raw",
        out_root="s3://finance/spark",
        code_uri="s3://finance/code/spark",
        serverless_application_id=app["applicationId"],
        serverless_execution_role_arn="arn:aws:iam::123456789012:role/emr-serverless-job",
        poll_seconds=0.2,
    )
    result = _materialize(us, resource)
    assert result.success
    (run,) = runs
    logging = run["configurationOverrides"]["monitoringConfiguration"]
    assert logging["cloudWatchLoggingConfiguration"] == {"enabled": True}
    assert result.run_id in run["tags"].values()
    meta = _metadata(result)
    assert meta["AWS EMR Serverless Job Run ID"] == run["jobRunId"]
    assert meta["partitions_written"] == 4 and meta["rows_loaded"] > 0
    reasons = json.loads(json.dumps(meta["quarantine_reasons"]))
    assert sum(reasons.values()) == meta["rows_quarantined"]
