"""Posts about companies: parse X API v2 search bodies, clean text, score sentiment, roll up.

No Dagster imports. The raw body is kept as received elsewhere; everything here works on the
parsed records.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable

import orjson
import polars as pl

from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import RawPayload
from finance_assets.lib.schema import DAILY_SUMMARY_SCHEMA, UTC_TS, conform, empty, ordered_sum

METRICS = ("like_count", "retweet_count", "reply_count", "quote_count")
POST_SCHEMA: dict[str, pl.DataType] = {
    "post_id": pl.String(),
    "symbol": pl.String(),
    "created_at": UTC_TS,
    "lang": pl.String(),
    "text": pl.String(),  # as received
    **{m: pl.Int64() for m in METRICS},
}
POST_SENTIMENT_SCHEMA: dict[str, pl.DataType] = {
    "created_at": UTC_TS,
    "post_id": pl.String(),
    "symbol": pl.String(),
    "text_clean": pl.String(),
    "compound": pl.Float64(),
    "pos": pl.Float64(),
    "neu": pl.Float64(),
    "neg": pl.Float64(),
    **{m: pl.Int64() for m in METRICS},
    "engagement": pl.Int64(),
    "scorer": pl.String(),
}
POST_SENTIMENT_KEY = ["created_at", "post_id", "symbol"]
DAILY_SENTIMENT_SCHEMA: dict[str, pl.DataType] = {
    "trading_date": pl.Date(),
    "symbol": pl.String(),
    "post_count": pl.Int64(),
    "mean_compound": pl.Float64(),
    "weighted_compound": pl.Float64(),
    "share_positive": pl.Float64(),
    "share_negative": pl.Float64(),
    "engagement": pl.Int64(),
    "top_posts": pl.String(),  # JSON: the top N posts by engagement
}
DAILY_SENTIMENT_KEY = ["trading_date", "symbol"]
# The daily summary with the day's sentiment beside it (stock_sentiment_daily).
STOCK_SENTIMENT_SCHEMA: dict[str, pl.DataType] = {
    **DAILY_SUMMARY_SCHEMA,
    **{k: v for k, v in DAILY_SENTIMENT_SCHEMA.items() if k not in DAILY_SENTIMENT_KEY},
}
STOCK_SENTIMENT_KEY = ["trading_date", "symbol"]
# VADER's own cut-offs for calling a text positive or negative.
POSITIVE, NEGATIVE = 0.05, -0.05


class PostsFormatError(ValueError):
    """A body that is not an X API v2 search response."""


def parse_x_search(body: bytes | str, symbol: str) -> tuple[pl.DataFrame, dict[str, object]]:
    """Posts of one `/2/tweets/search/recent` page, and its `meta` (next_token, counts)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PostsFormatError(f"X search body for {symbol} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PostsFormatError(f"X search body for {symbol}: expected an object")
    if "errors" in document and "data" not in document:
        first = document["errors"][0] if document["errors"] else {}
        raise PostsFormatError(
            f"X search for {symbol} failed: {first.get('title') or first.get('message')}"
        )
    meta = document.get("meta") or {}
    rows = []
    for post in document.get("data") or []:
        if not isinstance(post, dict) or "id" not in post or "text" not in post:
            raise PostsFormatError(f"X search body for {symbol}: a post without id or text")
        metrics = post.get("public_metrics") or {}
        rows.append(
            {
                "post_id": str(post["id"]),
                "symbol": symbol,
                "created_at": post.get("created_at"),
                "lang": post.get("lang"),
                "text": post["text"],
                **{m: metrics.get(m, 0) for m in METRICS},
            }
        )
    frame = pl.DataFrame(
        rows,
        schema={**POST_SCHEMA, "created_at": pl.String},
    ).with_columns(
        pl.col("created_at").str.to_datetime(time_zone="UTC", strict=False, time_unit="us")
    )
    return conform(frame, POST_SCHEMA), dict(meta)


def parse_post_payloads(payloads: Iterable[RawPayload]) -> pl.DataFrame:
    """Every post of every page, each post id once per symbol (pages and re-runs overlap)."""
    frames = [parse_x_search(p.body, p.symbols[0])[0] for p in payloads]
    if not frames:
        return empty(POST_SCHEMA)
    return pl.concat(frames).unique(["post_id", "symbol"], keep="first", maintain_order=True)


_URL = re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE)
_MENTION = re.compile(r"(?<!\w)@\w{1,15}")
_RETWEET = re.compile(r"^RT\s+@\w{1,15}:\s*")
_SPACES = re.compile(r"\s+")
# Zero-width joiners and variation selectors change how an emoji is drawn, not what it says:
# dropped, so "❤️" and "❤" score the same.
_INVISIBLE = {"\u200d", "\ufe0e", "\ufe0f", "\u200b", "\u2060", "\ufeff"}


