"""X API v2 recent search (`POSTS_PROVIDER=x_api`): an app bearer token required."""

from finance_assets.lib.settings import NumberRange
from finance_assets.providers.spec import Budget, ProviderSpec, Setting
from finance_assets.providers.x_api.client import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_PAGES,
    DEFAULT_MAX_WAIT_SECONDS,
)

SPEC = ProviderSpec(
    name="x_api",
    kind="posts",
    resource="finance_assets.providers.x_api.resource:XApiResource",
    description="X API v2 recent search (an app bearer token; 450 requests per 15 minutes)",
    settings=(
        Setting("bearer_token", "X_BEARER_TOKEN", "secret", required="an app bearer token"),
        Setting("base_url", "X_API_BASE_URL", "url", DEFAULT_BASE_URL),
        Setting(
            "max_pages",
            "X_MAX_PAGES",
            "whole",
            DEFAULT_MAX_PAGES,
            NumberRange(1, 100, whole=True, meaning="search pages per company and hour"),
        ),
        Setting(
            "max_wait_seconds",
            "X_MAX_WAIT_SECONDS",
            "number",
            DEFAULT_MAX_WAIT_SECONDS,
            NumberRange(0, 86_400, meaning="seconds to wait for a rate-limit reset"),
        ),
    ),
    # The limit is per 15-minute window, read from each answer's headers (client.py).
    budget=Budget(None, None, "450 requests per 15-minute window, from the answers' headers"),
    run_limit=1,
)

__all__ = ["SPEC"]
