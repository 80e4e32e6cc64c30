"""The Spark job's own parts: reading the raw zone, spreading the work over the executors,
writing Parquet by company and day, and the Pipes reporting.

The rules are not here: each executor runs the polars path's functions
(`lib.transforms.clean_payloads`, `lib.answers.kept_spans`, `lib.transforms.daily_summary`) on
the Arrow batches Spark hands it (`groupBy(...).applyInArrow`), so the two engines cannot
disagree. `spark/bars_job.py` is the spark-submit entry; the cluster gets this package as a
wheel (`resources/spark_pipes.py`).
"""
