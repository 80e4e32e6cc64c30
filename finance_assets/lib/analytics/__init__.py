"""Analytics over the warehouse and the lake, without Dagster: the daily report's numbers and
charts (`metrics`, `charts`, `report`), the BI views' SQL (`views`), the saved lake queries
(`lake_queries`), the next-session forecast and its walk-forward backtest (`forecast`), and
where report files are written (`publish`)."""
