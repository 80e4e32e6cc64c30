"""The HTTP layer every real market-data client shares.

- one `requests.Session` with connect/read timeouts and no hidden urllib3 retries;
- retries (tenacity): 3 attempts, exponential backoff with full jitter, `Retry-After` honoured
  (seconds or an HTTP date) on 429/503 and on provider bodies that say when to come back;
- a per-provider rate limiter (pyrate-limiter) that waits exactly until a slot is free;
- redaction of API keys from URLs, messages, dicts and log records;
- typed errors, all `ProviderError`s, whose messages never hold a secret.

`RetryingClient` is the retry engine (the limiter per attempt, tenacity's waits, redaction),
whatever sends the request; `HttpClient` adds requests. Clock and sleep are injected, so tests
run the retry and rate-limit paths without waiting.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
import requests
import tenacity
from pyrate_limiter import (
    AbstractClock,
    InMemoryBucket,
    Limiter,
    Rate,
    RateItem,
    SingleBucketFactory,
)
from requests.adapters import HTTPAdapter

from finance_assets.lib import redaction
from finance_assets.lib.providers.base import PermanentProviderError, ProviderError
from finance_assets.lib.redaction import (
    PROCESS_REDACTOR,
    REDACTED,
    RedactingFilter,
    Redactor,
    parse_retry_after,
    redact,
    register_secret,
)

__all__ = [
    "REDACTED",
    "RedactingFilter",
    "Redactor",
    "parse_retry_after",
    "redact",
    "register_secret",
]

LOG = logging.getLogger("finance_assets.providers")

Clock = Callable[[], dt.datetime]
Sleep = Callable[[float], None]

USER_AGENT = "finance_assets/0.1 (+market data pipeline)"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- errors ----------------------------------------------------------------------------------


class ProviderRequestError(ProviderError):
    """A request to a provider failed. `retryable` errors are retried by `HttpClient`."""

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
        # When a pause beyond the client's budget ends (set by `HttpClient`): the time to retry.
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


# --- redaction: one registry for the whole process (lib/redaction.py) --------------------------

_PROCESS_REDACTOR = PROCESS_REDACTOR


# --- rate limiting ---------------------------------------------------------------------------


class RateLimiter:
    """At most `calls` weight units per `period` seconds (a sliding window): pyrate-limiter's
    `Limiter`, blocking in `try_acquire` for exactly as long as its bucket says.

    The bucket reads the injected clock, so tests run on a fake one (pyrate-limiter sleeps with
    `time.sleep`: the tests swap `pyrate_limiter.limiter.sleep` for their fake). `saturate`
    marks the current window as used up, for when the provider says we are over its limit
    although our own count says otherwise (another process, another client on the same key).
    """

    _shared: dict[str, RateLimiter] = {}  # noqa: RUF012 (a process-wide registry, on purpose)
    _shared_lock = threading.Lock()

    def __init__(
        self,
        name: str,
        calls: int,
        period: float = 60.0,
        *,
        clock: Clock = utc_now,
        buffer: float = 0.05,
    ) -> None:
        if calls < 1 or period <= 0:
            raise ValueError(
                f"rate limit must be >= 1 call per positive period, got {calls}/{period}s"
            )
        self.name = name
        self.calls = calls
        self.period = period
        self._clock = clock
        self._bucket = InMemoryBucket([Rate(calls, int(period * 1000))])
        self._bucket._clock = _BucketClock(clock)  # pyrate's hook for another time source
        # Leaked on each acquire (no leaker thread per limiter): the bucket only holds a window.
        self._limiter = Limiter(
            SingleBucketFactory(self._bucket, schedule_leak=False), buffer_ms=int(buffer * 1000)
        )

    @classmethod
    def shared(cls, name: str, calls: int, period: float = 60.0) -> RateLimiter:
        """The process-wide limiter of provider `name` (real clock): clients on one key share it."""
        with cls._shared_lock:
            limiter = cls._shared.get(name)
            if limiter is None or (limiter.calls, limiter.period) != (calls, period):
                limiter = cls._shared[name] = cls(name, calls, period)
            return limiter

    @classmethod
    def for_client(
        cls, name: str, calls: int, period: float = 60.0, *, clock: Clock | None = None
    ) -> RateLimiter:
        """The shared limiter of `name`, or a private one on an injected (test) clock."""
        if clock is None:
            return cls.shared(name, calls, period)
        return cls(name, calls, period, clock=clock)

    def _now_ms(self) -> int:
        return int(self._clock().timestamp() * 1000)

    def acquire(self, weight: int = 1) -> float:
        """Take `weight` units, waiting for room first; returns the seconds waited."""
        if weight > self.calls:
            raise ValueError(
                f"{self.name}: a call of weight {weight} can never fit a limit of "
                f"{self.calls} per {self.period:g}s; use smaller batches"
            )
        started = self._clock()
        with self._limiter.lock:
            self._bucket.leak(self._now_ms())
        # A slot frees within one window; beyond two, something else holds the key.
        if not self._limiter.try_acquire(
            self.name, weight, blocking=True, timeout=2 * self.period + 1
        ):
            raise RateLimited(
                f"{self.name}: no room for a call within {2 * self.period + 1:g}s",
                provider=self.name,
            )
        waited = (self._clock() - started).total_seconds()
        if waited > 0:
            LOG.debug("%s: rate limit reached, waited %.2fs for a slot", self.name, waited)
        return waited

    def saturate(self) -> None:
        """Treat the current window as full: the next `acquire` waits a whole window."""
        with self._limiter.lock:
            now = self._now_ms()
            self._bucket.leak(now)
            free = self.calls - self._bucket.count()
            if free > 0:
                self._bucket.put(RateItem(self.name, now, weight=free))


class _BucketClock(AbstractClock):
    """The injected clock in pyrate-limiter's unit (epoch milliseconds)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    def now(self) -> int:
        return int(self._clock().timestamp() * 1000)


