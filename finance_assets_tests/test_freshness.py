import datetime as dt
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from finance_assets.defs.market.freshness import (
    build_freshness_sensor,
    due_partition,
    evaluate_freshness,
)

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


def test_sensor_records_an_evaluation_only_when_the_verdict_changes(us, monkeypatch):
    instance = dg.DagsterInstance.ephemeral()
    sensor = build_freshness_sensor([us])
    result = sensor.evaluate_tick(dg.build_sensor_context(instance=instance))
    failed = {(e.asset_key.to_user_string(), e.passed) for e in result.asset_events}
    assert failed == {("us/bars_5min", False), ("us/daily_bars", False)}
    again = sensor.evaluate_tick(dg.build_sensor_context(instance=instance, cursor=result.cursor))
    assert not again.asset_events  # still stale: no repeat
    now = dt.datetime.now(dt.UTC)
    _materialize(instance, dg.AssetKey(["us", "daily_bars"]), due_partition(us, "daily_bars", now))
    recovered = sensor.evaluate_tick(
        dg.build_sensor_context(instance=instance, cursor=again.cursor)
    )
    assert [(e.asset_key.to_user_string(), e.passed) for e in recovered.asset_events] == [
        ("us/daily_bars", True)
    ]
