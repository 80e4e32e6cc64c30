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
