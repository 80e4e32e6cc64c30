import datetime as dt
import os
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from finance_assets.definitions import build_domain_defs
from finance_assets.defs.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from finance_assets.defs.ops.retention import retention_job
from finance_assets.defs.social.assets import hourly_partitions
from finance_assets.resources import StorageResource, build_resources

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")


def _schedules(market):
    """The market's schedules inside a repository (run requests are checked against it)."""
    defs = dg.Definitions.merge(
        build_domain_defs([market]), dg.Definitions(resources=build_resources({}))
    )
    repo = defs.get_repository_def()
    names = [f"{market.key}_bars_5min_schedule", f"{market.key}_daily_schedule"]
    return [(repo.get_schedule_def(name), repo) for name in names]


def _evaluate(schedule, when: dt.datetime):
    schedule, repo = schedule
    context = dg.build_schedule_context(scheduled_execution_time=when, repository_def=repo)
    result = schedule.evaluate_tick(context)
    if result.run_requests:
        assert len(result.run_requests) == 1
        return result.run_requests[0].partition_key
    return result.skip_message


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (dt.datetime(2026, 11, 18, 9, 36, tzinfo=NY), "2026-11-18-09:30"),  # first bar
        (dt.datetime(2026, 11, 18, 12, 1, tzinfo=NY), "2026-11-18-11:55"),
        (dt.datetime(2026, 11, 18, 16, 1, tzinfo=NY), "2026-11-18-15:55"),  # last bar
        (dt.datetime(2026, 11, 18, 9, 31, tzinfo=NY), "outside the regular session"),
        (dt.datetime(2026, 11, 18, 16, 6, tzinfo=NY), "outside the regular session"),
        (dt.datetime(2026, 11, 26, 11, 1, tzinfo=NY), "not a trading session"),  # Thanksgiving
        (dt.datetime(2026, 11, 27, 12, 56, tzinfo=NY), "2026-11-27-12:50"),  # early close day
        (dt.datetime(2026, 11, 27, 13, 31, tzinfo=NY), "outside the regular session"),
    ],
)
def test_intraday_schedule_targets_the_bar_that_just_closed(us, when, expected):
    intraday, _ = _schedules(us)
    assert expected in _evaluate(intraday, when)


def test_intraday_schedule_in_london(uk):
    intraday, _ = _schedules(uk)
    assert _evaluate(intraday, dt.datetime(2026, 11, 18, 16, 31, tzinfo=LONDON)) == (
        "2026-11-18-16:25"
    )
    assert "not a trading session" in _evaluate(
        intraday,
        dt.datetime(2026, 12, 28, 10, 1, tzinfo=LONDON),  # Boxing Day observed
    )


@pytest.mark.parametrize(
    ("when", "expected"),
    [
        (dt.datetime(2026, 11, 18, 16, 30, tzinfo=NY), "2026-11-18"),
        (dt.datetime(2026, 11, 27, 16, 30, tzinfo=NY), "2026-11-27"),  # early close
        (dt.datetime(2026, 11, 26, 16, 30, tzinfo=NY), "not a trading session"),
    ],
)
def test_daily_schedule_runs_after_the_close(us, when, expected):
    _, daily = _schedules(us)
    assert expected in _evaluate(daily, when)


def test_schedules_target_partitions_that_exist(us):
    intraday, daily = _schedules(us)
    for (schedule, repo), when in (
        (intraday, dt.datetime(2026, 11, 18, 10, 1, tzinfo=NY)),
        (daily, dt.datetime(2026, 11, 18, 16, 30, tzinfo=NY)),
    ):
        key = _evaluate((schedule, repo), when)
        assert repo.get_job(schedule.job_name).partitions_def.has_partition_key(key)


def _raw_tree(root, days_old):
    today = dt.datetime.now(dt.UTC).date()
    for market, asset in (("us", "raw_intraday_quotes"), ("uk", "raw_daily_quotes")):
        for age in days_old:
            folder = root / market / asset / f"dt={today - dt.timedelta(days=age)}"
            folder.mkdir(parents=True)
            (folder / "x.json").write_text("{}")


def _run_retention(tmp_path, **config):
    storage = StorageResource(raw_root=str(tmp_path / "raw"), lake_root=str(tmp_path / "lake"))
    return retention_job.execute_in_process(
        run_config={"ops": {"purge_expired_partitions": {"config": config}}},
        resources={"storage": storage},
    )


def test_retention_removes_old_raw_partitions_and_keeps_young_ones(tmp_path):
    _raw_tree(tmp_path / "raw", [1, 29, 31, 90])
    _raw_tree(tmp_path / "lake", [1, 400])
    result = _run_retention(tmp_path)
    assert result.success
    removed = result.output_for_node("purge_expired_partitions")
    assert len(removed) == 4  # 31 and 90 days, two assets
    left = sorted(p.name for p in (tmp_path / "raw" / "us" / "raw_intraday_quotes").iterdir())
    today = dt.datetime.now(dt.UTC).date()
    assert left == sorted(f"dt={today - dt.timedelta(days=d)}" for d in (1, 29))
    assert len(list((tmp_path / "lake").glob("*/*/dt=*"))) == 4  # lake retention is off


