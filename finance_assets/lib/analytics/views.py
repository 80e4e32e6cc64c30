"""BI-ready views in each market's PostgreSQL schema, for QuickSight, Power BI, Grafana or
Metabase to point at: `CREATE OR REPLACE VIEW` in one transaction, so creating them again is a
no-op and a BI query never sees one missing. The tables they read are created (empty, with the
IO manager's DDL) when a market has not written them yet, so the views exist from day one."""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl
from psycopg import sql

from finance_assets.lib import social, transforms
from finance_assets.lib.analytics.metrics import (
    MIN_OBSERVATIONS,
    TRADING_DAYS_PER_YEAR,
    UNUSUAL_VOLUME_Z,
    WINDOW,
)
from finance_assets.lib.io import postgres
from finance_assets.lib.schema import DAILY_SUMMARY_KEY, DAILY_SUMMARY_SCHEMA

# The read-only role of the dashboards (deployment/superset/): granted the views when it exists.
BI_READER = "bi_reader"

# The tables the views read: (schema, primary key), as their assets write them.
SOURCES: Mapping[str, tuple[Mapping[str, pl.DataType], list[str]]] = {
    "daily_summary": (DAILY_SUMMARY_SCHEMA, DAILY_SUMMARY_KEY),
    "stock_sentiment_daily": (social.STOCK_SENTIMENT_SCHEMA, social.STOCK_SENTIMENT_KEY),
    "price_alerts": (transforms.PRICE_ALERT_SCHEMA, transforms.PRICE_ALERT_KEY),
}

# {t} is the market's schema-qualified table, {tz} the exchange's time zone (a literal).
VIEWS: Mapping[str, str] = {
    "bi_daily_performance": """
SELECT trading_date, symbol, open, high, low, close, volume, vwap, prev_close,
       return_pct, open_to_close_pct, range_pct,
       (close / NULLIF(vwap, 0) - 1) * 100 AS vwap_gap_pct,
       (open / NULLIF(prev_close, 0) - 1) * 100 AS gap_pct,
       bar_count
FROM {daily_summary}""",
    "bi_volatility_volume": f"""
SELECT trading_date, symbol, return_pct, volume,
       CASE WHEN count(return_pct) OVER last_n >= {MIN_OBSERVATIONS}
            THEN stddev_samp(return_pct) OVER last_n END AS volatility_20d_pct,
       CASE WHEN count(return_pct) OVER last_n >= {MIN_OBSERVATIONS}
            THEN stddev_samp(return_pct) OVER last_n * sqrt({TRADING_DAYS_PER_YEAR})
            END AS volatility_20d_annualised_pct,
       CASE WHEN count(volume) OVER prior_n >= {MIN_OBSERVATIONS}
            THEN (volume - avg(volume) OVER prior_n)
                 / NULLIF(stddev_samp(volume) OVER prior_n, 0) END AS volume_zscore,
       COALESCE(count(volume) OVER prior_n >= {MIN_OBSERVATIONS}
                AND (volume - avg(volume) OVER prior_n)
                    / NULLIF(stddev_samp(volume) OVER prior_n, 0) >= {UNUSUAL_VOLUME_Z},
                false) AS unusual_volume
FROM {{daily_summary}}
WINDOW last_n AS (PARTITION BY symbol ORDER BY trading_date
                  ROWS BETWEEN {WINDOW - 1} PRECEDING AND CURRENT ROW),
       prior_n AS (PARTITION BY symbol ORDER BY trading_date
                   ROWS BETWEEN {WINDOW} PRECEDING AND 1 PRECEDING)""",
    "bi_stock_sentiment": """
SELECT trading_date, symbol, close, return_pct, open_to_close_pct, volume,
       post_count, mean_compound, weighted_compound, share_positive, share_negative,
       engagement,
       CASE WHEN post_count IS NULL OR post_count = 0 THEN NULL
            WHEN weighted_compound >= 0.05 THEN 'positive'
            WHEN weighted_compound <= -0.05 THEN 'negative'
            ELSE 'neutral' END AS sentiment
FROM {stock_sentiment_daily}""",
    "bi_alerts_per_day": """
SELECT (ts AT TIME ZONE {tz})::date AS trading_date, symbol, kind, direction,
       count(*) AS alerts, max(abs(change_pct)) AS max_abs_change_pct,
       min(ts) AS first_alert_at, max(ts) AS last_alert_at
FROM {price_alerts}
GROUP BY 1, 2, 3, 4""",
}

DESCRIPTIONS: Mapping[str, str] = {
    "bi_daily_performance": "per symbol and session: OHLC, volume, VWAP, return %, "
    "open-to-close %, high-low range %, close against VWAP % (vwap_gap_pct), opening gap %",
    "bi_volatility_volume": f"per symbol and session: {WINDOW}-session volatility of the "
    f"daily return (and annualised), volume z-score against the previous {WINDOW} sessions, "
    f"unusual_volume at z ≥ {UNUSUAL_VOLUME_Z:g} (null below {MIN_OBSERVATIONS} observations)",
    "bi_stock_sentiment": "per symbol and session: close and return beside the day's post "
    "count and sentiment (positive / neutral / negative at ±0.05)",
    "bi_alerts_per_day": "price alerts per exchange-local day, symbol, kind and direction: "
    "count, largest move %, first and last alert time",
}


def view_statements(schema: str, timezone: str) -> dict[str, sql.Composed]:
    """`CREATE OR REPLACE VIEW` per view, names quoted, the time zone a literal."""
    tables = {name: sql.Identifier(schema, name) for name in SOURCES}
    out = {}
    for view, body in VIEWS.items():
        out[view] = sql.SQL("CREATE OR REPLACE VIEW {} AS {}").format(
            sql.Identifier(schema, view),
            sql.SQL(body).format(tz=sql.Literal(timezone), **tables),
        )
    return out


def create_views(url: str, schema: str, timezone: str, reader: str = BI_READER) -> list[str]:
    """Create or replace every view of `schema` (and the tables they read, when missing) in one
    transaction. Returns the views' qualified names.

    Where the role `reader` exists (the dashboards' read-only user, made by
    deployment/superset/provision.py), it gets USAGE on the schema and SELECT on these views
    only: a view first made after Superset's provisioning is readable at once."""
    with postgres.connect(url) as conn, conn.cursor() as cur:
        for table, (columns, key) in SOURCES.items():
            postgres.ensure_table(cur, schema, table, columns, primary_key=key)
        for statement in view_statements(schema, timezone).values():
            cur.execute(statement.as_string(None))
        exists = sql.SQL("SELECT 1 FROM pg_roles WHERE rolname = {}").format(sql.Literal(reader))
        cur.execute(exists.as_string(None))
        if cur.fetchone():
            role = sql.Identifier(reader)
            usage = sql.SQL("GRANT USAGE ON SCHEMA {} TO {}")
            grants = [usage.format(sql.Identifier(schema), role)]
            grants += [
                sql.SQL("GRANT SELECT ON {} TO {}").format(sql.Identifier(schema, view), role)
                for view in VIEWS
            ]
            for grant in grants:
                cur.execute(grant.as_string(None))
        conn.commit()
    return [f"{schema}.{view}" for view in VIEWS]
