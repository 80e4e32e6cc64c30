"""The typed errors of provider requests: all `ProviderError`s, whose messages never hold a
secret. `retryable` says whether the client's own retries (`retrying.RetryingClient`) try again;
`PermanentProviderError`s also skip the step's retries (`base.is_permanent`)."""

from __future__ import annotations

import datetime as dt

from finance_assets.lib import redaction
from finance_assets.lib.providers.base import PermanentProviderError, ProviderError
from finance_assets.lib.redaction import Redactor


class ProviderRequestError(ProviderError):
    """A request to a provider failed. `retryable` errors are retried by `RetryingClient`."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        retry_after: float | None = None,
        symbol: str | None = None,
        status: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        if retryable is not None:  # the instance knows better than its class
            self.retryable = retryable
        self.provider = provider
        self.retry_after = retry_after  # seconds the provider asked us to wait, if it said
        # When a pause beyond the client's budget ends (set by `RetryingClient`): the time to retry.
        self.retry_at: dt.datetime | None = None
        self.symbol = symbol
        self.status = status

    def _scrub(self, redactor: Redactor) -> None:
        self.args = tuple(redactor.text(str(arg)) for arg in self.args)


class RateLimited(ProviderRequestError, redaction.RateLimited):
    """Too many calls for now (HTTP 429, a per-minute credit or call-frequency body); the
    project-wide `RateLimited` (lib/redaction.py) of a provider."""

    retryable = True


class QuotaExhausted(ProviderRequestError, PermanentProviderError):
    """The daily allowance is spent, or the plan does not cover the call: retrying won't help."""


class ProviderUnavailable(ProviderRequestError):
    """Timeouts, connection failures and 5xx answers, after the retries."""

    retryable = True


class DeadlineExceeded(ProviderUnavailable):
    """A request outlived its total deadline (`RequestRetries.deadline`): a server or proxy
    that answers, but too slowly for any per-read timeout to trip (a byte every 20 s).
    Transient: retried like any unavailability."""

    retryable = True


class MalformedResponse(ProviderUnavailable):
    """The answer is not the provider's JSON: an HTML error page from a gateway (whatever its
    status; retried, as the provider is effectively unavailable) or JSON of another shape (not
    retried: asking again gives the same)."""

    retryable = False


class InvalidRequest(ProviderRequestError, PermanentProviderError):
    """The provider refused the request as asked (4xx or an error body): not retried."""


class InvalidSymbol(InvalidRequest):
    """The provider does not know the symbol (or, for Alpha Vantage, the call as a whole)."""


class AuthenticationFailed(InvalidRequest):
    """The API key is missing, wrong or not entitled."""


class MissingApiKey(PermanentProviderError, ValueError):
    """A client was configured from the environment without its key."""


def refused(status: int) -> type[InvalidRequest]:
    """The error of a 4xx answer: the key refused (401, 403), else the request."""
    return AuthenticationFailed if status in (401, 403) else InvalidRequest
