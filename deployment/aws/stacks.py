"""What deploy.py and terminate.py share: the two stacks, their clients, waits and outputs.

The storage stack (buckets, catalog, topic, bucket alarms) comes first and goes last; the
platform stack (network, database, secrets, roles, ECS, EMR Serverless) takes the storage
stack's outputs as parameters, so compute can be deleted while the data stays.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError, WaiterError

HERE = Path(__file__).resolve().parent
STORAGE_TEMPLATE = HERE / "storage.yaml"
PLATFORM_TEMPLATE = HERE / "platform.yaml"
# TemplateBody's limit; beyond it CloudFormation needs the template in S3.
MAX_TEMPLATE_BYTES = 51_200

# Platform outputs -> the environment variables the project reads (README "Configuration").
PROJECT_VARIABLES = {
    "FinanceRawUri": "FINANCE_RAW_URI",
    "FinanceLakeUri": "FINANCE_LAKE_URI",
    "FinanceLandingUri": "FINANCE_LANDING_URI",
    "FinancePgUrl": "FINANCE_PG_URL",
    "DbHost": "DAGSTER_PG_HOST",
    "DbPort": "DAGSTER_PG_PORT",
    "DbName": "DAGSTER_PG_DB",
    "SparkRawUri": "FINANCE_SPARK_RAW_URI",
    "SparkOutUri": "FINANCE_SPARK_OUT_URI",
    "SparkCodeUri": "FINANCE_SPARK_CODE_URI",
    "SparkApplicationId": "FINANCE_SPARK_SERVERLESS_APPLICATION_ID",
    "SparkRoleArn": "FINANCE_SPARK_SERVERLESS_ROLE_ARN",
}


@dataclass(frozen=True)
class Stacks:
    storage: str
    platform: str


def stack_names(prefix: str) -> Stacks:
    return Stacks(storage=f"{prefix}-storage", platform=f"{prefix}-platform")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--endpoint-url",
        help="an AWS-compatible endpoint for every service (tests: moto's server on loopback)",
    )
    parser.add_argument("--region", default=os.environ.get("AWS_REGION") or None)
    parser.add_argument(
        "--name-prefix", default="finance-assets", help="lower-case prefix of stack names"
    )
    parser.add_argument(
        "--poll-seconds", type=float, default=15.0, help="how often to ask for a stack's state"
    )
    parser.add_argument("--timeout-minutes", type=float, default=60.0)


def client(service: str, args: argparse.Namespace) -> Any:
    """A boto3 client; credentials from boto3's own chain (never an argument)."""
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return boto3.client(
        service,
        endpoint_url=args.endpoint_url,
        region_name=args.region or "us-east-1",
        config=config,
    )


def describe(cfn: Any, name: str) -> dict | None:
    """The stack, or None when there is none by that name (or only a deleted one)."""
    try:
        stacks = cfn.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def wait(cfn: Any, waiter: str, name: str, args: argparse.Namespace) -> None:
    """Wait for the stack; on failure, raise with the events that say why."""
    delay = max(1, round(args.poll_seconds))
    attempts = max(1, int(args.timeout_minutes * 60 / delay))
    try:
        cfn.get_waiter(waiter).wait(
            StackName=name, WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
        )
    except WaiterError as exc:
        reasons = failure_reasons(cfn, name)
        raise SystemExit(f"stack {name}: {waiter} failed: {exc}; {reasons}") from exc


def failure_reasons(cfn: Any, name: str) -> str:
    try:
        events = cfn.describe_stack_events(StackName=name)["StackEvents"]
    except ClientError:
        return "no events"
    failed = [
        f"{e['LogicalResourceId']}: {e.get('ResourceStatusReason', '')}"
        for e in events
        if e.get("ResourceStatus", "").endswith("FAILED")
    ]
    return "; ".join(failed[:5]) or "no failed resource reported"


def outputs(stack: dict) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
