""" "As known then" (issue 27, item 3): a window's bars as the platform knew them at an instant,
from the payloads received by then, on a folder raw zone and on S3 (moto's server on loopback).

The bodies are Twelve Data's recorded batch answer (AAPL and MSFT, one daily bar, moved from
2024-11-22 to 2026-11-18, a session the calendar knows) and revisions of it written here; every
expected bar is written out by hand from those bodies (a daily bar's `ts` is the session's
open, 09:30 New York = 14:30 UTC), not computed by the project's code.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from finance_assets.lib import as_of
from finance_assets.lib.analytics import lake_queries
from finance_assets.lib.io import lake
from finance_assets.lib.io.objects import ObjectStore, open_location
from finance_assets.lib.providers.base import RawPayload

SAMPLE = "twelvedata/td_batch_time_series_AAPL_MSFT_1day.json"
DAY = dt.date(2026, 11, 18)  # a Wednesday
# An evening re-fetch: AAPL revised again, MSFT answered with an error.
MSFT_ERROR = {"code": 400, "message": "**symbol** not found: MSFT.", "status": "error"}
UTC = dt.UTC


def at(hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    """An instant of 2026-11-19 (UTC), the day after the session."""
    return dt.datetime(2026, 11, 19, hour, minute, second, tzinfo=UTC)


OPEN = dt.datetime(2026, 11, 18, 14, 30, tzinfo=UTC)  # 09:30 in New York
COLUMNS = ["symbol", "ts", "open", "high", "low", "close", "volume", "currency", "source"]
AAPL = ("AAPL", OPEN, 228.84, 230.50, 227.25, 229.87, 35462000, "USD", "twelve_data")
MSFT = ("MSFT", OPEN, 412.18, 415.63, 411.36, 414.17, 18934500, "USD", "twelve_data")
MSFT_REVISED = ("MSFT", OPEN, 412.18, 415.63, 411.36, 414.90, 19001200, "USD", "twelve_data")
AAPL_EVENING = ("AAPL", OPEN, 228.84, 230.50, 227.25, 229.99, 35470000, "USD", "twelve_data")


@pytest.fixture
def bodies(samples: Path) -> tuple[bytes, bytes]:
    """The recorded answer on DAY, and the vendor's revision of the next morning: MSFT's close
    and volume corrected."""
    body = (samples / SAMPLE).read_bytes().replace(b"2024-11-22", DAY.isoformat().encode())
    revised = body.replace(b'"414.17000"', b'"414.90000"').replace(b'"18934500"', b'"19001200"')
    assert revised.count(b"414.90000") == 1 and revised.count(b"19001200") == 1
    return body, revised


@pytest.fixture(params=["local", "s3"])
def raw_store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    """The daily raw asset's part of the raw zone: a folder, or a prefix of a moto bucket."""
    if request.param == "local":
        root = str(tmp_path / "raw")
    else:
        root = f"s3://{request.getfixturevalue('bucket')}/raw"
    return open_location(root).child("us", "raw_daily_quotes")


def _window(us) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(DAY, dt.time(), us.tz)
    return start, start + dt.timedelta(days=1)


def _payload(us, body: bytes, fetched_at: dt.datetime) -> RawPayload:
    start, end = _window(us)
    return RawPayload(
        provider="twelve_data",
        format="twelve_data",
        interval="1day",
        symbols=("AAPL", "MSFT"),
        window_start=start,
        window_end=end,
        fetched_at=fetched_at,
        body=body,
    )


def _rows(frame: pl.DataFrame) -> list[tuple]:
    return [tuple(r) for r in frame.select(COLUMNS).sort("symbol", "ts").iter_rows()]


def _ask(store: ObjectStore, us, instant: dt.datetime) -> as_of.AsOf:
    start, end = _window(us)
    return as_of.as_of(store, us, "1day", asset="daily_bars", start=start, end=end, instant=instant)


