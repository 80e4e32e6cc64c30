-- Coverage: 5-minute bars per symbol and session against the most any symbol had that session
-- (an early close has fewer for all); a symbol with no bar on a session shows 0. Plain SQL
-- common to Athena (Trino) and DuckDB: no dialect extension.
WITH per_day AS (
    SELECT
        CAST(dt AS date) AS trading_date,
        symbol,
        COUNT(*) AS bars,
        MIN(ts) AS first_bar,
        MAX(ts) AS last_bar
    FROM bars_5min
    GROUP BY CAST(dt AS date), symbol
),
days AS (SELECT DISTINCT trading_date FROM per_day),
symbols AS (SELECT DISTINCT symbol FROM per_day),
grid AS (
    SELECT d.trading_date, s.symbol
    FROM days d CROSS JOIN symbols s
)
SELECT
    g.trading_date,
    g.symbol,
    COALESCE(p.bars, 0) AS bars,
    MAX(COALESCE(p.bars, 0)) OVER (PARTITION BY g.trading_date) AS expected_bars,
    MAX(COALESCE(p.bars, 0)) OVER (PARTITION BY g.trading_date) - COALESCE(p.bars, 0)
        AS missing_bars,
    p.first_bar,
    p.last_bar
FROM grid g
LEFT JOIN per_day p ON p.trading_date = g.trading_date AND p.symbol = g.symbol
ORDER BY g.trading_date, g.symbol
