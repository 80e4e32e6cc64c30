"""One unreadable raw payload blocks nothing: a truncated Twelve Data body, an HTML error page
or an envelope that is not JSON is moved to `<asset>/_dead_letter/dt=.../` with its reason, the
rest of the window loads, and the run names it. On a local folder and on moto's S3."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import psycopg
import pytest

from finance_assets.lib.clean_step import clean_window
from finance_assets.lib.io import lake
from finance_assets.lib.io.objects import ObjectStore, open_location
from finance_assets.lib.providers.base import RawPayload
from finance_assets_tests.test_assets.test_end_to_end import (  # noqa: F401
    _defs,
    env,
    fresh_schema,
    run_assets,
)

EASTERN = ZoneInfo("America/New_York")
DAY = dt.date(2026, 11, 18)
# A recorded batch answer of Twelve Data (AAPL, MSFT, one daily bar), moved to a day the
# exchange calendar knows.
SAMPLE = "twelvedata/td_batch_time_series_AAPL_MSFT_1day.json"
RECORDED_DAY = b"2024-11-22"


@pytest.fixture(params=["local", "s3"])
def raw_store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """One asset's part of the raw zone: a folder, or a prefix of a fresh moto bucket."""
    if request.param == "local":
        root = str(tmp_path / "raw")
    else:
        root = f"s3://{request.getfixturevalue('bucket')}/raw"
    return open_location(root).child("us", "raw_daily_quotes")


def _payload(us, body: bytes, fetched_minute: int, symbols=("AAPL", "MSFT")) -> RawPayload:
    start = dt.datetime.combine(DAY, dt.time(), us.tz)
    return RawPayload(
        provider="twelve_data",
        format="twelve_data",
        interval="1day",
        symbols=tuple(symbols),
        window_start=start,
        window_end=start + dt.timedelta(days=1),
        fetched_at=dt.datetime(2026, 11, 19, 1, fetched_minute, tzinfo=dt.UTC),
        body=body,
    )


def _drop(store: ObjectStore, payload: RawPayload) -> None:
    """`payload` stored as `write_payloads` stores it, without superseding anything."""
    folder = f"dt={payload.window_start.astimezone(EASTERN).date().isoformat()}"
    meta = {
        "provider": payload.provider,
        "format": payload.format,
        "interval": payload.interval,
        "symbols": list(payload.symbols),
        "window_start": payload.window_start.isoformat(),
        "window_end": payload.window_end.isoformat(),
        "fetched_at": payload.fetched_at.isoformat(),
        "batch": payload.batch,
        "request": payload.request,
    }
    store.write(f"{folder}/{payload.payload_id}.json", payload.body)
    store.write(f"{folder}/{payload.payload_id}.meta.json", json.dumps(meta).encode())


def _window(us) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(DAY, dt.time(), us.tz)
    return start, start + dt.timedelta(days=1)


def _names(store: ObjectStore) -> list[str]:
    return sorted(o.name for o in store.list_tree())