def test_a_revised_bar_as_known_before_and_after_the_revision(raw_store, us, bodies) -> None:
    body, revised = bodies
    first, revision = _payload(us, body, at(1)), _payload(us, revised, at(13))
    start, end = _window(us)
    for payload in (first, revision):
        lake.write_payloads(raw_store, [payload], start, end, us.tz)
    # The window's readers see the revision only; the first answer is set aside, byte for byte.
    assert [p.body for p in lake.read_payloads(raw_store, start, end)] == [revised]
    folder = f"{lake.SUPERSEDED}/dt=2026-11-18"
    assert raw_store.read(f"{folder}/{first.payload_id}.json") == body
    assert json.loads(raw_store.read(f"{folder}/{first.payload_id}.meta.json"))["fetched_at"] == (
        "2026-11-19T01:00:00+00:00"
    )

    # A second before the first answer arrived: nothing known, and the answer says so.
    before = _ask(raw_store, us, at(0, 59, 59))
    assert not before.known and before.bars.is_empty()
    assert before.note == (
        "nothing was known of [2026-11-18 05:00, 2026-11-19 05:00) UTC at 2026-11-19 00:59:59 "
        "UTC: the first of its 2 payload(s) arrived at 2026-11-19 01:00:00 UTC"
    )
    # At the first arrival (at or before: inclusive) and until the revision: the first answer.
    for instant in (at(1), at(12, 59, 59)):
        known = _ask(raw_store, us, instant)
        assert known.known and known.payloads == (first.payload_id,)
        assert known.later == (revision.payload_id,)
        assert _rows(known.bars) == [AAPL, MSFT]
    # From the revision on: MSFT revised, AAPL as it was.
    after = _ask(raw_store, us, at(13))
    assert _rows(after.bars) == [AAPL, MSFT_REVISED]
    assert after.payloads == (first.payload_id, revision.payload_id) and not after.later
    assert after.bars.get_column("ingested_at").unique().to_list() == [at(13)]

    # Every version, with when it was known: MSFT's first close held from 01:00 to 13:00.
    versions = as_of.versions(raw_store, us, "1day", asset="daily_bars", start=start, end=end)
    assert [
        (r["symbol"], r["close"], r["known_from"], r["known_until"])
        for r in versions.sort("symbol", "known_from").iter_rows(named=True)
    ] == [
        ("AAPL", 229.87, at(1), None),
        ("MSFT", 414.17, at(1), at(13)),
        ("MSFT", 414.90, at(13), None),
    ]


def test_a_symbol_a_re_fetch_answers_with_an_error_keeps_what_was_known(
    raw_store, us, bodies
) -> None:
    """The evening re-fetch revises AAPL and answers MSFT with an error: the stores keep
    MSFT's revised bar (a kept span), so that is what was known from then on too."""
    body, revised = bodies
    start, end = _window(us)
    document = json.loads(revised)
    document["AAPL"]["values"][0].update(close="229.99000", volume="35470000")
    document["MSFT"] = MSFT_ERROR
    evening = _payload(us, json.dumps(document).encode(), at(20))
    for payload in (_payload(us, body, at(1)), _payload(us, revised, at(13)), evening):
        lake.write_payloads(raw_store, [payload], start, end, us.tz)
    assert _rows(_ask(raw_store, us, at(19, 59)).bars) == [AAPL, MSFT_REVISED]
    assert _rows(_ask(raw_store, us, at(21)).bars) == [AAPL_EVENING, MSFT_REVISED]


def test_a_window_nothing_was_ever_fetched_for_answers_empty_and_says_why(
    raw_store, us, bodies
) -> None:
    body, _ = bodies
    start, end = _window(us)
    lake.write_payloads(raw_store, [_payload(us, body, at(1))], start, end, us.tz)
    tuesday = start - dt.timedelta(days=1)
    answer = as_of.as_of(
        raw_store, us, "1day", asset="daily_bars", start=tuesday, end=start, instant=at(23)
    )
    assert not answer.known and answer.bars.is_empty()
    assert answer.note == (
        "nothing was known of [2026-11-17 05:00, 2026-11-18 05:00) UTC at 2026-11-19 23:00:00 "
        "UTC: the raw zone holds no payload for it (never fetched, or expired by retention)"
    )


