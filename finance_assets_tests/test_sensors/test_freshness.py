import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from finance_assets.definitions import build_domain_defs
from finance_assets.defs.market.freshness import (
    build_freshness_sensor,
    due_partition,
    evaluate_freshness,
)
from finance_assets.resources import build_resources

NY = ZoneInfo("America/New_York")


@pytest.mark.parametrize(
    ("now", "bars", "daily"),
    [
        (dt.datetime(2026, 11, 18, 12, 0, tzinfo=NY), "2026-11-18-11:40", "2026-11-17"),
        (dt.datetime(2026, 11, 18, 9, 40, tzinfo=NY), "2026-11-17-15:55", "2026-11-17"),
        (dt.datetime(2026, 11, 18, 19, 0, tzinfo=NY), "2026-11-18-15:55", "2026-11-18"),
        # Thanksgiving: yesterday's session is what is due.
        (dt.datetime(2026, 11, 26, 12, 0, tzinfo=NY), "2026-11-25-15:55", "2026-11-25"),
        # Early close on the 27th: nothing after 12:55 is ever due.
        (dt.datetime(2026, 11, 27, 15, 0, tzinfo=NY), "2026-11-27-12:55", "2026-11-27"),
        # A Sunday: Friday's.
        (dt.datetime(2026, 11, 22, 12, 0, tzinfo=NY), "2026-11-20-15:55", "2026-11-20"),
    ],
)
def test_due_partitions_follow_the_calendar(us, now, bars, daily):
    assert due_partition(us, "bars_5min", now) == bars
    assert due_partition(us, "daily_bars", now) == daily


def _materialize(instance, key, partition):
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=key, partition=partition))


def test_stalled_feed_fails_once_and_recovers(us):
    instance = dg.DagsterInstance.ephemeral()
    now = dt.datetime(2026, 11, 18, 12, 0, tzinfo=NY)
    evaluation = evaluate_freshness(instance, us, "bars_5min", now)
    assert not evaluation.passed and "stalled" in evaluation.description
    _materialize(instance, dg.AssetKey(["us", "bars_5min"]), "2026-11-18-11:40")
    assert evaluate_freshness(instance, us, "bars_5min", now).passed


def test_sensor_records_an_evaluation_only_when_the_verdict_changes(us):
    instance = dg.DagsterInstance.ephemeral()
    sensor = build_freshness_sensor([us], follow_schedules=False)
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    failed = {(e.asset_key.to_user_string(), e.passed) for e in result.asset_events}
    assert failed == {("us/bars_5min_feed", False), ("us/daily_bars_feed", False)}
    # A verdict about now, on the feed: never labelled with a partition of the bars.
    assert all(e.partition is None for e in result.asset_events)
    again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert not again.asset_events  # still stale: no repeat
    now = dt.datetime.now(dt.UTC)
    _materialize(instance, dg.AssetKey(["us", "daily_bars"]), due_partition(us, "daily_bars", now))
    recovered = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=again.cursor)
    )
    assert [(e.asset_key.to_user_string(), e.passed) for e in recovered.asset_events] == [
        ("us/daily_bars_feed", True)
    ]


@pytest.mark.parametrize(("schedules", "judged"), [(None, False), ("running", True)])
def test_locally_a_feed_is_judged_only_when_its_schedules_run_by_default(
    us, monkeypatch, tmp_path, schedules, judged
):
    """After `make demo`, nobody has started a schedule: the UI must not be red for it."""
    if schedules:
        monkeypatch.setenv("FINANCE_SCHEDULES", schedules)
    else:
        monkeypatch.delenv("FINANCE_SCHEDULES", raising=False)
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    # Schedules take their default status when built.
    defs = dg.Definitions.merge(
        build_domain_defs([us]), dg.Definitions(resources=build_resources())
    )
    sensor = build_freshness_sensor([us])
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        context = dg.build_sensor_context(instance=instance, definitions=defs)
        result = sensor.evaluate_tick(context)
    feeds = {e.asset_key.to_user_string() for e in result.asset_events}
    assert feeds == ({"us/bars_5min_feed", "us/daily_bars_feed"} if judged else set())


def test_a_feed_turned_on_is_judged_only_for_partitions_due_since(us, monkeypatch):
    """A schedule turned on at 14:02 never ran the 13:40 bar: not a stalled feed, yet."""
    from finance_assets.defs.market import freshness

    on = dt.datetime(2026, 11, 18, 14, 2, tzinfo=NY)
    sensor = build_freshness_sensor([us])
    monkeypatch.setattr(freshness, "feed_running_since", lambda *a: on.timestamp())
    instance = dg.DagsterInstance.ephemeral()
    ticks = {}
    for minute in (3, 20):  # 14:03: the 13:40 bar is the newest due; 14:20: the 14:00 bar
        monkeypatch.setattr(freshness, "_now", lambda m=minute: on.replace(minute=m))
        result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
        ticks[minute] = {e.asset_key.to_user_string(): e.passed for e in result.asset_events}
    # Due before the schedules were on: neither the 13:40 bar nor the 17th's session is judged.
    assert ticks[3] == {}
    assert ticks[20] == {"us/bars_5min_feed": False}
