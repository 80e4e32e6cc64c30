"""What every posts source's resource shares: the sentiment scorer (`POSTS_SCORER`) and how
many top posts a day keeps. The assets ask for `posts`, whichever it is; `POSTS_PROVIDER`
picks the class (resources/__init__.py, from the registry); each source's class sits in its
own package (`finance_assets/providers/<name>/resource.py`)."""

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from typing import Protocol

import dagster as dg
import polars as pl

from finance_assets.lib import social
from finance_assets.lib.comprehend import comprehend_client, comprehend_scores
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import RawPayload
from finance_assets.resources.bounds import TOP_POSTS, bounded

POSTS_SCORERS = ("vader", "comprehend")


class PostsSource(Protocol):
    """What the social assets call on a posts source (the simulated one, X's client)."""

    def fetch_posts(
        self, market: Market, symbols: Sequence[str], start: dt.datetime, end: dt.datetime
    ) -> list[RawPayload]: ...


class PostsResource(dg.ConfigurableResource):
    """The posts source of the social assets (resource key `posts`) and their scoring."""

    top_n: int = bounded(10, TOP_POSTS, "FINANCE_TOP_POSTS")
    scorer: str = "vader"
    comprehend_region: str | None = None  # None: boto3's own chain (AWS_DEFAULT_REGION, profile)

    def get_source(self) -> PostsSource:
        raise NotImplementedError(f"{type(self).__name__} names no posts source")

    def get_scorer(self) -> Callable[[list[str]], pl.DataFrame]:
        """texts -> neg, neu, pos, compound per text (the columns of `social.vader_scores`)."""
        if self.scorer == "vader":
            return social.vader_scores
        if self.scorer == "comprehend":
            return functools.partial(
                comprehend_scores, client=comprehend_client(self.comprehend_region)
            )
        raise ValueError(f"unknown posts scorer {self.scorer!r}; valid: {', '.join(POSTS_SCORERS)}")
