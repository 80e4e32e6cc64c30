"""What the real bar clients (Twelve Data, Alpha Vantage, Yahoo) share: `fetch_bars` as a plan
of calls, and one policy for symbols the provider does not know."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import ClassVar, Literal

from finance_assets.lib.providers.base import BarProvider, BarRequest, RawPayload
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

    def _fetch_checked(self, request: BarRequest) -> list[RawPayload]:
        plan = self._plan(request)
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
