"""What X's recent-search answers say: the rate limits in their headers, and the typed error
each failed answer is (with X's own words for it, from its problem bodies). Apart from the
client (`x_api.py`), which pages and waits on them."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from finance_assets.lib.providers.errors import (
    InvalidRequest,
    MalformedResponse,
    ProviderRequestError,
    QuotaExhausted,
    RateLimited,
    refused,
)

# Resets are whole epoch seconds: a second more makes sure the window has turned.
RESET_MARGIN = 1.0
# Rate-limit header families, most specific (15-minute window) first.
_LIMIT_HEADERS = ("x-rate-limit", "x-app-limit-24hour", "x-user-limit-24hour")
_DETAIL_LIMIT = 300


@dataclass(frozen=True)
class RateWindow:
    """One rate limit as the last response told it."""

    name: str  # the header family, e.g. "x-rate-limit"
    limit: int | None
    remaining: int
    reset: dt.datetime


def rate_windows(headers: Mapping[str, str]) -> list[RateWindow]:
    """The rate limits a response's headers state (readable `-remaining` and `-reset` only)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    found = []
    for name in _LIMIT_HEADERS:
        try:
            remaining = int(lowered[f"{name}-remaining"])
            reset = dt.datetime.fromtimestamp(int(lowered[f"{name}-reset"]), dt.UTC)
        except (KeyError, ValueError, OverflowError, OSError):
            continue
        try:
            limit: int | None = int(lowered[f"{name}-limit"])
        except (KeyError, ValueError):
            limit = None
        found.append(RateWindow(name, limit, remaining, reset))
    return found


def spent_window(windows: Sequence[RateWindow], now: dt.datetime) -> RateWindow | None:
    """The spent limit (0 remaining) that resets last after `now`, if any."""
    spent = [w for w in windows if w.remaining <= 0 and w.reset > now]
    return max(spent, key=lambda w: w.reset) if spent else None


def rfc3339(moment: dt.datetime) -> str:
    """`moment` in UTC as X wants it: `YYYY-MM-DDTHH:MM:SSZ` (second granularity)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class SearchAnswer:
    """One recent-search answer about `symbol`, with what judging it needs: the response's
    headers (its rate limits), the time it came, and the longest wait the client accepts."""

    provider: str
    symbol: str
    headers: Mapping[str, str]
    now: dt.datetime
    max_wait_seconds: float

    def classify(self, status: int, document: Any) -> None:
        """Typed errors with X's own words for them (problem bodies: title, detail, errors);
        returns for an answer to keep."""
        if status == 429:
            self._raise_rate_limited(document)
        if status >= 500:
            return  # HttpClient: unavailable, retried
        if status >= 400:
            error = refused(status)
            hint = (
                " (check X_BEARER_TOKEN: an app bearer token of a project with access to "
                "recent search)"
                if status in (401, 403)
                else ""
            )
            raise self._error(error, f" -> HTTP {status} {problem(document)}{hint}", status)
        if not isinstance(document, dict):
            raise self._error(
                MalformedResponse,
                f": expected a JSON object, got {type(document).__name__}",
                status,
            )
        if "data" not in document and "meta" not in document:
            if document.get("errors") or document.get("title"):
                raise self._error(InvalidRequest, f" -> HTTP {status} {problem(document)}", status)
            raise self._error(MalformedResponse, ": neither 'data' nor 'meta' in the body", status)

    def _error(
        self, error: type[ProviderRequestError], what: str, status: int, **more: Any
    ) -> ProviderRequestError:
        return error(
            f"{self.provider}: search for {self.symbol}{what}",
            provider=self.provider,
            status=status,
            symbol=self.symbol,
            **more,
        )

    def _raise_rate_limited(self, document: Any) -> None:
        if isinstance(document, dict) and (
            document.get("title") == "UsageCapExceeded"
            or str(document.get("type", "")).endswith("/usage-capped")
        ):
            raise self._error(
                QuotaExhausted,
                f" -> HTTP 429 {problem(document)}: the plan's post cap is spent until its "
                "period renews",
                429,
            )
        windows = rate_windows(self.headers)
        spent = spent_window(windows, self.now) or next(
            (w for w in windows if w.name == "x-rate-limit"), None
        )
        if spent is None:
            # No reset to go by: HttpClient backs off exponentially, with jitter.
            raise self._error(RateLimited, f" -> HTTP 429 {problem(document)}", 429)
        wait = max((spent.reset - self.now).total_seconds(), 0.0) + RESET_MARGIN
        plan = (
            f"more than max_wait_seconds={self.max_wait_seconds:g}: try again after the reset"
            if wait > self.max_wait_seconds
            else "waiting for it"
        )
        raise self._error(
            RateLimited,
            f" -> HTTP 429 {problem(document)}; the rate limit ({spent.name}) resets at "
            f"{rfc3339(spent.reset)}, in {math.ceil(wait)}s, {plan}",
            429,
            retry_after=wait,
        )


def problem(document: Any) -> str:
    """X's words for a failure: `title: detail`, then the first per-parameter messages."""
    if not isinstance(document, dict):
        return "(no JSON problem body)"
    title = str(document.get("title") or "").strip()
    detail = str(document.get("detail") or "").strip()
    text = f"{title}: {detail}" if title and detail and detail != title else title or detail
    messages = [
        str(error.get("message") or error.get("detail") or "")
        for error in document.get("errors") or []
        if isinstance(error, dict)
    ]
    messages = [m for m in messages if m][:3]
    if messages:
        text = f"{text} ({'; '.join(messages)})" if text else "; ".join(messages)
    text = " ".join((text or "(no detail)").split())
    return text if len(text) <= _DETAIL_LIMIT else text[: _DETAIL_LIMIT - 1] + "…"
