"""Simulated posts (`POSTS_PROVIDER=simulated`, the default): seeded, no network."""

from finance_assets.providers.simulated_posts.client import SimulatedPosts
from finance_assets.providers.spec import ProviderSpec

SPEC = ProviderSpec(
    name="simulated",
    kind="posts",
    resource="finance_assets.providers.simulated_posts.resource:SimulatedPostsResource",
    description="seeded posts (no network, no key)",
)

__all__ = ["SPEC", "SimulatedPosts"]
