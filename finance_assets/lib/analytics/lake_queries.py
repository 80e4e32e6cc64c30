"""The saved lake queries (`queries/*.sql`), run with DuckDB over the local lake.

The queries name the lake's tables as the Glue catalogue does (`daily_bars`, `bars_5min`, one
database per market) and keep to SQL that Athena (Trino) and DuckDB share: here each table is a
DuckDB view over the market's Parquet files (hive partitions, so `dt` is a column as in Glue).
DuckDB is a dev dependency (`pip install '.[dev]'`).

    python -m finance_assets.lib.analytics.lake_queries top_movers --lake data/lake --market us
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


def run_query(sql: str, lake_root: str | os.PathLike[str], market: str) -> pl.DataFrame:
    """The query's rows over `<lake_root>/<market>/<table>/dt=*/part-0.parquet`."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")  # timestamps read back as stored: UTC
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
        return con.sql(sql).pl()
    finally:
        con.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("query", choices=sorted(saved_queries()))
    parser.add_argument(
        "--lake", default=os.path.join(os.environ.get("FINANCE_DATA_DIR", "data"), "lake")
    )
    parser.add_argument("--market", default="us")
    args = parser.parse_args(argv)
    with pl.Config(tbl_rows=100, tbl_cols=20, tbl_width_chars=160):
        print(run_query(saved_queries()[args.query], args.lake, args.market))


if __name__ == "__main__":
    main()
