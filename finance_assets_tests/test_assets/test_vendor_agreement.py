"""A second opinion, end to end: the simulated market is the primary provider of us's daily
bars; Twelve Data, served by a local stand-in speaking its /time_series format, is the
reference for a sample of three symbols, answering the simulated market's bars with chosen
differences. The expected table, sizes and per-day rates are computed here from the stored
primary bars and the differences made, not by the project's comparison."""

from __future__ import annotations

import datetime as dt
import hashlib
import json

import dagster as dg
import psycopg
import pytest
from werkzeug import Request, Response

from finance_assets.demo import range_tags
from finance_assets.providers.simulated_market import SimulatedMarket
from finance_assets_tests.test_assets.test_end_to_end import _defs, env, fresh_schema  # noqa: F401

SECRET = "td-key-vendor-must-not-leak"
START, END = "2026-11-16", "2026-11-18"  # Monday to Wednesday
DAYS = ["2026-11-16", "2026-11-17", "2026-11-18"]
# Differences the reference makes, by (symbol, day): close x factor, volume x factor, or gone.
CLOSE_UP = ("AAPL", "2026-11-17", 1.005)  # +50 bp: beyond 25 bp
VOLUME_DOWN = ("NVDA", "2026-11-18", 0.8)  # 20 % of the larger: beyond 5 %
SMALL = ("TSLA", "2026-11-18", 1.001)  # +10 bp: within 25 bp
DROPPED = ("TSLA", "2026-11-16")  # the reference has no bar


def _sample(universe, count):
    """The reference's sample, worked out here: the `count` symbols of smallest SHA-256."""
    return sorted(sorted(universe, key=lambda s: hashlib.sha256(s.encode()).hexdigest())[:count])


def _stand_in(market, seen, differ: bool, bad: frozenset[str] = frozenset()):
    sim = SimulatedMarket()

    def handler(request: Request) -> Response:
        args = dict(request.args)
        seen.append(args)
        if request.headers.get("Authorization") != f"apikey {SECRET}":
            return Response('{"code":401,"message":"bad key","status":"error"}', status=401)
        fmt = "%Y-%m-%d %H:%M:%S"
        start = dt.datetime.strptime(args["start_date"], fmt).replace(tzinfo=market.tz)
        end = dt.datetime.strptime(args["end_date"], fmt).replace(tzinfo=market.tz)
        symbols = args["symbol"].split(",")
        body = json.loads(
            sim.fetch_bars(market, symbols, args["interval"], start, end + dt.timedelta(seconds=1))[
                0
            ].body
        )
        if differ:
            for symbol, series in body.items():
                kept = []
                for value in series["values"]:
                    key = (symbol, value["datetime"])
                    if key == DROPPED:
                        continue
                    for s, day, factor in (CLOSE_UP, SMALL):
                        if key == (s, day):
                            value["close"] = f"{float(value['close']) * factor:.5f}"
                            # Keep the bar consistent (high >= close), as a real one is.
                            value["high"] = max(value["high"], value["close"], key=float)
                    if key == VOLUME_DOWN[:2]:
                        value["volume"] = str(int(int(value["volume"]) * VOLUME_DOWN[2]))
                    kept.append(value)
                series["values"] = kept
        for symbol in bad:
            # Twelve Data's per-symbol error inside a batch answered 200.
            body[symbol] = {"code": 400, "message": f"{symbol} not found", "status": "error"}
        return Response(json.dumps(body), content_type="application/json")

    return handler


def _run(defs, names, *, expect=True):
    job = dg.define_asset_job("vendor", selection=[dg.AssetKey(["us", n]) for n in names])
    job_def = dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def("vendor")
    result = job_def.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=range_tags(START, END), raise_on_error=False
    )
    assert result.success is expect, [e.message for e in result.all_events if e.is_failure]
    return result


def _rows(url, sql):
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


