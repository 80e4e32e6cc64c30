"""What the real bar clients (Twelve Data, Alpha Vantage, Yahoo) share: `fetch_bars` as a plan
of calls, and one policy for symbols the provider does not know."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal, NamedTuple

from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import Interval, RawPayload, check_bar_request
from finance_assets.lib.providers.http import InvalidSymbol, redact

LOG = logging.getLogger("finance_assets.providers")

# One planned call: what it asks for (named in the warning when skipped), and the call itself,
# given its batch number (the count of calls made before it).
Call = tuple[str, Callable[[int], RawPayload]]


class BarRequest(NamedTuple):
    """What `fetch_bars` was asked for; `symbols` distinct, in order."""

    market: Market
    symbols: list[str]
    interval: Interval
    start: dt.datetime
    end: dt.datetime


class BarClient:
    """`BarProvider.fetch_bars` over `_plan`: each call in order, numbered by `batch`.

    A symbol the provider does not know (`InvalidSymbol`) is skipped with a warning and the
    others go on (its remaining calls too when `skip_known_invalid`), unless
    `on_invalid_symbol="raise"`, or no call succeeded: then the last such error is raised.
    """

    name: ClassVar[str]
    # Whether a symbol found unknown is not asked for again in the same fetch (its other
    # months would fail the same way).
    skip_known_invalid: ClassVar[bool] = False
    on_invalid_symbol: Literal["skip", "raise"] = "skip"

    def fetch_bars(
        self,
        market: Market,
        symbols: Sequence[str],
        interval: Interval,
        start: dt.datetime,
        end: dt.datetime,
    ) -> list[RawPayload]:
        """Bars with start <= bar start < end for `symbols`, as few calls as the source allows."""
        check_bar_request(interval, start, end)
        plan = self._plan(BarRequest(market, list(dict.fromkeys(symbols)), interval, start, end))
        payloads: list[RawPayload] = []
        skipped: list[InvalidSymbol] = []
        unknown: set[str] = set()
        batch = 0
        for label, call in plan:
            if label in unknown:
                continue
            try:
                payloads.append(call(batch))
            except InvalidSymbol as exc:
                if self.on_invalid_symbol == "raise":
                    raise
                skipped.append(exc)
                LOG.warning("%s", redact(f"{self.name}: skipping {label}: {exc}"))
                if self.skip_known_invalid:
                    unknown.add(label)
            finally:
                batch += 1
        if skipped and not payloads:
            raise skipped[-1]
        return payloads

    def _plan(self, request: BarRequest) -> list[Call]:
        """The calls that fetch the request; checks that refuse it raise here, before any
        call."""
        raise NotImplementedError
