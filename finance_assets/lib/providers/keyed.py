"""What the clients of keyed providers share (Twelve Data, Alpha Vantage, X): the key, redacted
everywhere and never in a `repr`; the checked base URL; a call budget shared by every client of
the process; and the HTTP client over them."""

from __future__ import annotations

import time
from typing import Any, ClassVar

import requests

from finance_assets.lib.providers.http import (
    DEFAULT_RETRY,
    Clock,
    HttpClient,
    MalformedResponse,
    MissingApiKey,
    RateLimiter,
    RequestRetries,
    Sleep,
    check_base_url,
    utc_now,
)


class KeyedClient:
    """The base of a keyed provider's client: `self.http` sends, `self._api_key` authenticates.

    `calls` per `period` seconds is the plan's budget; a test injecting a clock gets a limiter
    of its own on that clock, every other client the process-wide one of the provider.
    """

    name: ClassVar[str]

    def __init__(
        self,
        api_key: str,
        base_url: str,
        *,
        calls: int,
        period: float = 60.0,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 60.0),
        retry: RequestRetries = DEFAULT_RETRY,
        limiter: RateLimiter | None = None,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        if not api_key:
            # Which variable holds it is the resources' business (resources/): they name it.
            raise MissingApiKey(f"{type(self).__name__} needs an API key")
        self.base_url = check_base_url(base_url, "base_url")
        self._api_key = api_key
        self._clock = clock or utc_now
        self._sleep = sleep or time.sleep
        self.http = HttpClient(
            self.name,
            limiter=limiter or RateLimiter.for_client(self.name, calls, period, clock=clock),
            session=session,
            timeout=timeout,
            retry=retry,
            secrets=[api_key],
            clock=self._clock,
            sleep=self._sleep,
        )

    def __repr__(self) -> str:  # never the key
        shown = ", ".join(f"{k}={v!r}" for k, v in self._shown().items())
        return f"{type(self).__name__}({shown})"

    def _shown(self) -> dict[str, Any]:
        """What `repr` shows: settings, never the key."""
        return {"base_url": self.base_url}

    def _json_object(self, status: int, document: Any, what: str = "") -> dict[str, Any]:
        """`document` if it is a JSON object, else `MalformedResponse` (asking again gives the
        same answer: not retried)."""
        if not isinstance(document, dict):
            raise MalformedResponse(
                f"{self.name}: {what}expected a JSON object, got {type(document).__name__}",
                provider=self.name,
                status=status,
            )
        return document
