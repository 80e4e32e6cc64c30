"""Where the raw zone and the lake live, for the jobs that manage them and the assets that read
the lake beside their IO manager."""

from __future__ import annotations

import dagster as dg

from finance_assets.lib.io.objects import ObjectStore, open_location
from finance_assets.lib.io.objects.s3_resource import S3Resource


class StorageResource(dg.ConfigurableResource):
    """Where the raw zone and the lake live (a path or `s3://bucket/prefix` each), for jobs
    that manage them (retention) and assets that read the lake beside their IO manager."""

    raw_root: str
    lake_root: str
    s3: S3Resource | None = None  # the client of s3:// roots; unset: boto3's chain

    def raw(self, key: dg.AssetKey | None = None) -> ObjectStore:
        """The raw zone, or one asset's part of it (`<raw>/<market>/<asset>/`)."""
        store = open_location(self.raw_root, self.s3)
        return store.child(*key.path) if key else store

    def lake(self, key: dg.AssetKey | None = None) -> ObjectStore:
        """The lake, or one asset's part of it (`<lake>/<market>/<asset>/`)."""
        store = open_location(self.lake_root, self.s3)
        return store.child(*key.path) if key else store