def clean_text(text: str) -> str:
    """URLs, mentions, the retweet prefix, control and invisible characters removed; hashtags
    and cashtags keep their word; emoji kept (VADER scores them); spaces collapsed."""
    text = unicodedata.normalize("NFKC", text)
    text = _RETWEET.sub("", text)
    text = _URL.sub(" ", text)
    text = _MENTION.sub(" ", text)
    text = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") else ch
        for ch in text
        if ch not in _INVISIBLE and unicodedata.category(ch) not in ("Cf", "Co", "Cs", "Cn")
    )
    text = re.sub(r"(?<!\w)[#$](\w)", r"\1", text)
    return _SPACES.sub(" ", text).strip()


@functools.cache
def _vader() -> object:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def vader_scores(texts: Iterable[str]) -> pl.DataFrame:
    """compound, pos, neu, neg per text (VADER, offline: its lexicon ships with the package)."""
    analyzer = _vader()
    rows = [analyzer.polarity_scores(text) for text in texts]  # type: ignore[attr-defined]
    return pl.DataFrame(
        rows,
        schema={"neg": pl.Float64, "neu": pl.Float64, "pos": pl.Float64, "compound": pl.Float64},
    )


def score_posts(
    posts: pl.DataFrame,
    scorer: str = "vader",
    score: Callable[[list[str]], pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """One row per post: cleaned text, sentiment scores and engagement. `score` maps texts to
    neg, neu, pos, compound (VADER by default; AWS Comprehend for users on AWS)."""
    if posts.is_empty():
        return empty(POST_SENTIMENT_SCHEMA)
    cleaned = posts.with_columns(
        text_clean=pl.col("text").map_elements(clean_text, return_dtype=pl.String)
    )
    scores = (score or vader_scores)(cleaned.get_column("text_clean").to_list())
    scored = pl.concat([cleaned, scores], how="horizontal").with_columns(
        engagement=pl.sum_horizontal(METRICS).cast(pl.Int64),
        scorer=pl.lit(scorer),
    )
    return conform(scored, POST_SENTIMENT_SCHEMA)


def assign_sessions(posts: pl.DataFrame, market: Market, sessions: list[dt.date]) -> pl.DataFrame:
    """Each post's trading day: the first of `sessions` whose close is at or after the post.

    A post after Friday's close, or on a holiday, counts toward the next session: that is the
    price it can move.
    """
    closes = pl.DataFrame(
        {
            "trading_date": sessions,
            "_close": [market.session_bounds(day)[1] for day in sessions],
        },
        schema={"trading_date": pl.Date, "_close": UTC_TS},
    ).sort("_close")
    return (
        posts.sort("created_at")
        .join_asof(closes, left_on="created_at", right_on="_close", strategy="forward")
        .drop("_close")
    )


def daily_sentiment(
    scored: pl.DataFrame, market: Market, sessions: list[dt.date], top_n: int = 10
) -> pl.DataFrame:
    """Per symbol and trading day: post count, mean and engagement-weighted compound, shares
    positive / negative, total engagement, and the top `top_n` posts by engagement (JSON)."""
    if scored.is_empty() or not sessions:
        return empty(DAILY_SENTIMENT_SCHEMA)
    # In post order, so that the sums below come out the same to the bit on every run.
    dated = (
        assign_sessions(scored, market, sessions)
        .filter(pl.col("trading_date").is_not_null())
        .sort("post_id")
    )
    weight = (pl.col("engagement") + 1).cast(pl.Float64)
    top = pl.struct("post_id", "text_clean", "compound", "engagement")
    rolled = dated.group_by("trading_date", "symbol").agg(
        post_count=pl.len().cast(pl.Int64),
        mean_compound=ordered_sum(pl.col("compound")) / pl.col("compound").count(),
        weighted_compound=ordered_sum(pl.col("compound") * weight) / ordered_sum(weight),
        share_positive=(pl.col("compound") >= POSITIVE).mean(),
        share_negative=(pl.col("compound") <= NEGATIVE).mean(),
        engagement=pl.col("engagement").sum(),
        top_posts=top.sort_by(["engagement", "post_id"], descending=[True, False])
        .head(top_n)
        .implode()
        .list.eval(pl.element().struct.json_encode())
        .list.join(","),
    )
    rolled = rolled.with_columns(top_posts=pl.format("[{}]", pl.col("top_posts")))
    return conform(rolled, DAILY_SENTIMENT_SCHEMA).sort("trading_date", "symbol")


def stock_sentiment_daily(summary: pl.DataFrame, sentiment: pl.DataFrame) -> pl.DataFrame:
    """Each (trading_date, symbol) of the daily summary with that day's sentiment; days without
    posts keep their prices, with null sentiment (and a post count of 0)."""
    keep = [c for c in DAILY_SENTIMENT_SCHEMA if c not in ("trading_date", "symbol")]
    if sentiment.is_empty():
        sentiment = empty(DAILY_SENTIMENT_SCHEMA)
    joined = summary.join(
        sentiment.select("trading_date", "symbol", *keep),
        on=["trading_date", "symbol"],
        how="left",
    )
    return joined.with_columns(pl.col("post_count").fill_null(0)).sort("trading_date", "symbol")
