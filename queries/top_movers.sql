-- Top movers: the three largest moves of each session, close against the previous session's
-- close (daily bars). Plain SQL common to Athena (Trino) and DuckDB: no dialect extension.
WITH moves AS (
    SELECT
        CAST(dt AS date) AS trading_date,
        symbol,
        close,
        LAG(close) OVER (PARTITION BY symbol ORDER BY ts) AS prev_close
    FROM daily_bars
),
ranked AS (
    SELECT
        trading_date,
        symbol,
        prev_close,
        close,
        ROUND((close / prev_close - 1) * 100, 4) AS return_pct,
        ROW_NUMBER() OVER (
            PARTITION BY trading_date
            ORDER BY ABS(close / prev_close - 1) DESC, symbol
        ) AS mover_rank
    FROM moves
    WHERE prev_close IS NOT NULL
)
SELECT trading_date, mover_rank, symbol, prev_close, close, return_pct
FROM ranked
WHERE mover_rank <= 3
ORDER BY trading_date, mover_rank