def _series(symbol: str, bars: list[tuple[str, str]]) -> bytes:
    """A single-symbol Twelve Data answer: (day, close) per bar, newest first as it sends."""
    values = [
        {"datetime": d, "open": "10", "high": "12", "low": "9", "close": c, "volume": "100"}
        for d, c in sorted(bars, reverse=True)
    ]
    return json.dumps({"meta": {"symbol": symbol}, "values": values, "status": "ok"}).encode()


def test_a_partial_re_fetch_keeps_the_older_payloads_bar_in_the_history(raw_store, us) -> None:
    """The known gap of docs/design.md: a re-fetch of Monday..Wednesday that answers Monday and
    Tuesday only supersedes the older payload in the window's reads, and the stores keep its
    Wednesday. That Wednesday stays known: the older payload is set aside, not deleted."""
    monday = dt.datetime(2026, 11, 16, tzinfo=us.tz)
    end = monday + dt.timedelta(days=3)

    def payload(body: bytes, fetched_at: dt.datetime) -> RawPayload:
        return RawPayload(
            provider="twelve_data",
            format="twelve_data",
            interval="1day",
            symbols=("AAPL",),
            window_start=monday,
            window_end=end,
            fetched_at=fetched_at,
            body=body,
        )

    whole = payload(
        _series("AAPL", [("2026-11-16", "10.5"), ("2026-11-17", "11.5"), ("2026-11-18", "11")]),
        at(1),
    )
    partial = payload(_series("AAPL", [("2026-11-16", "10.6"), ("2026-11-17", "11.4")]), at(2))
    for p in (whole, partial):
        lake.write_payloads(raw_store, [p], monday, end, us.tz)
    assert [p.payload_id for p in lake.read_payloads(raw_store, monday, end)] == [
        partial.payload_id
    ]
    answer = as_of.as_of(
        raw_store, us, "1day", asset="daily_bars", start=monday, end=end, instant=at(3)
    )
    opens = [dt.datetime(2026, 11, d, 14, 30, tzinfo=UTC) for d in (16, 17, 18)]
    assert answer.bars.select("ts", "close").rows() == [
        (opens[0], 10.6),
        (opens[1], 11.4),
        (opens[2], 11.0),  # the older payload's, as the stores keep it
    ]


def test_a_crash_between_setting_aside_the_envelope_and_the_body_loses_nothing(
    raw_store, us, bodies
) -> None:
    body, _ = bodies
    start, end = _window(us)
    first = _payload(us, body, at(1))
    lake.write_payloads(raw_store, [first], start, end, us.tz)
    # What a crash after the envelope's move leaves: the body still in its dt= folder.
    meta = f"dt=2026-11-18/{first.payload_id}.meta.json"
    raw_store.move(meta, f"{lake.SUPERSEDED}/{meta}")
    assert lake.read_payloads(raw_store, start, end) == []  # the window's readers skip it
    assert _rows(_ask(raw_store, us, at(2)).bars) == [AAPL, MSFT]


