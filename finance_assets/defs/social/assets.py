"""Posts and sentiment, per market: posts about each company -> scored posts -> daily
sentiment -> joined with the day's prices."""

import datetime as dt
import functools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import dagster as dg
import polars as pl

from finance_assets.defs.common.assets import (
    fails_once_if_permanent,
    output_unless_failed,
    range_verdicts,
    raw_zone_payloads,
    unique_keys_check,
    warehouse_table,
    with_sessions_before,
)
from finance_assets.defs.common.automation import DAILY, HOURLY
from finance_assets.defs.common.partitions import daily_partitions, refuse_invalid_partitions
from finance_assets.lib import social
from finance_assets.lib.clock import HOURLY_FMT
from finance_assets.lib.io.managers import table_preview
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import RawPayload
from finance_assets.resources.posts import PostsResource


@functools.cache
def hourly_partitions(market: Market) -> dg.TimeWindowPartitionsDefinition:
    return dg.TimeWindowPartitionsDefinition(
        cron_schedule="0 * * * *",
        start=f"{market.intraday_start}-00:00",
        fmt=HOURLY_FMT,
        timezone=market.timezone,
    )


def _raw_posts(market: Market) -> dg.AssetsDefinition:
    @dg.asset(
        **raw_zone_payloads(
            market, "social", hourly_partitions(market), name="raw_posts", schedule=HOURLY
        ),
        description=(
            f"Recent posts about each company of {market.name} (its hashtag or cashtag, "
            "original posts in English), every search page kept exactly as received in the raw "
            f"zone (`raw/{market.key}/raw_posts/dt=YYYY-MM-DD/`)."
        ),
    )
    @fails_once_if_permanent
    def _raw(context: dg.AssetExecutionContext, posts: PostsResource) -> list[RawPayload]:
        refuse_invalid_partitions(context, market)
        window = context.partition_time_window
        source = posts.get_source()
        payloads = source.fetch_posts(market, market.universe, window.start, window.end)
        context.add_output_metadata(
            {"source": source.name, "pages": len(payloads), "companies": len(market.universe)}
        )
        return payloads

    return _raw


def _post_sentiment(market: Market) -> dg.AssetsDefinition:
    key = dg.AssetKey([market.key, "post_sentiment"])

    @dg.asset(
        ins={"raw_posts": dg.AssetIn([market.key, "raw_posts"])},
        **warehouse_table(
            market,
            "social",
            hourly_partitions(market),
            name="post_sentiment",
            partition_expr="created_at",
            primary_key=social.POST_SENTIMENT_KEY,
            schema=social.POST_SENTIMENT_SCHEMA,
            schedule=HOURLY,
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "scores_in_range",
                asset=key,
                blocking=True,
                description="every compound, pos, neu and neg score lies within [-1, 1]",
            ),
            dg.AssetCheckSpec(
                "unique_post_ids",
                asset=key,
                blocking=True,
                description="a post counts once per company, across pages and re-runs",
            ),
            dg.AssetCheckSpec(
                "every_post_usable",
                asset=key,
                description="every post received has what the pipeline needs (a creation time: "
                "X sends it only when `tweet.fields` asks for `created_at`); a WARN naming the "
                "count otherwise, never a silent drop",
            ),
        ],
        description=(
            f"One row per post about a company of {market.name}: cleaned text (URLs, mentions, "
            "control and invisible characters removed; emoji kept), VADER sentiment (compound, "
            f"pos, neu, neg) and engagement. Table `{market.key}.post_sentiment`."
        ),
    )
    def _scored(
        context: dg.AssetExecutionContext, raw_posts: list[RawPayload], posts: PostsResource
    ):
        window = context.partition_time_window
        parsed = social.parse_post_payloads(raw_posts)
        start, end = window.start.astimezone(dt.UTC), window.end.astimezone(dt.UTC)
        undated = parsed.filter(pl.col("created_at").is_null()).height
        received = parsed.filter((pl.col("created_at") >= start) & (pl.col("created_at") < end))
        if undated:
            context.log.warning(
                f"{undated} of {parsed.height} posts have no created_at (is `tweet.fields` "
                "asking for it?): they cannot be placed in a window and are not scored"
            )
        scored = social.score_posts(received, posts.scorer, posts.get_scorer())
        scores = pl.col("compound", "pos", "neu", "neg")
        out_of_range = scored.filter(pl.any_horizontal((scores < -1) | (scores > 1))).height
        duplicates = scored.height - scored.select("post_id", "symbol").n_unique()
        # Blocking as for bars: when a check fails, nothing is written and the step fails.
        yield from output_unless_failed(
            key,
            scored,
            [
                dg.AssetCheckResult(
                    check_name="scores_in_range",
                    passed=out_of_range == 0,
                    metadata={"failing_rows": out_of_range},
                ),
                dg.AssetCheckResult(
                    check_name="unique_post_ids",
                    passed=duplicates == 0,
                    metadata={"duplicates": duplicates},
                ),
                dg.AssetCheckResult(
                    check_name="every_post_usable",
                    passed=undated == 0,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={"posts_received": parsed.height, "posts_without_created_at": undated},
                ),
            ],
            {
                "posts_received": parsed.height,
                "posts_without_created_at": undated,
                "posts": scored.height,
                "companies": scored.get_column("symbol").n_unique(),
                "mean_compound": float(scored.get_column("compound").mean() or 0.0),
            },
            keys=context.partition_keys,
        )

    return _scored


