"""deployment/aws: the CloudFormation templates linted (cfn-lint), scanned (checkov, in its own
virtualenv), checked on their parsed form (as created for a given set of parameters: the
small deployment's defaults, AlwaysOn, each provider choice), the code location loaded with
each container's settings, then the stacks deployed with `deploy.py` to moto's server with
IAM enforced, used with each component's own credentials (the project's landing sensor, then
the pipeline's steps one by one: the raw asset with the ingest keys, the clean asset with the
transform keys and a real PostgreSQL warehouse; the MarketWindow schedules' calls with the
scheduler's), and deleted with `terminate.py`.

moto's CloudFormation skips some resource types (Secrets Manager, Glue, Athena, bucket
policies, CloudWatch alarms, EMR Serverless, EventBridge Scheduler) and drops bucket
lifecycle rules: those are asserted on the template. moto evaluates IAM actions and
resources, not condition keys: nothing here claims a condition works.
"""

from __future__ import annotations

import ast
import datetime as dt
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
import zoneinfo
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml

boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto.server")
import dagster as dg  # noqa: E402
import psycopg  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402  (after the skips)

from finance_assets.defs.market.assets import build_market_assets  # noqa: E402
from finance_assets.defs.market.landing import build_landing_sensor  # noqa: E402
from finance_assets.defs.market.schedules import build_market_schedules  # noqa: E402
from finance_assets.defs.ops.retention import retention_job  # noqa: E402
from finance_assets.lib.io import lake as lake_io  # noqa: E402
from finance_assets.lib.io.managers import (  # noqa: E402
    LakeWarehouseIOManager,
    RawZoneIOManager,
    WarehouseResource,
)
from finance_assets.lib.io.objects import S3ObjectStore, open_location  # noqa: E402
from finance_assets.lib.io.objects.s3_resource import S3Resource  # noqa: E402
from finance_assets.lib.markets import Market  # noqa: E402
from finance_assets.lib.schema import BAR_SCHEMA  # noqa: E402
from finance_assets.providers.simulated_market.resource import SimulatedMarketResource  # noqa: E402
from finance_assets.resources.landing import LANDING_FILE_TAG, LandingZoneResource  # noqa: E402
from finance_assets.resources.thresholds import DataQualityResource  # noqa: E402
from finance_assets.resources.zones import StorageResource  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
AWS_DIR = REPO / "deployment" / "aws"
STORAGE = AWS_DIR / "storage.yaml"
PLATFORM = AWS_DIR / "platform.yaml"
TEMPLATES = [STORAGE, PLATFORM]
CACHE = REPO / ".cache"
REGION = "us-east-1"


# --- the templates as data -----------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags read as their long forms (`!Sub x` ->
    `{"Fn::Sub": x}`, `!GetAtt A.B` -> `{"Fn::GetAtt": ["A", "B"]}`)."""


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # a SafeLoader subclass


def parameter_values(template: dict, params: dict[str, Any] | None = None) -> dict[str, str]:
    """Each parameter's value as CloudFormation sees it (a string): given, else its default."""
    given = params or {}
    return {
        name: str(given.get(name, spec.get("Default", "")))
        for name, spec in template["Parameters"].items()
    }


def condition_values(template: dict, params: dict[str, Any] | None = None) -> dict[str, bool]:
    values = parameter_values(template, params)
    declared = template.get("Conditions", {})

    def operand(x: Any) -> str:
        return values[x["Ref"]] if isinstance(x, dict) else str(x)

    def truth(expr: dict) -> bool:
        ((fn, arg),) = expr.items()
        if fn == "Fn::Equals":
            return operand(arg[0]) == operand(arg[1])
        if fn == "Fn::Not":
            return not truth(arg[0])
        if fn == "Fn::And":
            return all(truth(a) for a in arg)
        if fn == "Fn::Or":
            return any(truth(a) for a in arg)
        if fn in ("Condition", "Fn::Condition"):
            return truth(declared[arg])
        raise AssertionError(f"unexpected condition function {fn}")

    return {name: truth(expr) for name, expr in declared.items()}


_NO_VALUE = object()


def with_conditions(template: dict, params: dict[str, Any] | None = None) -> dict:
    """The template as CloudFormation creates it for `params`: resources whose Condition is
    false left out, each `Fn::If` replaced by its branch, `AWS::NoValue` removed."""
    truth = condition_values(template, params)

    def walk(x: Any) -> Any:
        if isinstance(x, dict):
            if x == {"Ref": "AWS::NoValue"}:
                return _NO_VALUE
            if set(x) == {"Fn::If"}:
                name, yes, no = x["Fn::If"]
                return walk(yes if truth[name] else no)
            out = {k: walk(v) for k, v in x.items()}
            return {k: v for k, v in out.items() if v is not _NO_VALUE}
        if isinstance(x, list):
            return [v for v in map(walk, x) if v is not _NO_VALUE]
        return x

    kept = {
        name: walk(res)
        for name, res in template["Resources"].items()
        if "Condition" not in res or truth[res["Condition"]]
    }
    return {**template, "Resources": kept, "Outputs": walk(template.get("Outputs", {}))}


def resources(template: dict, kind: str) -> dict[str, dict]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _subbed(value: Any) -> str:
    """An ARN-ish value as text (`Fn::Sub` templates and `Fn::GetAtt`s written out)."""
    if isinstance(value, str):
        return value
    if "Fn::Sub" in value:
        sub = value["Fn::Sub"]
        return sub if isinstance(sub, str) else sub[0]
    if "Fn::GetAtt" in value:
        return "${" + ".".join(value["Fn::GetAtt"]) + "}"
    if "Ref" in value:
        return "${" + value["Ref"] + "}"
    raise AssertionError(f"unexpected value {value!r}")


def role_statements(template: dict, role: str) -> list[dict]:
    props = template["Resources"][role]["Properties"]
    return [s for p in props["Policies"] for s in p["PolicyDocument"]["Statement"]]


