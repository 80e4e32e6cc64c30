"""`<market>/bars_by_symbol`: the 5-minute bars of the raw zone cleaned by the PySpark job
(`spark/bars_job.py`) into Parquet partitioned by symbol and date, for users who outgrow one
machine. Where Spark runs (local spark-submit, EMR, EMR Serverless) is the `spark_pipes`
resource's choice; the job reports its counts back through Dagster Pipes."""

import datetime as dt

import dagster as dg

from finance_assets.defs.common.assets import market_asset, step_tags
from finance_assets.defs.common.partitions import daily_partitions, refuse_invalid_partitions
from finance_assets.lib.markets import Market
from finance_assets.resources.spark_pipes import SparkPipesResource

ASSET = "bars_by_symbol"


def build_spark_assets(market: Market) -> list[dg.AssetsDefinition]:
    @dg.asset(
        key=[market.key, ASSET],
        # Reads the raw zone the 5-minute quotes asset writes, day by day.
        deps=[
            dg.AssetDep(
                dg.AssetKey([market.key, "raw_intraday_quotes"]),
                partition_mapping=dg.TimeWindowPartitionMapping(),
            )
        ],
        **market_asset(market, "market", daily_partitions(market), kinds={"spark", "parquet"}),
        # Uploads the job's files and starts it; the job itself runs under the Spark role.
        op_tags=step_tags("transform"),
        description=(
            f"Clean 5-minute bars of {market.name} made by the PySpark job `spark/bars_job.py` "
            "from the raw zone: the canonical bar schema and the same validation and quarantine "
            "reasons as `bars_5min`, written as Parquet partitioned by company and day "
            f"(`spark/{market.key}/{ASSET}/symbol=AAPL/date=YYYY-MM-DD/`, TIMESTAMP_MICROS), "
            f"with `spark/{market.key}/quarantine/asset={ASSET}/` and "
            f"`spark/{market.key}/daily_summary/`. Reads every raw format (Twelve Data, Alpha "
            "Vantage, Yahoo chart). A partition range runs as one Spark application and "
            "replaces its days whole."
        ),
    )
    def _bars_by_symbol(
        context: dg.AssetExecutionContext, spark_pipes: SparkPipesResource
    ) -> dg.MaterializeResult:
        refuse_invalid_partitions(context, market)
        window = context.partition_time_window
        first = window.start.astimezone(market.tz).date()
        last = (window.end - dt.timedelta(microseconds=1)).astimezone(market.tz).date()
        args = spark_pipes.job_args(market.key, first.isoformat(), last.isoformat())
        context.log.info(f"spark mode {spark_pipes.mode}: bars_job.py {' '.join(args)}")
        return spark_pipes.run(context, args).get_materialize_result()

    return [_bars_by_symbol]