# --- the client ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestRetries:
    """Attempts per request, exponential backoff with full jitter between them, and the longest
    `Retry-After` worth waiting for (a longer one fails at once, naming the wait). A client's
    own retries, inside one step attempt; not `dg.RetryPolicy`, which retries the step."""

    attempts: int = 3
    backoff_initial: float = 1.0
    backoff_max: float = 30.0
    max_retry_after: float = 120.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"attempts must be >= 1, got {self.attempts}")


DEFAULT_RETRY = RequestRetries()


@dataclass(frozen=True)
class JsonResponse:
    """A response whose body is JSON: the bytes as received and the decoded document."""

    status: int
    body: bytes
    document: Any
    content_type: str
    url: str  # redacted
    fetched_at: dt.datetime


# (status, document) -> None, raising a typed error for bodies that carry one.
Classifier = Callable[[int, Any], None]


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
            return attempt()

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
            exc._scrub(_PROCESS_REDACTOR)
            raise

    def redact(self, value: Any) -> Any:
        return _PROCESS_REDACTOR(self.redactor(value))

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


def _asked_wait(exc: BaseException) -> float | None:
    """The seconds a provider asked to wait (Retry-After, a body saying when), never negative;
    None when it did not say."""
    wait = getattr(exc, "retry_after", None)
    return None if wait is None else max(float(wait), 0.0)


