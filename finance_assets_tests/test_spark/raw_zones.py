"""Raw zones in every format the polars path parses, for the parity tests: bodies built from
the simulated market's bars in Alpha Vantage's, Yahoo's chart and the landing zone's CSV shape
(Twelve Data's is the simulated market's own), with the faults each format meets: numbers
that are not, missing fields, Yahoo's null placeholders, error answers, duplicates within a
body, re-fetches and other providers' payloads overlapping a window, a landing file rejected
as a whole."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from finance_assets.lib.io import lake
from finance_assets.lib.markets import Market
from finance_assets.lib.providers.base import BarRequest, RawPayload
from finance_assets.providers.simulated_market import SimulatedMarket

EASTERN = ZoneInfo("America/New_York")
INTRADAY = (dt.date(2026, 11, 16), dt.date(2026, 11, 18))
DAILY = (dt.date(2026, 10, 1), dt.date(2026, 11, 20))
SESSION = dt.timedelta(hours=6.5)
# A fault: the record at this index gets these fields (None: the field is missing / null).
Faults = Mapping[int, Mapping[str, Any]]


def local(day: dt.date, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), EASTERN)


def fetched(hour: int, day: int = 21) -> dt.datetime:
    return dt.datetime(2026, 11, day, hour, tzinfo=dt.UTC)


def truth(market: Market, symbol: str, interval: str, start, end) -> list[tuple[Any, ...]]:
    """(ts, open, high, low, close, volume) of the simulated market, oldest first."""
    frame = SimulatedMarket().bars(BarRequest(market, [symbol], interval, start, end)).sort("ts")
    return frame.select("ts", "open", "high", "low", "close", "volume").rows()


def payload(provider: str, fmt: str, interval: str, symbols, start, end, at, body, **kw):
    return RawPayload(
        provider=provider,
        format=fmt,
        interval=interval,
        symbols=tuple(symbols),
        window_start=start,
        window_end=end,
        fetched_at=at,
        body=body,
        **kw,
    )


# --- bodies ---------------------------------------------------------------------------------


def alpha_vantage_body(av_symbol: str, bars, *, daily: bool, faults: Faults | None = None) -> bytes:
    """Newest first, keys in US/Eastern, numbers as strings; a fault's None drops the field."""
    faults = faults or {}
    series: dict[str, dict[str, Any]] = {}
    names = ["1. open", "2. high", "3. low", "4. close", "5. volume"]
    for i, (ts, *values) in reversed(list(enumerate(bars))):
        key = ts.astimezone(EASTERN).strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:%M:%S")
        fields = {
            n: (str(v) if n == "5. volume" else f"{v:.4f}")
            for n, v in zip(names, values, strict=True)
        }
        for name, value in faults.get(i, {}).items():
            full = next(n for n in names if n.endswith(name)) if name != "key" else name
            if name == "key":
                key = value
            elif value is None:
                fields.pop(full)
            else:
                fields[full] = value
        series[key] = fields
    meta = {"2. Symbol": av_symbol, "6. Time Zone": "US/Eastern"}
    key = "Time Series (Daily)" if daily else "Time Series (5min)"
    return json.dumps({"Meta Data": meta, key: series}).encode()


def chart_body(
    yahoo_symbol: str,
    bars,
    *,
    daily: bool,
    faults: Faults | None = None,
    adjclose: Callable[[int, float], Any] | None = None,
    extra: list[tuple[Any, ...]] = (),
) -> bytes:
    """Yahoo's v8 chart: epoch stamps, one array per field (numbers as JSON numbers); a fault's
    value replaces the array element (None: Yahoo's null placeholder)."""
    faults = faults or {}
    rows = [*bars, *extra]
    stamps: list[Any] = [int(ts.timestamp()) for ts, *_ in rows]
    arrays: dict[str, list[Any]] = {n: [] for n in ("open", "high", "low", "close", "volume")}
    for _, *values in rows:
        for name, value in zip(arrays, values, strict=True):
            arrays[name].append(value)
    adj = [adjclose(i, row[4]) for i, row in enumerate(rows)] if adjclose else None
    for i, fields in faults.items():
        for name, value in fields.items():
            if name == "timestamp":
                stamps[i] = value
            elif name == "adjclose":
                adj[i] = value  # type: ignore[index]
            else:
                arrays[name][i] = value
    result: dict[str, Any] = {
        "meta": {
            "currency": "USD",
            "symbol": yahoo_symbol,
            "exchangeTimezoneName": "America/New_York",
            "gmtoffset": -18000,
            "dataGranularity": "1d" if daily else "5m",
        },
        "timestamp": stamps,
        "indicators": {"quote": [arrays]},
    }
    if adj is not None:
        result["indicators"]["adjclose"] = [{"adjclose": adj}]
    return json.dumps({"chart": {"result": [result], "error": None}}).encode()


