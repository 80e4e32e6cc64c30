"""The posts sources, one resource each, with what every source shares: the sentiment scorer
(`POSTS_SCORER`) and how many top posts a day keeps. The assets ask for `posts`, whichever it
is; `POSTS_PROVIDER` picks the class (resources/__init__.py). The X bearer token arrives as a
`dg.EnvVar`: the UI shows the variable's name, never its value."""

import functools
from collections.abc import Callable

import dagster as dg
import polars as pl

from finance_assets.lib import social
from finance_assets.lib.comprehend import comprehend_client, comprehend_scores
from finance_assets.lib.providers import x_api
from finance_assets.lib.providers.simulated_posts import SimulatedPosts
from finance_assets.lib.providers.x_api import XSearchClient
from finance_assets.resources.bounds import TOP_POSTS, X_PAGES, X_WAIT, bounded, secret
from finance_assets.resources.market_data import required_key

POSTS_SCORERS = ("vader", "comprehend")


class PostsResource(dg.ConfigurableResource):
    """The posts source of the social assets (resource key `posts`) and their scoring."""

    top_n: int = bounded(10, TOP_POSTS, "FINANCE_TOP_POSTS")
    scorer: str = "vader"
    comprehend_region: str | None = None  # None: boto3's own chain (AWS_DEFAULT_REGION, profile)

    def get_source(self) -> SimulatedPosts | XSearchClient:
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


class SimulatedPostsResource(PostsResource):
    """Seeded posts (`POSTS_PROVIDER=simulated`, the default)."""

    def get_source(self) -> SimulatedPosts:
        return SimulatedPosts()


class XApiResource(PostsResource):
    """X API v2 recent search (`POSTS_PROVIDER=x_api`)."""

    bearer_token: str | None = secret("X_BEARER_TOKEN")
    base_url: str = x_api.DEFAULT_BASE_URL
    max_pages: int = bounded(10, X_PAGES, "X_MAX_PAGES")
    max_wait_seconds: float = bounded(900.0, X_WAIT, "X_MAX_WAIT_SECONDS")

    def get_source(self) -> XSearchClient:
        return XSearchClient(
            required_key(self.bearer_token, "X_BEARER_TOKEN"),
            self.base_url,
            max_pages=self.max_pages,
            max_wait_seconds=self.max_wait_seconds,
        )


# POSTS_PROVIDER's values, in the order errors list them.
POSTS_PROVIDERS: dict[str, type[PostsResource]] = {
    "simulated": SimulatedPostsResource,
    "x_api": XApiResource,
}