class HttpClient(RetryingClient):
    """GET JSON from one provider with timeouts, retries, rate limiting and redaction."""

    def __init__(
        self,
        provider: str,
        *,
        limiter: RateLimiter,
        session: requests.Session | None = None,
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RequestRetries = DEFAULT_RETRY,
        secrets: Iterable[str] = (),
        clock: Clock = utc_now,
        sleep: Sleep = time.sleep,
    ) -> None:
        super().__init__(
            provider, limiter=limiter, retry=retry, secrets=secrets, clock=clock, sleep=sleep
        )
        self.session = session or _default_session()
        self.timeout = timeout

    # --- public -----------------------------------------------------------------------------

    def get_json(
        self,
        url: str,
        params: Mapping[str, str],
        *,
        headers: Mapping[str, str] | None = None,
        weight: int = 1,
        classify: Classifier | None = None,
    ) -> JsonResponse:
        """GET `url`; retry what is transient; return the JSON answer or raise a typed error."""
        shown = self.redact(requests.Request("GET", url, params=dict(params)).prepare().url or url)
        return self.call(
            lambda: self._attempt(url, params, headers, classify, shown), shown, weight=weight
        )

    # --- one attempt ------------------------------------------------------------------------

    def _attempt(
        self,
        url: str,
        params: Mapping[str, str],
        headers: Mapping[str, str] | None,
        classify: Classifier | None,
        shown: str,
    ) -> JsonResponse:
        started = time.perf_counter()
        response, failure = self._send(url, params, headers, shown)
        if failure is not None:
            # Raised outside the `except`: the requests exception (its message holds the URL,
            # key included, for Alpha Vantage) must not ride along as __context__.
            raise failure
        assert response is not None
        status = response.status_code
        body = response.content
        self.log(
            logging.DEBUG,
            "%s: GET %s -> HTTP %d, %d bytes in %.0f ms",
            self.provider,
            shown,
            status,
            len(body),
            (time.perf_counter() - started) * 1000,
        )
        try:
            document = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            document = None
        retry_after = parse_retry_after(response.headers.get("Retry-After"), self.clock())
        if document is not None and classify is not None:
            try:
                classify(status, document)
            except RateLimited as exc:
                if retry_after is not None:  # the header is the provider's own word on it
                    exc.retry_after = retry_after
                raise
        if status == 429:
            raise RateLimited(
                f"{self.provider}: GET {shown} -> HTTP 429 Too Many Requests"
                + (f" (Retry-After {retry_after:g}s)" if retry_after is not None else ""),
                provider=self.provider,
                retry_after=retry_after,
                status=status,
            )
        not_json = document is None and bool(body.strip())
        if status >= 500 or (status < 300 and document is None):
            # A gateway's HTML page (a 502 from a proxy, a 200 from a captive portal) is not the
            # provider's answer: typed as malformed, retried like any unavailability.
            error = MalformedResponse if not_json or status < 300 else ProviderUnavailable
            what = (
                f"the body is not JSON (content-type {response.headers.get('Content-Type', '?')!r})"
                if not_json or status < 300
                else "server error"
            )
            raise error(
                f"{self.provider}: GET {shown} -> HTTP {status} {response.reason or ''}".rstrip()
                + f": {what}: {_snippet(body, self.redact)}",
                provider=self.provider,
                retry_after=retry_after if status == 503 else None,
                status=status,
                retryable=True,
            )
        if status in (401, 403):
            raise AuthenticationFailed(
                f"{self.provider}: GET {shown} -> HTTP {status}: {_snippet(body, self.redact)}",
                provider=self.provider,
                status=status,
            )
        if status >= 300:
            raise InvalidRequest(
                f"{self.provider}: GET {shown} -> HTTP {status}: {_snippet(body, self.redact)}",
                provider=self.provider,
                status=status,
            )
        return JsonResponse(
            status=status,
            body=body,
            document=document,
            content_type=response.headers.get("Content-Type", "application/json"),
            url=shown,
            fetched_at=self.clock(),
        )

    def _send(
        self,
        url: str,
        params: Mapping[str, str],
        headers: Mapping[str, str] | None,
        shown: str,
    ) -> tuple[requests.Response | None, ProviderUnavailable | None]:
        try:
            response = self.session.get(
                url, params=dict(params), headers=dict(headers or {}), timeout=self.timeout
            )
        except requests.Timeout as exc:
            detail = (
                f"timed out ({type(exc).__name__}, timeouts connect/read "
                f"{self.timeout[0]:g}s/{self.timeout[1]:g}s)"
            )
        except requests.ConnectionError as exc:
            detail = f"failed to connect: {self.redact(str(exc))}"
        except requests.RequestException as exc:
            detail = f"failed: {type(exc).__name__}: {self.redact(str(exc))}"
        else:
            return response, None
        return None, ProviderUnavailable(
            f"{self.provider}: GET {shown} {detail}", provider=self.provider
        )


def _default_session() -> requests.Session:
    session = requests.Session()
    # Retries are ours (tenacity, with Retry-After and the limiter); urllib3's would hide them.
    adapter = HTTPAdapter(max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = USER_AGENT
    return session


def _snippet(body: bytes, redactor: Callable[[Any], Any], limit: int = 160) -> str:
    text = " ".join(body[:limit].decode("utf-8", "replace").split())
    return repr(redactor(text) + ("…" if len(body) > limit else ""))


def seconds_to_next_minute(now: dt.datetime, margin: float = 1.0) -> float:
    """Until the next wall-clock minute (+ margin): per-minute credits refill on the minute."""
    return 60.0 - (now.second + now.microsecond / 1_000_000) + margin


def local_text(moment: dt.datetime, tz: dt.tzinfo) -> str:
    """`moment` as an exchange-local 'YYYY-MM-DD HH:MM:SS' wall time."""
    return moment.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")


def check_base_url(url: str, variable: str) -> str:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"{variable}={url!r} is not an http(s) URL")
    return url.rstrip("/")
