"""The provider interface and the envelope every raw payload travels in."""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, NamedTuple

import orjson

from finance_assets.lib.markets import Market

# Bars come at 5min and 1day; posts are fetched by the hour.
Interval = Literal["5min", "1hour", "1day"]
INTERVALS: tuple[Interval, ...] = ("5min", "1hour", "1day")


def check_bar_request(interval: str, start: dt.datetime, end: dt.datetime) -> None:
    """What every `BarProvider.fetch_bars` refuses before calling anyone: an unknown interval,
    a naive datetime, an empty window."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
    for name, value in (("start", start), ("end", end)):
        if value.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware, got {value!r}")
    if end <= start:
        raise ValueError(f"empty range: start {start} >= end {end}")


class ProviderError(RuntimeError):
    """A provider refused or failed a request; the message never contains a secret."""


class PermanentProviderError(ProviderError):
    """Asking again cannot succeed until something changes: the key, a setting, the plan or
    the request. The asset fails once, without step retries (`is_permanent`)."""


def is_permanent(exc: BaseException) -> bool:
    """Whether a step retry cannot help: a `PermanentProviderError`, a request error the
    client does not retry (`retryable` false: a 4xx, a body of the wrong shape, a pause longer
    than the client's budget), or a `ValueError` (a setting, a request refused before any
    call). Timeouts, connection failures, 5xx and short rate-limit waits are transient."""
    if isinstance(exc, PermanentProviderError | ValueError):
        return True
    retryable = getattr(exc, "retryable", None)
    return isinstance(exc, ProviderError) and retryable is False


class PayloadFormatError(ValueError):
    """A payload that cannot be read at all (not JSON, not the provider's shape)."""


_ID_STAMP = "%Y%m%dT%H%M%SZ"


def payload_window(payload_id: str) -> tuple[dt.datetime, dt.datetime] | None:
    """The [start, end) a `RawPayload.payload_id` encodes, or None for another id.

    Parsers of providers that cannot filter by time (Alpha Vantage, Yahoo) use it to keep only
    the bars that were asked for."""
    parts = (payload_id or "").split("_")
    if len(parts) < 2:
        return None
    try:
        start, end = (dt.datetime.strptime(p, _ID_STAMP).replace(tzinfo=dt.UTC) for p in parts[:2])
    except ValueError:
        return None
    return (start, end) if start < end else None


def load_json_object(body: bytes | str, payload_id: str) -> dict[str, Any]:
    """A payload's JSON object, or a `PayloadFormatError` naming the payload."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadFormatError(f"payload {payload_id or '?'} is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PayloadFormatError(
            f"payload {payload_id or '?'}: expected a JSON object, got {type(document).__name__}"
        )
    return document


def json_object_or_none(body: bytes | str) -> dict[str, Any] | None:
    """A body's JSON object, or None for anything else (not JSON, another JSON type): for the
    quick looks at a payload that must not fail on one it cannot read."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    return document if isinstance(document, dict) else None


def raw_text(value: Any) -> str | None:
    """One JSON value as raw-record text: strings as sent, ints as digits, floats as their
    shortest round-trip repr; an object or list (not a number) as its JSON, kept as received
    for the cleaning step to quarantine with its reason."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict | list):
        return orjson.dumps(value).decode()
    return str(value)


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
        return "_".join(
            [
                self.window_start.astimezone(dt.UTC).strftime(_ID_STAMP),
                self.window_end.astimezone(dt.UTC).strftime(_ID_STAMP),
                self.fetched_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ"),
                f"b{self.batch:04d}",
            ]
        )


class BarRequest(NamedTuple):
    """What `fetch_bars` was asked for; `symbols` distinct, in order."""

    market: Market
    symbols: list[str]
    interval: Interval
    start: dt.datetime
    end: dt.datetime


class BarProvider(ABC):
    """What every market-data source offers the assets: `fetch_bars`, which refuses a bad
    request (`check_bar_request`) before any call and hands the rest to `_fetch_checked`."""

    name: ClassVar[str]

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
        return self._fetch_checked(
            BarRequest(market, list(dict.fromkeys(symbols)), interval, start, end)
        )

    @abstractmethod
    def _fetch_checked(self, request: BarRequest) -> list[RawPayload]:
        """The payloads of a checked request."""
