-- Volume spikes: sessions whose volume is at least twice the symbol's average over its
-- previous 20 sessions (at least 5 of them), daily bars. Plain SQL common to Athena (Trino)
-- and DuckDB: no dialect extension.
WITH volumes AS (
    SELECT
        CAST(dt AS date) AS trading_date,
        symbol,
        volume,
        AVG(CAST(volume AS double)) OVER (
            PARTITION BY symbol ORDER BY ts ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING
        ) AS avg_prior_volume,
        COUNT(volume) OVER (
            PARTITION BY symbol ORDER BY ts ROWS BETWEEN 20 PRECEDING AND 1 PRECEDING
        ) AS prior_sessions
    FROM daily_bars
)
SELECT
    trading_date,
    symbol,
    volume,
    ROUND(avg_prior_volume, 1) AS avg_prior_volume,
    ROUND(volume / avg_prior_volume, 3) AS volume_ratio
FROM volumes
WHERE prior_sessions >= 5 AND volume >= 2 * avg_prior_volume
ORDER BY trading_date, symbol
