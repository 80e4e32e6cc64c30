"""Simulated posts as the `posts` resource."""

from finance_assets.providers.simulated_posts.client import SimulatedPosts
from finance_assets.resources.posts import PostsResource


class SimulatedPostsResource(PostsResource):
    """Seeded posts (`POSTS_PROVIDER=simulated`, the default)."""

    def get_source(self) -> SimulatedPosts:
        return SimulatedPosts()
