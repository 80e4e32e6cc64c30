"""The saved lake queries (`queries/*.sql`), run with DuckDB over the local lake.

The queries name the lake's tables as the Glue catalogue does (`daily_bars`, `bars_5min`, one
database per market) and keep to SQL that Athena (Trino) and DuckDB share: here each table is a
DuckDB view over the market's Parquet files (hive partitions, so `dt` is a column as in Glue).
DuckDB is a dev dependency (`pip install '.[dev]'`).

    python -m finance_assets.lib.analytics.lake_queries top_movers --lake data/lake --market us

"As known then" (`bars_as_of`) reads `<table>_versions`: every version of each bar the raw
zone holds payloads for, built here from the raw zone (`--raw`) over a window (`--start`,
`--end`) through the clean step's rules (`lib/as_of.py`); its one parameter is the instant
(`--at`).

    python -m finance_assets.lib.analytics.lake_queries bars_as_of --raw data/raw \
        --start 2026-11-16 --end 2026-11-20 --at 2026-11-18T22:00:00+00:00
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import polars as pl

from finance_assets.lib.io import lake

QUERIES = Path(__file__).resolve().parents[3] / "queries"
TABLES = ("daily_bars", "bars_5min")


def saved_queries(folder: Path = QUERIES) -> dict[str, str]:
    """name → SQL of every saved query."""
    return {path.stem: path.read_text() for path in sorted(folder.glob("*.sql"))}


def run_query(
    sql: str,
    lake_root: str | os.PathLike[str],
    market: str,
    *,
    versions: dict[str, pl.DataFrame] | None = None,
    parameters: list[object] | None = None,
) -> pl.DataFrame:
    """The query's rows over `<lake_root>/<market>/<table>/dt=*/part-0.parquet`, and over
    `versions` (table name -> frame: the bars' versions of `as_of.versions`), with the
    query's `?` parameters."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # timestamps read back as stored: UTC
        for name, frame in (versions or {}).items():
            con.register(name, frame)
        for table in TABLES:
            files = Path(lake_root) / market / table
            if not any(files.glob("dt=*/*.parquet")):
                continue
            # Days committed in the warehouse but not yet published: the files there are the
            # older ones, and a query over them would answer from them without saying so.
            pending = lake.pending_publishes(files)
            if pending:
                days = ", ".join(sorted({d for p in pending for d in p.days}))
                raise lake.PendingPublish(
                    f"{market}.{table}: {days} wait to be published in the lake (markers "
                    f"{files}/{lake.PENDING}*): its files there lag the warehouse; the next "
                    "write of the asset publishes them"
                )
            pattern = str(files / "dt=*" / "*.parquet").replace("'", "''")
            con.execute(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{pattern}', "
                "hive_partitioning = true)"
            )
        return con.sql(sql, params=parameters or None).pl()
    finally:
        con.close()


def raw_versions(raw_root: str, market_key: str, first: str, last: str) -> dict[str, pl.DataFrame]:
    """`<table>_versions` of each clean table, from the raw zone at `raw_root`, over the
    market's days `first`..`last` (YYYY-MM-DD, inclusive), with the clean assets' settings
    (`as_of.settings_from_env`)."""
    from finance_assets.lib import as_of

    markets, rate = as_of.settings_from_env()
    if market_key not in markets:
        raise ValueError(f"market {market_key!r} is not configured; known: {sorted(markets)}")
    market = markets[market_key]
    start, end = as_of.window_of(market, first, last)
    return {
        f"{table}_versions": as_of.versions(
            as_of.raw_store(raw_root, market_key, table),
            market,
            interval,
            asset=table,
            start=start,
            end=end,
            max_quarantine_rate=rate,
        )
        for table, (_, interval) in as_of.TABLES.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("query", choices=sorted(saved_queries()))
    parser.add_argument(
        "--lake", default=os.path.join(os.environ.get("FINANCE_DATA_DIR", "data"), "lake")
    )
    parser.add_argument("--market", default="us")
    parser.add_argument("--raw", help="the raw zone, for the `*_versions` tables (bars_as_of)")
    parser.add_argument("--start", help="with --raw: the first day of the versions, YYYY-MM-DD")
    parser.add_argument("--end", help="with --raw: the last day (inclusive), YYYY-MM-DD")
    parser.add_argument("--at", help="the instant of bars_as_of (ISO 8601 with its offset)")
    args = parser.parse_args(argv)
    sql = saved_queries()[args.query]
    versions, parameters = None, None
    try:
        if "?" in sql:
            if not (args.raw and args.start and args.end and args.at):
                raise ValueError(f"{args.query} needs --raw, --start, --end and --at")
            from finance_assets.lib.as_of import parse_instant

            parameters = [parse_instant(args.at).isoformat()]
        if args.raw:
            if not (args.start and args.end):
                raise ValueError("--raw needs --start and --end (the days to build versions of)")
            versions = raw_versions(args.raw, args.market, args.start, args.end)
    except ValueError as exc:
        parser.error(str(exc))
    rows = run_query(sql, args.lake, args.market, versions=versions, parameters=parameters)
    if rows.is_empty() and parameters:
        # An empty answer as of an instant says why, rather than a bare empty table.
        print(
            f"no row: nothing the raw zone at {args.raw} holds for {args.start}..{args.end} "
            f"had been received by {args.at} (or it held no bar)"
        )
        return
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=160):
        print(rows)


if __name__ == "__main__":
    main()