def test_the_command_line_and_the_saved_query_answer_as_the_function(
    tmp_path, us, monkeypatch, capsys, bodies
) -> None:
    body, revised = bodies
    raw = tmp_path / "raw"
    store = open_location(str(raw)).child("us", "raw_daily_quotes")
    start, end = _window(us)
    for payload in (_payload(us, body, at(1)), _payload(us, revised, at(13))):
        lake.write_payloads(store, [payload], start, end, us.tz)
    monkeypatch.delenv("FINANCE_MARKETS", raising=False)
    window = ["--start", "2026-11-18", "--end", "2026-11-18"]

    assert as_of.main(["bars", "--raw", str(raw), *window, "--at", "2026-11-19T12:00:00Z"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 bar(s) of 2 symbol(s) known of [2026-11-18 05:00, 2026-11-19 05:00)")
    assert "414.17" in out and "414.9" not in out
    as_of.main(["bars", "--raw", str(raw), *window, "--at", "2026-11-19T00:30:00+00:00"])
    assert capsys.readouterr().out.startswith("nothing was known of [2026-11-18 05:00")
    with pytest.raises(SystemExit):
        as_of.main(["bars", "--raw", str(raw), *window, "--at", "2026-11-19T12:00:00"])
    assert "has no UTC offset" in capsys.readouterr().err

    versions = lake_queries.raw_versions(str(raw), "us", "2026-11-18", "2026-11-18")
    sql = lake_queries.saved_queries()["bars_as_of"]
    for instant, expected in (
        (at(0, 30), []),
        (at(12), [AAPL, MSFT]),
        (at(13), [AAPL, MSFT_REVISED]),
    ):
        rows = lake_queries.run_query(
            sql, tmp_path / "lake", "us", versions=versions, parameters=[instant.isoformat()]
        )
        assert _rows(rows) == expected
        # The same bars as the function's.
        assert _rows(rows) == _rows(_ask(store, us, instant).bars)

    lake_queries.main(
        [
            *("bars_as_of", "--lake", str(tmp_path / "lake"), "--raw", str(raw), *window),
            *("--at", "2026-11-19T00:30:00Z"),
        ]
    )
    assert capsys.readouterr().out.startswith("no row: nothing the raw zone")


def test_a_raw_materialisation_says_what_it_set_aside_in_the_ui(tmp_path, us, bodies) -> None:
    """The raw asset's materialisation (what the UI shows) counts the superseded payloads it
    set aside and names where the history is; the window then answers as of either arrival."""
    import dagster as dg

    from finance_assets.lib.io.managers import RawZoneIOManager

    body, revised = bodies
    arrivals = iter([_payload(us, body, at(1)), _payload(us, revised, at(13))])

    @dg.asset(
        key=["us", "raw_daily_quotes"],
        partitions_def=dg.DailyPartitionsDefinition("2026-11-16", timezone="America/New_York"),
        io_manager_key="raw",
    )
    def raw_daily_quotes() -> list[RawPayload]:
        return [next(arrivals)]

    manager = RawZoneIOManager(root=str(tmp_path / "raw"))
    figures = []
    for _ in range(2):
        result = dg.materialize(
            [raw_daily_quotes], partition_key="2026-11-18", resources={"raw": manager}
        )
        (event,) = result.get_asset_materialization_events()
        metadata = event.materialization.metadata
        figures.append({k: v.value for k, v in metadata.items() if "superseded" in k})
    history = str(tmp_path / "raw" / "us" / "raw_daily_quotes" / lake.SUPERSEDED)
    assert figures == [
        {"superseded_set_aside": 0, "superseded_history": history},
        {"superseded_set_aside": 1, "superseded_history": history},
    ]
    store = open_location(str(tmp_path / "raw")).child("us", "raw_daily_quotes")
    assert _rows(_ask(store, us, at(2)).bars) == [AAPL, MSFT]
    assert _rows(_ask(store, us, at(14)).bars) == [AAPL, MSFT_REVISED]


def test_a_revision_rejected_as_a_whole_changes_nothing_known(raw_store, us, bodies) -> None:
    """A re-fetch whose records are bad beyond the quarantine limit (here MSFT's close is not
    a number: 1 record of 2, over 5 %) is rejected whole by the clean step, and supersedes
    nothing: the bars known after it are those known before."""
    body, _ = bodies
    start, end = _window(us)
    bad = body.replace(b'"229.87000"', b'"229.95000"').replace(b'"414.17000"', b'"n/a"')
    for payload in (_payload(us, body, at(1)), _payload(us, bad, at(13))):
        lake.write_payloads(raw_store, [payload], start, end, us.tz)
    assert _rows(_ask(raw_store, us, at(14)).bars) == [AAPL, MSFT]


def test_payloads_that_gave_no_bar_answer_empty_and_say_so(raw_store, us) -> None:
    start, end = _window(us)
    errors = json.dumps({"AAPL": MSFT_ERROR | {"message": "**symbol** not found: AAPL."}})
    only_errors = _payload(us, errors.encode(), at(1))
    lake.write_payloads(raw_store, [only_errors], start, end, us.tz)
    answer = _ask(raw_store, us, at(2))
    assert answer.known and answer.bars.is_empty()
    assert answer.note == (
        "no bar of [2026-11-18 05:00, 2026-11-19 05:00) UTC was known at 2026-11-19 02:00:00 "
        "UTC: its 1 payload(s) received by then gave none the clean step would write (errors, "
        "empty answers, or cleans its blocking checks stopped)"
    )