@pytest.fixture
def reference_env(env, fresh_schema, monkeypatch, httpserver):  # noqa: F811
    monkeypatch.setenv("MARKET_DATA_REFERENCE_US", "twelve_data")
    monkeypatch.setenv("MARKET_DATA_REFERENCE_US_SYMBOLS", "3")
    monkeypatch.setenv("FINANCE_VENDOR_CLOSE_BP", "25")
    monkeypatch.setenv("FINANCE_VENDOR_VOLUME_SHARE", "0.05")
    monkeypatch.setenv("TWELVEDATA_API_KEY", SECRET)
    monkeypatch.setenv("TWELVEDATA_CREDITS_PER_MINUTE", "800")
    monkeypatch.setenv("TWELVEDATA_BASE_URL", httpserver.url_for("").rstrip("/"))
    return env


def test_disagreements_are_named_with_their_size_and_the_primary_rows_stay(
    reference_env,
    fresh_schema,  # noqa: F811
    us,
    httpserver,
):
    seen: list[dict[str, str]] = []
    httpserver.expect_request("/time_series").respond_with_handler(_stand_in(us, seen, True))
    defs = _defs(us)
    _run(defs, ["raw_daily_quotes", "daily_bars"])
    bars_sql = (
        "SELECT symbol, ts, close, volume, source, ingested_at FROM us.daily_bars ORDER BY 1, 2"
    )
    before = _rows(fresh_schema, bars_sql)
    result = _run(defs, ["reference_daily_quotes", "vendor_agreement"])

    sample = _sample(us.universe, 3)
    assert sample == ["AAPL", "NVDA", "TSLA"]
    # Only the sample was asked, in one call for the range.
    assert [(c["symbol"], c["interval"]) for c in seen] == [(",".join(sample), "1day")]

    # The primary's rows are exactly as they were: a disagreement overwrites nothing.
    assert _rows(fresh_schema, bars_sql) == before
    primary = {(s, ts.astimezone(us.tz).date().isoformat()): (c, v) for s, ts, c, v, *_ in before}

    table = _rows(
        fresh_schema,
        "SELECT symbol, trading_date, status, close_diff_bp, volume_diff_share, primary_close, "
        "reference_close, primary_volume, reference_volume FROM us.vendor_agreement ORDER BY 1, 2",
    )
    got = {(s, d.isoformat()): rest for s, d, *rest in table}
    assert set(got) == {(s, d) for s in sample for d in DAYS}
    expected_status = {key: "agree" for key in got}
    expected_status[CLOSE_UP[:2]] = "close_differs"
    expected_status[VOLUME_DOWN[:2]] = "volume_differs"
    expected_status[DROPPED] = "no_reference_bar"
    assert {k: v[0] for k, v in got.items()} == expected_status

    close, _ = primary[CLOSE_UP[:2]]
    ref_close = float(f"{close * CLOSE_UP[2]:.5f}")
    assert got[CLOSE_UP[:2]][1] == pytest.approx((ref_close / close - 1) * 1e4)
    assert 49 < got[CLOSE_UP[:2]][1] < 51
    _, volume = primary[VOLUME_DOWN[:2]]
    assert got[VOLUME_DOWN[:2]][2] == pytest.approx((volume - int(volume * 0.8)) / volume)
    small_close, _ = primary[SMALL[:2]]
    assert got[SMALL[:2]][1] == pytest.approx(
        (float(f"{small_close * SMALL[2]:.5f}") / small_close - 1) * 1e4
    )
    for key, row in got.items():
        if key not in (CLOSE_UP[:2], SMALL[:2], DROPPED):
            assert row[1] == 0.0 and row[3] == row[4]  # the same close, same figure
        if key != DROPPED:
            assert (row[3], row[5]) == primary[key]  # the primary's own figures
    assert got[DROPPED][4] is None and got[DROPPED][1] is None

    # The check fails, naming each bar and its size.
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "vendors_agree")
    assert not check.passed and check.severity == dg.AssetCheckSeverity.ERROR
    text = check.description
    assert f"AAPL 2026-11-17 09:30: close {close:g} vs {ref_close:g} (+" in text
    assert "bp, limit 25 bp)" in text
    assert (
        f"NVDA 2026-11-18 09:30: volume {volume:,} vs {int(volume * 0.8):,} (20.0% apart, "
        "limit 5.0%)" in text
    )
    assert "TSLA 2026-11-16 09:30: no reference bar (simulated has one)" in text
    assert "TSLA 2026-11-18" not in text  # 10 bp is within the tolerance
    assert check.metadata["disagreeing_bars"].value == 3

    # The agreement rate per day: agreed / compared, the missing bar not compared.
    rates = {}
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        ours = mat.asset_key == dg.AssetKey(["us", "vendor_agreement"]) and mat.partition
        if ours and "day_agreement_rate" in mat.metadata:
            rates[mat.partition] = mat.metadata["day_agreement_rate"].value
    assert rates == pytest.approx({"2026-11-16": 2 / 2, "2026-11-17": 2 / 3, "2026-11-18": 2 / 3})

    # The reference's payloads are in the raw zone, labelled with their provider; nowhere else.
    metas = list((reference_env / "raw" / "us" / "reference_daily_quotes").rglob("*.meta.json"))
    assert metas and {json.loads(m.read_text())["provider"] for m in metas} == {"twelve_data"}
    lake = reference_env / "lake" / "us"
    assert not (lake / "reference_daily_quotes").exists()
    assert {p.name for p in lake.iterdir()} == {"daily_bars"}
    sources = _rows(fresh_schema, "SELECT DISTINCT source FROM us.daily_bars")
    assert sources == [("simulated",)]


