"""Raw payload staging in MongoDB, against a wire-protocol server (nx-27017) on loopback."""

import datetime as dt

import dagster as dg
import psycopg
import pytest

from finance_assets.demo import run_market
from finance_assets.lib.io.mongo import MongoRawStore
from finance_assets.providers.simulated_market import SimulatedMarket

NY = dt.timezone(dt.timedelta(hours=-5))


def test_payloads_are_upserted_and_superseded_not_duplicated(mongo_uri, us):
    store = MongoRawStore(mongo_uri, "t_store")
    asset = ("us", "raw_intraday_quotes")
    start, end = dt.datetime(2026, 11, 16, tzinfo=NY), dt.datetime(2026, 11, 18, tzinfo=NY)
    sim = SimulatedMarket(batch_size=2, clock=lambda: dt.datetime(2026, 11, 20, tzinfo=dt.UTC))
    payloads = sim.fetch_bars(us, ["AAPL", "MSFT", "NVDA"], "5min", start, end)
    assert store.write_payloads(asset, payloads, start, end) == 2
    store.write_payloads(asset, payloads, start, end)  # the same run again
    assert store.count(asset) == 2
    assert set(store.bodies(asset)) == {p.body for p in payloads}  # exactly as received
    # A later fetch of the same window supersedes the earlier one.
    later = SimulatedMarket(
        batch_size=3, clock=lambda: dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    ).fetch_bars(us, ["AAPL", "MSFT", "NVDA"], "5min", start, end)
    store.write_payloads(asset, later, start, end)
    assert store.count(asset) == 1
    store.close()


def test_assets_stage_raw_payloads_in_mongodb_idempotently(
    mongo_uri, monkeypatch, tmp_path, pg_url, us
):
    from finance_assets_tests.test_assets.test_end_to_end import _defs

    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    monkeypatch.setenv("MONGODB_URI", mongo_uri)
    monkeypatch.setenv("MONGODB_DATABASE", "t_assets")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")
    day = [dt.date(2026, 11, 18)]
    store = MongoRawStore(mongo_uri, "t_assets")
    for _ in range(2):
        results = run_market(_defs(us), us, day, dg.DagsterInstance.ephemeral(), with_posts=True)
        assert all(r.success for r in results)
        counts = {
            asset: store.count(("us", asset))
            for asset in ("raw_intraday_quotes", "raw_daily_quotes", "raw_posts")
        }
        assert counts["raw_intraday_quotes"] == 1 and counts["raw_daily_quotes"] == 1
        assert counts["raw_posts"] >= 5  # a page per company at least
    store.close()


def test_a_symbol_a_batch_did_not_answer_keeps_its_payload(mongo_uri, us):
    from finance_assets_tests.test_lib.test_answers import ERROR, T0, T1, _payload, _series

    store = MongoRawStore(mongo_uri, "t_unanswered")
    asset = ("us", "raw_intraday_quotes")
    old = _payload({"AAPL": _series("AAPL"), "MSFT": _series("MSFT")}, ["AAPL", "MSFT"], 0)
    store.write_payloads(asset, [old], T0, T1)
    failed = _payload({"AAPL": _series("AAPL"), "MSFT": ERROR}, ["AAPL", "MSFT"], 1)
    store.write_payloads(asset, [failed], T0, T1)
    assert store.bodies(asset) == [old.body, failed.body]
    store.close()


