"""What the real bar clients (Twelve Data, Alpha Vantage, Yahoo) share: `fetch_bars` as a plan
of calls, and one policy for symbols the provider does not know."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import ClassVar, Literal

from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import (
    BarProvider,
    BarRequest,
    Interval,
    RawPayload,
    check_bar_request,
)
from finance_assets.lib.providers.budget import CallBudget, FetchPlan, plan_calls
from finance_assets.lib.providers.http import InvalidSymbol, redact

LOG = logging.getLogger("finance_assets.providers")

# One planned call: what it asks for (named in the warning when skipped), and the call itself,
# given its batch number (the count of calls made before it).
Call = tuple[str, Callable[[int], RawPayload]]


class BarClient(BarProvider):
    """`BarProvider._fetch_checked` over `_plan`: each call in order, numbered by `batch`.

    A symbol the provider does not know (`InvalidSymbol`) is skipped with a warning and the
    others go on (its remaining calls too when `skip_known_invalid`), unless
    `on_invalid_symbol="raise"`, or no call succeeded: then the last such error is raised.
    """

    # Whether a symbol found unknown is not asked for again in the same fetch (its other
    # months would fail the same way).
    skip_known_invalid: ClassVar[bool] = False
    on_invalid_symbol: Literal["skip", "raise"] = "skip"
    # The plan's allowance (set by the client's constructor); None: nothing to count.
    budget: CallBudget | None = None

    def plan(
        self,
        market: Market,
        symbols: Sequence[str],
        interval: Interval,
        start: dt.datetime,
        end: dt.datetime,
    ) -> FetchPlan | None:
        """The calls `fetch_bars` would send for this request and their cost, without sending
        any (None for a client without a budget)."""
        check_bar_request(interval, start, end)
        request = BarRequest(market, list(dict.fromkeys(symbols)), interval, start, end)
        return self._priced(request, self._plan(request))

    def _priced(self, request: BarRequest, plan: list[Call]) -> FetchPlan | None:
        if self.budget is None:
            return None
        weights = self._call_weights(request, plan)
        if len(weights) != len(plan):  # a client's weights must follow its own plan
            raise RuntimeError(
                f"{self.name}: {len(weights)} call weights for a plan of {len(plan)} calls"
            )
        return plan_calls(
            self.budget,
            weights,
            symbols=len(request.symbols),
            interval=request.interval,
            start=request.start,
            end=request.end,
        )

    def _call_weights(self, request: BarRequest, plan: list[Call]) -> list[int]:
        """Each planned call's cost in the budget's unit: one, unless the provider charges
        more (Twelve Data: a credit per symbol of a batch)."""
        return [1] * len(plan)

    def _fetch_checked(self, request: BarRequest) -> list[RawPayload]:
        plan = self._plan(request)
        priced = self._priced(request, plan)
        if priced is not None:
            priced.check()  # a fetch that cannot fit the day is refused before any call
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


def plan_fetch(
    provider: BarProvider,
    market: Market,
    symbols: Sequence[str],
    interval: Interval,
    start: dt.datetime,
    end: dt.datetime,
) -> FetchPlan | None:
    """What `provider.fetch_bars(...)` of the same request would send and cost, sending
    nothing: its calls, their credits and the minutes they take at the provider's per-minute
    budget (`FetchPlan`; `.check()` refuses one that cannot fit the day). None for a source
    without a budget (the simulated market, a landing file)."""
    if not isinstance(provider, BarClient):
        return None
    return provider.plan(market, symbols, interval, start, end)