def csv_body(
    rows_by_symbol: Mapping[str, list],
    *,
    symbol_column: bool,
    slashed: bool = False,
    faults: Faults | None = None,
) -> bytes:
    """Yahoo's export: Date,Open,High,Low,Close,Adj Close,Volume[,Symbol]; a fault's value
    replaces the text of a field (`date`, `symbol` included)."""
    faults = faults or {}
    header = ["Date", "Open", "High", "Low", "Close", "Adj Close", "Volume"]
    lines = [",".join([*header, "Symbol"] if symbol_column else header)]
    i = 0
    for symbol, bars in rows_by_symbol.items():
        for ts, open_, high, low, close, volume in bars:
            day = ts.astimezone(EASTERN).date()
            fields = {
                "date": f"{day.month}/{day.day}/{day.year}" if slashed else day.isoformat(),
                "open": f"{open_:.4f}",
                "high": f"{high:.4f}",
                "low": f"{low:.4f}",
                "close": f"{close:.4f}",
                "adj close": f"{close * 0.98:.4f}",
                "volume": str(volume),
                "symbol": symbol,
            }
            fields.update(faults.get(i, {}))
            names = [h.lower() for h in header] + (["symbol"] if symbol_column else [])
            lines.append(",".join(str(fields[n]) for n in names))
            i += 1
    return ("\n".join(lines) + "\n").encode()


# --- the zones ------------------------------------------------------------------------------


def _twelve_data_odd(start, end) -> RawPayload:
    """Twelve Data records exercising every reason the simulated faults do not."""

    def rec(stamp, o="100", h="101", lo="99", c="100.5", v="1000"):
        return {"datetime": stamp, "open": o, "high": h, "low": lo, "close": c, "volume": v}

    values = [
        rec("2026-11-17 10:00:00", o=" 100.25 "),
        rec("2026-11-17 10:05:00", o="1d"),  # Java reads 1d as 1.0; polars does not
        rec("2026-11-17 10:10:00", h="inf"),
        rec("2026-11-17 10:15:00", lo="NaN"),
        rec("2026-11-17 10:20:00", c="-3"),
        rec("2026-11-17 10:25:00", h="2e12"),
        rec("2026-11-17 10:30:00", v="-5"),
        rec("2026-11-17 10:35:00", v="1e19"),
        rec("2026-11-17 10:40:00", v="10.5"),
        rec("2026-11-17 10:45:00", v=None),
        rec("2026-11-17 10:47:00"),  # off the 5-minute marks
        rec("2026-11-17 08:00:00"),  # before the open
        rec("2026-11-19 10:00:00"),  # after the window
        rec("not a time"),
        rec(None),
        {"datetime": "2026-11-17 10:50:00", "open": 100, "high": 101.5, "low": 99,
         "close": 100, "volume": 7},  # numbers, not text
        rec("2026-11-17 10:55:00"),
        rec("2026-11-17 10:55:00", v="2000"),  # the same bar again
    ]  # fmt: skip
    body = {
        "ZZZ": {
            "meta": {"symbol": "ZZZ", "currency": "USD", "exchange": "NYSE"},
            "values": values,
            "status": "ok",
        },
        "BAD": {"code": 404, "message": "symbol not found", "status": "error"},
    }
    body = json.dumps(body).encode()
    return payload(
        "twelve_data", "twelve_data", "5min", ("ZZZ", "BAD"), start, end, fetched(1, 19), body
    )


