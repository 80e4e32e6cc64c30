"""Parity of the dead-letter place: on the same raw zone with a truncated Twelve Data body, an
HTML error page and an envelope that is not JSON, the Spark job moves the same payloads to
`_dead_letter/` as the polars path, with the same reasons, and loads the same bars: those of
the zone without them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl

from finance_assets.lib.clean_step import clean_window
from finance_assets.lib.io import lake
from finance_assets.lib.io.objects import open_location
from finance_assets.spark import job as bars_job
from finance_assets_tests.test_spark import raw_zones
from finance_assets_tests.test_spark.raw_zones import DAILY, fetched, local, payload, read_back

HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body></body></html>"


def _poison(root: Path, us) -> dict[str, str]:
    """Three payloads nothing can read, newer than the good ones of the same window; their
    ids by kind. Written so that they supersede nothing (as a copy tool would leave them)."""
    first, last = DAILY
    start, end = local(first), local(last + dt.timedelta(days=1))
    good = lake.read_payloads(root, start, end)
    batch = next(p for p in good if p.format == "twelve_data")
    cut = payload(
        "twelve_data", "twelve_data", "1day", batch.symbols, start, end, fetched(10),
        batch.body[: len(batch.body) // 3],
    )  # fmt: skip
    html = payload("twelve_data", "twelve_data", "1day", ["MSFT"], start, end, fetched(11), HTML)
    bad_meta = payload(
        "twelve_data", "twelve_data", "1day", ["AAPL"], start, end, fetched(12), batch.body
    )
    for one in (cut, html, bad_meta):
        # A window of one day: the older payloads (the whole range) are not inside it.
        lake.write_payloads(root, [one], start, start + dt.timedelta(days=1), us.tz)
    meta_key = f"dt={first.isoformat()}/{bad_meta.payload_id}.meta.json"
    open_location(root).write(meta_key, b'{"provider": "twelve_data", "format": "twelve_')
    return {"cut": cut.payload_id, "html": html.payload_id, "bad_meta": bad_meta.payload_id}


def _polars(root: Path, us, run_id: str):
    first, last = DAILY
    start, end = local(first), local(last + dt.timedelta(days=1))
    raw = lake.read_payloads(root, start, end, run_id=run_id)
    cleaned = clean_window(
        raw,
        us,
        "1day",
        asset=bars_job.ASSETS["1day"],
        start=start,
        end=end,
        ingested_at=dt.datetime.now(dt.UTC),
        max_quarantine_rate=bars_job.MAX_QUARANTINE_RATE,
    )
    dead = raw.dead_letters + lake.dead_letter_payloads(
        root, raw, cleaned.unreadable, us.tz, run_id=run_id
    )
    return cleaned, dead


def _dead_listing(root: Path) -> list[str]:
    return sorted(
        str(p.relative_to(root)) for p in (root / "_dead_letter").rglob("*") if p.is_file()
    )


def test_spark_dead_letters_what_polars_does_and_loads_the_same_bars(
    us, spark_session, tmp_path_factory
):
    roots = {}
    for name in ("clean", "polars", "spark"):
        roots[name] = tmp_path_factory.mktemp(f"raw-{name}") / "us" / "raw_daily_quotes"
        raw_zones.daily_zone(roots[name], us)
    ids = _poison(roots["polars"], us)
    assert _poison(roots["spark"], us) == ids

    reference, none = _polars(roots["clean"], us, "reference")
    assert none == [] and reference.unreadable == {}
    cleaned, dead = _polars(roots["polars"], us, "polars-run")
    assert sorted(cleaned.unreadable) == sorted([ids["cut"], ids["html"]])
    assert len(dead) == 3

    first, last = DAILY
    out = tmp_path_factory.mktemp("spark-dead-letters")
    argv = ["--raw", str(roots["spark"]), "--out", str(out), "--market", "us"]
    argv += ["--interval", "1day", "--start", first.isoformat(), "--end", last.isoformat()]
    figures = bars_job.main(argv, spark=spark_session)

    # The same payloads moved, with the same reasons; none left behind in the raw zone.
    assert _dead_listing(roots["spark"]) == _dead_listing(roots["polars"])
    assert len(_dead_listing(roots["spark"])) == 9  # body, envelope, reason: three payloads
    spark_reasons = {Path(f).name: r for f, r in figures["dead_lettered"].items()}
    assert spark_reasons == {Path(d.file).name: d.reason for d in dead}
    for root in (roots["spark"], roots["polars"]):
        left = {p.name for p in root.glob("dt=*/*")}
        assert not any(i in name for i in ids.values() for name in left)
    note = json.loads(
        (roots["spark"] / "_dead_letter" / f"dt={first}" / f"{ids['cut']}.reason.json").read_text()
    )
    assert note["run_id"] == spark_session.sparkContext.applicationId
    assert "not JSON" in note["error"]

    # Both loaded what the zone without the three holds.
    columns = [c for c in reference.result.bars.columns if c != "ingested_at"]
    expected = reference.result.bars.select(columns).sort("symbol", "ts")
    assert cleaned.result.bars.select(columns).sort("symbol", "ts").equals(expected)
    got = read_back(out / bars_job.ASSETS["1day"]).select(columns).sort("symbol", "ts")
    assert got.equals(expected)
    assert figures["rows_loaded"] == expected.height
    assert set(expected.get_column("symbol")) >= {"AAPL", "MSFT"}
    assert pl.Series(figures["symbols"]).is_in(expected.get_column("symbol")).all()
