"""IO round trips against the real PostgreSQL and a temp lake / raw zone."""

import datetime as dt
from zoneinfo import ZoneInfo

import polars as pl
import psycopg
import pytest

from finance_assets.lib.io import lake, postgres
from finance_assets.lib.io.lake_warehouse import Stores
from finance_assets.lib.providers.base import BarRequest
from finance_assets.lib.schema import BAR_KEY, BAR_SCHEMA, conform
from finance_assets.providers.simulated_market import SimulatedMarket

NY = ZoneInfo("America/New_York")


def _day(d: int) -> tuple[dt.datetime, dt.datetime]:
    return dt.datetime(2025, 11, d, tzinfo=NY), dt.datetime(2025, 11, d + 1, tzinfo=NY)


@pytest.fixture(scope="module")
def week(us) -> pl.DataFrame:
    """Clean bars of Mon 24 .. Wed 26 Nov 2025 for two symbols."""
    start, end = _day(24)[0], _day(26)[1]
    bars = SimulatedMarket().bars(BarRequest(us, ["AAPL", "MSFT"], "5min", start, end))
    return conform(
        bars.with_columns(
            adj_close=pl.lit(None, pl.Float64),
            currency=pl.lit("USD"),
            source=pl.lit("simulated"),
            ingested_at=pl.lit(dt.datetime(2025, 11, 27, tzinfo=dt.UTC)),
        ),
        BAR_SCHEMA,
    )


