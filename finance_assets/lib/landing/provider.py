"""The provider a landing run reads through (`LandingZoneFiles`): the run the landing sensor
started reads the dropped file instead of calling the market-data provider."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from finance_assets.lib.landing.inspection import (
    MAX_FILE_BYTES,
    LandingFileRejected,
    content_hash,
    inspect_file,
)
from finance_assets.lib.landing.location import LandingStore
from finance_assets.lib.landing.names import name_problem
from finance_assets.lib.providers.base import BarProvider, BarRequest, ProviderError, RawPayload
from finance_assets.providers.yfinance.csv_export import FORMAT, PROVIDER


class LandingZoneFiles(BarProvider):
    """A BarProvider over one dropped file: the run the landing sensor started reads the file
    instead of calling the market-data provider.

    `fetch_bars` returns one payload, format "yahoo_csv", whose body is the file's bytes as
    received; its symbols are the file's (not the `symbols` asked for: a drop may hold any
    symbol). It refuses a file whose content is not the one the sensor validated (`sha256`):
    the sensor starts a new run for the new content.
    """

    name = PROVIDER

    def __init__(
        self,
        store: LandingStore,
        file_name: str,
        sha256: str | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        max_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        problem = name_problem(file_name)
        if problem:
            raise ProviderError(f"landing file {file_name!r}: {problem}")
        self.store = store
        self.file_name = file_name
        self.sha256 = sha256
        self.max_bytes = max_bytes
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    def __repr__(self) -> str:
        return f"LandingZoneFiles({self.store!r}, {self.file_name!r})"

    def _fetch_checked(self, request: BarRequest) -> list[RawPayload]:
        market, _, interval, start, end = request  # the file's symbols, not those asked for
        if interval != "1day":
            raise ProviderError(f"landing-zone files hold daily bars, not {interval} ones")
        fetched_at = self._clock()
        try:
            body = self.store.read(self.file_name)
        except FileNotFoundError:
            raise ProviderError(
                f"landing file {self.store.uri(self.file_name)} is gone (rejected or removed)"
            ) from None
        sha = content_hash(body)
        if self.sha256 and sha != self.sha256:
            raise ProviderError(
                f"landing file {self.file_name} changed since the sensor validated it "
                f"(sha256 {self.sha256[:12]}.. -> {sha[:12]}..); the sensor runs the new content"
            )
        try:
            inspection = inspect_file(self.file_name, body, market, max_bytes=self.max_bytes)
        except LandingFileRejected as exc:
            raise ProviderError(f"landing file {self.file_name}: {exc}") from None
        first = start.astimezone(market.tz).date()
        last = (end - dt.timedelta(microseconds=1)).astimezone(market.tz).date()
        outside = [d for d in inspection.sessions if not first <= d <= last]
        if outside:
            # Rows outside the run would be quarantined as strays: run the file's whole range.
            raise ProviderError(
                f"landing file {self.file_name} covers {inspection.first}..{inspection.last}, "
                f"the run {first}..{last}; run it over the file's sessions"
            )
        return [
            RawPayload(
                provider=self.name,
                format=FORMAT,
                interval=interval,
                symbols=inspection.symbols,
                window_start=start,
                window_end=end,
                fetched_at=fetched_at,
                body=body,
                request={
                    "file": self.file_name,
                    "uri": self.store.uri(self.file_name),
                    "sha256": sha,
                },
                content_type="text/csv",
            )
        ]
