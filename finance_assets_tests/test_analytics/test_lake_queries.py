"""The saved lake queries (`queries/*.sql`) run with DuckDB over a small lake built here with
the lake's own writer, each result checked against rows worked out by hand; and each keeps to
the SQL Athena (Trino) and DuckDB share."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys

import polars as pl
import pytest

from finance_assets.lib.analytics.lake_queries import run_query, saved_queries
from finance_assets.lib.io import lake
from finance_assets.lib.schema import BAR_SCHEMA, UTC_TS, conform

pytest.importorskip("duckdb")

# name: closes, opens (None = the previous close), volumes, over the eight sessions.
DAILY = {
    "AAA": ([100, 101, 99, 99, 105, 105, 106, 106], {4: 103.0}, {7: 5000}),
    "BBB": ([50, 50.2, 50.1, 50.3, 50.2, 50.4, 47.0, 47.1], {6: 48.0}, {}),
    "CCC": ([20, 20.1, 20.1, 20.2, 20.2, 20.3, 20.3, 20.4], {}, {}),
}


def _bars(rows: list[dict]) -> pl.DataFrame:
    frame = pl.DataFrame(rows).with_columns(
        pl.col("ts").cast(UTC_TS),
        adj_close=pl.lit(None, pl.Float64),
        currency=pl.lit("USD"),
        source=pl.lit("test"),
        ingested_at=pl.lit(dt.datetime(2026, 12, 1, tzinfo=dt.UTC)).cast(UTC_TS),
    )
    return conform(frame, BAR_SCHEMA)


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory, us):
    root = tmp_path_factory.mktemp("lake")
    sessions = us.sessions(dt.date(2026, 11, 2), dt.date(2026, 11, 30))[:8]
    rows = []
    for symbol, (closes, opens, volumes) in DAILY.items():
        for i, day in enumerate(sessions):
            open_ = opens.get(i, closes[i - 1] if i else closes[0])
            rows.append(
                {
                    "symbol": symbol,
                    "ts": us.session_bounds(day)[0],
                    "open": float(open_),
                    "high": float(max(open_, closes[i])),
                    "low": float(min(open_, closes[i])),
                    "close": float(closes[i]),
                    "volume": volumes.get(i, 1000),
                }
            )
    start, end = us.session_bounds(sessions[0])[0], us.session_bounds(sessions[-1])[1]
    lake.stage_window(
        root / "us" / "daily_bars", _bars(rows), start=start, end=end, tz=us.tz
    ).publish()
    # 5-minute bars of two sessions: BBB lacks its last 8 bars of the first, CCC the whole second.
    rows = []
    for n, day in enumerate(sessions[:2]):
        starts = us.bar_starts(*us.session_bounds(day))
        for symbol, count in (
            ("AAA", 78),
            ("BBB", 70 if n == 0 else 78),
            ("CCC", 78 if n == 0 else 0),
        ):
            for ts in starts[:count]:
                rows.append(
                    {
                        "symbol": symbol,
                        "ts": ts,
                        "open": 1.0,
                        "high": 1.0,
                        "low": 1.0,
                        "close": 1.0,
                        "volume": 10,
                    }
                )
    lake.stage_window(
        root / "us" / "bars_5min",
        _bars(rows),
        start=us.session_bounds(sessions[0])[0],
        end=us.session_bounds(sessions[1])[1],
        tz=us.tz,
    ).publish()
    return root, sessions


def _run(name: str, small_lake) -> pl.DataFrame:
    root, _ = small_lake
    return run_query(saved_queries()[name], root, "us")


def test_every_saved_query_is_tested():
    # bars_as_of: test_io/test_as_of.py (it reads the raw zone's history, not the lake).
    assert sorted(saved_queries()) == [
        "bars_as_of",
        "coverage",
        "gaps",
        "top_movers",
        "volume_spikes",
    ]


def test_top_movers(small_lake):
    out = _run("top_movers", small_lake)
    _, sessions = small_lake
    # Seven sessions with a previous close, three movers each.
    assert out.height == 7 * 3
    assert out.get_column("mover_rank").to_list() == [1, 2, 3] * 7
    fifth = out.filter(pl.col("trading_date") == sessions[4])
    assert fifth.get_column("symbol").to_list() == ["AAA", "BBB", "CCC"]
    assert fifth.get_column("return_pct").to_list() == [
        round((105 / 99 - 1) * 100, 4),
        round((50.2 / 50.3 - 1) * 100, 4),
        0.0,
    ]
    seventh = out.filter(pl.col("trading_date") == sessions[6])
    assert seventh.row(0, named=True)["symbol"] == "BBB"
    assert seventh.row(0, named=True)["return_pct"] == round((47.0 / 50.4 - 1) * 100, 4)


def test_gaps(small_lake):
    out = _run("gaps", small_lake)
    _, sessions = small_lake
    assert out.select("trading_date", "symbol", "direction").rows() == [
        (sessions[4], "AAA", "up"),
        (sessions[6], "BBB", "down"),
    ]
    assert out.get_column("gap_pct").to_list() == [
        round((103 / 99 - 1) * 100, 4),
        round((48 / 50.4 - 1) * 100, 4),
    ]


def test_volume_spikes(small_lake):
    out = _run("volume_spikes", small_lake)
    _, sessions = small_lake
    assert out.rows() == [(sessions[7], "AAA", 5000, 1000.0, 5.0)]


def test_coverage(small_lake, us):
    out = _run("coverage", small_lake)
    _, sessions = small_lake
    assert out.select("trading_date", "symbol", "bars", "expected_bars", "missing_bars").rows() == [
        (sessions[0], "AAA", 78, 78, 0),
        (sessions[0], "BBB", 70, 78, 8),
        (sessions[0], "CCC", 78, 78, 0),
        (sessions[1], "AAA", 78, 78, 0),
        (sessions[1], "BBB", 78, 78, 0),
        (sessions[1], "CCC", 0, 78, 78),
    ]
    first, missing = out.row(0, named=True), out.row(5, named=True)
    open_, close = us.session_bounds(sessions[0])
    assert first["first_bar"] == open_
    assert first["last_bar"] == close - dt.timedelta(minutes=5)
    assert missing["first_bar"] is None and missing["last_bar"] is None


# DuckDB (or Athena) only: a saved query must run on both, so it uses neither's extensions.
NOT_COMMON = {
    "'::' casts (DuckDB, PostgreSQL)": r"::",
    "read_parquet (DuckDB)": r"(?i)read_parquet",
    "QUALIFY (DuckDB)": r"(?i)\bqualify\b",
    "ILIKE (DuckDB)": r"(?i)\bilike\b",
    "GROUP BY ALL (DuckDB)": r"(?i)group\s+by\s+all",
    "SELECT * EXCLUDE (DuckDB)": r"(?i)\bexclude\b",
    "integer division // (DuckDB)": r"//",
    "a named WINDOW clause (not in every Athena engine)": r"(?i)\bwindow\s+\w+\s+as\b",
    "double-quoted strings": r"=\s*\"",
    "UNNEST/approx_* (Trino only)": r"(?i)\b(unnest|approx_\w+)\b",
}


@pytest.mark.parametrize("name", sorted(saved_queries()))
def test_queries_keep_to_the_sql_athena_and_duckdb_share(name):
    text = re.sub(r"--[^\n]*", "", saved_queries()[name])
    found = [what for what, pattern in NOT_COMMON.items() if re.search(pattern, text)]
    assert not found, f"{name}.sql uses {found}"
    assert re.findall(r"\bFROM\s+(\w+)", text, flags=re.I)  # reads tables by their Glue names


def test_the_lake_query_the_demo_suggests_runs_as_printed(small_lake, tmp_path, monkeypatch):
    """`make demo` ends by suggesting a saved lake query: the command it prints runs (in a
    new process, as the user runs it) and answers the movers of the lake's last sessions."""
    from finance_assets.demo import lake_query_command

    root, _ = small_lake
    monkeypatch.chdir(root.parent)
    command = lake_query_command(str(root), "us")
    assert command[command.index("--lake") + 1] == root.name  # shown from the working folder
    done = subprocess.run(
        [sys.executable, *command[1:]], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "return_pct" in done.stdout and "AAA" in done.stdout, done.stdout
    assert "Warning" not in done.stderr, done.stderr
