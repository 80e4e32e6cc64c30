"""Retention: raw payloads expire after a configurable age; lake retention is opt-in.

Seed practice was raw data removed after 30 days, clean data archived at 90 and removed at 180.
Here the job deletes whole `dt=` partitions of the raw zone older than `raw_max_age_days`
(default 30) and, only when `lake_max_age_days` is set, of the lake: folders locally, every
object under the `dt=` prefix on S3 (one listing and one batch delete per 1,000 objects). Each
deletion is logged; `dry_run` lists what would go and deletes nothing. The warehouse keeps its
history.
"""

import datetime as dt

import dagster as dg

from finance_assets.defs.common.assets import step_tags
from finance_assets.lib.io import lake
from finance_assets.lib.io.objects import ObjectStore
from finance_assets.resources.zones import StorageResource


class RetentionConfig(dg.Config):
    raw_max_age_days: int = 30
    lake_max_age_days: int | None = None
    dry_run: bool = False


def expired_partitions(root: ObjectStore, cutoff: dt.date) -> list[tuple[ObjectStore, str]]:
    """`dt=` folders older than `cutoff` under `<root>/<market>/<asset>/`: (the asset's
    store, the folder's name)."""
    found = []
    for market in root.list_folders():
        for asset in root.list_folders(market):
            asset_store = root.child(market, asset)
            found += [
                (asset_store, folder)
                for day, folder in lake.dt_partitions(asset_store)
                if day < cutoff
            ]
    return found


@dg.op(description="Delete raw-zone (and, if configured, lake) partitions older than the limit.")
def purge_expired_partitions(
    context: dg.OpExecutionContext, config: RetentionConfig, storage: StorageResource
) -> dg.Output[list[str]]:
    if config.raw_max_age_days < 1 or (
        config.lake_max_age_days is not None and config.lake_max_age_days < 1
    ):
        raise dg.Failure("retention ages must be at least 1 day")
    today = dt.datetime.now(dt.UTC).date()
    targets = [(storage.raw(), config.raw_max_age_days)]
    if config.lake_max_age_days is not None:
        targets.append((storage.lake(), config.lake_max_age_days))
    removed: list[str] = []
    for root, age in targets:
        cutoff = today - dt.timedelta(days=age)
        for asset_store, folder in expired_partitions(root, cutoff):
            where = asset_store.uri(folder)
            verb = "would delete" if config.dry_run else "deleting"
            context.log.info(f"{verb} {where} (older than {cutoff})")
            if not config.dry_run:
                lake.remove_partition(asset_store, folder)
            removed.append(where)
    return dg.Output(
        removed,
        metadata={
            "partitions": len(removed),
            "dry_run": config.dry_run,
            "removed": dg.MetadataValue.md("\n".join(f"- `{p}`" for p in removed) or "none"),
        },
    )


def _retention_job(op_tags: dict[str, str]) -> dg.JobDefinition:
    @dg.job(
        name="retention_job",
        description="Daily retention of the raw zone (and, if configured, the lake).",
    )
    def _job() -> None:
        purge_expired_partitions.tag(op_tags)()

    return _job


# Without step tags: what tests and scripts execute in process.
retention_job = _retention_job({})


def build_retention_defs() -> dg.Definitions:
    """The job and its schedule. Its step runs as an ingest step: in production the raw zone
    is what it deletes (the ingest role may delete under raw/; the lake's age is its bucket's
    lifecycle rules, so `lake_max_age_days` there would be refused)."""
    job = _retention_job(step_tags("ingest"))
    schedule = dg.ScheduleDefinition(
        name="retention_daily",
        job=job,
        cron_schedule="15 2 * * *",
        execution_timezone="UTC",
        description="Raw payloads older than 30 days are deleted every night at 02:15 UTC.",
    )
    return dg.Definitions(jobs=[job], schedules=[schedule])


@dg.definitions
def defs() -> dg.Definitions:
    return build_retention_defs()
