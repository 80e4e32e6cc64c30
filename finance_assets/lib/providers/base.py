"""The provider interface and the envelope every raw payload travels in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from finance_assets.lib.markets import Market

# Bars come at 5min and 1day; posts are fetched by the hour.
Interval = Literal["5min", "1hour", "1day"]
INTERVALS: tuple[Interval, ...] = ("5min", "1hour", "1day")


class ProviderError(RuntimeError):
    """A provider refused or failed a request; the message never contains a secret."""


@dataclass(frozen=True)
class RawPayload:
    """One response body exactly as received, with what was asked for and when.

    `body` is never re-encoded: it is what the raw zone stores and what replays parse.
    `format` names the parser that reads it (a provider may speak another's format).
    """

    provider: str
    format: str
    interval: Interval
    symbols: tuple[str, ...]
    window_start: dt.datetime
    window_end: dt.datetime
    fetched_at: dt.datetime
    body: bytes
    batch: int = 0
    request: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"

    def __post_init__(self) -> None:
        for name in ("window_start", "window_end", "fetched_at"):
            value = getattr(self, name)
            if value.tzinfo is None:
                raise ValueError(f"RawPayload.{name} must be timezone-aware, got {value!r}")
        if self.window_end <= self.window_start:
            raise ValueError(
                f"RawPayload window is empty: {self.window_start} >= {self.window_end}"
            )

    @property
    def payload_id(self) -> str:
        """Unique and sortable: window, fetch time, batch."""
        fmt = "%Y%m%dT%H%M%SZ"
        return "_".join(
            [
                self.window_start.astimezone(dt.UTC).strftime(fmt),
                self.window_end.astimezone(dt.UTC).strftime(fmt),
                self.fetched_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ"),
                f"b{self.batch:04d}",
            ]
        )


class BarProvider(Protocol):
    """What every market-data source offers the assets."""

    name: str

    def fetch_bars(
        self,
        market: Market,
        symbols: Sequence[str],
        interval: Interval,
        start: dt.datetime,
        end: dt.datetime,
    ) -> list[RawPayload]:
        """Bars with start <= bar start < end for `symbols`, as few calls as the source allows."""
        ...
