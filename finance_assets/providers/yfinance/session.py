"""The sessions yfinance talks through (curl_cffi impersonating Chrome, or requests), rebased
to a mirror of Yahoo's hosts when asked, and yfinance's process-wide data layer on them."""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

from finance_assets.lib.providers.http import check_base_url

# yfinance's data layer is one object per process (YfData is a singleton holding one session,
# cookie and crumb): one call at a time through it, each on its client's session.
YF_LOCK = threading.RLock()


def rebase_url(url: str, base_url: str) -> str:
    """`url` with its scheme and host replaced by `base_url` (path and query kept)."""
    target = urllib.parse.urlsplit(base_url)
    parts = urllib.parse.urlsplit(url)
    path = target.path.rstrip("/") + (parts.path or "/")
    return urllib.parse.urlunsplit((target.scheme, target.netloc, path, parts.query, ""))


def rebase_session(session: Any, base_url: str) -> Any:
    """Make `session` (curl_cffi or requests) send every request to `base_url` instead of
    Yahoo's hosts; returns it.

    yfinance hard-codes its hosts (query1/query2.finance.yahoo.com for data and crumbs,
    fc.yahoo.com for the cookie, guce/consent.yahoo.com for the consent form), so pointing it at
    a mirror or a local stand-in means rewriting at the session, the one thing it lets callers
    choose. Paths and queries are kept: `/v8/finance/chart/AAPL?...`, `/v1/test/getcrumb`.
    Both session types route `get`/`post` through `request`, which is wrapped on the instance
    (not subclassed): yfinance accepts the object unchanged, whichever backend it is.
    """
    target = check_base_url(base_url, "base_url")
    send = session.request

    def request(method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        return send(method, rebase_url(url, target), *args, **kwargs)

    session.request = request
    session.rebase_to = target
    return session


class DeadlinePassed(TimeoutError):
    """A request of yfinance's was about to start after its call's deadline had passed."""


def bound_by_deadline(session: Any) -> Any:
    """Make every request of `session` end by the deadline `within` sets: yfinance may send
    several for one call (the cookie, the crumb, the consent form, the chart, a re-ask), each
    with the call's own timeout, so each gets what is left instead. On curl_cffi (yfinance's
    backend) a float timeout is libcurl's total one (CURLOPT_TIMEOUT_MS): headers and body
    together, however slowly they trickle. (A requests session reads it per read.) Returns
    `session`; doing it twice is harmless."""
    if getattr(session, "deadline_bound", False):
        return session
    send = session.request
    state = threading.local()

    def request(method: Any, url: str, *args: Any, **kwargs: Any) -> Any:
        ends = getattr(state, "ends", None)
        if ends is not None:
            left = ends - time.monotonic()
            if left <= 0:
                raise DeadlinePassed(f"the call's deadline passed before {method} {url}")
            given = kwargs.get("timeout")
            kwargs["timeout"] = left if not isinstance(given, (int, float)) else min(given, left)
        return send(method, url, *args, **kwargs)

    session.request = request
    session.deadline_state = state
    session.deadline_bound = True
    return session


@contextlib.contextmanager
def within(session: Any, seconds: float) -> Iterator[None]:
    """Every request `session` sends inside the block ends `seconds` from now at the latest
    (`bound_by_deadline`); per thread."""
    state = bound_by_deadline(session).deadline_state
    state.ends = time.monotonic() + seconds
    try:
        yield
    finally:
        state.ends = None


def new_session(base_url: str | None = None, proxy: str | None = None) -> Any:
    """The session yfinance would make (curl_cffi impersonating Chrome), rebased to `base_url`
    when given, through `proxy` when given."""
    from curl_cffi import requests as curl_requests  # here: the parser needs no HTTP stack

    session = curl_requests.Session(impersonate="chrome")
    if proxy:
        session.proxies = {"http": proxy, "https": proxy}  # type: ignore[assignment]
    return rebase_session(session, base_url) if base_url else session


def data_layer(session: Any) -> Any:
    """yfinance's process-wide data layer, talking through `session`. Call under YF_LOCK."""
    from yfinance.data import YfData

    data = YfData()
    if getattr(data, "_session", None) is not session:
        data = YfData(session=session)  # the singleton swaps its session (and validates it)
        # Cookie and crumb were minted on the previous session: let yfinance mint new ones on
        # this one rather than send a crumb Yahoo will refuse (costing a 401 and a re-ask).
        data._cookie = None
        data._crumb = None
    return data
