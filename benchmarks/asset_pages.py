"""The GraphQL queries behind the asset pages, timed one by one (issue 23).

    .venv/bin/python benchmarks/asset_pages.py [--asset us/bars_5min] [--repeats 2]

The code location is loaded as `dagster dev` loads it (a code server process, the workspace
in this one, as the webserver holds it), on a throwaway instance; each query is sent as the UI
sends its part of a page and timed in wall and CPU seconds of this process (the webserver's
share: the partitions are enumerated here, from the code location's snapshot). Run twice, a
query shows what Dagster caches between requests.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import dagster as dg
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import ModuleTarget
from dagster_graphql.test.utils import execute_dagster_graphql

# What the pages ask of one asset: the Partitions tab its keys and their statuses, the overview
# its partition counts; the catalog every asset's partitions definition.
QUERIES = {
    "partitionKeysByDimension (Partitions tab)": """
        query Q($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) {
            ... on AssetNode { partitionKeysByDimension { name partitionKeys } } } }""",
    "assetPartitionStatuses (Partitions tab)": """
        query Q($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) {
            ... on AssetNode { assetPartitionStatuses { __typename
                ... on TimePartitionStatuses { ranges { status startKey endKey } } } } } }""",
    "partitionStats (overview)": """
        query Q($k: AssetKeyInput!) { assetNodeOrError(assetKey: $k) {
            ... on AssetNode { partitionStats {
                numMaterialized numPartitions numFailed numMaterializing } } } }""",
    "assetNodes (catalog)": """
        query Q { assetNodes { id assetKey { path } isPartitioned
            partitionDefinition { description type } } }""",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--asset", default="us/bars_5min")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    key = {"path": args.asset.split("/")}
    with tempfile.TemporaryDirectory() as home, dg.instance_for_test(temp_dir=home) as instance:
        target = ModuleTarget(
            module_name="finance_assets.definitions",
            attribute=None,
            location_name="finance_assets",
            working_directory=os.getcwd(),
        )
        with WorkspaceProcessContext(instance, target) as workspace:
            for name, query in QUERIES.items():
                variables = {"k": key} if "$k" in query else {}
                for attempt in range(1, args.repeats + 1):
                    wall, cpu = time.perf_counter(), time.process_time()
                    result = execute_dagster_graphql(
                        workspace.create_request_context(), query, variables
                    )
                    if result.errors:
                        raise RuntimeError(f"{name}: {result.errors}")
                    print(
                        f"{name:44s} #{attempt}: {time.perf_counter() - wall:6.2f} s wall, "
                        f"{time.process_time() - cpu:5.2f} s CPU",
                        flush=True,
                    )
    print(f"load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