def _listify(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def grants(template: dict, role: str) -> set[tuple[str, str]]:
    """(action, resource) pairs a role's Allow statements grant, resources as written."""
    out = set()
    for s in role_statements(template, role):
        assert s["Effect"] == "Allow", (role, s)
        for action in _listify(s["Action"]):
            for res in _listify(s["Resource"]):
                out.add((action, _subbed(res)))
    return out


RAW = "arn:${AWS::Partition}:s3:::${RawBucketName}"
LAKE = "arn:${AWS::Partition}:s3:::${LakeBucketName}"
LOGS = "arn:${AWS::Partition}:s3:::${LogsBucketName}"


@pytest.fixture(scope="module")
def storage() -> dict:
    return load(STORAGE)


@pytest.fixture(scope="module")
def platform() -> dict:
    """platform.yaml as created with its defaults: the small deployment (MarketWindow)."""
    return with_conditions(load(PLATFORM))


def test_cfn_lint_passes_on_every_template() -> None:
    exe = shutil.which("cfn-lint", path=str(Path(sys.executable).parent))
    assert exe, "cfn-lint is in the dev extra: pip install -e '.[dev]'"
    done = subprocess.run([exe, *map(str, TEMPLATES)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def _checkov() -> str:
    """checkov from its own virtualenv (it pins its own boto3), made once under .cache/ (the
    container test's venv: the same path)."""
    venv = CACHE / "checkov-venv"
    exe = venv / "bin" / "checkov"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(venv / "bin" / "pip"), "install", "--quiet", "checkov>=3.2,<4"],
            check=True,
            timeout=1200,
        )
    return str(exe)


CHECKOV_TARGET = ("--framework", "cloudformation", "-d", str(AWS_DIR))


def test_checkov_passes_and_every_skip_says_why() -> None:
    done = subprocess.run(
        [_checkov(), "--skip-download", "--quiet", "--compact", "-o", "json", *CHECKOV_TARGET],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads(done.stdout)
    summary = report["summary"]
    failed = [(c["check_id"], c["resource"]) for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0 and done.returncode == 0, failed
    assert summary["passed"] > 100
    for path in TEMPLATES:
        for name, res in load(path)["Resources"].items():
            for skip in res.get("Metadata", {}).get("checkov", {}).get("skip", []):
                assert len(skip.get("comment", "")) > 20, (name, skip)


def test_lifecycle_raw_30_days_lake_glacier_90_gone_180(storage: dict) -> None:
    buckets = storage["Resources"]
    raw_rules = buckets["RawBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    (raw,) = [r for r in raw_rules if r.get("ExpirationInDays")]
    assert (raw["Prefix"], raw["ExpirationInDays"], raw["Status"]) == ("raw/", 30, "Enabled")
    # The landing zone under the same bucket is not expired (its markers keep files done).
    assert all(r.get("Prefix") != "landing/" or "ExpirationInDays" not in r for r in raw_rules)

    (lake,) = buckets["LakeBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert lake["Status"] == "Enabled" and "Prefix" not in lake  # lake/ and spark/
    (transition,) = lake["Transitions"]
    assert transition["TransitionInDays"] == 90
    assert transition["StorageClass"] == {"Ref": "LakeArchiveStorageClass"}
    archive = storage["Parameters"]["LakeArchiveStorageClass"]
    assert archive["Default"] == "GLACIER_IR" and set(archive["AllowedValues"]) == {
        "GLACIER_IR",
        "GLACIER",
    }
    assert lake["ExpirationInDays"] == 180
    assert lake["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    (logs,) = buckets["LogsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert logs["ExpirationInDays"] == 30


def test_buckets_are_encrypted_private_versioned_and_tls_only(storage: dict) -> None:
    buckets = resources(storage, "AWS::S3::Bucket")
    assert set(buckets) == {"RawBucket", "LakeBucket", "LogsBucket"}
    policies = {
        p["Properties"]["Bucket"]["Ref"]: p["Properties"]["PolicyDocument"]
        for p in resources(storage, "AWS::S3::BucketPolicy").values()
    }
    for name, bucket in buckets.items():
        props = bucket["Properties"]
        (sse,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert sse["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
        assert set(props["PublicAccessBlockConfiguration"].values()) == {True}
        assert len(props["PublicAccessBlockConfiguration"]) == 4
        deny = [
            s for s in policies[name]["Statement"] if s["Effect"] == "Deny" and "Condition" in s
        ]
        assert deny, f"{name} has no TLS-only statement"
        (tls,) = deny
        assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert tls["Principal"] == "*" and tls["Action"] == "s3:*"
        arns = [_subbed(r) for r in tls["Resource"]]
        assert arns == [f"${{{name}.Arn}}", f"${{{name}.Arn}}/*"]
    for name in ("RawBucket", "LakeBucket"):
        assert buckets[name]["Properties"]["VersioningConfiguration"]["Status"] == "Enabled"
        assert buckets[name]["Properties"]["LoggingConfiguration"]["DestinationBucketName"] == {
            "Ref": "LogsBucket"
        }


GLUE_TYPES = {
    pl.String(): "string",
    pl.Float64(): "double",
    pl.Int64(): "bigint",
    pl.Datetime("us", "UTC"): "timestamp",
}


def test_glue_tables_follow_the_lake_layout_and_bar_schema(storage: dict) -> None:
    tables = resources(storage, "AWS::Glue::Table")
    expected = {f"{m}_{a}" for m in ("us", "uk") for a in ("bars_5min", "daily_bars")}
    by_name = {t["Properties"]["TableInput"]["Name"]: t["Properties"] for t in tables.values()}
    assert set(by_name) == expected
    columns = [{"Name": n, "Type": GLUE_TYPES[t]} for n, t in BAR_SCHEMA.items()]
    for name, props in by_name.items():
        market, asset = name.split("_", 1)
        table = props["TableInput"]
        described = table["StorageDescriptor"]["Columns"]
        got = [{"Name": c["Name"], "Type": c["Type"]} for c in described]
        assert got == columns, name
        assert [k["Name"] for k in table["PartitionKeys"]] == ["dt"]
        prefix = f"s3://${{LakeBucket}}/lake/{market}/{asset}/"
        assert _subbed(table["StorageDescriptor"]["Location"]) == prefix
        params = table["Parameters"]
        assert _subbed(params["storage.location.template"]) == prefix + "dt=${!dt}/"
        assert (params["projection.enabled"], params["projection.dt.format"]) == (
            "true",
            "yyyy-MM-dd",
        )
        assert "Parquet" in table["StorageDescriptor"]["InputFormat"]


def test_alarms_on_bucket_size_and_objects_and_rds_cpu_and_storage(
    storage: dict, platform: dict
) -> None:
    bucket_alarms = {
        (a["Properties"]["MetricName"], a["Properties"]["Dimensions"][0]["Value"]["Ref"])
        for a in resources(storage, "AWS::CloudWatch::Alarm").values()
    }
    assert bucket_alarms == {
        (metric, bucket)
        for metric in ("BucketSizeBytes", "NumberOfObjects")
        for bucket in ("RawBucket", "LakeBucket")
    }
    db_alarms = resources(platform, "AWS::CloudWatch::Alarm").values()
    assert {a["Properties"]["MetricName"] for a in db_alarms} == {
        "CPUUtilization",
        "FreeStorageSpace",
    }
    for alarm in [*resources(storage, "AWS::CloudWatch::Alarm").values(), *db_alarms]:
        assert alarm["Properties"]["AlarmActions"], alarm


def test_database_password_lives_in_secrets_manager_and_no_secret_is_plain(
    platform: dict,
) -> None:
    db = platform["Resources"]["Db"]
    props = db["Properties"]
    assert props["Engine"] == "postgres" and props["DBInstanceClass"] == {"Ref": "DbInstanceClass"}
    assert platform["Parameters"]["DbInstanceClass"]["Default"] == "db.t4g.micro"
    assert props["MasterUserPassword"] == {
        "Fn::Sub": "{{resolve:secretsmanager:${DbSecret}:SecretString:password}}"
    }
    assert props["StorageEncrypted"] is True and props["PubliclyAccessible"] is False
    assert db["DeletionPolicy"] == "Snapshot"
    # Two secrets ($0.40/month each): the database's, and one JSON key per app secret.
    secrets = resources(platform, "AWS::SecretsManager::Secret")
    assert set(secrets) == {"DbSecret", "AppSecret"}
    app_keys = json.loads(secrets["AppSecret"]["Properties"]["SecretString"])
    assert set(app_keys) == set(APP_SECRET_KEYS)
    chosen = with_conditions(load(PLATFORM), EVERY_KEY_CHOSEN)
    for name, task in resources(chosen, "AWS::ECS::TaskDefinition").items():
        for container in task["Properties"]["ContainerDefinitions"]:
            plain = {e["Name"] for e in container.get("Environment", [])}
            secret = {s["Name"] for s in container.get("Secrets", [])}
            assert not {n for n in plain if re.search("KEY|TOKEN|PASSWORD|SECRET", n)}, name
            assert {"PGPASSWORD", "DAGSTER_PG_PASSWORD"} & secret, name
            for s in container.get("Secrets", []):
                assert _subbed(s["ValueFrom"]).startswith("${"), s


def test_dagster_services_use_ecs_run_launcher_with_logs_in_cloudwatch(platform: dict) -> None:
    tasks = resources(platform, "AWS::ECS::TaskDefinition")
    assert set(tasks) == {"RunTaskDefinition", "WebserverTaskDefinition", "DaemonTaskDefinition"}
    for task in tasks.values():
        assert task["Properties"]["RequiresCompatibilities"] == ["FARGATE"]
        for container in task["Properties"]["ContainerDefinitions"]:
            assert container["LogConfiguration"]["LogDriver"] == "awslogs"
            assert container["LogConfiguration"]["Options"]["awslogs-group"] == {"Ref": "LogGroup"}
    for name in ("WebserverTaskDefinition", "DaemonTaskDefinition"):
        (dagster,) = [
            c
            for c in tasks[name]["Properties"]["ContainerDefinitions"]
            if c["Image"] == {"Ref": "DagsterImageUri"}
        ]
        (instance,) = [e for e in dagster["Environment"] if e["Name"] == "DAGSTER_INSTANCE_YAML"]
        template, variables = instance["Value"]["Fn::Sub"]
        assert variables == {"Subnets": {"Fn::Join": [", ", {"Ref": "SubnetIds"}]}}
        text = re.sub(r"\$\{(\w+)\}", r"\1", template)
        config = yaml.safe_load(text)
        launcher = config["run_launcher"]
        assert (launcher["module"], launcher["class"]) == ("dagster_aws.ecs", "EcsRunLauncher")
        assert launcher["config"]["task_definition"] == "RunTaskDefinition"
        assert launcher["config"]["use_current_ecs_task_config"] is False
        network = launcher["config"]["run_task_kwargs"]["networkConfiguration"]
        assert network["awsvpcConfiguration"]["subnets"] == ["Subnets"]
        # The project's pooled storage (the one the benchmarks measured), not the stock one.
        storage = config["storage"]["custom"]
        assert (storage["module"], storage["class"]) == (
            "finance_assets.dagster_instance.pooled_storage",
            "PooledPostgresStorage",
        )
        assert storage["config"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
        env = {e["Name"]: e.get("Value") for e in dagster["Environment"]}
        assert env["PGSSLMODE"] == "require"  # libpq: the storage over TLS only
    services = resources(platform, "AWS::ECS::Service")
    for service in services.values():
        (strategy,) = service["Properties"]["CapacityProviderStrategy"]
        assert strategy["CapacityProvider"] == {"Ref": "CapacityProvider"}
    assert platform["Parameters"]["CapacityProvider"]["Default"] == "FARGATE_SPOT"
    # No NAT gateway and no load balancer: the budget's two biggest fixed costs.
    kinds = {r["Type"] for r in platform["Resources"].values()}
    assert not kinds & {"AWS::EC2::NatGateway", "AWS::ElasticLoadBalancingV2::LoadBalancer"}
    app = platform["Resources"]["SparkApplication"]["Properties"]
    assert app["Type"] == "SPARK" and app["AutoStopConfiguration"]["IdleTimeoutMinutes"] <= 15


# What each component's code calls (see the comments above each role in platform.yaml), and
# so all its role may grant. HeadObject is GetObject; CopyObject is Get + Put.
EXPECTED_GRANTS = {
    "IngestRole": {
        ("s3:PutObject", f"{RAW}/raw/*"),
        ("s3:GetObject", f"{RAW}/raw/*"),
        ("s3:DeleteObject", f"{RAW}/raw/*"),
        ("s3:GetObject", f"{RAW}/landing/*"),
        ("s3:ListBucket", RAW),
    },
    "TransformRole": {
        ("s3:GetObject", f"{RAW}/raw/*"),
        ("s3:ListBucket", RAW),
        ("s3:GetObject", f"{LAKE}/lake/*"),
        ("s3:PutObject", f"{LAKE}/lake/*"),
        ("s3:DeleteObject", f"{LAKE}/lake/*"),
        ("s3:ListBucket", LAKE),
        ("s3:PutObject", f"{LOGS}/spark-code/*"),
    },
    "SparkJobRole": {
        ("s3:GetObject", f"{RAW}/raw/*"),
        ("s3:ListBucket", RAW),
        ("s3:GetObject", f"{LAKE}/spark/*"),
        ("s3:PutObject", f"{LAKE}/spark/*"),
        ("s3:DeleteObject", f"{LAKE}/spark/*"),
        ("s3:ListBucket", LAKE),
        ("s3:GetObject", f"{LOGS}/spark-code/*"),
    },
    "WebserverRole": {
        ("s3:GetObject", f"{RAW}/raw/*"),
        ("s3:GetObject", f"{LAKE}/lake/*"),
        ("s3:ListBucket", RAW),
        ("s3:ListBucket", LAKE),
    },
    "DaemonRole": {
        ("s3:GetObject", f"{RAW}/landing/*"),
        ("s3:PutObject", f"{RAW}/landing/*"),
        ("s3:DeleteObject", f"{RAW}/landing/*"),
        ("s3:ListBucket", RAW),
    },
    "RunRole": set(),
}
# Actions with no resource scope in IAM: the only ones granted on "*".
UNSCOPED_ACTIONS = {"ecr:GetAuthorizationToken", "ecs:DescribeTaskDefinition"}


def _assert_scoped(platform: dict, role: str) -> None:
    """No wildcard action; `*` resources only where IAM has no scope; objects by prefix."""
    for action, resource in grants(platform, role):
        assert "*" not in action, (role, action)  # no s3:*, no s3:Put*
        if resource == "*":
            assert action in UNSCOPED_ACTIONS, (role, action)
        if action.startswith("s3:") and action != "s3:ListBucket":
            assert re.search(r"\}/[a-z-]+/\*$", resource), (role, action, resource)


def test_each_component_gets_exactly_the_s3_calls_its_code_makes(platform: dict) -> None:
    roles = resources(platform, "AWS::IAM::Role")
    for role, expected in EXPECTED_GRANTS.items():
        s3 = {(a, r) for a, r in grants(platform, role) if a.startswith("s3:")}
        assert s3 == expected, role
    for role in roles:
        _assert_scoped(platform, role)
    # Lists are narrowed to the component's prefix (on AWS; moto does not evaluate this).
    for role in ("IngestRole", "TransformRole", "SparkJobRole", "DaemonRole"):
        for s in role_statements(platform, role):
            if s["Action"] == "s3:ListBucket":
                assert "s3:prefix" in s["Condition"]["StringLike"], role
    # Nobody but the transform step writes the lake; nobody but ingest writes the raw zone.
    for role in EXPECTED_GRANTS:
        for action, resource in grants(platform, role):
            if action in ("s3:PutObject", "s3:DeleteObject") and "/lake/" in resource:
                assert role == "TransformRole"
            if action in ("s3:PutObject", "s3:DeleteObject") and "/raw/" in resource:
                assert role == "IngestRole"
    passes = {
        (role, _subbed(r))
        for role in roles
        for s in role_statements(platform, role)
        if s["Action"] == "iam:PassRole"
        for r in _listify(s["Resource"])
    }
    # The run worker passes the two step roles (ecs_executor's taskRoleArn override) and the
    # execution role its task definition names (RunTask passes that one too); nothing else.
    assert {r for role, r in passes if role == "RunRole"} == {
        "${IngestRole.Arn}",
        "${TransformRole.Arn}",
        "${RunExecutionRole.Arn}",
    }
    assert ("TransformRole", "${SparkJobRole.Arn}") in passes
    assert not [p for p in passes if "Daemon" in p[1] or "Webserver" in p[1]]


def test_each_step_runs_as_a_task_of_its_own_under_its_components_role(platform: dict) -> None:
    """The run task's code (and the code servers', so the UI shows the jobs the runs execute)
    puts every job on the ECS executor with each step's role (defs/common.step_tags); the run
    worker may start exactly those step tasks."""
    code_containers = [
        c
        for task in resources(platform, "AWS::ECS::TaskDefinition").values()
        for c in task["Properties"]["ContainerDefinitions"]
        if c["Image"] == {"Ref": "CodeImageUri"}
    ]
    assert len(code_containers) == 3  # the run task, the webserver's and the daemon's code
    for container in code_containers:
        env = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert env["FINANCE_STEP_EXECUTOR"] == "ecs"
        assert env["FINANCE_INGEST_ROLE_ARN"] == {"Fn::GetAtt": ["IngestRole", "Arn"]}
        assert env["FINANCE_TRANSFORM_ROLE_ARN"] == {"Fn::GetAtt": ["TransformRole", "Arn"]}
    run_family = platform["Resources"]["RunTaskDefinition"]["Properties"]["Family"]
    assert _subbed(run_family) == "${NamePrefix}-run"
    launches = {(a, r) for a, r in grants(platform, "RunRole") if a == "ecs:RunTask"}
    task_definitions = "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition"
    assert launches == {("ecs:RunTask", f"{task_definitions}/${{NamePrefix}}-run:*")}
    (pass_role,) = [
        s for s in role_statements(platform, "RunRole") if s["Action"] == "iam:PassRole"
    ]
    assert pass_role["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


# --- the code location's settings, the same in every container that loads it ---------------

APP_SECRET_KEYS = (
    "TWELVEDATA_API_KEY",
    "ALPHAVANTAGE_API_KEY",
    "X_BEARER_TOKEN",
    "SLACK_BOT_TOKEN",
)
EVERY_KEY_CHOSEN = {
    "MarketDataProvider": "twelve_data",
    "PostsProvider": "x_api",
    "PostsScorer": "comprehend",
    "SlackChannel": "#markets",
}
# The five source systems' routes (docs/source-systems.md): a provider per market and
# interval, the index universes, a reference for the US daily bars; the default stays simulated.
ROUTED = {
    "MarketDataProviderUsDaily": "alpha_vantage",
    "MarketDataProviderUs5min": "twelve_data",
    "MarketDataProviderUk": "yfinance",
    "FinanceUniverseUs": "sp500",
    "FinanceUniverseUk": "ftse100",
    "MarketDataReferenceUs": "yfinance",
    "MarketDataReferenceUsSymbols": "5",
    "FinanceVendorCloseBp": "25",
    "FinanceVendorVolumeShare": "0.2",
    # 503 symbols a day: the free plan's 25 calls would refuse the S&P 500 before any call.
    "AlphavantageCallsPerDay": "75000",
}
# Parameter sets the settings are checked under: the defaults, each key-using choice, routes.
CHOICES = [{}, EVERY_KEY_CHOSEN, {"MarketDataProvider": "alpha_vantage"}, ROUTED]
ACCOUNT = "123456789012"
# What deploy.py passes the platform stack (the storage stack's outputs, images, network).
DEPLOY_INPUTS = {
    "RawBucketName": "finance-raw-example",
    "LakeBucketName": "finance-lake-example",
    "LogsBucketName": "finance-logs-example",
    "AlertsTopicArn": f"arn:aws:sns:{REGION}:{ACCOUNT}:finance-assets-alerts",
    "VpcId": "vpc-0example",
    "SubnetIds": "subnet-0a,subnet-0b",
    "VpcCidr": "172.31.0.0/16",
}


def code_containers(template: dict) -> dict[str, dict]:
    """The containers that load the code location, by task definition."""
    return {
        name: c
        for name, task in resources(template, "AWS::ECS::TaskDefinition").items()
        for c in task["Properties"]["ContainerDefinitions"]
        if c["Image"] == {"Ref": "CodeImageUri"}
    }


def stand_in(template: dict, params: dict[str, Any], value: Any) -> str:
    """A value of the template written out with plausible stand-ins for what only a deployment
    knows (physical ids, ARNs, the database's address): what a container's variable reads."""
    values = {
        **parameter_values(template, params),
        "AWS::Region": REGION,
        "AWS::Partition": "aws",
        "AWS::AccountId": ACCOUNT,
    }

    def name(ref: str, extra: dict[str, Any]) -> str:
        if ref in extra:
            return stand_in(template, params, extra[ref])
        if ref in values:
            return values[ref]
        logical, _, attribute = ref.partition(".")
        kind = template["Resources"][logical]["Type"]
        if kind == "AWS::IAM::Role" and attribute == "Arn":
            return f"arn:aws:iam::{ACCOUNT}:role/{logical}"
        if kind == "AWS::RDS::DBInstance" and attribute:
            return {"Endpoint.Address": "db.example.internal", "Endpoint.Port": "5432"}[attribute]
        assert attribute in ("", "Name"), ref  # a service's Name: its id here
        return f"{logical.lower()}-id"

    if isinstance(value, str):
        return value
    if "Ref" in value:
        return name(value["Ref"], {})
    if "Fn::GetAtt" in value:
        return name(".".join(value["Fn::GetAtt"]), {})
    if "Fn::Sub" in value:
        text, extra = (
            value["Fn::Sub"] if isinstance(value["Fn::Sub"], list) else (value["Fn::Sub"], {})
        )
        return re.sub(r"\$\{([\w:.]+)\}", lambda m: name(m.group(1), extra), text)
    if "Fn::Join" in value:
        sep, items = value["Fn::Join"]
        return sep.join(stand_in(template, params, i) for i in _listify(items))
    raise AssertionError(f"unexpected value {value!r}")


def container_environment(template: dict, params: dict[str, Any], container: dict) -> dict:
    """What the process sees: the plain variables, and each secret as a stand-in value."""
    env = {e["Name"]: stand_in(template, params, e["Value"]) for e in container["Environment"]}
    env.update({s["Name"]: "from-secrets-manager" for s in container.get("Secrets", [])})
    return env


# Loads the code location once per environment (each a fresh `os.environ`), in one process:
# the jobs and their tags, schedules, sensors, resources, executor and step tags it builds.
_SUMMARISE = """
import json, os, sys
from finance_assets.lib.markets import markets_from_env
from finance_assets.providers.reference import references
summaries = []
for env in json.load(sys.stdin):
    os.environ.clear()
    os.environ.update(env)
    from finance_assets import definitions
    defs = definitions.build_defs()
    repo = defs.get_repository_def()
    summaries.append({
        "jobs": {j.name: dict(j.tags) for j in repo.get_all_jobs()},
        "schedules": {
            s.name: [s.cron_schedule, s.default_status.value] for s in repo.schedule_defs
        },
        "sensors": sorted(s.name for s in repo.sensor_defs),
        "resources": {k: type(v).__name__ for k, v in defs.resources.items()},
        "posts_scorer": defs.resources["posts"].scorer,
        "universes": {k: len(m.universe) for k, m in markets_from_env().items()},
        "calls_per_day": {
            k: v.calls_per_day for k, v in defs.resources.items() if hasattr(v, "calls_per_day")
        },
        "references": {
            r.market: r.provider for r in references(os.environ, markets_from_env())
        },
        "spark_mode": defs.resources["spark_pipes"].mode,
        "executor": defs.executor.name if defs.executor else None,
        "step_tags": {
            k.to_user_string(): a.op.tags.get("ecs/task_overrides")
            for a in defs.assets if getattr(a, "is_executable", False) for k in a.keys
        },
    })
json.dump(summaries, sys.stdout)
"""


def load_definitions(environments: list[dict[str, str]]) -> list[dict]:
    base = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(REPO), "HOME": "/nonexistent"}
    done = subprocess.run(
        [sys.executable, "-c", _SUMMARISE],
        input=json.dumps([{**base, **env} for env in environments]),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _route(values: dict[str, str], market: str, interval: str) -> str:
    """The provider the parameters give `market`'s `interval` bars, spelled out here: the
    market and interval's parameter, else the market's, else MarketDataProvider."""
    prefix = f"MarketDataProvider{market.title()}"
    return values[prefix + interval] or values[prefix] or values["MarketDataProvider"]


def _bars_providers(values: dict[str, str]) -> set[str]:
    """Every bars provider the parameters choose: the routes' and the references'."""
    routed = {_route(values, m, i) for m in ("us", "uk") for i in ("Daily", "5min")}
    return routed | {values[f"MarketDataReference{m}"] for m in ("Us", "Uk")} - {""}


def test_every_container_loads_the_same_definitions_with_the_chosen_providers() -> None:
    """The run task and both code servers get the same settings (the UI shows and the daemon
    schedules the jobs the runs execute, with the same provider tags and run queues), and each
    gets the keys the chosen providers need, no others: the definitions load with them."""
    template = load(PLATFORM)
    environments, expected = [], []
    for choice in CHOICES:
        params = {**DEPLOY_INPUTS, **choice}
        chosen = with_conditions(template, params)
        containers = code_containers(chosen)
        assert set(containers) == {
            "RunTaskDefinition",
            "WebserverTaskDefinition",
            "DaemonTaskDefinition",
        }
        plain = [c["Environment"] for c in containers.values()]
        assert plain[0] == plain[1] == plain[2], "the code location's settings differ"
        values = parameter_values(template, params)
        keys = {
            key
            for provider in _bars_providers(values)
            for key in {
                "twelve_data": {"TWELVEDATA_API_KEY"},
                "alpha_vantage": {"ALPHAVANTAGE_API_KEY"},
            }.get(provider, set())
        } | ({"X_BEARER_TOKEN"} if values["PostsProvider"] == "x_api" else set())
        slack = {"SLACK_BOT_TOKEN"} if values["SlackChannel"] else set()
        wanted = {
            "RunTaskDefinition": {"PGPASSWORD", "DAGSTER_PG_PASSWORD"} | keys,
            "WebserverTaskDefinition": {"PGPASSWORD"} | keys,
            "DaemonTaskDefinition": {"PGPASSWORD"} | keys | slack,  # the notification sensors
        }
        for name, container in containers.items():
            assert {s["Name"] for s in container["Secrets"]} == wanted[name], (params, name)
            # Its execution role (ECS, putting them in) reads the app secret only when needed.
            task = chosen["Resources"][name]["Properties"]
            (role,) = task["ExecutionRoleArn"]["Fn::GetAtt"][:1]
            (read,) = [s for s in role_statements(chosen, role) if s["Sid"] == "Secrets"]
            named = {
                _subbed(s["ValueFrom"]).split(":")[0]
                for c in task["ContainerDefinitions"]
                for s in c.get("Secrets", [])
            }
            assert {_subbed(r) for r in _listify(read["Resource"])} == named, (params, role)
            environments.append(container_environment(chosen, params, container))
            expected.append(values)
    summaries = load_definitions(environments)
    for i in range(0, len(summaries), 3):
        run, web, daemon = summaries[i : i + 3]
        assert run == web == daemon, f"{CHOICES[i // 3]}: the containers load different definitions"
        values = expected[i]
        jobs = run["jobs"]
        for market in ("us", "uk"):
            for job, interval in (
                (f"{market}_daily_job", "Daily"),
                (f"{market}_bars_5min_job", "5min"),
            ):
                provider = jobs[job]["finance/market_data_provider"]
                assert provider == _route(values, market, interval), job
            assert jobs[f"{market}_posts_job"]["finance/posts_provider"] == values["PostsProvider"]
            # The universe the parameter chose: the index's constituents, else the demo's five.
            universe = values[f"FinanceUniverse{market.title()}"]
            assert run["universes"][market] == {"sp500": 503, "ftse100": 100}.get(universe, 5)
        if values["AlphavantageCallsPerDay"]:  # the parameter reached the routed provider
            per_day = int(values["AlphavantageCallsPerDay"])
            assert run["calls_per_day"]["market_data_alpha_vantage"] == per_day
        assert run["references"] == (
            {"us": "yfinance"} if values["MarketDataReferenceUs"] else {}
        ), values
        assert run["posts_scorer"] == values["PostsScorer"]
        assert (run["spark_mode"], run["executor"]) == ("emr_serverless", "ecs")
        assert all(run["step_tags"].values()), "a step without its role"


def _client_calls(path: Path, client: str = "client") -> set[str]:
    """The methods a module calls on its boto3 client (`client.<method>(...)`)."""
    return {
        node.func.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == client
    }


def test_comprehend_is_granted_to_the_transform_steps_only_when_chosen() -> None:
    """The posts scorer's calls (lib/comprehend.py, from the post_sentiment step, a transform
    step) as IAM actions; Comprehend's detect actions take no resource scope, hence `*`."""
    calls = _client_calls(REPO / "finance_assets" / "lib" / "comprehend.py")
    api = boto3.client("comprehend", region_name=REGION).meta.method_to_api_mapping
    actions = {f"comprehend:{api[c]}" for c in calls}
    assert actions == {"comprehend:BatchDetectSentiment"}
    template = load(PLATFORM)
    vader = with_conditions(template)
    assert not resources(vader, "AWS::IAM::Policy")
    assert not [
        a
        for r in resources(vader, "AWS::IAM::Role")
        for a, _ in grants(vader, r)
        if a.startswith("comprehend:")
    ]
    chosen = with_conditions(template, {"PostsScorer": "comprehend"})
    (policy,) = resources(chosen, "AWS::IAM::Policy").values()
    props = policy["Properties"]
    assert props["Roles"] == [{"Ref": "TransformRole"}]
    granted = {
        (a, r)
        for s in props["PolicyDocument"]["Statement"]
        for a in _listify(s["Action"])
        for r in _listify(s["Resource"])
    }
    assert granted == {(a, "*") for a in actions}


# --- MarketWindow: the scheduler starts and stops RDS and the services ----------------------

SCHEDULED = {
    "DbStartSchedule",
    "DaemonStartSchedule",
    "WebserverStartSchedule",
    "DaemonStopSchedule",
    "WebserverStopSchedule",
    "DbStopSchedule",
}


def schedule_times(template: dict, params: dict[str, Any] | None = None) -> dict[str, dt.time]:
    """Each schedule's time of day, from its cron expression with the parameters written in;
    every schedule on the same days and clock (asserted)."""
    values = parameter_values(template, params)
    found = {}
    for name, res in resources(template, "AWS::Scheduler::Schedule").items():
        props = res["Properties"]
        expression = stand_in(template, params or {}, props["ScheduleExpression"])
        match = re.fullmatch(r"cron\((\d+) (\d+) \? \* (\S+) \*\)", expression)
        assert match, expression
        minute, hour, days = match.groups()
        assert days == values["WindowDays"], name
        assert props["ScheduleExpressionTimezone"] == {"Ref": "WindowTimezone"}, name
        assert props["FlexibleTimeWindow"] == {"Mode": "OFF"}, name
        found[name] = dt.time(int(hour), int(minute))
    return found


def universal_target(template: dict, schedule: str) -> tuple[str, str, dict]:
    """(service, action, Input) of a schedule's universal target; Input written out with the
    template's stand-ins (the deployed test resolves it against the real resources)."""
    target = template["Resources"][schedule]["Properties"]["Target"]
    service, action = re.fullmatch(
        r"arn:aws:scheduler:::aws-sdk:(\w+):(\w+)", target["Arn"]
    ).groups()
    return service, action, target


def test_market_window_starts_rds_then_the_services_and_stops_them_in_reverse(
    platform: dict, us: Market, uk: Market
) -> None:
    times = schedule_times(platform)
    assert set(times) == SCHEDULED
    # RDS up before the daemon and the UI start, down after they stop; start before stop.
    assert times["DbStartSchedule"] < times["DaemonStartSchedule"]
    assert times["DaemonStartSchedule"] == times["WebserverStartSchedule"]
    assert times["DaemonStartSchedule"] < times["DaemonStopSchedule"]
    assert times["DaemonStopSchedule"] == times["WebserverStopSchedule"]
    assert times["DaemonStopSchedule"] < times["DbStopSchedule"]
    actions = {name: universal_target(platform, name)[:2] for name in SCHEDULED}
    assert actions == {
        "DbStartSchedule": ("rds", "startDBInstance"),
        "DbStopSchedule": ("rds", "stopDBInstance"),
        **{
            f"{s}{e}Schedule": ("ecs", "updateService")
            for s in ("Daemon", "Webserver")
            for e in ("Start", "Stop")
        },
    }
    for name in SCHEDULED:
        target = universal_target(platform, name)[2]
        assert target["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
        body = json.loads(stand_in(platform, {}, target["Input"]))
        if name.startswith("Db"):
            assert body == {"DbInstanceIdentifier": "db-id"}
        else:
            service = "daemonservice" if name.startswith("Daemon") else "webserverservice"
            count = 1 if "Start" in name else 0
            assert body == {
                "Cluster": "cluster-id",
                "Service": f"{service}-id",
                "DesiredCount": count,
            }

    # The window holds every market's daily run (and 30 minutes after its tick) on every
    # weekday of a year, across both countries' daylight-saving changes.
    values = parameter_values(platform)
    clock = zoneinfo.ZoneInfo(values["WindowTimezone"])
    for market in (us, uk):
        (daily,) = [s for s in build_market_schedules(market) if s.name.endswith("_daily_schedule")]
        minute, hour, *_ = daily.cron_schedule.split()
        day = dt.date(2026, 1, 1)
        while day.year == 2026:
            if day.weekday() < 5:
                tick = dt.datetime.combine(day, dt.time(int(hour), int(minute)), market.tz)
                local = tick.astimezone(clock)
                opened = dt.datetime.combine(local.date(), times["DaemonStartSchedule"], clock)
                closed = dt.datetime.combine(local.date(), times["DaemonStopSchedule"], clock)
                assert opened <= local and local + dt.timedelta(minutes=30) <= closed, (
                    market.key,
                    day,
                    local,
                )
            day += dt.timedelta(days=1)
    # RDS takes its backup and maintenance while it runs (a stopped instance takes none).
    db = platform["Resources"]["Db"]["Properties"]
    assert db["PreferredBackupWindow"] == {"Ref": "DbBackupWindow"}
    assert db["PreferredMaintenanceWindow"] == {"Ref": "DbMaintenanceWindow"}
    backup = values["DbBackupWindow"]
    maintenance = values["DbMaintenanceWindow"].split("-")
    spans = [backup.split("-"), [m.split(":", 1)[1] for m in maintenance]]
    for winter_or_summer in (dt.date(2026, 1, 13), dt.date(2026, 7, 14)):  # Tuesdays
        for first, last in spans:
            for at in (first, last):
                utc = dt.datetime.combine(winter_or_summer, dt.time.fromisoformat(at), dt.UTC)
                local = utc.astimezone(clock).time()
                assert times["DbStartSchedule"] < local < times["DbStopSchedule"], (at, local)


def test_scheduler_role_may_start_and_stop_only_this_database_and_these_services(
    platform: dict,
) -> None:
    db = "arn:${AWS::Partition}:rds:${AWS::Region}:${AWS::AccountId}:db:${Db}"
    assert grants(platform, "SchedulerRole") == {
        ("rds:StartDBInstance", db),
        ("rds:StopDBInstance", db),
        ("ecs:UpdateService", "${DaemonService}"),
        ("ecs:UpdateService", "${WebserverService}"),
    }
    # Each schedule's call is one of the role's actions, on a resource the role names.
    role_actions = {a for a, _ in grants(platform, "SchedulerRole")}
    for name in SCHEDULED:
        service, action, _ = universal_target(platform, name)
        assert f"{service}:{action[0].upper()}{action[1:]}" in role_actions, name
    (trust,) = platform["Resources"]["SchedulerRole"]["Properties"]["AssumeRolePolicyDocument"][
        "Statement"
    ]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    _assert_scoped(platform, "SchedulerRole")

    template = load(PLATFORM)
    # The UI kept off: no schedules for it, and no grant on its service.
    no_ui = with_conditions(template, {"WebserverDesiredCount": 0})
    assert set(schedule_times(no_ui)) == SCHEDULED - {
        "WebserverStartSchedule",
        "WebserverStopSchedule",
    }
    assert ("ecs:UpdateService", "${WebserverService}") not in grants(no_ui, "SchedulerRole")
    assert no_ui["Resources"]["WebserverService"]["Properties"]["DesiredCount"] == {
        "Ref": "WebserverDesiredCount"
    }
    # Production: everything always on, nothing scheduled, the counts the stack's own.
    always = with_conditions(template, {"ServiceHours": "AlwaysOn"})
    assert not resources(always, "AWS::Scheduler::Schedule")
    assert "SchedulerRole" not in always["Resources"]
    assert always["Resources"]["DaemonService"]["Properties"]["DesiredCount"] == 1
    assert always["Resources"]["WebserverService"]["Properties"]["DesiredCount"] == {
        "Ref": "WebserverDesiredCount"
    }
    # Under the window the counts are the scheduler's: a stack update must not reset them.
    for service in ("DaemonService", "WebserverService"):
        assert "DesiredCount" not in platform["Resources"][service]["Properties"], service


# --- deployed: moto's server with IAM enforced ---------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _client_env(tmp: Path) -> dict[str, str]:
    """An environment where boto3 reads nothing of this machine's (profiles, metadata)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=str(tmp / "no-aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "no-aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        NO_PROXY="127.0.0.1",
        no_proxy="127.0.0.1",
    )
    return env


# moto authorises every RDS and ECS call against the resource "*" (it names resources only
# for S3, SQS, IAM and STS), so a grant scoped to an instance or a service is refused whatever
# it names. The server here names, as moto itself does for SQS (`_determine_resource`), the
# resource AWS authorises these calls on (Service Authorization Reference): the instance's
# ARN for a call naming a DBInstanceIdentifier, the service's ARN for UpdateService and
# DeleteService; every other call stays on "*" as in moto.
_MOTO_SERVER = """
import sys
from moto.ecs.responses import EC2ContainerServiceResponse
from moto.rds.responses import RDSResponse
from moto.server import main

def db_instance(self):
    name = self._get_param("DBInstanceIdentifier")
    if not name:
        return "*"
    return f"arn:aws:rds:{self.region}:{self.current_account}:db:{name}"

def service(self):
    name = self._get_param("service")
    if not name or self._get_action() not in ("UpdateService", "DeleteService"):
        return "*"
    if name.startswith("arn:"):
        return name
    cluster = (self._get_param("cluster") or "default").rsplit("/", 1)[-1]
    return f"arn:aws:ecs:{self.region}:{self.current_account}:service/{cluster}/{name}"

RDSResponse._determine_resource = db_instance
EC2ContainerServiceResponse._determine_resource = service
main(sys.argv[1:])
"""


class Moto:
    """moto's server in its own process (IAM enforcement is a process-wide setting), stopped
    by its PID. The first three requests are unauthenticated: they make the admin user."""

    def __init__(self, tmp: Path) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = _client_env(tmp)
        server_env = {**self.env, "INITIAL_NO_AUTH_ACTION_COUNT": "3"}
        self.log = (tmp / "moto.log").open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)],
            env=server_env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None, "moto's server exited"
                assert time.monotonic() < deadline, "moto's server did not start"
                time.sleep(0.1)
        iam = self.client("iam", ("bootstrap", "bootstrap"))
        iam.create_user(UserName="admin")
        iam.put_user_policy(
            UserName="admin",
            PolicyName="admin",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
        key = iam.create_access_key(UserName="admin")["AccessKey"]
        self.admin = (key["AccessKeyId"], key["SecretAccessKey"])

    def client(self, service: str, keys: tuple[str, ...] | None = None) -> Any:
        key, secret, *token = keys or self.admin
        return boto3.session.Session().client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token[0] if token else None,
        )

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    server = Moto(tmp_path_factory.mktemp("moto"))
    try:
        yield server
    finally:
        server.stop()


def _script(moto: Moto, name: str, *args: str) -> subprocess.CompletedProcess:
    key, secret = moto.admin
    env = {**moto.env, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    done = subprocess.run(
        [
            sys.executable,
            str(AWS_DIR / name),
            "--endpoint-url",
            moto.url,
            "--poll-seconds",
            "1",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _exports(stdout: str) -> dict[str, str]:
    import shlex

    found = {}
    for line in stdout.splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export ") :].partition("=")
            found[name] = shlex.split(value)[0] if value else ""
    return found


IMAGES = [
    "--code-image",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/finance-assets/code:test",
    "--dagster-image",
    "123456789012.dkr.ecr.us-east-1.amazonaws.com/finance-assets/dagster:test",
]


@pytest.fixture(scope="module")
def deployed(moto: Moto) -> dict[str, str]:
    done = _script(moto, "deploy.py", *IMAGES)
    assert "CREATE_COMPLETE" in done.stderr
    return _exports(done.stdout)


def test_deploy_reaches_create_complete_and_prints_usable_settings(
    moto: Moto, deployed: dict[str, str]
) -> None:
    cfn = moto.client("cloudformation")
    for name in ("finance-assets-storage", "finance-assets-platform"):
        assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    raw, lake = deployed["FINANCE_AWS_RAW_BUCKET_NAME"], deployed["FINANCE_AWS_LAKE_BUCKET_NAME"]
    assert deployed["FINANCE_RAW_URI"] == f"s3://{raw}/raw"
    assert deployed["FINANCE_LAKE_URI"] == f"s3://{lake}/lake"
    assert deployed["FINANCE_LANDING_URI"] == f"s3://{raw}/landing"
    assert deployed["FINANCE_SPARK_OUT_URI"] == f"s3://{lake}/spark"
    s3 = moto.client("s3")
    names = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert {raw, lake, deployed["FINANCE_AWS_LOGS_BUCKET_NAME"]} <= names
    for bucket in (raw, lake):
        # (moto's CloudFormation applies a bucket's encryption and tags; versioning and
        # lifecycle rules are dropped, so those are asserted on the template above.)
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]
        assert rule["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    # The warehouse URL names the instance moto made; no password in it (PGPASSWORD).
    (db,) = moto.client("rds").describe_db_instances()["DBInstances"]
    host = db["Endpoint"]["Address"]
    assert deployed["FINANCE_PG_URL"] == f"postgresql://finance@{host}:5432/finance?sslmode=require"
    assert (deployed["DAGSTER_PG_HOST"], deployed["DAGSTER_PG_PORT"]) == (host, "5432")
    assert db["Engine"] == "postgres" and db["StorageEncrypted"] and not db["PubliclyAccessible"]
    ecs = moto.client("ecs")
    services = ecs.list_services(cluster=deployed["FINANCE_AWS_CLUSTER_NAME"])["serviceArns"]
    assert sorted(s.rsplit("/", 1)[1] for s in services) == ["daemon", "webserver"]
    run = ecs.describe_task_definition(
        taskDefinition=deployed["FINANCE_AWS_RUN_TASK_DEFINITION_ARN"]
    )["taskDefinition"]
    # (moto keeps a task definition's containers, not its roles: those are on the template.)
    (container,) = run["containerDefinitions"]
    env = {e["name"]: e.get("value") for e in container["environment"]}
    assert env["FINANCE_RAW_URI"] == deployed["FINANCE_RAW_URI"]
    assert env["FINANCE_INGEST_ROLE_ARN"] == deployed["FINANCE_AWS_INGEST_ROLE_ARN"]
    # The per-market settings reach the deployed task, unset (empty) by default.
    for name in (
        "MARKET_DATA_PROVIDER_US_DAILY",
        "FINANCE_UNIVERSE_UK",
        "MARKET_DATA_REFERENCE_US",
    ):
        assert name in env and not env[name], name
    # platform.yaml is over TemplateBody's 51,200 bytes: deploy.py staged it in the log bucket.
    assert PLATFORM.stat().st_size > 51_200
    staged = s3.list_objects_v2(
        Bucket=deployed["FINANCE_AWS_LOGS_BUCKET_NAME"], Prefix="cloudformation/"
    )["Contents"]
    (copy,) = [o["Key"] for o in staged if "finance-assets-platform-" in o["Key"]]
    body = s3.get_object(Bucket=deployed["FINANCE_AWS_LOGS_BUCKET_NAME"], Key=copy)["Body"]
    assert body.read() == PLATFORM.read_bytes()
    # Resources moto's CloudFormation skips leave their outputs out (never on AWS).
    out = done_outputs(cfn)
    assert "SparkApplicationId" not in out and "DbSecretArn" not in out


def done_outputs(cfn: Any) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName="finance-assets-platform")["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}


def _role_keys(moto: Moto, role_name: str) -> tuple[str, str]:
    """A user holding exactly the deployed role's inline policies (as moto's IAM stored them
    from the template), with access keys of its own."""
    iam = moto.client("iam")
    user = f"as-{role_name}-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=user)
    policies = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    assert policies, role_name
    for policy in policies:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=policy)["PolicyDocument"]
        if isinstance(document, str):
            # moto stores a CloudFormation role's policy as Python's repr of the dict.
            document = ast.literal_eval(document)
        document = json.dumps(document)
        iam.put_user_policy(UserName=user, PolicyName=policy, PolicyDocument=document)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _denied(call: Any, *args: Any, **kwargs: Any) -> None:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    assert caught.value.response["Error"]["Code"] in ("AccessDenied", "403"), caught.value


def _csv(*rows: tuple[str, float]) -> bytes:
    lines = ["Date,Open,High,Low,Close,Adj Close,Volume\n"]
    for day, close in rows:
        lines.append(
            f"{day},{close - 1:.6f},{close + 2:.6f},{close - 2:.6f},{close:.6f},"
            f"{close:.6f},{int(close * 100_000)}\n"
        )
    return "".join(lines).encode()


def _bars_parquet() -> bytes:
    frame = pl.DataFrame(
        {
            "symbol": ["AAPL"],
            "ts": [dt.datetime(2026, 11, 17, 14, 30, tzinfo=dt.UTC)],
            "open": [230.7],
            "high": [233.7],
            "low": [229.7],
            "close": [231.7],
            "adj_close": [231.7],
            "volume": [23_170_000],
            "currency": ["USD"],
            "source": ["landing"],
            "ingested_at": [dt.datetime(2026, 11, 18, tzinfo=dt.UTC)],
        },
        schema=BAR_SCHEMA,
    )
    buffer = io.BytesIO()
    frame.write_parquet(buffer, compression="zstd", statistics=True)
    return buffer.getvalue()


def _s3(moto: Moto, keys: tuple[str, str]) -> S3Resource:
    """The S3 client config of a step run with a role's keys."""
    return S3Resource(
        endpoint_url=moto.url,
        region_name=REGION,
        aws_access_key_id=keys[0],
        aws_secret_access_key=keys[1],
    )


def _daily_assets(market: Market) -> tuple[dg.AssetsDefinition, dg.AssetsDefinition]:
    """`<market>/raw_daily_quotes` and `<market>/daily_bars` as the code location builds them."""
    by_name = {a.key.path[-1]: a for a in build_market_assets(market)}
    return by_name["raw_daily_quotes"], by_name["daily_bars"]


def test_each_component_does_its_job_with_its_own_credentials_and_nothing_else(
    moto: Moto,
    deployed: dict[str, str],
    us: Market,
    pg_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = deployed["FINANCE_AWS_RAW_BUCKET_NAME"]
    lake = deployed["FINANCE_AWS_LAKE_BUCKET_NAME"]
    logs = deployed["FINANCE_AWS_LOGS_BUCKET_NAME"]
    admin = moto.client("s3")

    # A user drops files into the landing zone (with the admin's keys: not a component).
    good = _csv(("2026-11-17", 231.7), ("2026-11-18", 233.0))
    admin.put_object(Bucket=raw, Key="landing/us/AAPL.csv", Body=good)
    admin.put_object(Bucket=raw, Key="landing/us/WEEKEND.csv", Body=_csv(("2026-11-21", 1.0)))

    # The daemon's role: the project's landing sensor lists, reads, rejects (copy + delete,
    # with the reason beside it) and asks for a run.
    key, secret = _role_keys(moto, "finance-assets-daemon")
    zone = dict(
        root=deployed["FINANCE_LANDING_URI"],
        endpoint_url=moto.url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
    )
    context = dg_sensor_context(LandingZoneResource(**zone))
    result = build_landing_sensor(us, settle=dt.timedelta(0))(context)
    (request,) = result.run_requests or []
    assert request.tags[LANDING_FILE_TAG] == "AAPL.csv"
    listed = {o["Key"] for o in admin.list_objects_v2(Bucket=raw)["Contents"]}
    assert {"landing/us/rejected/WEEKEND.csv", "landing/us/rejected/WEEKEND.csv.reason.txt"} <= (
        listed
    )
    assert "landing/us/WEEKEND.csv" not in listed
    daemon = moto.client("s3", (key, secret))
    _denied(daemon.put_object, Bucket=raw, Key="raw/us/x.json", Body=b"{}")
    _denied(daemon.get_object, Bucket=lake, Key="lake/anything")

    # The pipeline the request starts, one step at a time as ecs_executor runs it, each step
    # with its own role's keys: the project's assets, IO managers and stores, nothing mirrored.
    ingest_keys = _role_keys(moto, "finance-assets-ingest")
    transform_keys = _role_keys(moto, "finance-assets-transform")
    raw_asset, clean_asset = _daily_assets(us)
    start = dt.datetime(2026, 11, 17, tzinfo=us.tz)  # the landed file's two sessions
    end = start + dt.timedelta(days=2)
    ingest_run = {
        "raw_zone_io_manager": RawZoneIOManager(
            root=deployed["FINANCE_RAW_URI"], s3=_s3(moto, ingest_keys)
        ),
        "landing_zone": LandingZoneResource(
            **{**zone, "aws_access_key_id": ingest_keys[0], "aws_secret_access_key": ingest_keys[1]}
        ),
        "market_data": SimulatedMarketResource(),  # not called: the run reads the landed file
    }
    raw_zone = open_location(deployed["FINANCE_RAW_URI"], _s3(moto, ingest_keys))
    quotes = raw_zone.child("us", "raw_daily_quotes")
    # Twice: the second run's payload supersedes the first's (listed, read, deleted).
    for _ in range(2):
        done = dg.materialize([raw_asset], resources=ingest_run, tags=request.tags)
        assert done.success
    folder = "raw/us/raw_daily_quotes/dt=2026-11-17"
    stored = sorted(o["Key"] for o in admin.list_objects_v2(Bucket=raw, Prefix=folder)["Contents"])
    assert len(stored) == 2 and stored[1].endswith(".meta.json"), stored
    payload_key = stored[0]
    assert admin.get_object(Bucket=raw, Key=payload_key)["Body"].read() == good

    # The clean step: reads the raw zone, stages the day files in the lake while the
    # warehouse transaction runs, commits, publishes (copy + delete), then checks both agree.
    warehouse = WarehouseResource(url=pg_url, data_dir=str(tmp_path))
    transform_s3 = _s3(moto, transform_keys)
    transform_run = {
        "raw_zone_io_manager": RawZoneIOManager(root=deployed["FINANCE_RAW_URI"], s3=transform_s3),
        "lake_warehouse_io_manager": LakeWarehouseIOManager(
            lake_root=deployed["FINANCE_LAKE_URI"], warehouse=warehouse, s3=transform_s3
        ),
        "warehouse": warehouse,
        "storage": StorageResource(
            raw_root=deployed["FINANCE_RAW_URI"],
            lake_root=deployed["FINANCE_LAKE_URI"],
            s3=transform_s3,
        ),
        "data_quality": DataQualityResource(),
    }
    for _ in range(2):  # the second replaces the first's day files and rows
        done = dg.materialize(
            [clean_asset, *raw_asset.to_source_assets()],
            resources=transform_run,
            tags=request.tags,
        )
        assert done.success
        checks = {c.check_name: c.passed for c in done.get_asset_check_evaluations()}
        assert checks["stores_agree"] and checks["prices_not_null"], checks
    day = "lake/us/daily_bars/dt=2026-11-17"
    lake_keys = sorted(o["Key"] for o in admin.list_objects_v2(Bucket=lake)["Contents"])
    assert lake_keys == [f"{day}/part-0.parquet", "lake/us/daily_bars/dt=2026-11-18/part-0.parquet"]
    got = admin.get_object(Bucket=lake, Key=f"{day}/part-0.parquet")["Body"].read()
    assert pl.read_parquet(io.BytesIO(got))["close"].to_list() == [231.7]
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT count(*), max(close) FROM us.daily_bars").fetchone()
    assert rows == (2, 233.0)

    # Retention, an ingest step: it lists the raw zone page by page and finds what expired.
    # Its deletion is a DeleteObjects batch, which AWS authorises key by key as s3:DeleteObject
    # on each object (granted on raw/*); moto checks s3:DeleteObject on the bucket's ARN and
    # refuses every key, so here the step runs dry and the batch is a real account's to prove.
    old = "raw/us/raw_daily_quotes/dt=2020-01-02"
    for n in range(3):
        admin.put_object(Bucket=raw, Key=f"{old}/p{n}.json", Body=b"{}")
    monkeypatch.setattr(S3ObjectStore, "page_size", 2)  # listings of several pages
    storage_as_ingest = StorageResource(
        raw_root=deployed["FINANCE_RAW_URI"],
        lake_root=deployed["FINANCE_LAKE_URI"],
        s3=_s3(moto, ingest_keys),
    )
    purged = retention_job.execute_in_process(
        resources={"storage": storage_as_ingest},
        run_config={"ops": {"purge_expired_partitions": {"config": {"dry_run": True}}}},
    )
    assert purged.output_for_node("purge_expired_partitions") == [f"s3://{raw}/{old}"]
    monkeypatch.undo()
    for n in range(3):
        admin.delete_object(Bucket=raw, Key=f"{old}/p{n}.json")

    # Forbidden, through the same code: ingest writing or deleting in the lake ...
    ingest_lake = open_location(deployed["FINANCE_LAKE_URI"], _s3(moto, ingest_keys))
    bars = ingest_lake.child("us", "daily_bars")
    frame = pl.read_parquet(io.BytesIO(got))
    window = {"start": start, "end": start + dt.timedelta(days=1), "tz": us.tz}
    with pytest.raises(PermissionError):
        lake_io.stage_window(bars, frame, **window).publish()
    with pytest.raises(PermissionError):  # the PUT itself, past any listing
        bars.write("dt=2026-11-17/part-0.parquet", b"x")
    with pytest.raises(PermissionError):
        bars.delete("dt=2026-11-17/part-0.parquet")
    with pytest.raises(PermissionError):
        lake_io.remove_partition(bars, "dt=2026-11-17")
    # ... the transform step writing the raw zone ...
    payloads = lake_io.read_payloads(quotes, start, end)
    transform_quotes = open_location(deployed["FINANCE_RAW_URI"], transform_s3).child(
        "us", "raw_daily_quotes"
    )
    with pytest.raises(PermissionError):
        lake_io.write_payloads(transform_quotes, payloads, start, end, us.tz)
    # ... and the webserver writing anything (it reads).
    web_keys = _role_keys(moto, "finance-assets-webserver")
    web_lake = open_location(deployed["FINANCE_LAKE_URI"], _s3(moto, web_keys))
    read = lake_io.read_window(web_lake.child("us", "daily_bars"), **window)
    assert read is not None and read["close"].to_list() == [231.7]
    with pytest.raises(PermissionError):
        lake_io.stage_window(web_lake.child("us", "daily_bars"), frame, **window).publish()
    web_raw = open_location(deployed["FINANCE_RAW_URI"], _s3(moto, web_keys))
    with pytest.raises(PermissionError):
        lake_io.write_payloads(web_raw.child("us", "raw_daily_quotes"), payloads, start, end, us.tz)
    assert admin.get_object(Bucket=lake, Key=f"{day}/part-0.parquet")["Body"].read() == got
    # Raw calls outside what the code does: the landing zone's markers and files, other keys.
    ingest = moto.client("s3", ingest_keys)
    _denied(ingest.get_object, Bucket=lake, Key=f"{day}/part-0.parquet")
    _denied(ingest.put_object, Bucket=raw, Key="landing/us/.processed/AAPL.csv.json", Body=b"{}")
    _denied(ingest.delete_object, Bucket=raw, Key="landing/us/AAPL.csv")
    _denied(ingest.put_object, Bucket=raw, Key="elsewhere.json", Body=b"{}")
    transform = moto.client("s3", transform_keys)
    transform.put_object(Bucket=logs, Key="spark-code/bars_job.py", Body=b"# job")
    _denied(transform.delete_object, Bucket=raw, Key=payload_key)
    _denied(transform.put_object, Bucket=lake, Key="spark/us/x.parquet", Body=b"x")
    _denied(transform.get_object, Bucket=raw, Key="landing/us/AAPL.csv")

    # The Spark job's role: reads raw/, writes only its own prefix.
    spark = moto.client("s3", _role_keys(moto, "finance-assets-spark"))
    spark.get_object(Bucket=raw, Key=payload_key)["Body"].read()
    spark.get_object(Bucket=logs, Key="spark-code/bars_job.py")["Body"].read()
    out = "spark/us/bars_by_symbol/symbol=AAPL/date=2026-11-17/part-0.parquet"
    spark.put_object(Bucket=lake, Key=out, Body=_bars_parquet())
    spark.delete_object(Bucket=lake, Key=out)
    _denied(spark.put_object, Bucket=lake, Key=f"{day}/part-0.parquet", Body=b"x")
    _denied(spark.put_object, Bucket=raw, Key=f"{folder}/x.json", Body=b"x")

    # The webserver's role: reads the lake and the raw zone, writes and deletes nothing.
    web = moto.client("s3", web_keys)
    assert web.get_object(Bucket=lake, Key=f"{day}/part-0.parquet")["Body"].read() == got
    assert web.list_objects_v2(Bucket=lake, Prefix="lake/")["KeyCount"] >= 1
    web.get_object(Bucket=raw, Key=payload_key)["Body"].read()
    _denied(web.put_object, Bucket=lake, Key=f"{day}/part-0.parquet", Body=b"x")
    _denied(web.delete_object, Bucket=lake, Key=f"{day}/part-0.parquet")
    _denied(web.put_object, Bucket=raw, Key="landing/us/NEW.csv", Body=b"x")
    _denied(web.get_object, Bucket=raw, Key="landing/us/AAPL.csv")

    # The run worker launches steps and touches no data.
    run = moto.client("s3", _role_keys(moto, "finance-assets-run"))
    _denied(run.get_object, Bucket=lake, Key=f"{day}/part-0.parquet")


def _sdk_call(client: Any, action: str, body: dict) -> Any:
    """A universal target's call with boto3: Input's members are the API's, spelled as the
    AWS SDKs' PascalCase (`DbInstanceIdentifier` for the API's `DBInstanceIdentifier`, `Cluster`
    for ECS's `cluster`): matched without case, and a member the API lacks is an error."""
    operation = client.meta.service_model.operation_model(action[0].upper() + action[1:])
    members = {m.lower(): m for m in operation.input_shape.members}
    unknown = [k for k in body if k.lower() not in members]
    assert not unknown, f"{action}: no such request member {unknown}"
    method = {v: k for k, v in client.meta.method_to_api_mapping.items()}[operation.name]
    return getattr(client, method)(**{members[k.lower()]: v for k, v in body.items()})


def _stack_resources(cfn: Any) -> list[dict]:
    pages = cfn.get_paginator("list_stack_resources").paginate(StackName="finance-assets-platform")
    return [r for page in pages for r in page["StackResourceSummaries"]]


def _deployed_input(cfn: Any, template: dict, schedule: str) -> dict:
    """A schedule's Input written out against the deployed stack's resources."""
    physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in _stack_resources(cfn)}

    def resolve(match: re.Match) -> str:
        logical, _, attribute = match.group(1).partition(".")
        if attribute == "Name":  # a service's name: the last part of its ARN
            return physical[logical].rsplit("/", 1)[-1]
        assert not attribute, match.group(1)
        return physical[logical]

    target = template["Resources"][schedule]["Properties"]["Target"]
    return json.loads(re.sub(r"\$\{([\w.]+)\}", resolve, target["Input"]["Fn::Sub"]))


def test_each_schedule_target_works_with_only_the_scheduler_roles_policy(
    moto: Moto, deployed: dict[str, str], platform: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto's CloudFormation makes the scheduler's role but not the schedules (AWS::Scheduler
    is not among its types): each schedule's target call, its API action and Input taken
    from the template, is made here with the keys of a user holding only that role's policy
    (as moto stored it), one day's worth in order: the evening's stops, the morning's starts."""
    cfn = moto.client("cloudformation")
    kinds = {r["ResourceType"] for r in _stack_resources(cfn)}
    # (When moto learns the type, its schedules can be read back here as well.)
    assert "AWS::Scheduler::Schedule" not in kinds and "AWS::IAM::Role" in kinds
    keys = _role_keys(moto, "finance-assets-scheduler")
    clients = {service: moto.client(service, keys) for service in ("rds", "ecs")}
    rds, ecs = moto.client("rds"), moto.client("ecs")
    (db,) = rds.describe_db_instances()["DBInstances"]
    cluster = deployed["FINANCE_AWS_CLUSTER_NAME"]

    def state() -> tuple[str, dict[str, int]]:
        (now,) = rds.describe_db_instances(DBInstanceIdentifier=db["DBInstanceIdentifier"])[
            "DBInstances"
        ]
        services = ecs.describe_services(cluster=cluster, services=["daemon", "webserver"])[
            "services"
        ]
        return now["DBInstanceStatus"], {s["serviceName"]: s["desiredCount"] for s in services}

    # Created without a DesiredCount (the scheduler's): AWS starts one task, moto none.
    assert state() == ("available", {"daemon": 0, "webserver": 0})
    for service in ("daemon", "webserver"):
        ecs.update_service(cluster=cluster, service=service, desiredCount=1)

    times = schedule_times(platform)
    closing = min(t for name, t in times.items() if "Stop" in name)
    day = sorted(times, key=lambda name: (times[name] < closing, times[name]))
    assert [n for n in day if "Stop" in n] == day[:3]
    for name in day:
        service, action, _ = universal_target(platform, name)
        _sdk_call(clients[service], action, _deployed_input(cfn, platform, name))
        if name == day[2]:
            assert state() == ("stopped", {"daemon": 0, "webserver": 0}), "after the stops"
    assert state() == ("available", {"daemon": 1, "webserver": 1}), "after the starts"

    # Nothing else: not deleting or changing the instance, not another instance, not deleting
    # or scaling another service.
    scheduler_rds, scheduler_ecs = clients["rds"], clients["ecs"]
    identifier = db["DBInstanceIdentifier"]
    _denied(
        scheduler_rds.delete_db_instance, DBInstanceIdentifier=identifier, SkipFinalSnapshot=True
    )
    _denied(scheduler_rds.modify_db_instance, DBInstanceIdentifier=identifier, AllocatedStorage=40)
    _denied(scheduler_rds.reboot_db_instance, DBInstanceIdentifier=identifier)
    rds.create_db_instance(
        DBInstanceIdentifier="someone-elses",
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        MasterUsername="other",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
    )
    try:
        _denied(scheduler_rds.stop_db_instance, DBInstanceIdentifier="someone-elses")
    finally:
        rds.delete_db_instance(DBInstanceIdentifier="someone-elses", SkipFinalSnapshot=True)
    _denied(scheduler_ecs.delete_service, cluster=cluster, service="daemon", force=True)
    (daemon,) = ecs.describe_services(cluster=cluster, services=["daemon"])["services"]
    ecs.create_service(
        cluster=cluster,
        serviceName="other",
        taskDefinition=daemon["taskDefinition"],
        desiredCount=0,
    )
    try:
        _denied(scheduler_ecs.update_service, cluster=cluster, service="other", desiredCount=1)
    finally:
        ecs.delete_service(cluster=cluster, service="other", force=True)
    assert state() == ("available", {"daemon": 1, "webserver": 1})

    # deploy.py, run outside the window, starts the stopped instance before it updates the
    # stack (CloudFormation cannot modify a stopped one).
    _sdk_call(scheduler_rds, "stopDBInstance", _deployed_input(cfn, platform, "DbStopSchedule"))
    assert state()[0] == "stopped"
    key, secret = moto.admin
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    for name, value in moto.env.items():
        if name.startswith("AWS_"):
            monkeypatch.setenv(name, value)
    monkeypatch.syspath_prepend(str(AWS_DIR))
    import deploy  # deployment/aws/deploy.py (the folder is not a package)

    args = deploy.argparse.Namespace(
        endpoint_url=moto.url, region=REGION, poll_seconds=1.0, timeout_minutes=1.0
    )
    deploy.wake_database(
        deploy.stacks.client("cloudformation", args), "finance-assets-platform", args
    )
    assert state()[0] == "available"


def dg_sensor_context(resource: LandingZoneResource) -> Any:
    return dg.build_sensor_context(resources={"landing_zone": resource})


def test_terminate_empties_every_version_and_deletes_both_stacks(
    moto: Moto, deployed: dict[str, str]
) -> None:
    """Runs last in this module: it tears down what the tests above used."""
    s3 = moto.client("s3")
    raw, lake = deployed["FINANCE_AWS_RAW_BUCKET_NAME"], deployed["FINANCE_AWS_LAKE_BUCKET_NAME"]
    # Versioned as the template asks (moto's CloudFormation drops VersioningConfiguration).
    s3.put_bucket_versioning(Bucket=lake, VersioningConfiguration={"Status": "Enabled"})
    day_file = "lake/us/bars_5min/dt=2026-11-18/part-0.parquet"
    for n in range(3):  # versions and a delete marker: a plain listing would miss them
        s3.put_object(Bucket=lake, Key=day_file, Body=b"%d" % n)
    s3.delete_object(Bucket=lake, Key=day_file)
    versions = s3.list_object_versions(Bucket=lake)
    assert len(versions.get("Versions", [])) >= 3 and versions.get("DeleteMarkers")

    done = _script(moto, "terminate.py")
    assert "finance-assets-platform: deleted" in done.stderr
    assert "finance-assets-storage: deleted" in done.stderr
    remaining = {b["Name"] for b in s3.list_buckets()["Buckets"]}
    assert not remaining & {raw, lake, deployed["FINANCE_AWS_LOGS_BUCKET_NAME"]}
    cfn = moto.client("cloudformation")
    live = [
        s["StackName"]
        for s in cfn.list_stacks()["StackSummaries"]
        if s["StackStatus"] != "DELETE_COMPLETE"
    ]
    assert live == []
    # A second run finds nothing to do and says so.
    again = _script(moto, "terminate.py")
    assert "not found" in again.stderr