def intraday_zone(root: Path, market: Market) -> dict[str, list[str]]:
    """Three sessions of every JSON format in `root` (raw_intraday_quotes); returns the symbols
    each provider answered with records, for the tests to see every format at work."""
    first, last = INTRADAY
    start, end = local(first), local(last + dt.timedelta(days=1))
    opening, closing = local(first, 9, 30), local(last, 16)
    day3 = local(last)

    def write(kind: tuple[str, str], symbols, body: bytes, at, a=start, b=end) -> None:
        provider, fmt = kind
        lake.write_payloads(
            root, [payload(provider, fmt, "5min", symbols, a, b, at, body)], a, b, market.tz
        )

    # Twelve Data (the simulated market): 5 % faults, two symbols a batch; the middle session
    # fetched again later with other faults; the hand-made records.
    clock = lambda: fetched(22, 18)  # noqa: E731
    simulated = SimulatedMarket(fault_rate=0.05, batch_size=2, clock=clock)
    payloads = simulated.fetch_bars(market, ("AAPL", "MSFT", "NVDA"), "5min", opening, closing)
    lake.write_payloads(root, payloads, start, end, market.tz)
    day2 = local(first + dt.timedelta(days=1), 9, 30)
    again = SimulatedMarket(fault_rate=0.2, clock=lambda: fetched(23, 18))
    payloads = again.fetch_bars(market, ("AAPL", "MSFT"), "5min", day2, day2 + SESSION)
    lake.write_payloads(root, payloads, day2, day2 + SESSION, market.tz)
    lake.write_payloads(root, [_twelve_data_odd(start, end)], start, end, market.tz)

    # Alpha Vantage: AMZN's trailing days (more than the window: the parser keeps the window)
    # with faults; its last session fetched again; MSFT's last session after Twelve Data's
    # (another provider's newer payload supersedes); an error answer.
    av = ("alpha_vantage", "alpha_vantage")
    amzn = truth(market, "AMZN", "5min", local(first - dt.timedelta(days=3)), local(last, 20))
    faults = {
        200: {"open": "n/a"},
        201: {"volume": None},
        202: {"high": ""},
        203: {"low": "-1"},
        204: {"close": "1e400"},
        205: {"key": "2026-11-17 9:30"},  # no time: superseded by the re-fetch below
        206: {"volume": "12.5"},
    }
    write(av, ["AMZN"], alpha_vantage_body("AMZN", amzn, daily=False, faults=faults), fetched(1))
    moved = [(ts, o * 1.01, h * 1.01, lo * 1.01, c * 1.01, v) for ts, o, h, lo, c, v in amzn]
    body = alpha_vantage_body("AMZN", moved, daily=False, faults={300: {"low": "x"}})
    write(av, ["AMZN"], body, fetched(2), day3, end)
    msft = truth(market, "MSFT", "5min", local(last, 9, 30), local(last, 16))
    faults = {5: {"open": "?"}, 6: {"key": "2026-11-18 9:30"}}
    body = alpha_vantage_body("MSFT", msft, daily=False, faults=faults)
    write(av, ["MSFT"], body, fetched(3), local(last, 9, 30), local(last, 16))
    error = {"Error Message": "Invalid API call. Please retry or visit the documentation."}
    write(av, ["NFLX"], json.dumps(error).encode(), fetched(4))

    # Yahoo's chart: GOOG with null placeholders, text, a missing stamp, a repeated stamp and
    # the latest price after the window; BRK-B (Yahoo's notation); NVDA's first session after
    # Twelve Data's (its group gains adj_close); an error answer.
    yf = ("yfinance", "yahoo_chart")
    goog = truth(market, "GOOG", "5min", opening, closing)
    faults = {
        5: dict.fromkeys(("open", "high", "low", "close", "volume")),
        7: {"open": "abc"},
        9: {"high": 1.0},
        11: {"volume": 10.5},
        13: {"timestamp": None},
        15: {"close": {"v": 1}},
        17: {"timestamp": "1763476200"},
    }
    latest = [(fetched(21, 19), 1.0, 1.0, 1.0, 1.0, 5)]
    body = chart_body("GOOG", [*goog, goog[20]], daily=False, faults=faults, extra=latest)
    write(yf, ["GOOG"], body, fetched(5))
    brk = truth(market, "BRK.B", "5min", opening, local(first, 16))
    body = chart_body("BRK-B", brk, daily=False, faults={3: {"low": "1e-3"}})
    write(yf, ["BRK.B"], body, fetched(6))
    nvda = truth(market, "NVDA", "5min", opening, local(first, 16))
    body = chart_body("NVDA", nvda, daily=False, faults={2: {"volume": -1}})
    write(yf, ["NVDA"], body, fetched(7), local(first), local(first, 23))
    gone = {"chart": {"result": None, "error": {"code": "Not Found", "description": "delisted"}}}
    write(yf, ["ZZZY"], json.dumps(gone).encode(), fetched(8))
    return {
        "simulated": ["AAPL", "MSFT", "NVDA"],
        "twelve_data": ["ZZZ"],
        "alpha_vantage": ["AMZN", "MSFT"],
        "yfinance": ["BRK.B", "GOOG", "NVDA"],
    }