def test_a_body_over_mongodbs_document_limit_is_stored_compressed_and_read_back_whole(
    mongo_uri, us
):
    """Twelve Data's batch of 120 symbols × 20 days of 5-minute bars is ~23 MB of JSON: over
    MongoDB's 16 MiB per document, which a real server refuses (nx-27017 does not check, so the
    size is asserted here). Stored gzip-compressed, it reads back byte for byte."""
    import bson

    from finance_assets.lib.io import mongo
    from finance_assets.lib.providers.base import RawPayload

    start, end = dt.datetime(2026, 11, 2, tzinfo=NY), dt.datetime(2026, 11, 28, tzinfo=NY)
    value = '{"datetime":"2026-11-02 09:30:00","open":"177.91010","high":"178.02000",'
    body = ("[" + ",".join(f'{value}"k":{k}}}' for k in range(230_000)) + "]").encode()
    assert len(body) > mongo.MAX_DOCUMENT
    small = b'{"values": []}'
    payloads = [
        RawPayload("twelve_data", "twelve_data", "5min", ("AAPL",), start, end, end, b, batch=i)
        for i, b in enumerate((body, small))
    ]
    store = MongoRawStore(mongo_uri, "t_large")
    asset = ("us", "raw_intraday_quotes")
    try:
        assert store.write_payloads(asset, payloads, start, end) == 2
        assert sorted(store.bodies(asset)) == sorted([body, small])
        docs = list(store.collection.find({"asset": "us/raw_intraday_quotes"}))
        assert all(len(bson.encode(doc)) <= mongo.MAX_DOCUMENT for doc in docs)
        assert sorted(d["body_encoding"] for d in docs) == ["gzip", "utf-8"]  # small stays text
    finally:
        store.close()


def test_a_body_too_large_even_compressed_is_refused_with_its_size():
    import os

    from finance_assets.lib.io import mongo

    noise = os.urandom(mongo.MAX_DOCUMENT)  # random bytes do not compress
    with pytest.raises(ValueError, match=r"over MongoDB's 16,777,216-byte document limit"):
        mongo._body(noise, "us/raw_intraday_quotes/x")


def test_a_payload_mongodb_would_refuse_fails_the_step_with_nothing_stored(mongo_uri, tmp_path, us):
    """A body over MongoDB's limit even compressed (random bytes do not compress) fails the
    raw step naming its size, before the raw zone or MongoDB hold anything of that fetch: the
    payload fetched before stays the one both stores hold, and nothing is set aside."""
    import os

    from finance_assets.lib.io import lake, mongo
    from finance_assets.lib.io.managers import RawZoneIOManager
    from finance_assets.lib.io.objects import open_location
    from finance_assets.lib.providers.base import RawPayload

    start, end = dt.datetime(2026, 11, 18, tzinfo=NY), dt.datetime(2026, 11, 19, tzinfo=NY)

    def payload(body: bytes, hour: int) -> RawPayload:
        fetched = dt.datetime(2026, 11, 19, hour, tzinfo=dt.UTC)
        return RawPayload(
            "twelve_data", "twelve_data", "1day", ("AAPL",), start, end, fetched, body
        )

    first = payload(b'{"meta": {"symbol": "AAPL"}, "values": []}', 1)
    huge = payload(os.urandom(mongo.MAX_DOCUMENT + 1), 2)
    arrivals = iter([first, huge])

    @dg.asset(
        key=["us", "raw_daily_quotes"],
        partitions_def=dg.DailyPartitionsDefinition("2026-11-16", timezone="America/New_York"),
        io_manager_key="raw",
    )
    def raw_daily_quotes() -> list[RawPayload]:
        return [next(arrivals)]

    manager = RawZoneIOManager(
        root=str(tmp_path / "raw"), mongodb_uri=mongo_uri, mongodb_database="t_refused"
    )
    raw = open_location(str(tmp_path / "raw")).child("us", "raw_daily_quotes")

    def stored() -> tuple[list[str], list[bytes]]:
        files = sorted(o.name for o in raw.list_tree())
        store = MongoRawStore(mongo_uri, "t_refused")
        try:
            return files, store.bodies(["us", "raw_daily_quotes"])
        finally:
            store.close()

    dg.materialize([raw_daily_quotes], partition_key="2026-11-18", resources={"raw": manager})
    before = stored()
    assert before[1] == [first.body]
    with pytest.raises(ValueError, match=r"over MongoDB's 16,777,216-byte document limit"):
        dg.materialize([raw_daily_quotes], partition_key="2026-11-18", resources={"raw": manager})
    assert stored() == before
    assert not any(lake.SUPERSEDED in name for name in before[0])