def test_retention_dry_run_removes_nothing(tmp_path):
    _raw_tree(tmp_path / "raw", [1, 31])
    result = _run_retention(tmp_path, dry_run=True, lake_max_age_days=365)
    assert len(result.output_for_node("purge_expired_partitions")) == 2
    assert len(list((tmp_path / "raw").glob("*/*/dt=*"))) == 4


def test_lake_retention_when_configured(tmp_path):
    _raw_tree(tmp_path / "lake", [1, 400])
    result = _run_retention(tmp_path, lake_max_age_days=180)
    assert len(result.output_for_node("purge_expired_partitions")) == 2
    assert len(list((tmp_path / "lake").glob("*/*/dt=*"))) == 2
    assert os.path.isdir(tmp_path / "lake")


def _posts_tick(us, instance: dg.DagsterInstance, when: dt.datetime) -> dg.RunRequest:
    defs = dg.Definitions.merge(
        build_domain_defs([us]), dg.Definitions(resources=build_resources({}))
    )
    repo = defs.get_repository_def()
    schedule = repo.get_schedule_def("us_posts_hourly_schedule")
    context = dg.build_schedule_context(
        scheduled_execution_time=when, repository_def=repo, instance=instance
    )
    (request,) = schedule.evaluate_tick(context).run_requests
    return request


def _fetched(instance: dg.DagsterInstance, *keys: str) -> None:
    for key in keys:
        instance.report_runless_asset_event(
            dg.AssetMaterialization(asset_key=["us", "raw_posts"], partition=key)
        )


def test_posts_schedule_targets_the_last_hour_every_day(us):
    with dg.instance_for_test() as instance:
        for when, expected in [
            (dt.datetime(2026, 11, 18, 10, 5, tzinfo=NY), "2026-11-18-09:00"),
            (dt.datetime(2026, 11, 22, 0, 5, tzinfo=NY), "2026-11-21-23:00"),  # Saturday night
        ]:
            assert _posts_tick(us, instance, when).partition_key == expected
        # The hour before was fetched: the next tick asks for its own hour only.
        _fetched(instance, "2026-11-18-09:00")
        request = _posts_tick(us, instance, dt.datetime(2026, 11, 18, 11, 5, tzinfo=NY))
        assert (request.partition_key, request.run_key) == ("2026-11-18-10:00", "2026-11-18-10:00")


def test_posts_schedule_catches_up_the_hours_a_stopped_daemon_missed(us):
    """The daemon stopped after the 18:00 hour (the AWS stack's service window) and started
    again the next day: its first tick asks for every hour since, in one run, across the
    night's DST change too."""
    with dg.instance_for_test() as instance:
        _fetched(instance, "2026-10-31-17:00", "2026-10-31-18:00")
        # New York falls back at 02:00 on 2026-11-01: that night has 25 hours.
        request = _posts_tick(us, instance, dt.datetime(2026, 11, 1, 12, 5, tzinfo=NY))
        start, end = "2026-10-31-19:00", "2026-11-01-11:00"
        assert request.tags[RANGE_START_TAG] == start and request.tags[RANGE_END_TAG] == end
        assert request.run_key == f"{start}..{end}" and request.partition_key is None
        # Dagster resolves the range to partitions of the posts assets' definition.
        partitions = hourly_partitions(us).get_partition_keys_in_range(
            dg.PartitionKeyRange(start, end)
        )
        assert len(partitions) >= 17 and partitions[0] == start and partitions[-1] == end
        # Beyond X's seven days nothing can be fetched again: a new deployment, or a daemon
        # down for longer, asks for the last hour only.
        later = dt.datetime(2026, 11, 9, 12, 5, tzinfo=NY)
        assert _posts_tick(us, instance, later).partition_key == "2026-11-09-11:00"
    with dg.instance_for_test() as fresh:
        when = dt.datetime(2026, 11, 18, 10, 5, tzinfo=NY)
        assert _posts_tick(us, fresh, when).partition_key == "2026-11-18-09:00"


def test_the_daily_run_follows_the_posts_of_the_hour_holding_the_close(us, uk):
    """London closes at 16:30: the 16:00 hour of posts (fetched at 17:05) counts toward the
    day's sentiment, so the daily job (which now scores the day's sentiment) runs at 17:30."""
    (us_daily, _), (uk_daily, uk_repo) = _schedules(us)[1], _schedules(uk)[1]
    assert (us_daily.cron_schedule, us_daily.execution_timezone) == (
        "30 16 * * 1-5",
        "America/New_York",
    )
    assert (uk_daily.cron_schedule, uk_daily.execution_timezone) == (
        "30 17 * * 1-5",
        "Europe/London",
    )
    job = uk_repo.get_job(uk_daily.job_name)
    assert {k.path[-1] for k in job.asset_layer.selected_asset_keys} >= {
        "daily_sentiment",
        "stock_sentiment_daily",
    }
