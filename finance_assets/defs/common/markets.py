"""The markets each domain builds its definitions for: those the environment configures
(`FINANCE_MARKETS`, `FINANCE_UNIVERSE_<KEY>`, ...), or the ones a caller names for one load of
the definitions (`serving`: tests and scripts that build the code location for one market)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

from finance_assets.lib.markets import Market, markets_from_env

_SERVING: ContextVar[tuple[Market, ...] | None] = ContextVar("finance_markets", default=None)


@contextmanager
def serving(markets: Sequence[Market] | None) -> Iterator[None]:
    """Definitions loaded inside are built for `markets` (None: the configured ones)."""
    token = _SERVING.set(None if markets is None else tuple(markets))
    try:
        yield
    finally:
        _SERVING.reset(token)


def configured_markets() -> list[Market]:
    served = _SERVING.get()
    return list(served) if served is not None else list(markets_from_env().values())
