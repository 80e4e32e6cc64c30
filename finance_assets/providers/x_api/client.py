"""X API v2 recent search: posts about each company, every page kept exactly as received.

`GET {base}/2/tweets/search/recent` with `query = market.posts_query(symbol)` (for example
`(#Apple OR $AAPL) -is:retweet lang:en`), `tweet.fields=created_at,public_metrics,lang`,
`max_results=100`, `start_time`/`end_time` (RFC 3339 UTC, whole seconds; start inclusive, end
exclusive, as the partitions are) and `next_token` paging, up to `max_pages` pages per company.
`fetch_posts` has `SimulatedPosts.fetch_posts`'s interface: one `RawPayload` per page per company,
format "x_search", the body exactly as received (`social.parse_x_search` reads it).

Search window. Recent search only reaches back 7 days:
- a window entirely older than that is refused (`OutsideSearchWindow`) before any call;
- a window partly older is clipped: its start moves to the earliest instant still safe to ask
  for, `now - 7 days + 60 s + max_wait_seconds` (the margin covers clock skew and a rate-limit
  wait in the middle of a company's pages, after which the same `start_time` must still be
  accepted). It is logged at WARNING; the payloads' `window_start` is the clipped start (what
  they cover) and `request["requested_start"]` the asked one. Clipping is redone per company.
- X refuses an `end_time` less than 10 s before the request. A window ending that recently (a
  partition materialised just after its hour) waits until `end + 30 s` when that is within
  `max_wait_seconds`, rather than cut posts off its end; a window ending later is refused.

Rate limits. Every response's `x-rate-limit-{limit,remaining,reset}` headers (reset in epoch
seconds), and the 24-hour `x-app-limit-24hour-*` / `x-user-limit-24hour-*` ones when X sends
them, are recorded:
- before each request, when a limit has 0 remaining and resets later: wait until the reset
  (+1 s) if that is within `max_wait_seconds`, else fail (`RateLimited`, not retried) naming
  the reset time;
- a 429 is retried by `HttpClient` (3 attempts): waiting until `x-rate-limit-reset` when sent
  (within `max_wait_seconds`, else it fails at once naming the reset), with exponential
  backoff and full jitter when not;
- a 429 whose body says `UsageCapExceeded` (the plan's monthly post cap) is `QuotaExhausted`:
  no wait of minutes helps;
- a local limiter (`requests_per_window` per `window_seconds`, default 450 per 15 minutes, the
  highest app limit X publishes for this endpoint) is only a ceiling: the headers decide.

What the answers' headers and problem bodies mean is in `answers.py`.

The bearer token travels in `Authorization: Bearer ...`, never in a URL; it is registered with
the redactor, so it appears in no log line, error message or stored `request` dict.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
from collections.abc import Sequence
from typing import Any

import requests

from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import RawPayload
from finance_assets.lib.providers.errors import InvalidRequest, RateLimited
from finance_assets.lib.providers.keyed import KeyedClient
from finance_assets.lib.providers.retrying import RequestRetries
from finance_assets.providers.x_api.answers import (
    RESET_MARGIN,
    RateWindow,
    SearchAnswer,
    rate_windows,
    rfc3339,
    spent_window,
)

__all__ = ["OutsideSearchWindow", "RateWindow", "XSearchClient", "rate_windows", "rfc3339"]

DEFAULT_BASE_URL = "https://api.twitter.com"
ENDPOINT = "2/tweets/search/recent"
FORMAT = "x_search"
TWEET_FIELDS = "created_at,public_metrics,lang"
MAX_RESULTS = 100  # the endpoint's largest page (10..100)
DEFAULT_MAX_PAGES = 10
DEFAULT_MAX_WAIT_SECONDS = 900.0  # one 15-minute rate-limit window
# The highest app-level limit X publishes for recent search; lower plans are caught by the
# headers, which are the authority.
DEFAULT_REQUESTS_PER_WINDOW = 450
DEFAULT_WINDOW_SECONDS = 900.0

SEARCH_REACH = dt.timedelta(days=7)
# Our clock against X's and the request's travel time, before the 7-day edge.
START_MARGIN = dt.timedelta(seconds=60)
# X refuses end_time less than 10 s before the request; 30 s is its own default lag.
END_LAG = dt.timedelta(seconds=30)


class OutsideSearchWindow(InvalidRequest, ValueError):
    """The window lies where recent search cannot see: older than 7 days, or in the future."""


def _floor_second(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(microsecond=0)


def _ceil_second(moment: dt.datetime) -> dt.datetime:
    floored = _floor_second(moment)
    return floored if floored == moment else floored + dt.timedelta(seconds=1)


class XSearchClient(KeyedClient):
    """Posts source over X API v2 recent search (format "x_search")."""

    name = "x_api"

    def __init__(
        self,
        bearer_token: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        max_pages: int = DEFAULT_MAX_PAGES,
        max_results: int = MAX_RESULTS,
        max_wait_seconds: float = DEFAULT_MAX_WAIT_SECONDS,
        requests_per_window: int = DEFAULT_REQUESTS_PER_WINDOW,
        window_seconds: float = DEFAULT_WINDOW_SECONDS,
        timeout: tuple[float, float] = (5.0, 30.0),
        retry: RequestRetries | None = None,
        **client: Any,
    ) -> None:
        """`client`: `KeyedClient`'s session, limiter, clock and sleep."""
        token = (bearer_token or "").strip()
        # A token pasted with its scheme still works (and is still redacted whole).
        if token.lower().startswith("bearer "):
            token = token[len("bearer ") :].strip()
        if max_pages < 1:
            raise ValueError(f"max_pages must be >= 1, got {max_pages}")
        if not 10 <= max_results <= MAX_RESULTS:
            raise ValueError(f"max_results must be within [10, {MAX_RESULTS}], got {max_results}")
        if max_wait_seconds < 0:
            raise ValueError(f"max_wait_seconds must be >= 0, got {max_wait_seconds}")
        super().__init__(
            token,
            base_url,
            calls=requests_per_window,
            period=window_seconds,
            timeout=timeout,
            # A 429's reset is worth waiting for as long as a spent limit is.
            retry=retry or RequestRetries(max_retry_after=float(max_wait_seconds)),
            **client,
        )
        self.max_pages = max_pages
        self.max_results = max_results
        self.max_wait_seconds = float(max_wait_seconds)
        self._auth = {"Authorization": f"Bearer {token}"}
        # HttpClient hands `classify` the status and document only: the rate-limit headers
        # are taken from each response as it arrives (a requests hook on the session).
        self._last = threading.local()
        self._limits: dict[str, RateWindow] = {}
        self._lock = threading.Lock()
        self.http.session.hooks.setdefault("response", []).append(self._observe)

    def _shown(self) -> dict[str, Any]:
        return {
            **super()._shown(),
            "max_pages": self.max_pages,
            "max_wait_seconds": self.max_wait_seconds,
        }

    @property
    def rate_limits(self) -> dict[str, RateWindow]:
        """The rate limits the last responses stated, by header family."""
        with self._lock:
            return dict(self._limits)

    # --- the posts interface ----------------------------------------------------------------

    def fetch_posts(
        self, market: Market, symbols: Sequence[str], start: dt.datetime, end: dt.datetime
    ) -> list[RawPayload]:
        """Posts with start <= created_at < end about each of `symbols`: one payload per page
        per company, newest first, as the search pages them."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError(f"start and end must be timezone-aware, got {start!r}, {end!r}")
        if end <= start:
            raise ValueError(f"the window is empty: {start} >= {end}")
        start = _floor_second(start)
        end = self._reachable_end(self._check_not_too_old(start, _ceil_second(end)))
        payloads: list[RawPayload] = []
        for symbol in dict.fromkeys(symbols):
            # Clipped per company: the clock moved on while the previous one was paged.
            window_start = max(start, self._earliest_start())
            self._check_not_too_old(window_start, end, log=False)
            payloads.extend(
                self._search(market, symbol, window_start, end, start, first_batch=len(payloads))
            )
        return payloads

    # --- internals ----------------------------------------------------------------------------

    def _search(
        self,
        market: Market,
        symbol: str,
        start: dt.datetime,
        end: dt.datetime,
        requested_start: dt.datetime,
        first_batch: int,
    ) -> list[RawPayload]:
        params = {
            "query": market.posts_query(symbol),
            "tweet.fields": TWEET_FIELDS,
            "max_results": str(self.max_results),
            "start_time": rfc3339(start),
            "end_time": rfc3339(end),
        }
        extra = {} if start == requested_start else {"requested_start": rfc3339(requested_start)}
        classify = functools.partial(self._classify, symbol=symbol)
        payloads: list[RawPayload] = []
        next_token: str | None = None
        for page in range(self.max_pages):
            page_params = {**params, "next_token": next_token} if next_token else dict(params)
            self._await_quota(symbol)
            response = self.http.get_json(
                f"{self.base_url}/{ENDPOINT}", page_params, headers=self._auth, classify=classify
            )
            payloads.append(
                RawPayload(
                    provider=self.name,
                    format=FORMAT,
                    interval="1hour",
                    symbols=(symbol,),
                    window_start=start,
                    window_end=end,
                    fetched_at=response.fetched_at,
                    body=response.body,
                    # Unique across companies too: payload ids must not collide in the raw zone.
                    batch=first_batch + page,
                    request=self.http.redact(
                        {
                            "endpoint": ENDPOINT,
                            "base_url": self.base_url,
                            **page_params,
                            "page": str(page),
                            **extra,
                        }
                    ),
                    content_type=response.content_type,
                )
            )
            meta = response.document.get("meta") or {}
            next_token = meta.get("next_token") or None
            if not next_token:
                break
        else:
            self.http.log(
                logging.WARNING,
                "%s: %s: stopped at max_pages=%d pages with more posts left in %s..%s; the "
                "oldest posts of the window are missing (raise max_pages to get them)",
                self.name,
                symbol,
                self.max_pages,
                rfc3339(start),
                rfc3339(end),
            )
        return payloads

    def _earliest_start(self) -> dt.datetime:
        """The earliest start_time recent search is sure to accept until this company's last
        page: 7 days back, less the clock margin and the longest rate-limit wait."""
        margin = START_MARGIN + dt.timedelta(seconds=self.max_wait_seconds)
        return _ceil_second(self._clock() - SEARCH_REACH + margin)

    def _check_not_too_old(
        self, start: dt.datetime, end: dt.datetime, *, log: bool = True
    ) -> dt.datetime:
        """`end`, if any of the window is within recent search's reach; else an error."""
        earliest = self._earliest_start()
        if end <= earliest:
            raise OutsideSearchWindow(
                f"{self.name}: the window {rfc3339(start)}..{rfc3339(end)} is older than recent "
                f"search reaches: it answers for the last 7 days, and from {rfc3339(earliest)} "
                f"on with this client's margins (now {rfc3339(self._clock())}); older posts "
                "need the full-archive search, which this client does not use",
                provider=self.name,
            )
        if log and start < earliest:
            self.http.log(
                logging.WARNING,
                "%s: the window starts at %s, beyond recent search's 7 days: clipped to %s; "
                "posts before that are not fetched",
                self.name,
                rfc3339(start),
                rfc3339(earliest),
            )
        return end

    def _reachable_end(self, end: dt.datetime) -> dt.datetime:
        """`end`, after waiting until X accepts it as an end_time (a window that ended less
        than 30 s ago); a window ending later than `max_wait_seconds` allows is refused."""
        wait = (end + END_LAG - self._clock()).total_seconds()
        if wait <= 0:
            return end
        if wait > self.max_wait_seconds:
            raise OutsideSearchWindow(
                f"{self.name}: the window ends at {rfc3339(end)}, in the future: recent search "
                f"only answers up to {END_LAG.total_seconds():g}s ago (the wait, {wait:.0f}s, "
                f"is more than max_wait_seconds={self.max_wait_seconds:g})",
                provider=self.name,
            )
        self.http.log(
            logging.INFO,
            "%s: the window ends at %s: waiting %.0fs until recent search has it",
            self.name,
            rfc3339(end),
            wait,
        )
        self._sleep(wait)
        return end

    def _observe(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Session hook: keep each response's rate-limit headers."""
        self._last.headers = response.headers
        windows = rate_windows(response.headers)
        if windows:
            with self._lock:
                self._limits.update({w.name: w for w in windows})

    def _await_quota(self, symbol: str) -> None:
        """Before a request: wait out a spent limit, or fail when its reset is too far."""
        now = self._clock()
        with self._lock:
            spent = spent_window(list(self._limits.values()), now)
        if spent is None:
            return
        wait = (spent.reset - now).total_seconds() + RESET_MARGIN
        if wait > self.max_wait_seconds:
            raise RateLimited(
                f"{self.name}: rate limit spent ({spent.name}: 0 of {spent.limit or '?'} left) "
                f"before searching for {symbol}; it resets at {rfc3339(spent.reset)}, in "
                f"{wait:.0f}s, more than max_wait_seconds={self.max_wait_seconds:g}: try again "
                "after the reset",
                provider=self.name,
                retry_after=wait,
                symbol=symbol,
                retryable=False,
            )
        self.http.log(
            logging.INFO,
            "%s: rate limit spent (%s); waiting %.0fs until its reset at %s",
            self.name,
            spent.name,
            wait,
            rfc3339(spent.reset),
        )
        self._sleep(wait)

    def _classify(self, status: int, document: Any, *, symbol: str) -> None:
        # HttpClient hands over the status and document; the headers came by the session hook.
        SearchAnswer(
            self.name,
            symbol,
            getattr(self._last, "headers", None) or {},
            self._clock(),
            self.max_wait_seconds,
        ).classify(status, document)
