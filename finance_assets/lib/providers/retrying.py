"""The retry engine every provider client shares, whatever sends its requests: the limiter per
attempt, tenacity's waits (the provider's `Retry-After` when it said, else exponential backoff
with full jitter), and redaction of what comes out. Clock and sleep are injected, so tests run
the retry paths without waiting."""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import tenacity

from finance_assets.lib.providers.errors import (
    DeadlineExceeded,
    ProviderRequestError,
    ProviderUnavailable,
)
from finance_assets.lib.providers.rate_limit import Clock, RateLimiter, Sleep, utc_now
from finance_assets.lib.redaction import PROCESS_REDACTOR, Redactor, register_secret
from finance_assets.lib.settings import EnvSettings, NumberRange

LOG = logging.getLogger("finance_assets.providers")


# Each request's total deadline (connect, headers and body together): a per-read timeout never
# trips on a server sending a byte every 20 s, so a request could otherwise run for hours.
DEADLINE_VARIABLE = "FINANCE_HTTP_DEADLINE_SECONDS"
DEFAULT_DEADLINE = 120.0
DEADLINE_RANGE = NumberRange(
    1, 3600, meaning="the seconds one HTTP request to a provider may take, body included"
)


def request_deadline(environ: Mapping[str, str] | None = None) -> float:
    """The deadline of every provider request: `FINANCE_HTTP_DEADLINE_SECONDS`, else 120 s;
    a bad value raises `SettingsError` naming the variable (the resources check it at load)."""
    settings = EnvSettings(os.environ if environ is None else environ)
    seconds = settings.number(DEADLINE_VARIABLE, DEFAULT_DEADLINE, DEADLINE_RANGE)
    settings.check()
    return seconds


@dataclass(frozen=True)
class RequestRetries:
    """Attempts per request, exponential backoff with full jitter between them, the longest
    `Retry-After` worth waiting for (a longer one fails at once, naming the wait), and each
    attempt's total `deadline` in seconds (None: `request_deadline()`, the environment's).
    A client's own retries, inside one step attempt; not `dg.RetryPolicy`, which retries the
    step."""

    attempts: int = 3
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    max_retry_after: float = 120.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")
        if self.deadline is not None and not DEADLINE_RANGE.contains(self.deadline):
            raise ValueError(f"deadline={self.deadline!r} is invalid: {DEADLINE_RANGE.text()}")


DEFAULT_RETRY = RequestRetries()


T = TypeVar("T")


class RetryingClient:
    """Calls to one provider through its rate limiter, with tenacity's retries and redaction:
    what every client shares, whatever sends its requests (`HttpClient`: requests; the Yahoo
    client: yfinance's data layer)."""

    def __init__(
        self,
        provider: str,
        *,
        limiter: RateLimiter,
        retry: RequestRetries = DEFAULT_RETRY,
        secrets: Iterable[str] = (),
        clock: Clock = utc_now,
        sleep: Sleep = time.sleep,
    ) -> None:
        self.provider = provider
        self.limiter = limiter
        self.retry = retry
        self.redactor = Redactor(secrets)
        for secret in secrets:
            register_secret(secret)
        self.clock = clock
        self.sleep = sleep
        # Read when the client is built (a step's start): the resources checked it at load.
        self.deadline = retry.deadline if retry.deadline is not None else request_deadline()
        # The provider's own word on when to come back, else exponential backoff, full jitter.
        self._retry_after = tenacity.wait_exception(_asked_wait)  # type: ignore[arg-type]
        self._backoff = tenacity.wait_full_jitter(
            multiplier=retry.backoff_initial, max=retry.backoff_max
        )

    def call(self, attempt: Callable[[], T], shown: str, *, weight: int = 1) -> T:
        """`attempt()` once the limiter has room for `weight`, retried while it raises a
        retryable `ProviderRequestError`; what it raises comes out scrubbed of every secret.
        `shown` (the request, redacted) names it in logs and errors."""

        def limited() -> T:
            self.limiter.acquire(weight)
            try:
                return attempt()
            except ProviderRequestError as exc:
                if not_charged(exc):
                    # Else its retry waits for room this answer never used (a minute at a
                    # budget of one batch).
                    self.limiter.refund(weight)
                raise

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception(self._should_retry),
            sleep=self.sleep,
            before_sleep=lambda state: self._log_retry(state, shown),
            retry_error_callback=lambda state: self._give_up(state, shown),
            reraise=True,
        )
        try:
            return retrying(limited)
        except ProviderRequestError as exc:
            self._beyond_budget(exc)
            exc._scrub(self.redactor)
            exc._scrub(PROCESS_REDACTOR)
            raise

    def redact(self, value: Any) -> Any:
        return PROCESS_REDACTOR(self.redactor(value))

    def log(self, level: int, message: str, *args: object) -> None:
        """Log through the redactor: nothing a client logs can carry its key."""
        LOG.log(level, "%s", self.redact(message % args if args else message))

    # --- retry plumbing ---------------------------------------------------------------------

    def _should_retry(self, exc: BaseException) -> bool:
        if not isinstance(exc, ProviderRequestError) or not exc.retryable:
            return False
        # A provider asking for a long pause: fail now and say so, rather than block a run.
        return exc.retry_after is None or exc.retry_after <= self.retry.max_retry_after

    def _beyond_budget(self, exc: ProviderRequestError) -> None:
        """A pause longer than `max_retry_after` is not waited for, by the client or by a step
        retry: the error becomes permanent and says when to try again."""
        wait = exc.retry_after
        if not exc.retryable or wait is None or wait <= self.retry.max_retry_after:
            return
        exc.retryable = False
        exc.retry_at = self.clock() + dt.timedelta(seconds=wait)
        if "try again" not in str(exc):
            exc.args = (
                f"{exc}; the provider asks for a pause of {wait:.0f}s, more than the "
                f"{self.retry.max_retry_after:g}s a run waits: try again after "
                f"{exc.retry_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S} UTC",
            )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if exc is not None and _asked_wait(exc) is not None:
            return self._retry_after(state)
        return self._backoff(state)

    def _log_retry(self, state: tenacity.RetryCallState, shown: str) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        self.log(
            logging.WARNING,
            "%s: attempt %d/%d of GET %s failed (%s: %s); retrying in %.2fs",
            self.provider,
            state.attempt_number,
            self.retry.attempts,
            shown,
            type(exc).__name__,
            exc,
            wait,
        )

    def _give_up(self, state: tenacity.RetryCallState, shown: str) -> Any:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ProviderRequestError):
            exc.args = (f"{exc} (gave up after {state.attempt_number} attempts)",)
            exc._scrub(self.redactor)
            raise exc from None
        raise ProviderUnavailable(f"{self.provider}: GET {shown} failed", provider=self.provider)


def not_charged(exc: ProviderRequestError) -> bool:
    """Whether the provider did not count the call that failed with `exc` against its
    budget: an HTTP 429 (or a body saying 429: Twelve Data's out-of-credits answer) or a 5xx.
    A 200 that says the call frequency was exceeded (Alpha Vantage's Note) saturates the
    limiter instead; a timeout may have been served and charged."""
    status = exc.status
    if status is None or isinstance(exc, DeadlineExceeded):
        return False
    return status == 429 or status >= 500


def _asked_wait(exc: BaseException) -> float | None:
    """The seconds a provider asked to wait (Retry-After, a body saying when), never negative;
    None when it did not say."""
    wait = getattr(exc, "retry_after", None)
    return None if wait is None else max(float(wait), 0.0)
