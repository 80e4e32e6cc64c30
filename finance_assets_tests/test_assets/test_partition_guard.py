"""Open sessions and keys that are not partitions are refused, once, naming the key."""

import datetime as dt

import dagster as dg
import pytest
from dagster._core.test_utils import freeze_time

from finance_assets.definitions import build_domain_defs
from finance_assets.defs.common.partitions import five_minute_partitions
from finance_assets.demo import range_tags
from finance_assets.resources import build_resources


@pytest.fixture
def defs(monkeypatch, tmp_path, pg_url, us):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    for name in ("FINANCE_SIM_FAULT_RATE", "FINANCE_ENV", "MARKET_DATA_PROVIDER"):
        monkeypatch.delenv(name, raising=False)
    return dg.Definitions.merge(
        build_domain_defs([us]), dg.Definitions(resources=build_resources())
    )


def _run(defs, job_name, tags=None, partition_key=None):
    job = defs.resolve_job_def(job_name)
    return job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        tags=tags,
        partition_key=partition_key,
        raise_on_error=False,
    )


def _failure(result) -> tuple[str, list]:
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    return str(failure.event_specific_data), retries


def _future_key() -> str:
    """09:30 on the first weekday more than a week from now: always in the future."""
    day = dt.date.today() + dt.timedelta(days=8)
    while day.weekday() >= 5:
        day += dt.timedelta(days=1)
    return f"{day:%Y-%m-%d}-09:30"


def test_a_range_ending_in_the_future_is_refused(defs, us):
    # Used to crash inside `_counts_per_partition` (zip()); a short range keeps Dagster's
    # per-partition planned events few.
    last = five_minute_partitions(us).get_last_partition_key()
    future = _future_key()
    result = _run(defs, "us_bars_5min_job", tags=range_tags(last, future))
    assert not result.success
    message, retries = _failure(result)
    assert f"'{future}' is not a partition that exists now" in message
    assert f"the last one is {last}" in message
    assert retries == []


@pytest.mark.parametrize(
    ("start", "end", "named", "hint"),
    [
        # After the close: used to run the next morning's first bars, silently.
        ("2026-11-18-15:00", "2026-11-18-17:00", "2026-11-18-17:00", "2026-11-18-15:55 and"),
        ("2026-11-18-09:31", "2026-11-18-10:00", "2026-11-18-09:31", "2026-11-18-09:30"),
    ],
)
def test_keys_that_are_not_partitions_are_refused(defs, start, end, named, hint):
    result = _run(defs, "us_bars_5min_job", tags=range_tags(start, end))
    assert not result.success
    message, retries = _failure(result)
    assert f"'{named}' is not a partition that exists now" in message
    assert hint in message
    assert retries == []  # refused once: asking again cannot help
    assert not result.get_asset_materialization_events()


def test_an_unreadable_key_is_refused_before_the_run_starts(defs):
    # Dagster itself refuses it when the run is created, naming the value and the format.
    with pytest.raises(ValueError, match="time data 'garbage' does not match format"):
        _run(defs, "us_bars_5min_job", tags=range_tags("garbage", "2026-11-18-10:00"))


def test_an_open_session_is_not_materialised_as_complete(defs):
    # 13:00 in New York: today's daily partition exists (it ends at midnight), its session is open.
    with freeze_time(dt.datetime(2026, 12, 1, 18, 0, tzinfo=dt.UTC)):
        result = _run(defs, "us_daily_job", partition_key="2026-12-01")
    assert not result.success
    message, retries = _failure(result)
    assert "the 2026-12-01 session of us closes at 16:00 EST" in message
    assert retries == []
    assert not result.get_asset_materialization_events()
    # After the close the same partition runs.
    with freeze_time(dt.datetime(2026, 12, 1, 21, 30, tzinfo=dt.UTC)):
        later = _run(defs, "us_daily_job", partition_key="2026-12-01")
    materialized = {e.asset_key.path[-1] for e in later.get_asset_materialization_events()}
    assert {"raw_daily_quotes", "daily_bars"} <= materialized
