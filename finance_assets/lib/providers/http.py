"""The HTTP layer every real market-data client shares: `HttpClient` GETs JSON with one
`requests.Session` (connect/read timeouts, no hidden urllib3 retries) on the shared retry engine
(`retrying.RetryingClient`: rate limiter, tenacity, `Retry-After`, redaction), and turns each
answer into a typed error (`errors`) or a `JsonResponse`.

Each attempt also has a total deadline (`RequestRetries.deadline`, `FINANCE_HTTP_DEADLINE_SECONDS`,
120 s): a server that sends its headers and then a byte every 20 s never trips the per-read
timeout. The body is streamed, and a watchdog shuts the socket when the deadline passes; the
wait for the headers is held to it by the read timeout (never longer than the deadline). The
expiry is a `DeadlineExceeded`, retried like any unavailability.

The errors, the limiter, the retry engine and the redaction helpers are re-exported here:
`from finance_assets.lib.providers.http import ...` is the one import path of the HTTP stack.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter

from finance_assets.lib.providers.errors import (
    AuthenticationFailed,
    DeadlineExceeded,
    InvalidRequest,
    InvalidSymbol,
    MalformedResponse,
    MissingApiKey,
    ProviderRequestError,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
    refused,
)
from finance_assets.lib.providers.rate_limit import Clock, RateLimiter, Sleep, utc_now
from finance_assets.lib.providers.retrying import (
    DEADLINE_VARIABLE,
    DEFAULT_RETRY,
    RequestRetries,
    RetryingClient,
    request_deadline,
)
from finance_assets.lib.redaction import (
    REDACTED,
    RedactingFilter,
    Redactor,
    parse_retry_after,
    redact,
    register_secret,
)

__all__ = [
    "DEADLINE_VARIABLE",
    "DEFAULT_RETRY",
    "REDACTED",
    "AuthenticationFailed",
    "Clock",
    "DeadlineExceeded",
    "HttpClient",
    "InvalidRequest",
    "InvalidSymbol",
    "JsonResponse",
    "MalformedResponse",
    "MissingApiKey",
    "ProviderRequestError",
    "ProviderUnavailable",
    "QuotaExhausted",
    "RateLimited",
    "RateLimiter",
    "RedactingFilter",
    "Redactor",
    "RequestRetries",
    "RetryingClient",
    "Sleep",
    "check_base_url",
    "local_text",
    "parse_retry_after",
    "redact",
    "register_secret",
    "request_deadline",
    "seconds_to_next_minute",
    "utc_now",
]

USER_AGENT = "finance_assets/0.1 (+market data pipeline)"


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
        answer, failure = self._send(url, params, headers, shown)
        if failure is not None:
            # Raised outside the `except`: the requests exception (its message holds the URL,
            # key included, for Alpha Vantage) must not ride along as __context__.
            raise failure
        assert answer is not None
        response, body = answer.response, answer.body
        status = response.status_code
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
        if status >= 300:
            raise refused(status)(
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
    ) -> tuple[_Answer | None, ProviderUnavailable | None]:
        started = time.monotonic()
        connect, read = self.timeout
        expired = threading.Event()
        token: int | None = None
        received = 0
        response: requests.Response | None = None
        try:
            response = self.session.get(
                url,
                params=dict(params),
                headers=dict(headers or {}),
                # No single wait for the headers outlasts the deadline.
                timeout=(connect, min(read, self.deadline)),
                stream=True,
            )
            token = _WATCHDOG.arm(started + self.deadline, response, expired)
            chunks = []
            for chunk in response.iter_content(64 * 1024):
                chunks.append(chunk)
                received += len(chunk)
                if expired.is_set() or time.monotonic() - started >= self.deadline:
                    expired.set()
                    break
            if not expired.is_set():
                return _Answer(response, b"".join(chunks)), None
        except requests.RequestException as exc:
            if expired.is_set() or time.monotonic() - started >= self.deadline:
                expired.set()
            elif isinstance(exc, requests.Timeout):
                detail = (
                    f"timed out ({type(exc).__name__}, timeouts connect/read "
                    f"{connect:g}s/{min(read, self.deadline):g}s)"
                )
            elif isinstance(exc, requests.ConnectionError):
                detail = f"failed to connect: {self.redact(str(exc))}"
            else:
                detail = f"failed: {type(exc).__name__}: {self.redact(str(exc))}"
        finally:
            if token is not None:
                _WATCHDOG.disarm(token)
            if response is not None:
                response.close()
        if expired.is_set():
            status = f"HTTP {response.status_code}, " if response is not None else ""
            # What came off the socket, not only the chunks handed over (64 KiB each).
            with contextlib.suppress(Exception):
                received = max(received, int(response.raw.tell()))  # type: ignore[union-attr]
            return None, DeadlineExceeded(
                f"{self.provider}: GET {shown} exceeded its {self.deadline:g}s deadline "
                f"({status}{received} bytes of the body after "
                f"{time.monotonic() - started:.1f}s; {DEADLINE_VARIABLE} sets it)",
                provider=self.provider,
            )
        return None, ProviderUnavailable(
            f"{self.provider}: GET {shown} {detail}", provider=self.provider
        )


@dataclass(frozen=True)
class _Answer:
    """A response whose body was read within the deadline."""

    response: requests.Response
    body: bytes


def _cut(response: requests.Response, expired: threading.Event) -> None:
    """At the deadline, shut the response's socket so a read blocked on a trickling server
    returns now rather than at its next byte."""
    expired.set()
    connection = getattr(response.raw, "_connection", None)  # urllib3 2's HTTPResponse
    sock = getattr(connection, "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # already closed: the read has ended anyway
            sock.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread for every request of the process, cutting those past their deadline
    (a thread per request cost ~2 ms to start on a loaded machine, a tenth of a fast call)."""

    def __init__(self) -> None:
        self._armed: dict[int, tuple[float, requests.Response, threading.Event]] = {}
        self._wake = threading.Condition()
        self._next = 0
        self._thread: threading.Thread | None = None

    def arm(self, when: float, response: requests.Response, expired: threading.Event) -> int:
        """Cut `response` at monotonic time `when` unless disarmed first; a token for it."""
        with self._wake:
            self._next += 1
            self._armed[self._next] = (when, response, expired)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="http-deadline-watchdog", daemon=True
                )
                self._thread.start()
            self._wake.notify()
            return self._next

    def disarm(self, token: int) -> None:
        with self._wake:
            self._armed.pop(token, None)

    def _run(self) -> None:
        while True:
            with self._wake:
                now = time.monotonic()
                due = [t for t, (when, _, _) in self._armed.items() if when <= now]
                fired = [self._armed.pop(t) for t in due]
                if not fired:
                    soonest = min((w for w, _, _ in self._armed.values()), default=None)
                    self._wake.wait(None if soonest is None else max(soonest - now, 0.0))
                    continue
            for _, response, expired in fired:
                _cut(response, expired)


_WATCHDOG = _Watchdog()


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