def _daily_table(
    market: Market, name: str, primary_key: Sequence[str], schema: Mapping[str, pl.DataType]
) -> dict[str, Any]:
    """A social table with a row per company and trading day (`trading_date`)."""
    return warehouse_table(
        market,
        "social",
        daily_partitions(market),
        name=name,
        partition_expr="trading_date",
        by_date=True,
        primary_key=primary_key,
        schema=schema,
        schedule=DAILY,
    )


def _daily_sentiment(market: Market) -> dg.AssetsDefinition:
    key = dg.AssetKey([market.key, "daily_sentiment"])

    @dg.asset(
        ins={
            # From the previous session on: posts after its close count toward this day.
            "post_sentiment": with_sessions_before([market.key, "post_sentiment"], 1)
        },
        **_daily_table(
            market, "daily_sentiment", social.DAILY_SENTIMENT_KEY, social.DAILY_SENTIMENT_SCHEMA
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "every_company_has_posts",
                asset=key,
                description="warns when a company of the universe got no posts on a day",
            )
        ],
        description=(
            f"Per company of {market.name} and trading day (posts after the previous session's "
            "close up to this one's): post count, mean and engagement-weighted compound score, "
            "shares positive / negative, and the top posts by engagement "
            f"(FINANCE_TOP_POSTS, default 10). Table `{market.key}.daily_sentiment`."
        ),
    )
    def _daily(
        context: dg.AssetExecutionContext, post_sentiment: pl.DataFrame, posts: PostsResource
    ):
        refuse_invalid_partitions(context, market)
        window = context.partition_time_window
        first, last = window.start.date(), (window.end - dt.timedelta(seconds=1)).date()
        sessions = market.sessions(market.previous_session(first), last)
        daily = social.daily_sentiment(
            post_sentiment if post_sentiment.height else social.empty(social.POST_SENTIMENT_SCHEMA),
            market,
            sessions,
            posts.top_n,
        )
        daily = daily.filter(pl.col("trading_date") >= first)
        expected = {(d, s) for d in market.sessions(first, last) for s in market.universe}
        silent = sorted(expected - set(daily.select("trading_date", "symbol").iter_rows()))
        yield dg.MaterializeResult(value=daily, metadata={"rows": daily.height})
        yield from range_verdicts(
            [
                dg.AssetCheckResult(
                    check_name="every_company_has_posts",
                    passed=not silent,
                    severity=dg.AssetCheckSeverity.WARN,
                    metadata={
                        "silent": table_preview(
                            pl.DataFrame(
                                silent,
                                schema={"trading_date": pl.Date, "symbol": pl.String},
                                orient="row",
                            ),
                            20,
                        ),
                        "silent_count": len(silent),
                    },
                )
            ],
            context.partition_keys,
        )

    return _daily


def _stock_sentiment_daily(market: Market) -> dg.AssetsDefinition:
    key = dg.AssetKey([market.key, "stock_sentiment_daily"])

    @dg.asset(
        ins={
            "daily_summary": dg.AssetIn([market.key, "daily_summary"]),
            "daily_sentiment": dg.AssetIn([market.key, "daily_sentiment"]),
        },
        **_daily_table(
            market,
            "stock_sentiment_daily",
            social.STOCK_SENTIMENT_KEY,
            social.STOCK_SENTIMENT_SCHEMA,
        ),
        check_specs=[
            dg.AssetCheckSpec(
                "unique_keys",
                asset=key,
                blocking=True,
                description="each (trading_date, symbol) once: the join did not multiply rows",
            )
        ],
        description=(
            f"The daily summary of {market.name} joined with that day's sentiment per company; "
            "days without posts are kept, with null sentiment and a post count of 0. Table "
            f"`{market.key}.stock_sentiment_daily`."
        ),
    )
    def _joined(
        context: dg.AssetExecutionContext,
        daily_summary: pl.DataFrame,
        daily_sentiment: pl.DataFrame,
    ) -> Iterator[dg.MaterializeResult | dg.AssetCheckResult]:
        refuse_invalid_partitions(context, market)
        joined = social.stock_sentiment_daily(daily_summary, daily_sentiment)
        yield from output_unless_failed(
            key,
            joined,
            [unique_keys_check(joined, social.STOCK_SENTIMENT_KEY)],
            {
                "rows": joined.height,
                "days_without_posts": joined.filter(pl.col("post_count") == 0).height,
            },
            keys=context.partition_keys,
        )

    return _joined


def build_social_assets(market: Market) -> list[dg.AssetsDefinition]:
    return [
        _raw_posts(market),
        _post_sentiment(market),
        _daily_sentiment(market),
        _stock_sentiment_daily(market),
    ]