def test_the_same_bars_agree_and_the_check_passes(
    reference_env,
    fresh_schema,  # noqa: F811
    us,
    httpserver,
):
    seen: list[dict[str, str]] = []
    httpserver.expect_request("/time_series").respond_with_handler(_stand_in(us, seen, False))
    defs = _defs(us)
    _run(defs, ["raw_daily_quotes", "daily_bars"])
    result = _run(defs, ["reference_daily_quotes", "vendor_agreement"])
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "vendors_agree")
    assert check.passed, check.description
    assert _rows(fresh_schema, "SELECT count(*), bool_and(agrees) FROM us.vendor_agreement") == [
        (9, True)
    ]


def test_nothing_to_compare_is_not_agreement(
    reference_env,
    fresh_schema,  # noqa: F811
    us,
    httpserver,
):
    """The reference answered, but the primary's daily bars were never loaded: every pair is
    a reference bar without a primary one, and the check fails."""
    seen: list[dict[str, str]] = []
    httpserver.expect_request("/time_series").respond_with_handler(_stand_in(us, seen, False))
    result = _run(_defs(us), ["reference_daily_quotes", "vendor_agreement"])
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "vendors_agree")
    assert not check.passed
    assert check.metadata["compared"].value == 0
    assert "nothing to compare" in check.description


def test_an_empty_window_is_never_agreement(us):
    """No pair at all (neither provider had a bar of the sample): the check fails."""
    import polars as pl

    from finance_assets.defs.vendor.assets import _check
    from finance_assets.lib.transforms import agreement

    empty = pl.DataFrame(schema=agreement.AGREEMENT_SCHEMA)
    check = _check(
        dg.AssetKey(["us", "vendor_agreement"]), empty, agreement.daily_agreement(empty), us
    )
    assert not check.passed
    assert check.metadata["pairs"].value == 0
    assert "nothing to compare" in check.description


