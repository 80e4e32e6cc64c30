"""Create or update the finance_assets stacks, wait for them, print the environment.

    python deployment/aws/deploy.py --code-image <uri> --dagster-image <uri> [--endpoint-url URL]

The storage stack first, then the platform stack with the storage stack's outputs as its
parameters. A template over CloudFormation's 51,200-byte TemplateBody limit (platform.yaml)
goes through the log bucket (`cloudformation/`, expired with the bucket's 30-day rule). Before
an update, a database the MarketWindow schedule has stopped is started: CloudFormation cannot
modify a stopped instance (it stays up until the next stop at WindowEndHour). Prints
`export NAME=value` lines: the variables the project reads, then the identifiers an operator
needs (the secrets' and roles' ARNs). No secret value is printed: the database password stays
in Secrets Manager (DbSecretArn). Credentials: boto3's own chain.
"""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stacks  # (the folder is not a package: found beside this file)


def _parameters(values: dict[str, str]) -> list[dict[str, str]]:
    return [{"ParameterKey": k, "ParameterValue": v} for k, v in sorted(values.items())]


def template_source(
    name: str, template: Path, staging_bucket: str | None, args: argparse.Namespace
) -> dict[str, str]:
    """TemplateBody, or TemplateURL of a copy in `staging_bucket` when the body is too big."""
    body = template.read_bytes()
    if len(body) <= stacks.MAX_TEMPLATE_BYTES:
        return {"TemplateBody": body.decode()}
    if staging_bucket is None:
        raise SystemExit(f"{template.name} is over TemplateBody's limit and has no bucket")
    key = f"cloudformation/{name}-{hashlib.sha256(body).hexdigest()[:16]}.yaml"
    stacks.client("s3", args).put_object(Bucket=staging_bucket, Key=key, Body=body)
    region = args.region or "us-east-1"
    return {"TemplateURL": f"https://{staging_bucket}.s3.{region}.amazonaws.com/{key}"}


def wake_database(cfn: Any, name: str, args: argparse.Namespace) -> None:
    """Start the stack's RDS instance if the MarketWindow schedule stopped it."""
    if stacks.describe(cfn, name) is None:
        return
    pages = cfn.get_paginator("list_stack_resources").paginate(StackName=name)
    found = [
        r.get("PhysicalResourceId")
        for page in pages
        for r in page["StackResourceSummaries"]
        if r["LogicalResourceId"] == "Db"
    ]
    identifier = found[0] if found else None
    if not identifier:
        return
    rds = stacks.client("rds", args)
    deadline = time.monotonic() + args.timeout_minutes * 60
    while True:
        (db,) = rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"]
        status = db["DBInstanceStatus"]
        if status != "stopping" or time.monotonic() > deadline:
            break
        time.sleep(args.poll_seconds)  # a stopping instance cannot be started yet
    if status != "stopped":
        return
    print(f"{identifier}: stopped (outside the window), starting it first", file=sys.stderr)
    rds.start_db_instance(DBInstanceIdentifier=identifier)
    delay = max(1, round(args.poll_seconds))
    attempts = max(1, int(args.timeout_minutes * 60 / delay))
    rds.get_waiter("db_instance_available").wait(
        DBInstanceIdentifier=identifier, WaiterConfig={"Delay": delay, "MaxAttempts": attempts}
    )


def apply_stack(
    cfn: Any,
    name: str,
    template: Path,
    parameters: dict[str, str],
    args: argparse.Namespace,
    staging_bucket: str | None = None,
) -> dict:
    """Create the stack, or update it; wait; return it as described after the wait."""
    common = {
        "StackName": name,
        **template_source(name, template, staging_bucket, args),
        "Parameters": _parameters(parameters),
        "Capabilities": ["CAPABILITY_NAMED_IAM"],
        "Tags": [{"Key": "project", "Value": "finance_assets"}],
    }
    existing = stacks.describe(cfn, name)
    if existing is not None and existing["StackStatus"] == "ROLLBACK_COMPLETE":
        # A stack whose first creation failed cannot be updated, only replaced.
        print(f"{name}: ROLLBACK_COMPLETE from an earlier attempt, deleting it", file=sys.stderr)
        cfn.delete_stack(StackName=name)
        stacks.wait(cfn, "stack_delete_complete", name, args)
        existing = None
    if existing is None:
        print(f"{name}: creating", file=sys.stderr)
        cfn.create_stack(**common, OnFailure="ROLLBACK")
        stacks.wait(cfn, "stack_create_complete", name, args)
    else:
        print(f"{name}: updating", file=sys.stderr)
        try:
            cfn.update_stack(**common)
        except ClientError as exc:
            if "No updates are to be performed" not in str(exc):
                raise
            print(f"{name}: already up to date", file=sys.stderr)
        else:
            stacks.wait(cfn, "stack_update_complete", name, args)
    found = stacks.describe(cfn, name)
    assert found is not None
    print(f"{name}: {found['StackStatus']}", file=sys.stderr)
    return found


