"""Retention and re-fetches in the raw zone and MongoDB (issue 24, item 8), on a local folder
and on S3 (moto's server on loopback), through the retention job and the real writers.

- A payload is judged by the end of its window: a 20-day payload filed under its first day
  stays while most of its days are young.
- Re-fetches of a window while one symbol keeps erroring replace each other in the window's
  reads instead of piling up (3 payloads in the raw zone, 4 documents in MongoDB before), and
  what the stores keep for that symbol is unchanged: the last payload that answered it. The
  raw zone sets the superseded ones aside (`_superseded/`, for "as known then"), and retention
  expires them as it does the current ones."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from finance_assets.defs.ops.retention import retention_job
from finance_assets.lib.answers import unanswered_spans
from finance_assets.lib.io import lake
from finance_assets.lib.io.mongo import MongoRawStore
from finance_assets.lib.io.objects import open_location
from finance_assets.lib.providers.base import RawPayload
from finance_assets.resources.zones import StorageResource

ERROR = {"code": 400, "message": "**symbol** not found: MSFT.", "status": "error"}


def _series(symbol: str, day: dt.date) -> dict:
    values = [
        {
            "datetime": f"{day} 09:30:00",
            "open": "1",
            "high": "1",
            "low": "1",
            "close": "1",
            "volume": "5",
        }
    ]
    return {"meta": {"symbol": symbol}, "values": values, "status": "ok"}


def _payload(
    document: dict, symbols: list[str], start: dt.datetime, end: dt.datetime, fetched: int
) -> RawPayload:
    """A Twelve Data batch answer for [start, end), fetched `fetched` minutes after 22:00."""
    return RawPayload(
        provider="twelve_data",
        format="twelve_data",
        interval="1day",
        symbols=tuple(symbols),
        window_start=start,
        window_end=end,
        fetched_at=dt.datetime.combine(end.date(), dt.time(22), dt.UTC)
        + dt.timedelta(minutes=fetched),
        body=json.dumps(document).encode(),
    )


@pytest.fixture(params=["local", "s3"])
def raw_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "raw")
    return f"s3://{request.getfixturevalue('bucket')}/raw"


def _run_retention(raw_root: str, tmp_path: Path, **config: Any) -> list[str]:
    storage = StorageResource(raw_root=raw_root, lake_root=str(tmp_path / "lake"))
    result = retention_job.execute_in_process(
        run_config={"ops": {"purge_expired_partitions": {"config": config}}},
        resources={"storage": storage},
    )
    assert result.success
    return sorted(result.output_for_node("purge_expired_partitions"))


def test_retention_judges_a_payload_by_the_end_of_its_window(raw_root, tmp_path, us) -> None:
    today = dt.datetime.now(dt.UTC).date()

    def day(age: int) -> dt.datetime:
        return dt.datetime.combine(today - dt.timedelta(days=age), dt.time(), us.tz)

    store = open_location(raw_root).child("us", "raw_daily_quotes")
    # Filed under 40 days ago: a 20-day payload whose last day is 21 days old, and a one-day
    # payload of that day; under 35 days ago, a one-day payload only.
    long = _payload(_series("AAPL", day(21).date()), ["AAPL"], day(40), day(20), 0)
    short = _payload(_series("MSFT", day(40).date()), ["MSFT"], day(40), day(39), 1)
    alone = _payload(_series("MSFT", day(35).date()), ["MSFT"], day(35), day(34), 2)
    for payload in (long, short, alone):
        lake.write_payloads(store, [payload], payload.window_start, payload.window_end, us.tz)
    folder_40, folder_35 = f"dt={day(40).date()}", f"dt={day(35).date()}"
    everything = sorted(o.name for o in store.list_tree())

    expected = sorted([store.uri(f"{folder_40}/{short.payload_id}.json"), store.uri(folder_35)])
    assert _run_retention(raw_root, tmp_path, dry_run=True) == expected
    assert sorted(o.name for o in store.list_tree()) == everything
    assert _run_retention(raw_root, tmp_path) == expected
    assert sorted(o.name for o in store.list_tree()) == [
        f"{folder_40}/{long.payload_id}.json",
        f"{folder_40}/{long.payload_id}.meta.json",
    ]
    # The young days of the long payload are still read back, byte for byte.
    assert [p.body for p in lake.read_payloads(store, day(25), day(24))] == [long.body]
    # Once its last day is old enough, it goes, and its folder with it.
    assert _run_retention(raw_root, tmp_path, raw_max_age_days=20) == [store.uri(folder_40)]
    assert store.list_tree() == []


def _refetches(us) -> tuple[dt.datetime, dt.datetime, RawPayload, list[RawPayload]]:
    start = dt.datetime(2026, 11, 18, tzinfo=us.tz)
    end = start + dt.timedelta(days=1)
    answered = _payload(
        {"AAPL": _series("AAPL", start.date()), "MSFT": _series("MSFT", start.date())},
        ["AAPL", "MSFT"],
        start,
        end,
        0,
    )
    failing = [
        _payload(
            {"AAPL": _series("AAPL", start.date()), "MSFT": ERROR},
            ["AAPL", "MSFT"],
            start,
            end,
            minute,
        )
        for minute in (10, 20, 30)
    ]
    return start, end, answered, failing


def test_refetches_of_an_erroring_symbol_supersede_each_other_in_the_raw_zone(raw_root, us) -> None:
    start, end, answered, failing = _refetches(us)
    store = open_location(raw_root).child("us", "raw_daily_quotes")
    lake.write_payloads(store, [answered], start, end, us.tz)
    for payload in failing:
        lake.write_payloads(store, [payload], start, end, us.tz)
    kept = lake.read_payloads(store, start, end)
    # The payload that answered MSFT stays (its bars are what the stores keep for MSFT); of
    # the three that did not, only the newest.
    assert [p.body for p in kept] == [answered.body, failing[-1].body]
    current = [o.name for o in store.list_tree() if o.name.startswith("dt=")]
    assert len(current) == 4
    # The two re-fetches superseded are set aside, not deleted: what was known then stays.
    aside = sorted(o.name for o in store.list_tree() if o.name.startswith(lake.SUPERSEDED))
    assert aside == sorted(
        f"{lake.SUPERSEDED}/dt=2026-11-18/{p.payload_id}{ext}"
        for p in failing[:2]
        for ext in (".json", ".meta.json")
    )
    # What a window replacement keeps is what it kept with every re-fetch stored.
    assert unanswered_spans(kept, start, end) == unanswered_spans([answered, *failing], start, end)

    # A symbol that never answered: the re-fetches replace each other all the same.
    other = open_location(raw_root).child("us", "raw_other")
    for payload in failing:
        lake.write_payloads(other, [payload], start, end, us.tz)
    assert [p.body for p in lake.read_payloads(other, start, end)] == [failing[-1].body]
    # A later answer for MSFT supersedes everything before it.
    fixed = _payload(
        answered_document := json.loads(answered.body), ["AAPL", "MSFT"], start, end, 40
    )
    assert answered_document["MSFT"]["values"]
    lake.write_payloads(store, [fixed], start, end, us.tz)
    assert [p.body for p in lake.read_payloads(store, start, end)] == [fixed.body]


def test_refetches_of_an_erroring_symbol_supersede_each_other_in_mongodb(
    mongo_uri,
    us,
) -> None:
    start, end, answered, failing = _refetches(us)
    store = MongoRawStore(mongo_uri, "t_refetch")
    asset = ("us", "raw_daily_quotes")
    store.write_payloads(asset, [answered], start, end)
    for payload in failing:
        store.write_payloads(asset, [payload], start, end)
    assert store.count(asset) == 2
    assert set(store.bodies(asset)) == {answered.body, failing[-1].body}
    store.close()


def test_retention_expires_superseded_payloads_as_it_does_current_ones(
    raw_root, tmp_path, us
) -> None:
    """Payloads set aside by a re-fetch ("as known then") go by the same rule and age."""
    today = dt.datetime.now(dt.UTC).date()

    def day(age: int) -> dt.datetime:
        return dt.datetime.combine(today - dt.timedelta(days=age), dt.time(), us.tz)

    store = open_location(raw_root).child("us", "raw_daily_quotes")
    old, young = (day(40), day(39)), (day(10), day(9))
    for (start, end), minute in ((old, 0), (old, 5), (young, 0), (young, 5)):
        payload = _payload(_series("AAPL", start.date()), ["AAPL"], start, end, minute)
        lake.write_payloads(store, [payload], start, end, us.tz)
    aside = f"{lake.SUPERSEDED}/dt={old[0].date()}"
    kept_aside = f"{lake.SUPERSEDED}/dt={young[0].date()}"
    assert len(store.child(aside).list_files()) == 2
    assert len(store.child(kept_aside).list_files()) == 2

    removed = _run_retention(raw_root, tmp_path)
    assert removed == sorted(
        [store.uri(f"dt={old[0].date()}"), store.child(lake.SUPERSEDED).uri(f"dt={old[0].date()}")]
    )
    left = sorted(o.name for o in store.list_tree())
    assert [n.rsplit("/", 1)[0] for n in left] == [kept_aside] * 2 + [f"dt={young[0].date()}"] * 2
