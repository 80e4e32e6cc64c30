"""Where the Spark job runs: a resource that picks a Dagster Pipes client.

- `local` (default): `PipesSubprocessClient` running `spark-submit --master local[*]` (Java 17+)
  with this Python on the driver and the executors (it has the package);
- `emr`: `dagster_aws.pipes.PipesEMRClient`: a job flow per run; the entry point, a wheel of
  `finance_assets` built at launch (`package_wheel`) and a bootstrap that installs it with the
  packages the job imports (`CLUSTER_PACKAGES`) are uploaded to S3; messages through S3;
- `emr_serverless`: `PipesEMRServerlessClient` on an existing application; the wheel goes on the
  executors' path (`--py-files`), the packages come from a packed venv
  (FINANCE_SPARK_SERVERLESS_VENV_URI) or the application's image; messages through the
  driver's stdout in CloudWatch Logs.

Settings come from the environment (`spark_pipes_from_env`, checked when definitions load):
FINANCE_SPARK_MODE, FINANCE_SPARK_RAW_URI / FINANCE_SPARK_OUT_URI (S3 for the clusters),
FINANCE_SPARK_CODE_URI, FINANCE_SPARK_EMR_* and FINANCE_SPARK_SERVERLESS_*. AWS credentials
are boto3's own chain (never a setting here).
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.metadata
import io
import os
import shlex
import shutil
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from finance_assets.lib.settings import EnvSettings

MODES = ("local", "emr", "emr_serverless")
JOB_DIR = Path(__file__).resolve().parents[2] / "spark"  # the top-level spark/ folder
ENTRY = "bars_job.py"  # what spark-submit runs: it imports the job from the package
BOOTSTRAP = "bootstrap.sh"
PACKAGE = "finance_assets"
# What the job imports on the cluster besides pyspark and the package itself (installed with
# --no-deps: the package's own dependencies are the whole platform's, Dagster and all): the
# polars rules, the calendar, the provider base, the Pipes protocol. Specifiers as in
# pyproject.toml (test_spark_pipes checks both, and that nothing else is imported).
CLUSTER_PACKAGES = (
    "polars>=1.30,<3",
    "pyarrow>=18",
    "numpy>=1.26",
    "pandas>=2.2",
    "orjson>=3.10",
    "exchange-calendars>=4.5,<5",
    "requests>=2.32,<3",
    "tenacity>=9,<10",
    "pyrate-limiter>=4.5,<5",
    "dagster-pipes>=1.13,<1.14",
    "boto3>=1.34,<2",
)
_TERMINATED = ("TERMINATED", "TERMINATED_WITH_ERRORS")
_FAILED_STEP = ("FAILED", "CANCELLED", "INTERRUPTED")


class SparkPipesResource(dg.ConfigurableResource):
    """Runs `spark/bars_job.py` through the Pipes client of `mode` (local, emr, emr_serverless)."""

    mode: str = "local"
    raw_root: str  # the raw zone: `<raw_root>/<market>/raw_intraday_quotes/dt=.../`
    out_root: str  # the job's output: `<out_root>/<market>/bars_by_symbol/symbol=.../date=.../`
    # local
    spark_submit: str | None = None  # default: the spark-submit beside this Python
    master: str = "local[*]"
    shuffle_partitions: int = 8
    # emr and emr_serverless
    code_uri: str | None = None  # s3://bucket/prefix the job files and the bootstrap go to
    region: str | None = None
    emr_release: str = "emr-7.5.0"
    emr_instance_type: str = "m5.xlarge"
    emr_instance_count: int = 3
    emr_log_uri: str | None = None
    emr_job_flow_role: str = "EMR_EC2_DefaultRole"
    emr_service_role: str = "EMR_DefaultRole"
    # The package needs Python 3.11+: the bootstrap installs it where the release has none
    # (Amazon Linux 2023's python3.11), and Spark runs the job with it.
    emr_python: str = "python3.11"
    serverless_application_id: str | None = None
    serverless_execution_role_arn: str | None = None
    serverless_venv_archive_uri: str | None = None  # a packed venv with dagster-pipes
    # How often Dagster asks AWS about a run: the cluster's or job run's state, the Pipes
    # messages in S3 and the step logs (dagster_aws' readers default to 10 s, its EMR waiters
    # to 30 s). A few requests a minute cost nothing; seconds matter only in tests.
    poll_seconds: float = 15.0

    def job_args(self, market: str, start: str, end: str, interval: str = "5min") -> list[str]:
        """The command line a person would type after `spark-submit ... bars_job.py`."""
        zone = "raw_intraday_quotes" if interval == "5min" else "raw_daily_quotes"
        raw = f"{self.raw_root.rstrip('/')}/{market}/{zone}"
        out = f"{self.out_root.rstrip('/')}/{market}"
        args = ["--raw", raw, "--out", out, "--market", market, "--start", start, "--end", end]
        return args if interval == "5min" else [*args, "--interval", interval]

    def run(
        self, context: dg.AssetExecutionContext, args: Sequence[str]
    ) -> dg.PipesClientCompletedInvocation:
        if self.mode == "local":
            return self._run_local(context, args)
        if self.mode == "emr":
            return self._run_emr(context, args)
        if self.mode == "emr_serverless":
            return self._run_serverless(context, args)
        raise ValueError(f"unknown spark mode {self.mode!r}; valid: {', '.join(MODES)}")

    # --- local -----------------------------------------------------------------------------

    def local_command(self, args: Sequence[str]) -> list[str]:
        submit = self.spark_submit or _default_spark_submit()
        return [
            submit,
            "--master",
            self.master,
            "--conf",
            f"spark.sql.shuffle.partitions={self.shuffle_partitions}",
            "--conf",
            "spark.ui.showConsoleProgress=false",
            "--conf",
            "spark.log.level=WARN",
            str(JOB_DIR / ENTRY),
            *args,
        ]

    def _run_local(self, context, args):
        # The driver and the workers run this Python: it has the package and its dependencies.
        env = {"PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
        return dg.PipesSubprocessClient(env=env).run(
            command=self.local_command(args), context=context
        )

    # --- EMR -------------------------------------------------------------------------------

    def upload_code(self, s3: Any) -> dict[str, str]:
        """Put the entry point, the package's wheel (built now, from the code this process
        runs) and the EMR bootstrap under `code_uri`; returns name -> s3 URI (keys ENTRY,
        "wheel", "wheel_zip" and BOOTSTRAP). The wheel's name carries a hash of its files, so
        a run never picks up another run's code."""
        bucket, prefix = split_s3_uri(_required(self.code_uri, "FINANCE_SPARK_CODE_URI"))
        name, wheel = package_wheel()

        def uri(file: str) -> str:
            return f"s3://{bucket}/{f'{prefix}/{file}'.lstrip('/')}"

        files = {
            ENTRY: (ENTRY, (JOB_DIR / ENTRY).read_bytes()),
            "wheel": (name, wheel),
            # The same bytes under a name Spark puts on the executors' path (`--py-files` takes
            # .zip, .egg and .py files; a wheel is a zip).
            "wheel_zip": (name.removesuffix(".whl") + ".zip", wheel),
        }
        files[BOOTSTRAP] = (BOOTSTRAP, self.bootstrap_script(uri(name)).encode())
        uris = {}
        for key, (file, body) in files.items():
            bucket_key = split_s3_uri(uri(file))[1]
            s3.put_object(Bucket=bucket, Key=bucket_key, Body=body)
            uris[key] = uri(file)
        return uris

    def bootstrap_script(self, wheel_uri: str) -> str:
        """The EMR bootstrap action: on every node, Python 3.11+ if the release lacks it, the
        wheel (no dependencies) and the packages the job imports."""
        python = shlex.quote(self.emr_python)
        wheel = "/tmp/" + wheel_uri.rsplit("/", 1)[1]
        packages = " ".join(shlex.quote(p) for p in CLUSTER_PACKAGES)
        return "\n".join(
            [
                "#!/bin/bash",
                "set -euo pipefail",
                f"command -v {python} >/dev/null || sudo dnf install -y -q {python} {python}-pip",
                f"aws s3 cp --only-show-errors {shlex.quote(wheel_uri)} {shlex.quote(wheel)}",
                f"sudo {python} -m pip install --quiet --no-deps {shlex.quote(wheel)}",
                f"sudo {python} -m pip install --quiet {packages}",
                "",
            ]
        )

    def emr_job_flow(self, context, args: Sequence[str], code: dict[str, str]) -> dict[str, Any]:
        """run_job_flow parameters: one step, spark-submit in cluster mode."""
        # No `Configurations` of our own: PipesEMRClient merges its env-var classifications into
        # ours and, when a classification is already there, drops our properties
        # (dagster_aws.pipes.clients.utils.add_emr_configuration). Spark settings go on the
        # spark-submit line instead.
        step = {
            "Name": f"bars_by_symbol {' '.join(args[-4:])}",
            "ActionOnFailure": "TERMINATE_CLUSTER",
            "HadoopJarStep": {
                "Jar": "command-runner.jar",
                "Args": [
                    "spark-submit",
                    "--deploy-mode",
                    "cluster",
                    # The bootstrap installed the package into this Python on every node.
                    "--conf",
                    f"spark.pyspark.python={self.emr_python}",
                    "--conf",
                    f"spark.yarn.appMasterEnv.PYSPARK_PYTHON={self.emr_python}",
                    code[ENTRY],
                    *args,
                ],
            },
        }
        params: dict[str, Any] = {
            "Name": f"finance_assets {context.asset_key.to_user_string()} {context.run.run_id[:8]}",
            "ReleaseLabel": self.emr_release,
            "Applications": [{"Name": "Spark"}],
            "Instances": {
                "MasterInstanceType": self.emr_instance_type,
                "SlaveInstanceType": self.emr_instance_type,
                "InstanceCount": self.emr_instance_count,
                "KeepJobFlowAliveWhenNoSteps": False,
            },
            "BootstrapActions": [
                {
                    "Name": "finance_assets wheel and the packages the job imports",
                    "ScriptBootstrapAction": {"Path": code[BOOTSTRAP]},
                }
            ],
            "Steps": [step],
            "JobFlowRole": self.emr_job_flow_role,
            "ServiceRole": self.emr_service_role,
            "VisibleToAllUsers": True,
        }
        if self.emr_log_uri:
            params["LogUri"] = self.emr_log_uri
        return params

    def _run_emr(self, context, args):
        import boto3
        from dagster_aws.pipes import PipesS3MessageReader

        s3 = boto3.client("s3", region_name=self.region)
        bucket, _ = split_s3_uri(_required(self.code_uri, "FINANCE_SPARK_CODE_URI"))
        client = CheckedEMRClient(
            client=boto3.client("emr", region_name=self.region),
            message_reader=PipesS3MessageReader(
                bucket=bucket, client=s3, include_stdio_in_messages=True, interval=self.poll_seconds
            ),
            wait_for_s3_logs_seconds=0,
            poll_seconds=self.poll_seconds,
        )
        code = self.upload_code(s3)
        return client.run(
            context=context, run_job_flow_params=self.emr_job_flow(context, args, code)
        )

    # --- EMR Serverless --------------------------------------------------------------------

    def serverless_job_run(self, context, args: Sequence[str], code: dict[str, str]) -> dict:
        submit = "--py-files " + code["wheel_zip"]
        if self.serverless_venv_archive_uri:
            submit += (
                f" --conf spark.archives={self.serverless_venv_archive_uri}#environment"
                + "".join(
                    f" --conf {name}=./environment/bin/python"
                    for name in (
                        "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON",
                        "spark.emr-serverless.driverEnv.PYSPARK_PYTHON",
                        "spark.executorEnv.PYSPARK_PYTHON",
                    )
                )
            )
        return {
            "applicationId": _required(
                self.serverless_application_id, "FINANCE_SPARK_SERVERLESS_APPLICATION_ID"
            ),
            "executionRoleArn": _required(
                self.serverless_execution_role_arn, "FINANCE_SPARK_SERVERLESS_ROLE_ARN"
            ),
            "name": f"finance_assets {context.asset_key.to_user_string()} {context.run.run_id[:8]}",
            "jobDriver": {
                "sparkSubmit": {
                    "entryPoint": code[ENTRY],
                    "entryPointArguments": list(args),
                    "sparkSubmitParameters": submit,
                }
            },
            # No `logTypes`: PipesEMRServerlessClient intersects the upper-case names AWS takes
            # (STDOUT, STDERR) with lower-case ones and then reads no stream at all. Without it,
            # the driver's stdout and stderr are logged, and read, by default.
            "configurationOverrides": {
                "monitoringConfiguration": {"cloudWatchLoggingConfiguration": {"enabled": True}}
            },
        }

    def _run_serverless(self, context, args):
        import boto3
        from dagster_aws.pipes import PipesCloudWatchMessageReader, PipesEMRServerlessClient

        reader = PipesCloudWatchMessageReader(client=boto3.client("logs", region_name=self.region))
        reader.interval = self.poll_seconds  # its constructor takes none (the base's default 10 s)
        client = PipesEMRServerlessClient(
            client=boto3.client("emr-serverless", region_name=self.region),
            message_reader=reader,
            poll_interval=self.poll_seconds,
        )
        code = self.upload_code(boto3.client("s3", region_name=self.region))
        return client.run(
            context=context, start_job_run_params=self.serverless_job_run(context, args, code)
        )


