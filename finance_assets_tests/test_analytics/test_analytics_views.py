"""The BI views: created twice without error (and on a schema with no tables yet), and their
rows equal the same numbers computed directly over the tables (polars, `lib/analytics`)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl
import psycopg
import pytest

from finance_assets.lib import social, transforms
from finance_assets.lib.analytics import metrics, views
from finance_assets.lib.io import postgres
from finance_assets.lib.schema import DAILY_SUMMARY_SCHEMA, conform
from finance_assets_tests.conftest import fresh_database

TZ = "America/New_York"


@pytest.fixture
def db(pg_server_url):
    with fresh_database(pg_server_url, "finance_views") as url:
        yield url


def _summary(us, sessions: int = 30) -> pl.DataFrame:
    rng = np.random.default_rng(11)
    days = us.sessions(dt.date(2026, 9, 1), dt.date(2026, 12, 31))[:sessions]
    rows = []
    for symbol in us.universe:
        close = 100.0
        for i, day in enumerate(days):
            prev, close = close, close * float(np.exp(rng.normal(0, 0.02)))
            open_ = prev * float(np.exp(rng.normal(0, 0.005)))
            volume = int(rng.integers(900_000, 1_100_000)) * (4 if i == 25 else 1)
            rows.append(
                {
                    "trading_date": day,
                    "symbol": symbol,
                    "open": open_,
                    "high": max(open_, close) * 1.01,
                    "low": min(open_, close) * 0.99,
                    "close": close,
                    "volume": volume,
                    "vwap": (open_ + close) / 2,
                    "open_to_close_pct": (close / open_ - 1) * 100,
                    "range_pct": (max(open_, close) * 1.01 - min(open_, close) * 0.99)
                    / open_
                    * 100,
                    "return_pct": None if i == 0 else (close / prev - 1) * 100,
                    "prev_close": None if i == 0 else prev,
                    "bar_count": 78,
                }
            )
    return conform(pl.DataFrame(rows), DAILY_SUMMARY_SCHEMA)


def _write(url, frame, table, time_column, key):
    lo, hi = frame.get_column(time_column).min(), frame.get_column(time_column).max()
    hi = hi + dt.timedelta(days=1) if isinstance(hi, dt.date) else hi + dt.timedelta(seconds=1)
    postgres.replace_window(
        url,
        frame,
        postgres.WindowTable("us", table, time_column),
        start=lo,
        end=hi,
        primary_key=key,
    )


def _view(url, name, order) -> pl.DataFrame:
    with psycopg.connect(url) as conn:
        cur = conn.execute(f"SELECT * FROM us.{name} ORDER BY {order}")
        columns = [c.name for c in cur.description]
        return pl.DataFrame(cur.fetchall(), schema=columns, orient="row")


def test_views_exist_before_any_table_and_are_recreated_without_error(db):
    assert views.create_views(db, "us", TZ) == [f"us.{v}" for v in views.VIEWS]
    assert views.create_views(db, "us", TZ) == [f"us.{v}" for v in views.VIEWS]
    for view in views.VIEWS:
        assert _view(db, view, "1").is_empty()


def test_view_rows_match_a_direct_computation(db, us):
    summary = _summary(us)
    _write(db, summary, "daily_summary", "trading_date", ["trading_date", "symbol"])
    sentiment = summary.filter(pl.col("trading_date") >= summary["trading_date"][20]).with_columns(
        post_count=pl.lit(4, pl.Int64),
        mean_compound=pl.lit(0.1),
        weighted_compound=(pl.col("return_pct") / 10).clip(-1, 1),
        share_positive=pl.lit(0.5),
        share_negative=pl.lit(0.25),
        engagement=pl.lit(40, pl.Int64),
        top_posts=pl.lit("[]"),
    )
    sentiment = conform(sentiment, social.STOCK_SENTIMENT_SCHEMA)
    _write(db, sentiment, "stock_sentiment_daily", "trading_date", social.STOCK_SENTIMENT_KEY)
    day = summary["trading_date"][25]
    open_, _ = us.session_bounds(day)
    alerts = pl.DataFrame(
        {
            # 20:30 in New York is 01:30 UTC the next day: counted on the local day.
            "ts": [open_, open_ + dt.timedelta(minutes=5), open_ + dt.timedelta(hours=11)],
            "symbol": ["AAPL", "AAPL", "MSFT"],
            "kind": ["vs_prev_close", "vs_prev_close", "vs_prev_bar"],
            "direction": ["up", "up", "down"],
            "price": [1.0, 1.0, 1.0],
            "reference": [1.0, 1.0, 1.0],
            "change_pct": [1.2, 2.5, -1.1],
            "threshold_pct": [1.0, 1.0, 1.0],
        },
        schema=transforms.PRICE_ALERT_SCHEMA,
    )
    _write(db, alerts, "price_alerts", "ts", transforms.PRICE_ALERT_KEY)
    views.create_views(db, "us", TZ)
    views.create_views(db, "us", TZ)  # a second time over data: still fine

    # Daily performance: the table's rows with the VWAP gap and the opening gap.
    perf = _view(db, "bi_daily_performance", "trading_date, symbol")
    expected = summary.sort("trading_date", "symbol").with_columns(
        vwap_gap_pct=(pl.col("close") / pl.col("vwap") - 1) * 100,
        gap_pct=(pl.col("open") / pl.col("prev_close") - 1) * 100,
    )
    assert perf.height == summary.height
    for column in ("return_pct", "range_pct", "vwap_gap_pct", "gap_pct", "close"):
        np.testing.assert_allclose(
            perf.get_column(column).cast(pl.Float64).fill_null(np.nan).to_numpy(),
            expected.get_column(column).fill_null(np.nan).to_numpy(),
            rtol=1e-9,
        )

    # Rolling volatility and volume z-score against metrics.volume_zscores.
    vol = _view(db, "bi_volatility_volume", "symbol, trading_date")
    direct = metrics.volume_zscores(summary).sort("symbol", "trading_date")
    assert vol.height == direct.height
    for column in ("volatility_20d_pct", "volume_zscore"):
        got = vol.get_column(column).cast(pl.Float64).fill_null(np.nan).to_numpy()
        want = direct.get_column(column).fill_null(np.nan).to_numpy()
        np.testing.assert_allclose(got, want, rtol=1e-9)
    assert vol.get_column("unusual_volume").to_list() == direct["unusual_volume"].to_list()
    assert direct.filter(pl.col("unusual_volume")).height >= len(us.universe)  # the spike day
    assert vol.get_column("volume_zscore")[: metrics.MIN_OBSERVATIONS].is_null().all()

    # Stock x sentiment: the joined rows with a label.
    mood = _view(db, "bi_stock_sentiment", "trading_date, symbol")
    want = sentiment.sort("trading_date", "symbol")
    assert mood.height == want.height
    labels = [
        "positive" if w >= 0.05 else "negative" if w <= -0.05 else "neutral"
        for w in want.get_column("weighted_compound")
    ]
    assert mood.get_column("sentiment").to_list() == labels

    # Alerts per day: on the exchange's local day.
    per_day = _view(db, "bi_alerts_per_day", "trading_date, symbol, kind, direction")
    direct = metrics.alerts_per_day(alerts, TZ)
    assert per_day.select("trading_date", "symbol", "kind", "direction", "alerts").rows() == (
        direct.select("trading_date", "symbol", "kind", "direction", "alerts").rows()
    )
    assert per_day.get_column("trading_date").to_list() == [day, day]
    assert per_day.get_column("max_abs_change_pct").to_list() == [2.5, 1.1]


def test_the_read_only_role_gets_the_views_and_nothing_else(db):
    """Where the dashboards' role exists, creating the views grants it SELECT on them only."""
    import uuid

    role = f"bi_reader_{uuid.uuid4().hex[:8]}"
    views.create_views(db, "us", TZ, reader=role)  # no such role yet: nothing granted, no error
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
    try:
        views.create_views(db, "us", TZ, reader=role)
        info = psycopg.conninfo.conninfo_to_dict(db)
        info.update(user=role)
        info.pop("password", None)
        with psycopg.connect(**info) as conn:
            for view in views.VIEWS:
                assert conn.execute(f"SELECT count(*) FROM us.{view}").fetchone() == (0,)
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT count(*) FROM us.daily_summary")
    finally:
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')
