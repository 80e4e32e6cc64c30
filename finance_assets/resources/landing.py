"""The landing zone's resource: where users drop files (a folder or an S3 prefix), and the file
a landing run was started for."""

import datetime as dt
from collections.abc import Mapping

from finance_assets.lib import landing
from finance_assets.lib.io.objects.s3_resource import S3Resource
from finance_assets.lib.markets import Market

# Run tags a landing run carries: which file, and the content the sensor validated.
LANDING_FILE_TAG = "finance/landing_file"
LANDING_SHA256_TAG = "finance/landing_sha256"
MAX_FILES_PER_TICK = 10
# A file modified this recently may still be being written: wait for a later tick.
SETTLE = dt.timedelta(seconds=10)


def max_file_bytes_from_env(environ: Mapping[str, str]) -> int:
    """FINANCE_LANDING_MAX_BYTES: the largest landing file read, in bytes (default 16 MiB)."""
    text = (environ.get("FINANCE_LANDING_MAX_BYTES") or "").strip()
    if not text:
        return landing.MAX_FILE_BYTES
    if not text.isdigit() or int(text) < 1:
        raise ValueError(
            f"FINANCE_LANDING_MAX_BYTES={text!r} is not a positive whole number of bytes "
            f"(default {landing.MAX_FILE_BYTES})"
        )
    return int(text)


class LandingZoneResource(S3Resource):
    """Where users drop files: `<root>/<market>/`, a local folder or `s3://bucket/prefix`
    (`FINANCE_LANDING_URI`).

    An `S3Resource` with a root: for an `s3://` root its fields (`endpoint_url`, `region_name`,
    credentials, `max_attempts`) configure the client, and left unset boto3's own chain does
    (`AWS_ENDPOINT_URL`, `AWS_REGION`, a profile, an instance role). A subclass rather than a
    nested `S3Resource` field: Dagster treats a resource with a nested one as a context manager,
    which a sensor evaluated outside `with build_sensor_context(...)` cannot open.
    """

    root: str
    # Files above this are rejected unread (FINANCE_LANDING_MAX_BYTES): it bounds the sensor's
    # memory, which holds one file's bytes at a time and reads its rows one by one.
    max_file_bytes: int = landing.MAX_FILE_BYTES

    @classmethod
    def _is_dagster_maintained(cls) -> bool:
        return False  # the subclass is ours, not Dagster's

    def get_object_to_set_on_execution_context(self) -> "LandingZoneResource":
        # `context.resources.landing_zone` is this resource, as for any of ours (S3Resource
        # would hand out a boto3 client there).
        return self

    def store(self, market: Market) -> landing.LandingStore:
        return landing.open_store(self.root, market.key, s3=self)

    def provider_for_run(
        self, market: Market, tags: Mapping[str, str]
    ) -> landing.LandingZoneFiles | None:
        """The landing file a run was started for (its `finance/landing_file` tag), or None
        for every other run (those ask the market-data provider)."""
        name = tags.get(LANDING_FILE_TAG)
        if not name:
            return None
        return landing.LandingZoneFiles(
            self.store(market),
            name,
            tags.get(LANDING_SHA256_TAG),
            max_bytes=self.max_file_bytes,
        )
