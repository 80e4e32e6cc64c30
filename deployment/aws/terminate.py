"""Delete the finance_assets stacks: the platform stack, then (unless --keep-data) every object
version and delete marker of the storage stack's buckets, then the storage stack.

    python deployment/aws/terminate.py [--endpoint-url URL] [--keep-data]

CloudFormation cannot delete a bucket that holds objects, and in a versioned bucket deleted
objects stay as noncurrent versions: both are removed here, a page (1,000 keys) at a time.
The RDS instance leaves a final snapshot (DeletionPolicy: Snapshot); it is listed at the end.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

sys.path.insert(0, str(Path(__file__).resolve().parent))
import stacks  # (the folder is not a package: found beside this file)


def empty_bucket(s3: Any, bucket: str) -> int:
    """Delete every version and delete marker in `bucket`; the number of keys removed."""
    removed = 0
    try:
        pages = s3.get_paginator("list_object_versions").paginate(Bucket=bucket)
        for page in pages:
            batch = [
                {"Key": v["Key"], "VersionId": v["VersionId"]}
                for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            if not batch:
                continue
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                first = answer["Errors"][0]
                raise SystemExit(
                    f"{bucket}: {len(answer['Errors'])} object(s) not deleted, first "
                    f"{first.get('Key')}: {first.get('Code')} {first.get('Message', '')}"
                )
            removed += len(batch)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
            return removed
        raise
    return removed


def stack_buckets(cfn: Any, name: str) -> list[str]:
    resources = cfn.get_paginator("list_stack_resources").paginate(StackName=name)
    return [
        r["PhysicalResourceId"]
        for page in resources
        for r in page["StackResourceSummaries"]
        if r["ResourceType"] == "AWS::S3::Bucket" and r.get("PhysicalResourceId")
    ]


def delete_stack(cfn: Any, name: str, args: argparse.Namespace) -> bool:
    if stacks.describe(cfn, name) is None:
        print(f"{name}: not found", file=sys.stderr)
        return False
    print(f"{name}: deleting", file=sys.stderr)
    cfn.delete_stack(StackName=name)
    stacks.wait(cfn, "stack_delete_complete", name, args)
    print(f"{name}: deleted", file=sys.stderr)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    stacks.add_common_arguments(parser)
    parser.add_argument(
        "--keep-data",
        action="store_true",
        help="delete only the platform stack: buckets, catalog and topic stay",
    )
    args = parser.parse_args(argv)

    cfn = stacks.client("cloudformation", args)
    names = stacks.stack_names(args.name_prefix)
    delete_stack(cfn, names.platform, args)
    if not args.keep_data and stacks.describe(cfn, names.storage) is not None:
        s3 = stacks.client("s3", args)
        for bucket in stack_buckets(cfn, names.storage):
            print(f"{bucket}: {empty_bucket(s3, bucket)} version(s) deleted", file=sys.stderr)
        delete_stack(cfn, names.storage, args)
    try:
        snapshots = stacks.client("rds", args).describe_db_snapshots(SnapshotType="manual")
    except ClientError:
        snapshots = {"DBSnapshots": []}
    for snap in snapshots.get("DBSnapshots", []):
        if args.name_prefix in snap.get("DBSnapshotIdentifier", ""):
            print(f"final snapshot kept: {snap['DBSnapshotIdentifier']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
