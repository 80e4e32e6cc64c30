"""Landing-zone ingestion: CSV files users drop into `landing/<market>/` become runs of the
daily assets (`<market>/raw_daily_quotes` -> `<market>/daily_bars`).

`<market>_landing_sensor` lists the folder every 30 seconds. Each new or corrected file that
validates (`lib/landing/`) becomes one run of `<market>_landing_job` over the sessions it
covers (a partition range: the assets backfill in a single run), tagged with the file's name
and content hash; the raw asset of such a run reads the file (`LandingZoneFiles`) instead of
the market-data provider. Bad files move to `rejected/` with the reason beside them (files
above `max_file_bytes` unread); a file whose rows are mostly invalid is rejected as a whole by
the cleaning step instead (`transforms.rejected_files`), its reason in the check metadata. A file
dropped again unchanged starts nothing: the ledger (`.processed/`) and the run key (the
content hash) both say it is done.
"""

import datetime as dt

import dagster as dg

from finance_assets.defs.common.assets import AssetJob
from finance_assets.defs.common.automation import DAILY, scheduled
from finance_assets.defs.common.partitions import (
    DAILY_FMT,
    RANGE_END_TAG,
    RANGE_START_TAG,
    daily_partitions,
)
from finance_assets.lib import landing
from finance_assets.lib.markets import Market
from finance_assets.resources.landing import (
    LANDING_FILE_TAG,
    LANDING_SHA256_TAG,
    MAX_FILES_PER_TICK,
    SETTLE,
    LandingZoneResource,
)


def landing_job(market: Market) -> AssetJob:
    return dg.define_asset_job(
        f"{market.key}_landing_job",
        # A landing file brings daily bars: the market domain's daily assets.
        selection=scheduled(market, DAILY) & dg.AssetSelection.groups(f"{market.key}_market"),
        description=f"Daily bars of {market.name} from a file dropped into the landing zone.",
        tags={"market": market.key},
    )


def _partition_bounds(market: Market) -> tuple[dt.date | None, dt.date | None]:
    partitions = daily_partitions(market)
    first, last = partitions.get_first_partition_key(), partitions.get_last_partition_key()
    return (
        dt.datetime.strptime(first, DAILY_FMT).date() if first else None,
        dt.datetime.strptime(last, DAILY_FMT).date() if last else None,
    )


def run_request(market: Market, accepted: landing.Accepted) -> dg.RunRequest:
    """One run over the file's sessions (every one of them is a daily partition)."""
    return dg.RunRequest(
        run_key=accepted.run_key,
        tags={
            RANGE_START_TAG: accepted.inspection.first.strftime(DAILY_FMT),
            RANGE_END_TAG: accepted.inspection.last.strftime(DAILY_FMT),
            LANDING_FILE_TAG: accepted.entry.name,
            LANDING_SHA256_TAG: accepted.entry.sha256,
            "market": market.key,
        },
    )


def build_landing_sensor(
    market: Market,
    *,
    max_files_per_tick: int = MAX_FILES_PER_TICK,
    settle: dt.timedelta = SETTLE,
    minimum_interval_seconds: int = 30,
) -> dg.SensorDefinition:
    @dg.sensor(
        name=f"{market.key}_landing_sensor",
        job=landing_job(market),
        minimum_interval_seconds=minimum_interval_seconds,
        # Running by default: it reads only what users drop and calls no paid provider.
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            f"CSV files (Yahoo export format) dropped into the landing zone's `{market.key}/` "
            "folder: one run of the daily assets per new or corrected file, over the sessions "
            "it covers; bad files go to `rejected/` with the reason beside them."
        ),
    )
    def _sensor(
        context: dg.SensorEvaluationContext, landing_zone: LandingZoneResource
    ) -> dg.SensorResult:
        store = landing_zone.store(market)
        first_day, last_day = _partition_bounds(market)
        result = landing.scan(
            store,
            market,
            context.cursor,
            now=dt.datetime.now(dt.UTC),
            settle=settle,
            max_files=max_files_per_tick,
            first_day=first_day,
            last_day=last_day,
            max_bytes=landing_zone.max_file_bytes,
        )
        for note in result.notes:
            context.log.warning(f"{market.key} landing: {note}")
        for name, reason in result.rejected.items():
            context.log.warning(f"{market.key} landing: rejected {name}: {reason}")
        for name, why in result.ignored.items():
            context.log.debug(f"{market.key} landing: ignored {name!r}: {why}")
        requests = [run_request(market, accepted) for accepted in result.accepted]
        for request, accepted in zip(requests, result.accepted, strict=True):
            context.log.info(
                f"{market.key} landing: {accepted.entry.name} (revision "
                f"{accepted.entry.revision}, {accepted.inspection.rows} rows, "
                f"{', '.join(accepted.inspection.symbols)}) -> "
                f"{request.tags[RANGE_START_TAG]}..{request.tags[RANGE_END_TAG]}"
            )
        if requests:
            return dg.SensorResult(run_requests=requests, cursor=result.cursor)
        return dg.SensorResult(
            skip_reason=f"{market.key} landing: {result.summary()}",
            cursor=result.cursor,
        )

    return _sensor
