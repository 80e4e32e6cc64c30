-- Bars as known then: each daily bar as the platform knew it at an instant (the one parameter,
-- an ISO 8601 instant with its offset), so a backtest sees only what was known. Reads
-- `daily_bars_versions`: every version of every bar the raw zone still holds payloads for, and
-- the interval it was current in (`known_from` inclusive, `known_until` exclusive, null while
-- current), made from the raw zone through the clean step's own rules (`lib/as_of.py`; the
-- command line builds it: `lake_queries bars_as_of --raw ... --start ... --end ... --at ...`).
-- No row: nothing was known then. Plain SQL common to Athena (Trino) and DuckDB.
WITH asked AS (SELECT CAST(? AS TIMESTAMP WITH TIME ZONE) AS at)
SELECT
    v.symbol,
    v.ts,
    v.open,
    v.high,
    v.low,
    v.close,
    v.adj_close,
    v.volume,
    v.currency,
    v.source,
    v.known_from
FROM daily_bars_versions v
CROSS JOIN asked a
WHERE v.known_from <= a.at AND (v.known_until IS NULL OR v.known_until > a.at)
ORDER BY v.symbol, v.ts
