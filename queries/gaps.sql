-- Opening gaps of at least 1 %: a session's open against the previous session's close
-- (daily bars). Plain SQL common to Athena (Trino) and DuckDB: no dialect extension.
WITH sessions AS (
    SELECT
        CAST(dt AS date) AS trading_date,
        symbol,
        open,
        LAG(close) OVER (PARTITION BY symbol ORDER BY ts) AS prev_close
    FROM daily_bars
)
SELECT
    trading_date,
    symbol,
    prev_close,
    open,
    ROUND((open / prev_close - 1) * 100, 4) AS gap_pct,
    CASE WHEN open > prev_close THEN 'up' ELSE 'down' END AS direction
FROM sessions
WHERE prev_close IS NOT NULL AND ABS(open / prev_close - 1) >= 0.01
ORDER BY trading_date, symbol
