"""X API recent search as the `posts` resource."""

from finance_assets.providers.x_api import SPEC
from finance_assets.providers.x_api.client import XSearchClient
from finance_assets.resources.market_data import required_key
from finance_assets.resources.posts import PostsResource


class XApiResource(PostsResource):
    """X API v2 recent search (`POSTS_PROVIDER=x_api`)."""

    bearer_token: str | None = SPEC.field("bearer_token")
    base_url: str = SPEC.field("base_url")
    max_pages: int = SPEC.field("max_pages")
    max_wait_seconds: float = SPEC.field("max_wait_seconds")

    def get_source(self) -> XSearchClient:
        return XSearchClient(
            required_key(self.bearer_token, "X_BEARER_TOKEN"),
            self.base_url,
            max_pages=self.max_pages,
            max_wait_seconds=self.max_wait_seconds,
        )