def _poisoned_zone(us, store: ObjectStore, samples: Path) -> dict[str, RawPayload]:
    """A good batch, then two newer fetches of the same window nothing can read, and a third
    payload whose envelope is not JSON."""
    body = (samples / SAMPLE).read_bytes().replace(RECORDED_DAY, DAY.isoformat().encode())
    good = _payload(us, body, 0)
    truncated = _payload(us, body[: len(body) // 2], 5)  # a download cut short
    html = _payload(us, b"<html><body><h1>502 Bad Gateway</h1></body></html>", 6, ("AAPL",))
    bad_meta = _payload(us, body, 7)
    start, end = _window(us)
    lake.write_payloads(store, [good], start, end, us.tz)
    # The others arrive as a copy tool or a crashed writer leaves them (a write through
    # `write_payloads` would supersede the good batch: nothing in a cut body says it failed).
    for payload in (truncated, html, bad_meta):
        _drop(store, payload)
    folder = f"dt={DAY.isoformat()}"
    store.write(f"{folder}/{bad_meta.payload_id}.meta.json", b'{"provider": "twelve_data", "for')
    return {"good": good, "truncated": truncated, "html": html, "bad_meta": bad_meta}


def test_unreadable_payloads_are_dead_lettered_and_the_window_loads(raw_store, us, samples):
    payloads = _poisoned_zone(us, raw_store, samples)
    start, end = _window(us)
    folder = f"dt={DAY.isoformat()}"

    raw = lake.read_payloads(raw_store, start, end, run_id="run-1")
    # The envelope that is not JSON went while reading: nothing else could say what it was.
    bad_id = payloads["bad_meta"].payload_id
    assert [d.file for d in raw.dead_letters] == [raw_store.uri(f"{folder}/{bad_id}.json")]
    assert raw.dead_letters[0].reason.startswith(f"envelope {bad_id}.meta.json: not JSON")
    assert [p.payload_id for p in raw] == [
        payloads[k].payload_id for k in ("good", "truncated", "html")
    ]

    cleaned = clean_window(
        raw, us, "1day", asset="daily_bars", start=start, end=end, ingested_at=start
    )
    # The bodies nothing can parse gave nothing and superseded nothing: the good batch loads.
    assert sorted(cleaned.unreadable) == sorted(
        payloads[k].payload_id for k in ("truncated", "html")
    )
    assert "not JSON" in cleaned.unreadable[payloads["html"].payload_id]
    assert sorted(cleaned.result.bars.get_column("symbol").to_list()) == ["AAPL", "MSFT"]
    assert cleaned.result.quarantine.is_empty()
    assert cleaned.result.received == 2

    moved = lake.dead_letter_payloads(raw_store, raw, cleaned.unreadable, us.tz, run_id="run-1")
    assert len(moved) == 2
    good_id = payloads["good"].payload_id
    dead_ids = sorted(p.payload_id for k, p in payloads.items() if k != "good")
    assert _names(raw_store) == sorted(
        [f"{folder}/{good_id}.json", f"{folder}/{good_id}.meta.json"]
        + [
            f"_dead_letter/{folder}/{i}{suffix}"
            for i in dead_ids
            for suffix in (".json", ".meta.json", ".reason.json")
        ]
    )
    # Each keeps its bytes as received, and says what, why, when and which run.
    truncated = payloads["truncated"]
    kept_body = raw_store.read(f"_dead_letter/{folder}/{truncated.payload_id}.json")
    assert kept_body == truncated.body
    note = json.loads(raw_store.read(f"_dead_letter/{folder}/{truncated.payload_id}.reason.json"))
    assert note["file"] == raw_store.uri(f"{folder}/{truncated.payload_id}.json")
    assert note["error"] == cleaned.unreadable[truncated.payload_id]
    assert note["run_id"] == "run-1"
    assert dt.datetime.fromisoformat(note["dead_lettered_at"]).tzinfo is not None
    bad_note = json.loads(raw_store.read(f"_dead_letter/{folder}/{bad_id}.reason.json"))
    assert "not JSON" in bad_note["error"]

    # The next run of the window reads only what can be read, and nothing more goes.
    again = lake.read_payloads(raw_store, start, end)
    assert [p.payload_id for p in again] == [good_id] and again.dead_letters == []
    assert (
        clean_window(
            again, us, "1day", asset="daily_bars", start=start, end=end, ingested_at=start
        ).unreadable
        == {}
    )


def test_an_unreadable_envelope_does_not_stop_a_write_of_the_window(raw_store, us, samples):
    """The write's look at older payloads (what it supersedes) passes over an envelope it
    cannot read; the next read moves it."""
    payloads = _poisoned_zone(us, raw_store, samples)
    start, end = _window(us)
    newer = _payload(us, payloads["good"].body, 30)
    lake.write_payloads(raw_store, [newer], start, end, us.tz)
    raw = lake.read_payloads(raw_store, start, end)
    assert [p.payload_id for p in raw] == [newer.payload_id]
    assert len(raw.dead_letters) == 1


def test_the_dead_letter_folder_is_not_a_partition(raw_store, us, samples):
    _poisoned_zone(us, raw_store, samples)
    start, end = _window(us)
    lake.read_payloads(raw_store, start, end)
    assert [name for _, name in lake.dt_partitions(raw_store)] == [f"dt={DAY.isoformat()}"]


# --- through the assets ----------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def zone_roots(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    """(raw root, lake root): two folders, or two prefixes of a fresh moto bucket."""
    if request.param == "local":
        return str(tmp_path / "raw"), str(tmp_path / "lake")
    bucket = request.getfixturevalue("bucket")
    return f"s3://{bucket}/raw", f"s3://{bucket}/lake"


def _daily_rows(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT symbol, ts, open, high, low, close, volume, source FROM us.daily_bars "
            "ORDER BY symbol, ts"
        ).fetchall()


def test_the_clean_asset_dead_letters_and_warns_and_the_day_loads(
    zone_roots,
    env,  # noqa: F811
    fresh_schema,  # noqa: F811
    us,
    monkeypatch,
):
    raw_root, lake_root = zone_roots
    monkeypatch.setenv("FINANCE_RAW_URI", raw_root)
    monkeypatch.setenv("FINANCE_LAKE_URI", lake_root)
    monkeypatch.delenv("MONGODB_URI", raising=False)
    defs = _defs(us)
    instance = dg.DagsterInstance.ephemeral()
    day = DAY.isoformat()
    run_assets(defs, instance, "first", ["raw_daily_quotes", "daily_bars"], day, day)
    before = _daily_rows(fresh_schema)
    assert len(before) == len(us.universe)

    store = open_location(raw_root).child("us", "raw_daily_quotes")
    start, _ = _window(us)
    stored = lake.read_payloads(store, start, start + dt.timedelta(days=1))
    batch = stored[0]
    later = batch.fetched_at + dt.timedelta(hours=1)
    cut = dataclasses.replace(batch, body=batch.body[: len(batch.body) // 2], fetched_at=later)
    html = dataclasses.replace(
        batch, body=b"<html>502</html>", fetched_at=later + dt.timedelta(minutes=1)
    )
    bad_meta = dataclasses.replace(batch, fetched_at=later + dt.timedelta(minutes=2))
    for payload in (cut, html, bad_meta):
        _drop(store, payload)
    store.write(f"dt={day}/{bad_meta.payload_id}.meta.json", b"<html>not an envelope</html>")

    # Before: every run of the day failed on the first of them, until someone deleted it.
    result = run_assets(defs, instance, "again", ["daily_bars"], day, day)
    check = next(
        c for c in result.get_asset_check_evaluations() if c.check_name == "raw_payloads_readable"
    )
    assert not check.passed and check.severity == dg.AssetCheckSeverity.WARN
    assert check.metadata["dead_lettered"].value == 3
    names = {Path(f).name for f in check.metadata["dead_letters"].value}
    assert names == {f"{p.payload_id}.json" for p in (cut, html, bad_meta)}
    materialization = result.asset_materializations_for_node("us__daily_bars")[0]
    assert materialization.metadata["payloads_dead_lettered"].value == 3
    # The day loaded as before (the same values and sources; a new ingestion time).
    assert _daily_rows(fresh_schema) == before
    dead = sorted(o.name for o in store.child("_dead_letter").list_tree())
    assert len(dead) == 9
    assert all(name.startswith(f"dt={day}/") for name in dead)
    # The next run reads a clean zone: nothing more to move, the check passes.
    result = run_assets(defs, instance, "third", ["daily_bars"], day, day)
    check = next(
        c for c in result.get_asset_check_evaluations() if c.check_name == "raw_payloads_readable"
    )
    assert check.passed