def _in(df: pl.DataFrame, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    return df.filter(
        pl.col("ts").is_between(start.astimezone(dt.UTC), end.astimezone(dt.UTC), closed="left")
    )


def _count(url: str, table: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# --- PostgreSQL ------------------------------------------------------------------------------


def test_postgres_replace_window_round_trip_and_idempotence(pg_url, week):
    start, end = _day(24)[0], _day(26)[1]
    table = postgres.WindowTable("t_pg", "bars_5min")
    args = dict(primary_key=BAR_KEY)
    assert postgres.replace_window(pg_url, week, table, start=start, end=end, **args) == 0
    back = postgres.read_window(pg_url, table, start=start, end=end)
    assert back.sort("symbol", "ts").equals(week.sort("symbol", "ts"))
    # Re-running never duplicates: the window is replaced.
    assert postgres.replace_window(pg_url, week, table, start=start, end=end, **args) == week.height
    assert _count(pg_url, "t_pg.bars_5min") == week.height
    # Replacing one day (a partition of a range) touches only that day.
    tuesday = _day(25)
    changed = _in(week, *tuesday).with_columns(pl.col("close") * 0 + 1.0)
    deleted = postgres.replace_window(
        pg_url, changed, table, start=tuesday[0], end=tuesday[1], **args
    )
    assert deleted == changed.height
    assert _count(pg_url, "t_pg.bars_5min") == week.height
    back = postgres.read_window(pg_url, table, start=start, end=end)
    assert back.filter(pl.col("close") == 1.0).height == changed.height


def test_postgres_failure_mid_write_keeps_the_previous_rows(pg_url, week):
    start, end = _day(24)[0], _day(26)[1]
    table = postgres.WindowTable("t_fail", "bars_5min")
    args = dict(start=start, end=end, primary_key=BAR_KEY)
    postgres.replace_window(pg_url, week, table, **args)
    # The second half repeats a key: COPY fails part-way, after the window was deleted.
    broken = pl.concat([week, week.tail(1)])
    with pytest.raises(Exception, match="duplicate key"):
        postgres.replace_window(pg_url, broken, table, **args)
    back = postgres.read_window(pg_url, table, start=start, end=end)
    assert back.sort("symbol", "ts").equals(week.sort("symbol", "ts"))


def test_postgres_refuses_rows_outside_the_window(pg_url, week):
    start, end = _day(25)
    with pytest.raises(ValueError, match="outside the window"):
        postgres.replace_window(
            pg_url, week, postgres.WindowTable("t_out", "bars"), start=start, end=end
        )


def test_postgres_scope_shares_a_table_between_assets(pg_url):
    start, end = _day(25)
    ts = dt.datetime(2025, 11, 25, 15, tzinfo=dt.UTC)
    rows = lambda asset, n: pl.DataFrame(  # noqa: E731
        {"asset": [asset] * n, "partition_ts": [ts] * n, "reason": ["r"] * n}
    ).with_columns(pl.col("partition_ts").dt.cast_time_unit("us"))

    def of(asset: str) -> postgres.WindowTable:
        return postgres.WindowTable("t_scope", "quarantine", "partition_ts", {"asset": asset})

    postgres.replace_window(pg_url, rows("bars_5min", 3), of("bars_5min"), start=start, end=end)
    postgres.replace_window(pg_url, rows("daily_bars", 2), of("daily_bars"), start=start, end=end)
    postgres.replace_window(pg_url, rows("bars_5min", 1), of("bars_5min"), start=start, end=end)
    assert _count(pg_url, "t_scope.quarantine") == 3


def test_postgres_read_of_a_missing_table_is_empty(pg_url):
    start, end = _day(25)
    missing = postgres.WindowTable("nowhere", "none")
    assert postgres.read_window(pg_url, missing, start=start, end=end).is_empty()


def test_compare_reads_every_day_over_one_connection(pg_url, week, tmp_path, monkeypatch):
    start, end = _day(24)[0], _day(26)[1]
    both = Stores(tmp_path, pg_url, postgres.WindowTable("t_compare", "bars_5min"), NY)
    both.write(week, start=start, end=end, primary_key=BAR_KEY)
    opened = []
    connect = postgres.connect

    def counted(url, **kwargs):
        opened.append(kwargs)
        return connect(url, **kwargs)

    monkeypatch.setattr(postgres, "connect", counted)
    keys = ["24", "25", "26"]
    starts = [_day(d)[0] for d in (24, 25, 26)]
    compared = both.compare(start, end, starts=starts, keys=keys)
    assert (compared.lake_rows, compared.warehouse_rows) == (week.height, week.height)
    assert compared.differing == {}
    assert len(opened) == 1  # three days, one connection
    # Each day still reads its own rows: a row changed on the 25th is named there alone.
    with psycopg.connect(pg_url) as conn:
        conn.execute(
            "UPDATE t_compare.bars_5min SET volume = volume + 1 WHERE ts = %s",
            [dt.datetime(2025, 11, 25, 10, 0, tzinfo=NY)],
        )
    compared = both.compare(start, end, starts=starts, keys=keys)
    assert list(compared.differing) == ["25"]
    assert compared.differing["25"]["only_in_warehouse"] == 2
    # No table yet: every day reads empty from the warehouse, after one look.
    opened.clear()
    missing = Stores(tmp_path, pg_url, postgres.WindowTable("t_compare", "none"), NY)
    compared = missing.compare(start, end, starts=starts, keys=keys)
    assert (compared.lake_rows, compared.warehouse_rows) == (week.height, 0)
    assert list(compared.differing) == keys and len(opened) == 1


def test_a_window_reader_holds_no_transaction_between_reads(pg_url, week):
    start, end = _day(24)[0], _day(26)[1]
    table = postgres.WindowTable("t_reader", "bars_5min")
    postgres.replace_window(pg_url, week, table, start=start, end=end, primary_key=BAR_KEY)
    with postgres.window_reader(pg_url, table) as reader:
        reader.cursor.execute("SELECT pg_backend_pid()")
        pid = reader.cursor.fetchone()[0]
        for d in (24, 25):
            day = reader.read(*_day(d))
            assert day.sort("symbol", "ts").equals(_in(week, *_day(d)).sort("symbol", "ts"))
            with psycopg.connect(pg_url) as conn:
                # Not "idle in transaction": the reader keeps no lock on the table, and a
                # concurrent ALTER TABLE (a new column) need not wait for the comparison.
                state = "SELECT state FROM pg_stat_activity WHERE pid = %s"
                assert conn.execute(state, [pid]).fetchone()[0] == "idle"
                conn.execute("LOCK TABLE t_reader.bars_5min IN ACCESS EXCLUSIVE MODE NOWAIT")


# --- Parquet lake ----------------------------------------------------------------------------


def test_lake_writes_one_sorted_file_per_day_and_reads_ranges(tmp_path, week):
    start, end = _day(24)[0], _day(26)[1]
    files = lake.stage_window(tmp_path, week, start=start, end=end, tz=NY).publish()
    assert [f.name for f in files] == [f"dt=2025-11-{d}/{lake.LAKE_FILE}" for d in (24, 25, 26)]
    one = pl.read_parquet(tmp_path / files[1].name)
    assert one.equals(one.sort("symbol", "ts"))
    back = lake.read_window(tmp_path, start=start, end=end, tz=NY)
    assert back.sort("symbol", "ts").equals(week.sort("symbol", "ts"))
    assert lake.read_window(tmp_path, start=_day(20)[0], end=_day(21)[1], tz=NY) is None


def test_lake_rewrites_only_the_window_inside_a_day(tmp_path, week):
    start, end = _day(24)[0], _day(26)[1]
    lake.stage_window(tmp_path, week, start=start, end=end, tz=NY).publish()
    w_start = dt.datetime(2025, 11, 25, 10, 0, tzinfo=NY)
    w_end = dt.datetime(2025, 11, 25, 10, 5, tzinfo=NY)
    window = _in(week, w_start, w_end).with_columns(pl.col("volume") * 0 + 7)
    assert window.height == 2
    lake.stage_window(tmp_path, window, start=w_start, end=w_end, tz=NY).publish()
    back = lake.read_window(tmp_path, start=start, end=end, tz=NY)
    assert back.height == week.height
    assert back.filter(pl.col("volume") == 7).height == 2
    # An empty result for a whole day removes that day's file.
    lake.stage_window(tmp_path, week.clear(), start=_day(26)[0], end=_day(26)[1], tz=NY).publish()
    assert not (tmp_path / "dt=2025-11-26").joinpath(lake.LAKE_FILE).exists()


def test_raw_zone_keeps_bodies_as_received_and_drops_superseded(tmp_path, us):
    sim = SimulatedMarket()
    start, end = _day(24)[0], _day(26)[1]
    first = sim.fetch_bars(us, ["AAPL"], "5min", start, end)
    lake.write_payloads(tmp_path, first, start, end, NY)
    stored = list(tmp_path.glob("dt=2025-11-24/*.json"))
    body = [p for p in stored if not p.name.endswith(".meta.json")]
    assert len(body) == 1 and body[0].read_bytes() == first[0].body
    # A re-fetch of one day: the wide payload stays (it still covers the other days).
    tuesday = _day(25)
    second = SimulatedMarket(clock=lambda: dt.datetime(2030, 1, 1, tzinfo=dt.UTC)).fetch_bars(
        us, ["AAPL"], "5min", *tuesday
    )
    lake.write_payloads(tmp_path, second, *tuesday, NY)
    assert len(lake.read_payloads(tmp_path, *tuesday)) == 2
    # Re-fetching the whole range supersedes both.
    third = SimulatedMarket(clock=lambda: dt.datetime(2031, 1, 1, tzinfo=dt.UTC)).fetch_bars(
        us, ["AAPL"], "5min", start, end
    )
    lake.write_payloads(tmp_path, third, start, end, NY)
    again = lake.read_payloads(tmp_path, start, end)
    assert [p.payload_id for p in again] == [third[0].payload_id]
    assert again[0].body == third[0].body and again[0].request == third[0].request