def package_wheel() -> tuple[str, bytes]:
    """A wheel of the `finance_assets` package this process runs: (file name, bytes).

    Built from the imported package's files (an editable checkout or an installed copy alike),
    pure Python, without dependencies (the cluster installs CLUSTER_PACKAGES). Reproducible:
    fixed file order and times, and the version's local part is a hash of the files, so the
    same code gives the same wheel and changed code a new name."""
    root = Path(importlib.import_module(PACKAGE).__file__).resolve().parent
    files = {
        f"{PACKAGE}/{path.relative_to(root).as_posix()}": path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }
    digest = hashlib.sha256()
    for name, body in files.items():
        digest.update(name.encode() + b"\0" + hashlib.sha256(body).digest())
    try:
        base = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        base = "0"
    version = f"{base.split('+')[0]}+g{digest.hexdigest()[:12]}"
    info = f"{PACKAGE}-{version}.dist-info"
    files[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: {version}\nRequires-Python: >=3.11\n"
    ).encode()
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: finance_assets.resources.spark_pipes\n"
        b"Root-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [f"{name},{_record_hash(body)},{len(body)}" for name, body in files.items()]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, body in files.items():
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(entry, body)
    return f"{PACKAGE}-{version}-py3-none-any.whl", buffer.getvalue()