def daily_zone(root: Path, market: Market) -> dict[str, list[str]]:
    """Seven weeks of daily bars in every format in `root` (raw_daily_quotes), landing-zone
    files included (one rejected as a whole)."""
    first, last = DAILY
    start, end = local(first), local(last + dt.timedelta(days=1))

    def write(provider: str, fmt: str, symbols, body: bytes, at, **kw) -> None:
        # A landing file goes in without replacing the older payloads of its symbols (the raw
        # zone drops those a newer payload of the same window answers): a rejected file must
        # not take the place of the data it would replace, and both paths are compared on it.
        until = start + dt.timedelta(days=1) if provider == "landing_zone" else end
        one = payload(provider, fmt, "1day", symbols, start, end, at, body, **kw)
        lake.write_payloads(root, [one], start, until, market.tz)

    simulated = SimulatedMarket(fault_rate=0.1, batch_size=2, clock=lambda: fetched(1, 20))
    payloads = simulated.fetch_bars(market, ("AAPL", "MSFT", "NVDA"), "1day", start, end)
    lake.write_payloads(root, payloads, start, end, market.tz)

    amzn = truth(market, "AMZN", "1day", local(first - dt.timedelta(days=40)), local(last, 23))
    faults = {30: {"open": "none"}, 31: {"volume": None}, 32: {"key": "2026-13-01"}}
    body = alpha_vantage_body("AMZN", amzn, daily=True, faults=faults)
    write("alpha_vantage", "alpha_vantage", ["AMZN"], body, fetched(2))

    goog = truth(market, "GOOG", "1day", start, end)
    saturday = (local(dt.date(2026, 10, 10), 9, 30), 100.0, 101.0, 99.0, 100.5, 1000)
    faults = {3: {"adjclose": -5}, 4: {"adjclose": "x"}, 5: {"adjclose": None}, 6: {"low": 1e13}}
    body = chart_body(
        "GOOG",
        goog,
        daily=True,
        faults=faults,
        adjclose=lambda i, close: round(close * 0.97, 4),
        extra=[saturday],
    )
    write("yfinance", "yahoo_chart", ["GOOG"], body, fetched(3))

    def landing(name: str, symbols, body: bytes, hour: int) -> None:
        request = {"file": name, "sha256": "0" * 64}
        at = fetched(hour)
        write(
            "landing_zone", "yahoo_csv", symbols, body, at, request=request, content_type="text/csv"
        )

    aapl = {"AAPL": truth(market, "AAPL", "1day", start, end)}
    landing(
        "AAPL.csv", ["AAPL"], csv_body(aapl, symbol_column=False, faults={10: {"open": "-"}}), 4
    )
    mixed = {
        "BRK-B": truth(market, "BRK.B", "1day", start, end),
        "spy": truth(market, "SPY", "1day", start, end),
    }
    faults = {3: {"symbol": ""}, 5: {"date": "10/7/2026"}, 40: {"volume": "1.5e3"}}
    body = csv_body(mixed, symbol_column=True, slashed=True, faults=faults)
    landing("SP500_NOV2026_Hist.csv", ["BRK.B", "SPY"], body, 5)
    nvda = {"NVDA": truth(market, "NVDA", "1day", start, end)}
    faults = {i: {"high": "1.0"} for i in range(0, 30, 6)}  # 5 of 37: rejected as a whole
    landing("NVDA.csv", ["NVDA"], csv_body(nvda, symbol_column=False, faults=faults), 6)
    return {
        "simulated": ["AAPL", "MSFT", "NVDA"],
        "alpha_vantage": ["AMZN"],
        "yfinance": ["GOOG"],
        "landing_zone": ["AAPL", "BRK.B", "SPY"],
    }


def read_back(folder: Path) -> pl.DataFrame:
    return pl.read_parquet(folder / "**" / "*.parquet", hive_partitioning=True)
