"""spark-submit entry point of the Spark job (`finance_assets.spark.job`):

    spark-submit spark/bars_job.py --raw data/raw/us/raw_intraday_quotes --out data/spark/us \
        --market us --start 2026-11-16 --end 2026-11-20

The job and the rules it runs come from the `finance_assets` package: installed on the cluster
from the wheel `resources/spark_pipes.py` builds at launch (EMR: the bootstrap action; EMR
Serverless: `--py-files`), locally the Python that launches it. Nothing else is shipped.
"""

from finance_assets.spark.job import ASSETS, SPARK_CONF, main, parse_args, run

__all__ = ["ASSETS", "SPARK_CONF", "main", "parse_args", "run"]

if __name__ == "__main__":
    main()
