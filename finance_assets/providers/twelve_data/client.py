"""Twelve Data `/time_series`: batches of symbols per call, bodies kept exactly as received
(format "twelve_data"; the parser and the symbol notation are in `parser.py`, and
re-exported here).

One call per batch of up to 120 symbols (and per exchange), `timezone=Exchange`,
`outputsize=5000`: a 20-day 5-minute backfill is one call per batch; a range needing more than
5000 values per symbol is split into consecutive windows of at most 5000 bars.

A batch answer is keyed by symbol and one entry may be an error (`{"code":400,...}`) while the
rest succeed: the payload is kept and the parser reports that symbol. A top-level
`{"code":429,...}` ("run out of API credits for the current minute") waits for the next
minute's credits and retries (its credits given back to the limiter: such an answer costs
none); "... for the day" is `QuotaExhausted`. A fetch planned to need more than
`credits_per_day` (TWELVEDATA_CREDITS_PER_DAY, 800 free) is refused before any call.

London listings are asked for without their `.L` and with `exchange=LSE` (`BT.A.L` -> symbol
`BT.A` + `exchange=LSE`); `RawPayload.symbols` always holds the canonical symbols.

The API key travels in the `Authorization: apikey ...` header, never in the URL.

Corporate actions (`fetch_actions`, `TWELVEDATA_CORPORATE_ACTIONS=true`): `/splits` and
`/dividends`, one call per symbol per endpoint with the window's `start_date`/`end_date`, 20
credits each, priced before any call (`plan_actions`); their bodies are kept as received in
format "twelve_data_actions", which carries actions and never bars.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from finance_assets.lib.markets import BAR_MINUTES, Market
from finance_assets.lib.providers.bars import BarClient, Call
from finance_assets.lib.providers.base import BarRequest, Interval, RawPayload
from finance_assets.lib.providers.budget import BudgetExceeded, CallBudget, FetchPlan
from finance_assets.lib.providers.errors import (
    AuthenticationFailed,
    InvalidRequest,
    InvalidSymbol,
    MalformedResponse,
    ProviderUnavailable,
    QuotaExhausted,
    RateLimited,
)
from finance_assets.lib.providers.http import local_text, redact, seconds_to_next_minute
from finance_assets.lib.providers.keyed import KeyedClient
from finance_assets.providers.twelve_data.parser import (
    ACTIONS_FORMAT,
    FORMAT,
    canonical_symbol,
    error_code,
    parse_twelve_data,
    to_twelve_data,
    twelve_data_errors,
)

__all__ = [
    "FORMAT",
    "TwelveDataClient",
    "canonical_symbol",
    "parse_twelve_data",
    "to_twelve_data",
    "twelve_data_errors",
]

DEFAULT_BASE_URL = "https://api.twelvedata.com"
MAX_BATCH_SYMBOLS = 120  # Twelve Data's limit per batch request
MAX_OUTPUTSIZE = 5000  # values per symbol per call
# Free ("Basic") plan: 8 API credits a minute, 800 a day, and a batch costs one credit per
# symbol.
FREE_CREDITS_PER_MINUTE = 8
FREE_CREDITS_PER_DAY = 800
PER_MINUTE_VARIABLE = "TWELVEDATA_CREDITS_PER_MINUTE"
PER_DAY_VARIABLE = "TWELVEDATA_CREDITS_PER_DAY"
# Corporate actions: Twelve Data documents `/splits` and `/dividends` at "API credits cost: 20
# per symbol" each, "available on the Grow plan (individual) ... and above"
# (https://twelvedata.com/docs/llms/fundamentals/splits.md, .../fundamentals/dividends.md). A
# free key (8 credits a minute) can never send one; a Basic key is answered 403.
ACTION_ENDPOINTS = ("splits", "dividends")
ACTION_CREDITS = 20
ACTIONS_VARIABLE = "TWELVEDATA_CORPORATE_ACTIONS"
LOG = logging.getLogger("finance_assets.providers")


@dataclass(frozen=True)
class _Window:
    """One call's slice of the requested range: [start, end), and the exchange-local
    `start_date`/`end_date` that ask Twelve Data for exactly its bars."""

    start: dt.datetime
    end: dt.datetime
    start_date: str
    end_date: str


class TwelveDataClient(KeyedClient, BarClient):
    """`BarProvider` over Twelve Data's `/time_series` (format "twelve_data")."""

    name = "twelve_data"

    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_BASE_URL,
        *,
        credits_per_minute: int = FREE_CREDITS_PER_MINUTE,
        credits_per_day: int | None = FREE_CREDITS_PER_DAY,
        batch_size: int | None = None,
        outputsize: int = MAX_OUTPUTSIZE,
        on_invalid_symbol: Literal["skip", "raise"] = "skip",
        **client: Any,
    ) -> None:
        """`client`: `KeyedClient`'s session, timeout, retry, limiter, clock and sleep.
        `credits_per_day`: the plan's daily credits (None: a plan without a daily cap); a
        fetch needing more is refused before any call."""
        # A batch costs one credit per symbol, so a batch can never exceed a minute's credits.
        batch_size = batch_size or min(MAX_BATCH_SYMBOLS, credits_per_minute)
        if not 1 <= batch_size <= min(MAX_BATCH_SYMBOLS, credits_per_minute):
            raise ValueError(
                f"batch_size must be within [1, {min(MAX_BATCH_SYMBOLS, credits_per_minute)}] "
                f"(120 per request, one credit per symbol), got {batch_size}"
            )
        if not 1 <= outputsize <= MAX_OUTPUTSIZE:
            raise ValueError(f"outputsize must be within [1, {MAX_OUTPUTSIZE}], got {outputsize}")
        super().__init__(api_key, base_url, calls=credits_per_minute, **client)
        self.batch_size = batch_size
        self.outputsize = outputsize
        self.budget = CallBudget(
            self.name,
            "credits",
            credits_per_minute,
            PER_MINUTE_VARIABLE,
            credits_per_day,
            PER_DAY_VARIABLE,
        )
        self.on_invalid_symbol = on_invalid_symbol

    def _shown(self) -> dict[str, Any]:
        return {**super()._shown(), "batch_size": self.batch_size}

    # --- the provider interface -----------------------------------------------------------

    def _plan(self, request: BarRequest) -> list[Call]:
        """One call per (window slice, exchange, batch)."""
        market, symbols, interval, start, end = request
        return [
            (
                f"symbol {','.join(chunk)}",
                functools.partial(self._fetch, interval, window, exchange, chunk),
            )
            for window in self._windows(market, interval, start, end)
            for exchange, chunk in self._batches(symbols)
        ]

    def _call_weights(self, request: BarRequest, plan: list[Call]) -> list[int]:
        """A credit per symbol of each batch, in `_plan`'s order."""
        market, symbols, interval, start, end = request
        return [
            len(chunk)
            for _window in self._windows(market, interval, start, end)
            for _exchange, chunk in self._batches(symbols)
        ]

    # --- corporate actions ----------------------------------------------------------------

    def plan_actions(
        self, market: Market, symbols: Sequence[str], start: dt.datetime, end: dt.datetime
    ) -> FetchPlan:
        """What `fetch_actions` would send and cost, sending nothing: a call per symbol per
        endpoint, `ACTION_CREDITS` each. `.refusal()` says why it cannot run (a call above the
        per-minute credits, or more than the day's)."""
        unique = list(dict.fromkeys(symbols))
        return FetchPlan(
            provider=self.name,
            symbols=len(unique),
            interval="/splits and /dividends",
            start=start,
            end=end,
            weights=(ACTION_CREDITS,) * (len(unique) * len(ACTION_ENDPOINTS)),
            budget=self.budget,
        )

    def fetch_actions(
        self, market: Market, symbols: Sequence[str], start: dt.datetime, end: dt.datetime
    ) -> list[RawPayload]:
        """`/splits` and `/dividends` of each symbol for the exchange-local days of [start,
        end), each body as received (format "twelve_data_actions"). Refused before any call
        when the plan cannot pay for them (`BudgetExceeded`); a plan without the endpoints
        (403) fails as `AuthenticationFailed` naming the plan and the setting; a symbol
        Twelve Data does not know is skipped with a warning, like the bars' clients do."""
        plan = self.plan_actions(market, symbols, start, end)
        refusal = plan.refusal()
        if refusal is not None:
            raise BudgetExceeded(refusal, plan)
        tz = market.tz
        first = start.astimezone(tz).date()
        last = (end - dt.timedelta(microseconds=1)).astimezone(tz).date()
        payloads: list[RawPayload] = []
        skipped: list[InvalidSymbol] = []
        batch = 0
        for symbol in dict.fromkeys(symbols):
            for endpoint in ACTION_ENDPOINTS:
                try:
                    payloads.append(
                        self._fetch_action(endpoint, symbol, first, last, start, end, batch)
                    )
                except InvalidSymbol as exc:
                    if self.on_invalid_symbol == "raise":
                        raise
                    skipped.append(exc)
                    LOG.warning("%s", redact(f"{self.name}: skipping {symbol}: {exc}"))
                    break  # its other endpoint would not know it either
                finally:
                    batch += 1
        if skipped and not payloads:
            raise skipped[-1]
        return payloads

    def _fetch_action(
        self,
        endpoint: str,
        symbol: str,
        first: dt.date,
        last: dt.date,
        start: dt.datetime,
        end: dt.datetime,
        batch: int,
    ) -> RawPayload:
        td_symbol, exchange = to_twelve_data(symbol)
        params = {
            "symbol": td_symbol,
            "start_date": first.isoformat(),
            "end_date": last.isoformat(),
        }
        if exchange:
            params["exchange"] = exchange
        response = self._get(
            endpoint,
            params,
            ACTION_CREDITS,
            lambda status, doc: self._classify_actions(status, doc, endpoint, symbol),
        )
        return RawPayload(
            provider=self.name,
            format=ACTIONS_FORMAT,
            interval="1day",
            symbols=(symbol,),
            window_start=start,
            window_end=end,
            fetched_at=response.fetched_at,
            body=response.body,
            batch=batch,
            request=self.http.redact({"endpoint": endpoint, "base_url": self.base_url, **params}),
            content_type=response.content_type,
        )

    def _classify_actions(self, status: int, document: Any, endpoint: str, symbol: str) -> None:
        document = self._json_object(status, document, f"/{endpoint}: ")
        if document.get("status") == "error" and "code" in document:
            if (error_code(document) or status) == 403:
                # "/splits is available exclusively with grow or higher plans": not a bad key,
                # and not "no actions" either. Asking again gives the same answer.
                raise AuthenticationFailed(
                    f"{self.name}: 403: {document.get('message', 'forbidden')} (the key's plan "
                    f"has no /{endpoint}: /splits and /dividends need Twelve Data's Grow plan or "
                    f"above, {ACTION_CREDITS} credits a symbol each; {ACTIONS_VARIABLE}=true asks "
                    "for them: set it to false on a plan without them)",
                    provider=self.name,
                    status=403,
                )
            self._raise_for_error(status, document, [symbol])
            return
        if status >= 300:
            return  # the HTTP layer reports the status
        if not isinstance(document.get(endpoint), list):
            raise MalformedResponse(
                f"{self.name}: /{endpoint} for {symbol} has no '{endpoint}' list",
                provider=self.name,
                status=status,
            )

    # --- internals ------------------------------------------------------------------------

    def _batches(self, symbols: Sequence[str]) -> Iterator[tuple[str | None, list[str]]]:
        """Symbols grouped by exchange (one `exchange=` per request), then batched."""
        groups: dict[str | None, list[str]] = {}
        for symbol in symbols:
            groups.setdefault(to_twelve_data(symbol)[1], []).append(symbol)
        for exchange, group in groups.items():
            for offset in range(0, len(group), self.batch_size):
                yield exchange, group[offset : offset + self.batch_size]

    def _windows(
        self, market: Market, interval: Interval, start: dt.datetime, end: dt.datetime
    ) -> list[_Window]:
        """Slices of [start, end) with at most `outputsize` bars each; none without bars."""
        tz = market.tz
        if interval == "5min":
            bars = market.bar_starts(start, end)
            step = dt.timedelta(minutes=BAR_MINUTES)
            firsts = bars[:: self.outputsize]
            lasts = [
                bars[min(i + self.outputsize, len(bars)) - 1]
                for i in range(0, len(bars), self.outputsize)
            ]
            windows = []
            for k, (first, last) in enumerate(zip(firsts, lasts, strict=True)):
                w_start = start if k == 0 else first
                w_end = end if k == len(firsts) - 1 else firsts[k + 1]
                # end_date one second before the next bar: right whether Twelve Data reads
                # end_date as inclusive or exclusive.
                windows.append(
                    _Window(
                        w_start,
                        w_end,
                        local_text(first, tz),
                        local_text(last + step - dt.timedelta(seconds=1), tz),
                    )
                )
            return windows
        sessions = [
            day
            for day in market.sessions(start.astimezone(tz).date(), end.astimezone(tz).date())
            if start <= market.session_bounds(day)[0] < end
        ]
        windows = []
        for k in range(0, len(sessions), self.outputsize):
            days = sessions[k : k + self.outputsize]
            nxt = sessions[k + self.outputsize] if k + self.outputsize < len(sessions) else None
            windows.append(
                _Window(
                    start if k == 0 else market.session_bounds(days[0])[0],
                    end if nxt is None else market.session_bounds(nxt)[0],
                    # Daily values are stamped with the session date (00:00 exchange time).
                    f"{days[0].isoformat()} 00:00:00",
                    f"{days[-1].isoformat()} 23:59:59",
                )
            )
        return windows

    def _fetch(
        self,
        interval: Interval,
        window: _Window,
        exchange: str | None,
        chunk: list[str],
        batch: int,
    ) -> RawPayload:
        td_symbols = [to_twelve_data(symbol)[0] for symbol in chunk]
        params = {
            "symbol": ",".join(td_symbols),
            "interval": interval,
            "start_date": window.start_date,
            "end_date": window.end_date,
            "timezone": "Exchange",
            "outputsize": str(self.outputsize),
        }
        if exchange:
            params["exchange"] = exchange
        response = self._get(
            "time_series",
            params,
            len(chunk),  # one credit per symbol
            lambda status, doc: self._classify(status, doc, chunk),
        )
        return RawPayload(
            provider=self.name,
            format=FORMAT,
            interval=interval,
            symbols=tuple(chunk),
            window_start=window.start,
            window_end=window.end,
            fetched_at=response.fetched_at,
            body=response.body,
            batch=batch,
            request=self.http.redact(
                {"endpoint": "time_series", "base_url": self.base_url, **params}
            ),
            content_type=response.content_type,
        )

    def _get(
        self,
        endpoint: str,
        params: dict[str, str],
        weight: int,
        classify: Callable[[int, Any], None],
    ) -> Any:
        """One call to an endpoint, the key in the header (never in the URL), `weight` credits
        taken from the limiter."""
        return self.http.get_json(
            f"{self.base_url}/{endpoint}",
            params,
            headers={"Authorization": f"apikey {self._api_key}"},
            weight=weight,
            classify=classify,
        )

    def _classify(self, status: int, document: Any, chunk: list[str]) -> None:
        """Typed errors for the bodies Twelve Data reports failures in (often with HTTP 200)."""
        document = self._json_object(status, document)
        if document.get("status") == "error" and "code" in document:
            self._raise_for_error(status, document, chunk)
            return
        if status >= 300:
            return  # the HTTP layer reports the status
        if "values" in document or "meta" in document:
            if not isinstance(document.get("values"), list):
                raise MalformedResponse(
                    f"{self.name}: time series for {chunk[0]} has no 'values' list",
                    provider=self.name,
                    status=status,
                )
            return
        # A batch: an object per symbol. Credits that ran out mid-batch come back per symbol;
        # the whole batch is retried once the minute's credits are back.
        for key, item in document.items():
            if not isinstance(item, dict):
                raise MalformedResponse(
                    f"{self.name}: batch entry {key!r} is not an object",
                    provider=self.name,
                    status=status,
                )
            if item.get("status") == "error" and error_code(item) == 429:
                self._raise_for_error(status, item, chunk)

    def _raise_for_error(self, status: int, error: dict[str, Any], chunk: list[str]) -> None:
        code = error_code(error) or status
        message = f"{self.name}: {code}: {error.get('message', 'error')}"
        if code == 429:
            if "for the day" in str(error.get("message", "")).lower():
                raise QuotaExhausted(message, provider=self.name, status=code)
            raise RateLimited(
                message + " (waiting for the next minute's credits)",
                provider=self.name,
                retry_after=seconds_to_next_minute(self._clock()),
                status=code,
            )
        if code >= 500:
            raise ProviderUnavailable(message, provider=self.name, status=code)
        text = str(error.get("message", "")).lower()
        if code == 400 and "no data is available" in text:
            return  # an honest empty answer for one symbol: keep it as received
        if len(chunk) == 1 and code in (400, 404) and "symbol" in text:
            raise InvalidSymbol(message, provider=self.name, symbol=chunk[0], status=code)
        if code in (401, 403):
            raise AuthenticationFailed(message, provider=self.name, status=code)
        raise InvalidRequest(message, provider=self.name, status=code)