def test_the_daily_job_reports_the_agreement_rate_per_session(
    reference_env,
    fresh_schema,  # noqa: F811
    us,
    httpserver,
):
    """The market's daily job with a reference: the report page of the last session shows the
    agreement per session (agreed / compared) and that session's disagreeing bars."""
    seen: list[dict[str, str]] = []
    httpserver.expect_request("/time_series").respond_with_handler(_stand_in(us, seen, True))
    defs = _defs(us)
    job = defs.resolve_job_def("us_daily_job")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), tags=range_tags(START, END), raise_on_error=False
    )
    assert result.success, [e.message for e in result.all_events if e.is_failure]
    [page] = [p for p in reference_env.rglob("report.html") if "dt=2026-11-18" in str(p)]
    text = page.read_text()
    section = text[text.index("Second opinion") :]
    rows = [
        [cell.split("<")[0] for cell in row.split("<td>")[1:]] for row in section.split("<tr>")[2:]
    ]
    # trading_date, compared, agreed, agreement %, max |close diff| bp, missing ref, missing primary
    assert [r[:4] for r in rows] == [
        ["2026-11-16", "2", "2", "100.00"],
        ["2026-11-17", "3", "2", "66.67"],
        ["2026-11-18", "3", "2", "66.67"],
    ]
    assert [r[5] for r in rows] == ["1", "0", "0"]
    assert "NVDA 2026-11-18 09:30: volume" in section and "AAPL 2026-11-17" not in section


def test_the_reference_fetch_respects_the_reference_providers_budget(
    reference_env,
    fresh_schema,  # noqa: F811
    us,
    httpserver,
    monkeypatch,
):
    """Three symbols cost three credits at Twelve Data: with two a day, the fetch is refused
    before any call, naming the budget and its setting, and nothing is compared."""
    monkeypatch.setenv("TWELVEDATA_CREDITS_PER_DAY", "2")
    seen: list[dict[str, str]] = []
    httpserver.expect_request("/time_series").respond_with_handler(_stand_in(us, seen, False))
    result = _run(_defs(us), ["reference_daily_quotes", "vendor_agreement"], expect=False)
    assert seen == []
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.error_display_string
    assert "daily budget of 2 credits (TWELVEDATA_CREDITS_PER_DAY=2)" in message
    assert _rows(fresh_schema, "SELECT to_regclass('us.vendor_agreement')") == [(None,)]


def test_a_symbol_the_reference_fails_is_named_with_its_message(
    reference_env,
    fresh_schema,  # noqa: F811
    us,
    httpserver,
):
    """TSLA answered with Twelve Data's per-symbol error: its bars are reference-less, and the
    check says why; the other two symbols agree."""
    seen: list[dict[str, str]] = []
    handler = _stand_in(us, seen, False, frozenset({"TSLA"}))
    httpserver.expect_request("/time_series").respond_with_handler(handler)
    defs = _defs(us)
    _run(defs, ["raw_daily_quotes", "daily_bars"])
    result = _run(defs, ["reference_daily_quotes", "vendor_agreement"])
    check = next(c for c in result.get_asset_check_evaluations() if c.check_name == "vendors_agree")
    assert not check.passed
    assert check.description.startswith("TSLA: the reference answered '400: TSLA not found'")
    assert check.metadata["disagreeing_bars"].value == 3
    assert _rows(
        fresh_schema,
        "SELECT symbol, status, count(*) FROM us.vendor_agreement GROUP BY 1, 2 ORDER BY 1",
    ) == [("AAPL", "agree", 3), ("NVDA", "agree", 3), ("TSLA", "no_reference_bar", 3)]


def test_a_reference_that_fails_every_symbol_is_retried_not_compared(
    reference_env,
    fresh_schema,  # noqa: F811
    us,
    httpserver,
):
    seen: list[dict[str, str]] = []
    handler = _stand_in(us, seen, False, frozenset({"AAPL", "NVDA", "TSLA"}))
    httpserver.expect_request("/time_series").respond_with_handler(handler)
    result = _run(_defs(us), ["reference_daily_quotes", "vendor_agreement"], expect=False)
    failures = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert "every symbol of us's reference sample failed" in str(failures[-1].event_specific_data)
    assert _rows(fresh_schema, "SELECT to_regclass('us.vendor_agreement')") == [(None,)]
