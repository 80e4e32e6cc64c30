"""Retention: raw payloads expire after a configurable age; lake retention is opt-in.

Seed practice was raw data removed after 30 days, clean data archived at 90 and removed at 180.
Here the job deletes raw payloads older than `raw_max_age_days` (default 30) and, only when
`lake_max_age_days` is set, whole `dt=` partitions of the lake: folders locally, every object
under the `dt=` prefix on S3 (one listing and one batch delete per 1,000 objects).

`lake_publish_job` (hourly) finishes the lake's pending publishes (`lake.publish_pending`):
windows the warehouse committed while S3 refused to publish their day files, and that no write
of the asset has published since. A marker staged less than an hour ago is left to its writer.

A raw payload is filed under the day its window starts but judged by the day it ends: a
20-day payload goes when its last day is older than the limit, not its first (its other days
are younger). A `dt=` folder whose payloads have all expired goes whole; one that still holds a
young payload loses only its expired ones. Each deletion is logged; `dry_run` lists what would
go and deletes nothing. The warehouse keeps its history.

Superseded raw payloads (`<asset>/_superseded/dt=.../`, kept so a reader can ask what was known
at an instant: `lib/as_of.py`) expire by the same rule and age: history reaches back as far as
the raw zone does. The dead-letter folder is never emptied here.
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


def expired_partitions(
    root: ObjectStore, cutoff: dt.date, nested: tuple[str, ...] = ()
) -> list[tuple[ObjectStore, str]]:
    """`dt=` folders older than `cutoff` under `<root>/<market>/<asset>/` (and under each of
    its `nested` folders: the raw zone's superseded payloads): (the store holding the folder,
    the folder's name)."""
    found = []
    for market in root.list_folders():
        for asset in root.list_folders(market):
            asset_store = root.child(market, asset)
            for store in [asset_store, *(asset_store.child(n) for n in nested)]:
                found += [
                    (store, folder) for day, folder in lake.dt_partitions(store) if day < cutoff
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
    verb = "would delete" if config.dry_run else "deleting"
    for index, (root, age) in enumerate(targets):
        cutoff = today - dt.timedelta(days=age)
        # Superseded raw payloads ("as known then") expire as the current ones do.
        nested = (lake.SUPERSEDED,) if index == 0 else ()
        for asset_store, folder in expired_partitions(root, cutoff, nested):
            # The raw zone (the first target) is judged payload by payload; the lake's day
            # files hold that day's rows only.
            keys = lake.expired_payloads(asset_store, folder, cutoff) if index == 0 else None
            if keys is None:
                where = asset_store.uri(folder)
                context.log.info(f"{verb} {where} (older than {cutoff})")
                if not config.dry_run:
                    lake.remove_partition(asset_store, folder)
                removed.append(where)
                continue
            if keys:
                context.log.info(
                    f"{verb} {len(keys) // 2} payload(s) of {asset_store.uri(folder)} whose "
                    f"windows ended before {cutoff}; the folder keeps younger ones"
                )
            for key in keys:
                if not config.dry_run:
                    asset_store.delete(key)
                if not key.endswith(".meta.json"):
                    removed.append(asset_store.uri(key))
    return dg.Output(
        removed,
        metadata={
            "partitions": len(removed),
            "dry_run": config.dry_run,
            "removed": dg.MetadataValue.md("\n".join(f"- `{p}`" for p in removed) or "none"),
        },
    )


# A pending marker younger than this may belong to a write still running (staged, committing).
PENDING_SWEEP_AGE = dt.timedelta(hours=1)


@dg.op(description="Publish the lake's windows the warehouse committed but S3 did not publish.")
def publish_pending_windows(
    context: dg.OpExecutionContext, storage: StorageResource
) -> dg.Output[list[str]]:
    root = storage.lake()
    published: list[str] = []
    failed: list[str] = []
    for market in root.list_folders():
        for asset in root.list_folders(market):
            asset_store = root.child(market, asset)
            try:
                days = lake.publish_pending(asset_store, min_age=PENDING_SWEEP_AGE)
            except (OSError, lake.PendingPublish) as exc:
                # One asset's trouble does not stop the others'; the step fails at the end.
                context.log.error(f"{asset_store.uri()}: pending publish failed: {exc}")
                failed.append(f"{asset_store.uri()}: {exc}")
                continue
            for key in days:
                context.log.info(f"published {asset_store.uri(key)} (pending since a fault)")
            published += [asset_store.uri(key) for key in days]
    if failed:
        raise dg.Failure(
            f"{len(failed)} asset(s) still have windows waiting to be published",
            metadata={"failed": dg.MetadataValue.md("\n".join(f"- {f}" for f in failed))},
        )
    return dg.Output(published, metadata={"published": len(published)})


def _retention_job(op_tags: dict[str, str]) -> dg.JobDefinition:
    @dg.job(
        name="retention_job",
        description="Daily retention of the raw zone (and, if configured, the lake).",
    )
    def _job() -> None:
        purge_expired_partitions.tag(op_tags)()

    return _job


def _lake_publish_job(op_tags: dict[str, str]) -> dg.JobDefinition:
    @dg.job(
        name="lake_publish_job",
        description="Publish the lake's day files the warehouse committed but S3 refused to "
        "publish, from their staged copies (each asset's next write does it too).",
    )
    def _job() -> None:
        publish_pending_windows.tag(op_tags)()

    return _job


# Without step tags: what tests and scripts execute in process.
retention_job = _retention_job({})
lake_publish_job = _lake_publish_job({})


def build_retention_defs() -> dg.Definitions:
    """The jobs and their schedules. Retention's step runs as an ingest step: in production
    the raw zone is what it deletes (the ingest role may delete under raw/; the lake's age is
    its bucket's lifecycle rules, so `lake_max_age_days` there would be refused). The pending
    publishes run hourly as a transform step (the role that writes the lake)."""
    job = _retention_job(step_tags("ingest"))
    # Publishing writes the lake: the transform role's step, as the lake's writers are.
    publish = _lake_publish_job(step_tags("transform"))
    schedule = dg.ScheduleDefinition(
        name="retention_daily",
        job=job,
        cron_schedule="15 2 * * *",
        execution_timezone="UTC",
        description="Raw payloads older than 30 days are deleted every night at 02:15 UTC.",
    )
    hourly = dg.ScheduleDefinition(
        name="lake_publish_hourly",
        job=publish,
        cron_schedule="45 * * * *",
        execution_timezone="UTC",
        description="Every hour, the lake's day files left pending by a failed publish are "
        "published from their staged copies.",
    )
    return dg.Definitions(jobs=[job, publish], schedules=[schedule, hourly])


@dg.definitions
def defs() -> dg.Definitions:
    return build_retention_defs()
