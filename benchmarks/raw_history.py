"""What keeping every superseded raw payload costs ("as known then", issue 27 item 3).

    .venv/bin/python benchmarks/raw_history.py [--samples ../shared/samples] [--symbols 500]
                                               [--days 30] [--refetches 1] [--repeats 3]

1. Bytes per symbol-day in the raw zone: recorded provider bodies (and the simulated
   provider's) written through `lake.write_payloads` into a scratch folder, body and envelope
   as stored, divided by the symbol-days they hold (an intraday body: bytes per bar x 78
   five-minute bars a session). Each re-fetch of a window keeps one more copy of it until
   raw retention expires it: the extra bytes for a universe and a retention age are printed.
2. Time: `as_of` replays a window once per arrival (`clean_window` after each), so asking a
   window with k re-fetches costs about k cleans of a growing set. Printed as the ratio to one
   `clean_window` of the same payloads (best of `--repeats`).

Last line, for scripts:
    daily_bytes_per_symbol_day=<n> intraday_bytes_per_symbol_day=<n> replay_ratio_k4=<x>
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

from finance_assets.lib import as_of
from finance_assets.lib.clean_step import clean_window
from finance_assets.lib.io import lake
from finance_assets.lib.markets import markets_from_env
from finance_assets.lib.providers.base import RawPayload
from finance_assets.providers.simulated_market.client import SimulatedMarket

BARS_PER_SESSION = 78  # five-minute bars of a regular 6.5-hour session
US = markets_from_env({"FINANCE_MARKETS": "us"})["us"]
DAY = dt.date(2026, 11, 18)


def _bars_in(body: bytes) -> int:
    document = json.loads(body)
    if "chart" in document:
        return len(document["chart"]["result"][0]["timestamp"])
    if "values" in document:
        return len(document["values"])
    return sum(len(v.get("values", [])) for v in document.values() if isinstance(v, dict))


def _stored_bytes(payload: RawPayload) -> int:
    """Bytes the raw zone holds for `payload`: its body and its envelope, as written."""
    with tempfile.TemporaryDirectory() as folder:
        start, end = payload.window_start, payload.window_end
        lake.write_payloads(folder, [payload], start, end, US.tz)
        return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())


def _recorded(samples: Path, name: str, fmt: str, symbols: tuple[str, ...], interval: str):
    body = (samples / name).read_bytes()
    start = dt.datetime.combine(DAY, dt.time(), US.tz)
    payload = RawPayload(
        provider=fmt.split("_chart")[0],
        format=fmt,
        interval=interval,  # type: ignore[arg-type]
        symbols=symbols,
        window_start=start,
        window_end=start + dt.timedelta(days=1),
        fetched_at=dt.datetime(2026, 11, 19, 1, tzinfo=dt.UTC),
        body=body,
    )
    return payload, _bars_in(body)


def sizes(samples: Path) -> list[tuple[str, str, float]]:
    """(what, interval, bytes per symbol-day) of each recorded body and simulated payload."""
    rows = []
    for name, fmt, symbols, interval in (
        (
            "twelvedata/td_batch_time_series_AAPL_MSFT_1day.json",
            "twelve_data",
            ("AAPL", "MSFT"),
            "1day",
        ),
        (
            "yahoo/yahoo_chart_AAPL_1d_2020-08-31_to_2020-11-07.json",
            "yahoo_chart",
            ("AAPL",),
            "1day",
        ),
        ("twelvedata/td_time_series_AAPL_1min_2023-08-24.json", "twelve_data", ("AAPL",), "5min"),
        ("yahoo/yahoo_chart_AAPL_1m_2024-10-02.json", "yahoo_chart", ("AAPL",), "5min"),
    ):
        payload, bars = _recorded(samples, name, fmt, symbols, interval)
        stored = _stored_bytes(payload)
        per_bar = stored / bars
        per_day = per_bar if interval == "1day" else per_bar * BARS_PER_SESSION
        rows.append((f"recorded {name}", interval, per_day))
    sim = SimulatedMarket(clock=lambda: dt.datetime(2026, 11, 19, 1, tzinfo=dt.UTC))
    universe = list(US.universe)
    start = dt.datetime.combine(DAY, dt.time(), US.tz)
    for interval in ("1day", "5min"):
        payloads = sim.fetch_bars(US, universe, interval, start, start + dt.timedelta(days=1))
        stored = sum(_stored_bytes(p) for p in payloads)
        rows.append(
            (f"simulated ({len(universe)} symbols a batch)", interval, stored / len(universe))
        )
    return rows


def replay_ratio(refetches: int, repeats: int) -> float:
    """Time of `as_of.replay` over `refetches` arrivals of one session's 5-minute bars, over
    one `clean_window` of the same payloads."""
    start = dt.datetime.combine(DAY, dt.time(), US.tz)
    end = start + dt.timedelta(days=1)
    payloads = []
    for k in range(refetches):
        at = dt.datetime(2026, 11, 19, 1, tzinfo=dt.UTC) + dt.timedelta(hours=k)
        sim = SimulatedMarket(clock=lambda at=at: at)
        payloads += sim.fetch_bars(US, list(US.universe), "5min", start, end)

    def best(call) -> float:
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            call()
            times.append(time.perf_counter() - t0)
        return min(times)

    one = best(
        lambda: clean_window(
            payloads, US, "5min", asset="bars_5min", start=start, end=end, ingested_at=end
        )
    )
    replayed = best(
        lambda: as_of.replay(payloads, US, "5min", asset="bars_5min", start=start, end=end)
    )
    return replayed / one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--samples",
        type=Path,
        default=Path(__file__).resolve().parents[2] / "shared" / "samples",
    )
    parser.add_argument("--symbols", type=int, default=500, help="universe for the cost line")
    parser.add_argument("--days", type=int, default=30, help="raw retention (raw_max_age_days)")
    parser.add_argument("--refetches", type=int, default=1, help="re-fetches per window kept")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rows = sizes(args.samples)
    print(f"{'payload':62} {'interval':8} {'bytes/symbol-day':>16}")
    for what, interval, per_day in rows:
        print(f"{what:62} {interval:8} {per_day:16.0f}")
    daily = max(r[2] for r in rows if r[1] == "1day" and r[0].startswith("recorded"))
    intraday = max(r[2] for r in rows if r[1] == "5min" and r[0].startswith("recorded"))
    sessions = args.days * 5 / 7  # sessions within the retention age
    for label, per_day in (("daily", daily), ("5-minute", intraday)):
        extra = per_day * args.symbols * sessions * args.refetches
        print(
            f"keeping {args.refetches} superseded copy per window, {label} bars, "
            f"{args.symbols} symbols, {args.days} days: {extra / 1e6:.1f} MB more in the raw zone"
        )
    ratios = {k: replay_ratio(k, args.repeats) for k in (1, 2, 4)}
    for k, ratio in ratios.items():
        print(f"as_of replay of {k} arrival(s) / one clean_window: {ratio:.2f}x")
    print(
        f"daily_bytes_per_symbol_day={daily:.0f} intraday_bytes_per_symbol_day={intraday:.0f} "
        f"replay_ratio_k4={ratios[4]:.2f}"
    )


if __name__ == "__main__":
    main()
