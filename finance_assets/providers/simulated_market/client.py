"""A deterministic simulated market: the offline default provider.

The same (symbol, time range) always gives the same bars, whatever range it is asked for as part
of: every session's path depends only on (seed, symbol, session date). Prices follow a random
walk per symbol (a day-to-day walk anchors each session, a 5-minute walk moves inside it),
volume is U-shaped over the session, and daily bars are the aggregate of the same 5-minute path,
so the two intervals agree with each other.

Payloads are written in Twelve Data's `/time_series` shape (meta + values, numbers as strings,
newest first; keyed by symbol for a batch), so the parsing code that runs offline is the code that
runs against the real service.

`fault_rate` corrupts that fraction of records, deterministically: a null price, a duplicated
timestamp with a different price, a record moved out of order, or high < low.

Corporate actions: each symbol pays a dividend on one calendar day a month (when that day is a
session: ~0.2 % of its price level) and splits about once in two years (2, 3, 4, 5 or 10 for 1),
each day's event a function of (seed, symbol, date) only. Daily bodies carry them beside
`values` in Twelve Data's `/splits` and `/dividends` shapes. The bars stay as they are (the
prices the market "traded" do not drop at an ex-date): adjusted prices are derived from the
events (`corporate_actions` and `adjusted_daily_bars`), never written over the bars.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import polars as pl

from finance_assets.lib.markets import BAR_MINUTES, Market
from finance_assets.lib.providers.base import BarProvider, BarRequest, Interval, RawPayload
from finance_assets.lib.schema import UTC_TS

if TYPE_CHECKING:
    # numpy is imported by the functions that draw (~0.1 s of loading the code location, which
    # builds this client's resource but draws nothing).
    import numpy as np

_EPOCH = dt.date(2000, 1, 3)
_DAILY_VOL = 0.015  # stdev of the session-to-session anchor move
_BAR_VOL = 0.0012  # stdev of one 5-minute log return
_FAULTS = ("null_price", "duplicate", "out_of_order", "high_lt_low")
# Twelve Data answers up to 120 symbols per batch request.
MAX_BATCH_SYMBOLS = 120


@dataclass(frozen=True)
class _SessionPath:
    ts: np.ndarray  # bar starts, epoch microseconds UTC
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray


class SimulatedMarket(BarProvider):
    """Offline provider. `fault_rate` in [0, 1]; `batch_size` symbols per simulated call."""

    name = "simulated"

    def __init__(
        self,
        seed: int = 7,
        fault_rate: float = 0.0,
        batch_size: int = MAX_BATCH_SYMBOLS,
        clock: object | None = None,
    ) -> None:
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be within [0, 1], got {fault_rate}")
        if not 1 <= batch_size <= MAX_BATCH_SYMBOLS:
            raise ValueError(
                f"batch_size must be within [1, {MAX_BATCH_SYMBOLS}], got {batch_size}"
            )
        self.seed = seed
        self.fault_rate = fault_rate
        self.batch_size = batch_size
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))

    # --- the provider interface -----------------------------------------------------------

    def _fetch_checked(self, request: BarRequest) -> list[RawPayload]:
        market, symbols, interval, start, end = request
        payloads = []
        for batch, offset in enumerate(range(0, len(symbols), self.batch_size)):
            chunk = symbols[offset : offset + self.batch_size]
            documents = {
                symbol: self._time_series_document(market, symbol, interval, start, end)
                for symbol in chunk
            }
            # Twelve Data answers a one-symbol request unwrapped, a batch keyed by symbol.
            body = documents[chunk[0]] if len(chunk) == 1 else documents
            payloads.append(
                RawPayload(
                    provider=self.name,
                    format="twelve_data",
                    interval=interval,
                    symbols=tuple(chunk),
                    window_start=start,
                    window_end=end,
                    fetched_at=self._clock(),
                    body=json.dumps(body, separators=(",", ":")).encode(),
                    batch=batch,
                    request={
                        "endpoint": "time_series",
                        "symbol": ",".join(chunk),
                        "interval": interval,
                        "start_date": start.isoformat(),
                        "end_date": end.isoformat(),
                        "seed": str(self.seed),
                        "fault_rate": str(self.fault_rate),
                    },
                )
            )
        return payloads

    # --- ground truth (tests and benchmarks compare against it) ---------------------------

    def bars(self, request: BarRequest) -> pl.DataFrame:
        """The uncorrupted bars a fetch of `request` describes, as a typed frame."""
        market, symbols, interval, start, end = request
        frames = []
        for symbol in symbols:
            for path in self._paths(market, symbol, interval, start, end):
                frames.append(
                    pl.DataFrame(
                        {
                            "symbol": [symbol] * len(path.ts),
                            "ts": pl.Series(path.ts, dtype=pl.Int64).cast(UTC_TS),
                            "open": path.open,
                            "high": path.high,
                            "low": path.low,
                            "close": path.close,
                            "volume": path.volume,
                        }
                    )
                )
        if not frames:
            return pl.DataFrame(
                schema={
                    "symbol": pl.String,
                    "ts": UTC_TS,
                    **dict.fromkeys(["open", "high", "low", "close"], pl.Float64),
                    "volume": pl.Int64,
                }
            )
        return pl.concat(frames).sort("symbol", "ts")

    # --- internals ------------------------------------------------------------------------

    def actions(
        self, market: Market, symbol: str, start: dt.datetime, end: dt.datetime
    ) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        """(splits, dividends) with an ex-date among the sessions opening in [start, end), in
        Twelve Data's `/splits` and `/dividends` entry shapes, oldest first."""
        import numpy as np

        key = _symbol_key(symbol, self.seed)
        splits: list[dict[str, object]] = []
        dividends: list[dict[str, object]] = []
        days = self._session_days(market, start, end)
        if not days:
            return splits, dividends
        ordinals = np.array([(day - _EPOCH).days for day in days], dtype=np.int64)
        draws = _mix(np.uint64(key) ^ (ordinals.astype(np.uint64) * np.uint64(0x2545F4914F6CDD1D)))
        split_hits = _unit(draws) < _SPLIT_ODDS
        dividend_hits = (ordinals - key) % 30 == 0
        for i in np.flatnonzero(split_hits | dividend_hits).tolist():
            day, ordinal = days[i], int(ordinals[i])
            if split_hits[i]:
                ratio = _SPLIT_RATIOS[int(draws[i] % np.uint64(len(_SPLIT_RATIOS)))]
                splits.append(
                    {
                        "date": day.isoformat(),
                        "description": f"{ratio}-for-1 split",
                        "ratio": 1 / ratio,
                        "from_factor": ratio,
                        "to_factor": 1,
                    }
                )
            if dividend_hits[i]:
                amount = round(_anchor_price(key, ordinal) * _DIVIDEND_YIELD, 4)
                dividends.append({"ex_date": day.isoformat(), "amount": amount})
        return splits, dividends

    def _session_days(self, market: Market, start: dt.datetime, end: dt.datetime) -> list[dt.date]:
        """The sessions opening in [start, end), computed once per window (every symbol of a
        fetch asks for the same)."""
        cache = self.__dict__.setdefault("_days_cache", {})
        found = cache.get((market.key, start, end))
        if found is None:
            local = (start.astimezone(market.tz).date(), end.astimezone(market.tz).date())
            found = [
                day
                for day in market.sessions(*local)
                if start <= market.session_bounds(day)[0] < end
            ]
            cache.clear()  # one window at a time: a fetch asks for one
            cache[(market.key, start, end)] = found
        return found

    def _time_series_document(
        self, market: Market, symbol: str, interval: Interval, start: dt.datetime, end: dt.datetime
    ) -> dict[str, object]:
        values: list[dict[str, str | None]] = []
        for path in self._paths(market, symbol, interval, start, end):
            records = _format_records(path, market, interval)
            if self.fault_rate > 0:
                records = self._corrupt(records, symbol, path)
            values.extend(records)
        values.reverse()  # newest first, as Twelve Data sends them
        document: dict[str, object] = {
            "meta": {
                "symbol": symbol,
                "interval": interval,
                "currency": market.currency,
                "exchange_timezone": market.timezone,
                "exchange": market.calendar_name,
                "type": "Common Stock",
            },
            "values": values,
            "status": "ok",
        }
        if interval == "1day":
            # Empty lists too: "no corporate action in this window", not "not said".
            document["splits"], document["dividends"] = self.actions(market, symbol, start, end)
        return document

    def _paths(
        self, market: Market, symbol: str, interval: Interval, start: dt.datetime, end: dt.datetime
    ) -> list[_SessionPath]:
        local_start = start.astimezone(market.tz).date()
        local_end = end.astimezone(market.tz).date()
        paths = []
        for day in market.sessions(local_start, local_end):
            open_, close = market.session_bounds(day)
            path = self._session(symbol, day, open_, close)
            if interval == "1day":
                if start <= open_ < end:
                    paths.append(_aggregate_day(path))
                continue
            lo = int(start.timestamp() * 1_000_000)
            hi = int(end.timestamp() * 1_000_000)
            keep = (path.ts >= lo) & (path.ts < hi)
            if keep.any():
                paths.append(
                    _SessionPath(
                        *(getattr(path, f)[keep] for f in _SessionPath.__dataclass_fields__)
                    )
                )
        return paths

    def _session(
        self, symbol: str, day: dt.date, open_: dt.datetime, close: dt.datetime
    ) -> _SessionPath:
        import numpy as np

        key = _symbol_key(symbol, self.seed)
        ordinal = (day - _EPOCH).days
        anchor = _anchor_price(key, ordinal)
        rng = np.random.default_rng([key, ordinal, self.seed])
        step = BAR_MINUTES * 60 * 1_000_000
        n = int((close - open_).total_seconds() // (BAR_MINUTES * 60))
        ts = int(open_.timestamp() * 1_000_000) + step * np.arange(n, dtype=np.int64)
        first_open = anchor * math.exp(rng.normal(0.0, 0.002))
        closes = first_open * np.exp(np.cumsum(rng.normal(0.0, _BAR_VOL, n)))
        opens = np.concatenate([[first_open], closes[:-1]])
        wick = np.abs(rng.normal(0.0, _BAR_VOL * 0.6, (2, n)))
        highs = np.maximum(opens, closes) * (1 + wick[0])
        lows = np.minimum(opens, closes) * (1 - wick[1])
        # U-shaped intraday volume: heavy at the open and the close, light at midday.
        # The shape is over the regular session, so an early close keeps the morning profile.
        regular_bars = 78 if n <= 78 else n
        x = np.arange(n) / max(regular_bars - 1, 1)
        shape = 1.0 + 3.0 * (2.0 * x - 1.0) ** 2
        base_volume = 2_000 + (key % 50_000)
        volume = np.round(base_volume * shape * rng.lognormal(0.0, 0.3, n)).astype(np.int64)
        return _SessionPath(
            ts=ts,
            open=np.round(opens, 4),
            high=np.round(highs, 4),
            low=np.round(lows, 4),
            close=np.round(closes, 4),
            volume=volume,
        )

    def _corrupt(
        self, records: list[dict[str, str | None]], symbol: str, path: _SessionPath
    ) -> list[dict[str, str | None]]:
        import numpy as np

        key = _symbol_key(symbol, self.seed)
        rng = np.random.default_rng([key, int(path.ts[0] // 86_400_000_000), self.seed, 1])
        n = len(records)
        hit = np.flatnonzero(rng.random(n) < self.fault_rate)
        kinds = rng.integers(0, len(_FAULTS), len(hit))
        out = list(records)
        inserts: list[tuple[int, dict[str, str | None]]] = []
        for index, kind in zip(hit.tolist(), kinds.tolist(), strict=True):
            fault = _FAULTS[kind]
            record = dict(out[index])
            if fault == "null_price":
                record[("open", "high", "low", "close")[index % 4]] = None
            elif fault == "duplicate":
                twin = dict(record)
                # Same bar time, a different volume: a conflicting re-send, valid on its own.
                twin["volume"] = str(int(record["volume"] or 0) + 100)
                inserts.append((index + 1, twin))
            elif fault == "out_of_order" and n > 2:
                other = (index + 2) % n
                out[other], record = record, dict(out[other])
            elif fault == "high_lt_low":
                record["high"], record["low"] = record["low"], record["high"]
            out[index] = record
        for position, twin in sorted(inserts, key=lambda item: item[0], reverse=True):
            out.insert(position, twin)
        return out


def _format_records(
    path: _SessionPath, market: Market, interval: Interval
) -> list[dict[str, str | None]]:
    stamps = _local_stamps(market.timezone, interval, tuple(path.ts.tolist()))
    return [
        {
            "datetime": stamp,
            "open": f"{o:.5f}",
            "high": f"{h:.5f}",
            "low": f"{lo:.5f}",
            "close": f"{c:.5f}",
            "volume": str(v),
        }
        for stamp, o, h, lo, c, v in zip(
            stamps,
            path.open.tolist(),
            path.high.tolist(),
            path.low.tolist(),
            path.close.tolist(),
            path.volume.tolist(),
            strict=True,
        )
    ]


@functools.lru_cache(maxsize=4096)
def _local_stamps(timezone: str, interval: Interval, ts: tuple[int, ...]) -> list[str]:
    """Exchange-local datetimes as Twelve Data writes them; shared by every symbol of a session."""
    fmt = "%Y-%m-%d" if interval == "1day" else "%Y-%m-%d %H:%M:%S"
    tz = ZoneInfo(timezone)
    return [dt.datetime.fromtimestamp(t / 1_000_000, tz).strftime(fmt) for t in ts]


def _aggregate_day(path: _SessionPath) -> _SessionPath:
    import numpy as np

    return _SessionPath(
        ts=path.ts[:1],
        open=path.open[:1],
        high=np.array([path.high.max()]),
        low=np.array([path.low.min()]),
        close=path.close[-1:],
        volume=np.array([path.volume.sum()], dtype=np.int64),
    )


_SPLIT_RATIOS = (2, 3, 4, 5, 10)
_SPLIT_ODDS = 1 / 500  # per session: about one split in two years a symbol
_DIVIDEND_YIELD = 0.002  # of the symbol's price level, once a month


def _symbol_key(symbol: str, seed: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 1  # fits numpy's seed and int64


def _anchor_price(key: int, ordinal: int) -> float:
    """Session anchor: a base price times a day-to-day random walk from the epoch."""
    walk = _anchor_walk(key, max(ordinal + 1, _WALK_DAYS))
    return float(walk[ordinal])


_WALK_DAYS = 12_000  # to 2032; a later date extends the walk
_MEMORY = 250  # sessions of history the anchor level remembers


@functools.lru_cache(maxsize=8192)
def _anchor_walk(key: int, days_count: int) -> np.ndarray:
    import numpy as np

    days = np.arange(days_count, dtype=np.uint64)
    u1 = _unit(_mix(np.uint64(key) ^ (days * np.uint64(0x9E3779B97F4A7C15))))
    u2 = _unit(_mix(np.uint64(key) ^ (days * np.uint64(0xC2B2AE3D27D4EB4F) + np.uint64(1))))
    normal = np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)
    base = 20.0 + (key % 48_000) / 100.0
    # The walk over the last _MEMORY days only (a moving sum of the daily moves): it wanders
    # like a price but stays within a plausible band of the symbol's base level for decades.
    steps = np.concatenate([[0.0], np.cumsum(normal * _DAILY_VOL)])
    lagged = np.concatenate([np.zeros(_MEMORY), steps[:-_MEMORY]])
    return base * np.exp((steps - lagged)[1:])


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a counter-based hash, so any day is computed without the others."""
    import numpy as np

    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _unit(x: np.ndarray) -> np.ndarray:
    import numpy as np

    # (0, 1]: never 0, so log() is finite.
    return ((x >> np.uint64(11)).astype(np.float64) + 1.0) / float(1 << 53)
