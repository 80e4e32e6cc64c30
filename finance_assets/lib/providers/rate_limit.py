"""A per-provider rate limiter (pyrate-limiter) that waits exactly until a slot is free, shared
by every client of the process on one key; and the injectable clock and sleep it runs on."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from pyrate_limiter import (
    AbstractClock,
    InMemoryBucket,
    Limiter,
    Rate,
    RateItem,
    SingleBucketFactory,
)

from finance_assets.lib.providers.errors import RateLimited

LOG = logging.getLogger("finance_assets.providers")

Clock = Callable[[], dt.datetime]
Sleep = Callable[[float], None]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


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

    def refund(self, weight: int = 1) -> None:
        """Give back the last `weight` units taken: the call they paid for cost the provider
        nothing (a 429, a 5xx it does not charge), so its retry must not wait for them."""
        with self._limiter.lock, self._bucket._lock:
            items = self._bucket.items
            # The newest units (a weight-w acquire puts w of them): another thread's in the
            # meantime would be as recent, and the count is what the window holds.
            del items[max(len(items) - weight, 0) :]

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