def _record_hash(body: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=")
    return f"sha256={digest.decode()}"


def _emr_client_class() -> type:
    from dagster_aws.pipes import PipesEMRClient

    class _Checked(PipesEMRClient):
        """PipesEMRClient that notices a failed cluster.

        Workaround: PipesEMRClient._wait_for_completion compares the state string with
        `EmrClusterState` enums (`state in EMR_CLUSTER_TERMINATED_STATES`), which is never
        true, so TERMINATED_WITH_ERRORS never raises; its boto3 waiters also poll every 30 s.
        This polls at `poll_seconds`, compares strings and fails on a failed step too; the
        step-log readers it adds poll at `poll_seconds` too (PipesEMRClient gives them none,
        so they poll every 10 s and end ~30 s after the cluster).
        """

        def __init__(self, *, poll_seconds: float = 15.0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.poll_seconds = poll_seconds

        def _add_log_readers(self, context, response):
            from dagster_aws.pipes import PipesS3LogReader

            super()._add_log_readers(context, response)
            for reader in self.message_reader.log_readers.values():
                if isinstance(reader, PipesS3LogReader):
                    reader.interval = self.poll_seconds

        def _wait_for_completion(self, context, response):
            cluster_id = response["JobFlowId"]
            while True:
                cluster = self.client.describe_cluster(ClusterId=cluster_id)
                state = cluster["Cluster"]["Status"]["State"]
                if state in _TERMINATED:
                    break
                time.sleep(self.poll_seconds)
            steps = self.client.list_steps(ClusterId=cluster_id)["Steps"]
            failed = [s["Name"] for s in steps if s["Status"]["State"] in _FAILED_STEP]
            context.log.info(f"[pipes] EMR cluster {cluster_id} completed with state: {state}")
            if state == "TERMINATED_WITH_ERRORS" or failed:
                reason = cluster["Cluster"]["Status"].get("StateChangeReason", {})
                raise dg.Failure(
                    description=f"EMR cluster {cluster_id} ended {state}"
                    + (f", failed step(s) {failed}" if failed else "")
                    + (f": {reason.get('Message')}" if reason.get("Message") else ""),
                    metadata={"cluster_id": cluster_id, "state": state},
                )
            return cluster

    return _Checked


def CheckedEMRClient(**kwargs: Any) -> Any:
    """dagster_aws is imported only when the EMR mode runs."""
    return _emr_client_class()(**kwargs)


def split_s3_uri(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or len(uri) <= 5:
        raise ValueError(f"{uri!r} is not an s3://bucket/prefix URI")
    bucket, _, prefix = uri[5:].partition("/")
    return bucket, prefix.rstrip("/")


def _required(value: str | None, variable: str) -> str:
    if not value:
        raise ValueError(f"{variable} is not set: the Spark mode needs it")
    return value


def _default_spark_submit() -> str:
    beside = Path(sys.executable).with_name("spark-submit")
    return str(beside) if beside.exists() else (shutil.which("spark-submit") or "spark-submit")


def spark_pipes_from_env(settings: EnvSettings, data_root: Path) -> SparkPipesResource:
    """The resource for `build_resources`: local paths under the data folder by default; the
    clusters need S3 URIs for the raw zone, the output and the code (reported, not raised)."""
    mode = settings.choice("FINANCE_SPARK_MODE", "local", MODES, "a Spark mode")
    raw = settings.raw("FINANCE_SPARK_RAW_URI") or str(data_root / "raw")
    out = settings.raw("FINANCE_SPARK_OUT_URI") or str(data_root / "spark")
    needed = {
        "emr": ["FINANCE_SPARK_CODE_URI"],
        "emr_serverless": [
            "FINANCE_SPARK_CODE_URI",
            "FINANCE_SPARK_SERVERLESS_APPLICATION_ID",
            "FINANCE_SPARK_SERVERLESS_ROLE_ARN",
        ],
    }.get(mode, [])
    for name in needed:
        settings.require(name, f"FINANCE_SPARK_MODE={mode} needs it")
    if mode != "local":
        for name, value in (
            ("FINANCE_SPARK_RAW_URI", raw),
            ("FINANCE_SPARK_OUT_URI", out),
            ("FINANCE_SPARK_CODE_URI", settings.raw("FINANCE_SPARK_CODE_URI") or "s3://"),
        ):
            if not value.startswith("s3://") or len(value) <= 5:
                settings.problem(
                    f"{name}={value!r}: FINANCE_SPARK_MODE={mode} reads and writes S3 "
                    "(s3://bucket/prefix)"
                )
    environ = settings.environ
    return SparkPipesResource(
        mode=mode,
        raw_root=raw,
        out_root=out,
        code_uri=settings.raw("FINANCE_SPARK_CODE_URI"),
        region=settings.raw("FINANCE_SPARK_REGION") or environ.get("AWS_REGION") or None,
        emr_log_uri=settings.raw("FINANCE_SPARK_EMR_LOG_URI"),
        serverless_application_id=settings.raw("FINANCE_SPARK_SERVERLESS_APPLICATION_ID"),
        serverless_execution_role_arn=settings.raw("FINANCE_SPARK_SERVERLESS_ROLE_ARN"),
        serverless_venv_archive_uri=settings.raw("FINANCE_SPARK_SERVERLESS_VENV_URI"),
        shuffle_partitions=max(2, 2 * (os.cpu_count() or 1)),
    )