def default_network(args: argparse.Namespace) -> dict[str, str]:
    """The account's default VPC: its id, range and subnets (one per zone)."""
    ec2 = stacks.client("ec2", args)
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    if not vpcs:
        raise SystemExit(
            "no default VPC in this region: pass --param VpcId=... SubnetIds=a,b VpcCidr=..."
        )
    vpc = vpcs[0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    by_zone = {s["AvailabilityZone"]: s["SubnetId"] for s in subnets["Subnets"]}
    if len(by_zone) < 2:
        raise SystemExit(f"{vpc['VpcId']} has subnets in fewer than two zones")
    return {
        "VpcId": vpc["VpcId"],
        "VpcCidr": vpc["CidrBlock"],
        "SubnetIds": ",".join(by_zone[z] for z in sorted(by_zone)),
    }


def _key_value(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"--param takes Key=Value, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    stacks.add_common_arguments(parser)
    parser.add_argument("--code-image", required=True, help="the code image's URI")
    parser.add_argument("--dagster-image", required=True, help="the dagster image's URI")
    parser.add_argument(
        "--param",
        action="append",
        type=_key_value,
        default=[],
        metavar="KEY=VALUE",
        help="a platform stack parameter (e.g. AdminCidr=203.0.113.7/32); repeatable",
    )
    parser.add_argument("--storage-param", action="append", type=_key_value, default=[])
    args = parser.parse_args(argv)

    cfn = stacks.client("cloudformation", args)
    names = stacks.stack_names(args.name_prefix)
    storage = apply_stack(
        cfn,
        names.storage,
        stacks.STORAGE_TEMPLATE,
        {"NamePrefix": args.name_prefix, **dict(args.storage_param)},
        args,
    )
    stored = stacks.outputs(storage)
    chosen = dict(args.param)
    network = {} if "VpcId" in chosen else default_network(args)
    wake_database(cfn, names.platform, args)
    platform = apply_stack(
        cfn,
        names.platform,
        stacks.PLATFORM_TEMPLATE,
        {
            "NamePrefix": args.name_prefix,
            "RawBucketName": stored["RawBucketName"],
            "LakeBucketName": stored["LakeBucketName"],
            "LogsBucketName": stored["LogsBucketName"],
            "AlertsTopicArn": stored["AlertsTopicArn"],
            "CodeImageUri": args.code_image,
            "DagsterImageUri": args.dagster_image,
            **network,
            **chosen,
        },
        args,
        staging_bucket=stored["LogsBucketName"],
    )
    print_environment(stacks.outputs(platform), stored)
    return 0


def _export(name: str, value: str | None, source: str) -> None:
    if value is None:
        # Never on AWS; moto's CloudFormation skips some resource types and their outputs.
        print(f"# {name}: the stack reported no {source} output")
    else:
        print(f"export {name}={shlex.quote(value)}")


def print_environment(out: dict[str, str], stored: dict[str, str]) -> None:
    """`export` lines for the shell: the project's settings, then operators' identifiers."""
    print("# the project's settings (README 'Configuration')")
    print("export FINANCE_ENV=prod")
    for key, variable in stacks.PROJECT_VARIABLES.items():
        _export(variable, out.get(key), key)
    print("export DAGSTER_PG_USERNAME=finance")
    print("export FINANCE_SPARK_MODE=emr_serverless")
    print("# PGPASSWORD and DAGSTER_PG_PASSWORD: the 'password' key of the DbSecretArn secret")
    print("# identifiers for operators (not read by the project)")
    for key in ("DbSecretArn", "ClusterName", "RunTaskDefinitionArn"):
        _export(f"FINANCE_AWS_{_snake(key)}", out.get(key), key)
    for key in ("IngestRoleArn", "TransformRoleArn", "WebserverRoleArn", "DaemonRoleArn"):
        _export(f"FINANCE_AWS_{_snake(key)}", out.get(key), key)
    for key in ("RawBucketName", "LakeBucketName", "LogsBucketName", "AlertsTopicArn"):
        _export(f"FINANCE_AWS_{_snake(key)}", stored.get(key), key)


def _snake(name: str) -> str:
    return "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(name)).upper()


if __name__ == "__main__":
    sys.exit(main())
