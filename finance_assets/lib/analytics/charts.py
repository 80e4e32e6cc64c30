"""The daily report's charts, drawn offline with matplotlib (Agg: no display, no browser).

One figure, read at a glance: a panel per symbol with the price and its running VWAP (the day's
alerts marked on it), then the open-to-close and high-low ranges, volume over the last sessions
with the unusual days flagged, sentiment beside the day's return, and the alerts over the day.
Figures are built without pyplot, so nothing global is touched (safe in any thread)."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import polars as pl

from finance_assets.lib.analytics.metrics import UNUSUAL_VOLUME_Z, WINDOW

DPI = 100
WIDTH_IN = 14.0
PRICE_ROW_IN = 2.8  # one row of price panels
LOWER_IN = 7.2  # the two rows of summary panels
PANELS_PER_ROW = 5
UP, DOWN, FLAT = "#1a9850", "#d73027", "#7f7f7f"


@dataclass(frozen=True)
class DayData:
    """What one market's report shows for one session (frames as their tables hold them)."""

    market: str  # the market's name, for titles
    timezone: str
    day: object  # datetime.date of the session
    bars: pl.DataFrame  # the session's 5-minute bars
    history: pl.DataFrame  # volume_zscores() over the session and up to WINDOW before it
    summary: pl.DataFrame  # the session's daily summary rows
    sentiment: pl.DataFrame  # the session's stock_sentiment_daily rows (may be empty)
    alerts: pl.DataFrame  # the session's price alerts (may be empty)
    universe: int = 0  # symbols the session has; more than `symbols` when only movers are charted
    # The second opinion (a market with a reference provider): agreement per day up to the
    # session (agreement.DAILY_AGREEMENT_SCHEMA), and the session's disagreeing bars; None
    # for a market without a reference.
    agreement: pl.DataFrame | None = None
    disagreements: tuple[str, ...] = ()

    @property
    def symbols(self) -> list[str]:
        return sorted(self.summary.get_column("symbol").unique().to_list())


def figure_size(symbols: int) -> tuple[int, int]:
    """The overview's size in pixels for a number of symbols."""
    rows = max(1, math.ceil(symbols / PANELS_PER_ROW))
    return int(WIDTH_IN * DPI), round((rows * PRICE_ROW_IN + LOWER_IN) * DPI)


def _colour(value: float | None) -> str:
    if value is None or value == 0:
        return FLAT
    return UP if value > 0 else DOWN


def _local(frame: pl.DataFrame, timezone: str, column: str = "ts") -> list:
    # Wall-clock times of the exchange, naive: matplotlib then labels them as the market reads.
    return (
        frame.get_column(column).dt.convert_time_zone(timezone).dt.replace_time_zone(None).to_list()
    )


def _empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=FLAT)
    ax.set_xticks([])
    ax.set_yticks([])


def _price_panel(ax, data: DayData, symbol: str, vwap: pl.DataFrame) -> None:
    from matplotlib.dates import DateFormatter, HourLocator

    rows = vwap.filter(pl.col("symbol") == symbol)
    summary = data.summary.filter(pl.col("symbol") == symbol).row(0, named=True)
    ret = summary.get("return_pct")
    label = f"{symbol}  {ret:+.2f} %" if ret is not None else symbol
    ax.set_title(label, fontsize=10, color=_colour(ret), loc="left")
    if rows.is_empty():
        _empty(ax, "no 5-minute bars")
        return
    times = _local(rows, data.timezone)
    ax.plot(times, rows.get_column("close").to_list(), color="#2c7fb8", lw=1.2, label="close")
    ax.plot(times, rows.get_column("vwap").to_list(), color="#fd8d3c", lw=1, ls="--", label="VWAP")
    moves = data.alerts.filter(pl.col("symbol") == symbol)
    for direction, marker, colour in (("up", "^", UP), ("down", "v", DOWN)):
        hits = moves.filter(pl.col("direction") == direction)
        if hits.height:
            big = (hits.get_column("kind") == "vs_prev_close").to_list()
            ax.scatter(
                _local(hits, data.timezone),
                hits.get_column("price").to_list(),
                marker=marker,
                color=colour,
                s=[60 if b else 22 for b in big],
                zorder=3,
            )
    ax.xaxis.set_major_locator(HourLocator(interval=2))  # London's 8.5 hours: 5 labels
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def _ranges_panel(ax, data: DayData) -> None:
    s = data.summary.sort("symbol")
    xs = list(range(s.height))
    rel = s.select(
        low=(pl.col("low") / pl.col("open") - 1) * 100,
        high=(pl.col("high") / pl.col("open") - 1) * 100,
        close=(pl.col("close") / pl.col("open") - 1) * 100,
        range_pct=pl.col("range_pct"),
    )
    for x, row in zip(xs, rel.iter_rows(named=True), strict=True):
        ax.vlines(x, row["low"], row["high"], color="#555555", lw=1.5)
        ax.bar(x, row["close"], width=0.5, color=_colour(row["close"]), alpha=0.85)
        ax.text(x, row["high"], f"{row['range_pct']:.2f} %", ha="center", va="bottom", fontsize=7)
    ax.axhline(0, color="black", lw=0.6)
    ax.set_xticks(xs, s.get_column("symbol").to_list(), fontsize=8)
    ax.set_ylabel("% of the open", fontsize=8)
    ax.set_title(
        "Movement and volatility: open → close (bar), low – high (line, range % above)",
        fontsize=9,
        loc="left",
    )
    ax.grid(axis="y", alpha=0.3)


def _volume_panel(ax, data: DayData, colours: dict[str, str]) -> None:
    """Volume per session: the x axis holds the sessions themselves, one tick each (a date
    axis would plot weekends and holidays as days and repeat a date between its ticks)."""
    h = data.history.sort("trading_date")
    sessions = sorted(set(h.get_column("trading_date").to_list()) | {data.day})
    position = {day: i for i, day in enumerate(sessions)}
    for symbol in data.symbols:
        rows = h.filter(pl.col("symbol") == symbol)
        median = rows.get_column("volume").median() or 1
        rel = (rows.get_column("volume") / median).to_list()
        xs = [position[day] for day in rows.get_column("trading_date").to_list()]
        ax.plot(xs, rel, marker="o", ms=3, lw=1, color=colours[symbol], label=symbol)
        unusual = rows.with_columns(rel=pl.Series(rel)).filter(pl.col("unusual_volume"))
        if unusual.height:
            ax.scatter(
                [position[day] for day in unusual.get_column("trading_date").to_list()],
                unusual.get_column("rel").to_list(),
                s=140,
                facecolors="none",
                edgecolors=DOWN,
                lw=2,
                zorder=3,
            )
    ax.axvline(position[data.day], color="#bbbbbb", lw=6, alpha=0.4, zorder=0)
    ax.set_xticks(range(len(sessions)), [f"{day:%m-%d}" for day in sessions])
    ax.set_xlim(-0.5, len(sessions) - 0.5)
    ax.set_ylabel("volume ÷ symbol's median", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.tick_params(axis="x", labelrotation=90)  # a label per session, upright they collide
    ax.legend(fontsize=7, ncol=5, loc="upper left")
    ax.set_title(
        f"Volume, last sessions (◯ unusual: z ≥ {UNUSUAL_VOLUME_Z:g} vs the previous {WINDOW})",
        fontsize=9,
        loc="left",
    )
    ax.grid(alpha=0.3)


def _sentiment_panel(ax, data: DayData) -> None:
    s = data.sentiment.sort("symbol")
    if s.is_empty():
        _empty(ax, "no sentiment for this session")
        ax.set_title("Sentiment beside the day's return", fontsize=9, loc="left")
        return
    xs = list(range(s.height))
    returns = s.get_column("return_pct").fill_null(0).to_list()
    ax.bar([x - 0.2 for x in xs], returns, width=0.4, color=[_colour(r) for r in returns])
    ax.axhline(0, color="black", lw=0.6)
    # Symmetric limits on both axes: the two zero lines coincide.
    reach = max([abs(r) for r in returns] + [0.5]) * 1.15
    ax.set_ylim(-reach, reach)
    ax.set_ylabel("return %", fontsize=8)
    right = ax.twinx()
    mood = s.get_column("weighted_compound").to_list()
    right.bar(
        [x + 0.2 for x in xs],
        [m or 0 for m in mood],
        width=0.4,
        color="#6a51a3",
        alpha=0.7,
    )
    right.set_ylim(-1, 1)
    right.set_ylabel("sentiment (compound)", fontsize=8, color="#6a51a3")
    for x, posts in zip(xs, s.get_column("post_count").fill_null(0).to_list(), strict=True):
        right.text(x + 0.2, -0.97, f"{posts} posts", ha="center", fontsize=7, color="#6a51a3")
    ax.set_xticks(xs, s.get_column("symbol").to_list(), fontsize=8)
    ax.set_title(
        "Sentiment beside the day's return (left bar: return %, right bar: sentiment)",
        fontsize=9,
        loc="left",
    )


def _alerts_panel(ax, data: DayData) -> None:
    from matplotlib.dates import DateFormatter

    a = data.alerts
    title = f"Price alerts ({a.height}): ▲ up ▼ down; large = against the previous close"
    ax.set_title(title, fontsize=9, loc="left")
    symbols = data.symbols
    if a.is_empty():
        _empty(ax, "no price alerts this session")
        return
    index = {s: i for i, s in enumerate(symbols)}
    for direction, marker, colour in (("up", "^", UP), ("down", "v", DOWN)):
        hits = a.filter(pl.col("direction") == direction)
        if hits.height:
            ax.scatter(
                _local(hits, data.timezone),
                [index.get(s, -1) for s in hits.get_column("symbol").to_list()],
                marker=marker,
                color=colour,
                s=[70 if k == "vs_prev_close" else 25 for k in hits.get_column("kind")],
            )
    ax.set_yticks(range(len(symbols)), symbols, fontsize=8)
    ax.set_ylim(-0.7, len(symbols) - 0.3)
    ax.xaxis.set_major_formatter(DateFormatter("%H:%M"))
    ax.tick_params(axis="x", labelsize=7)
    ax.grid(alpha=0.3)


def overview_png(data: DayData, vwap: pl.DataFrame) -> bytes:
    """The report's main chart as PNG bytes (`figure_size` pixels)."""
    from matplotlib.figure import Figure

    symbols = data.symbols
    rows = max(1, math.ceil(len(symbols) / PANELS_PER_ROW))
    width, height = figure_size(len(symbols))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    outer = fig.add_gridspec(2, 1, height_ratios=[rows * PRICE_ROW_IN, LOWER_IN], hspace=0.18)
    prices = outer[0].subgridspec(rows, PANELS_PER_ROW, hspace=0.45, wspace=0.3)
    lower = outer[1].subgridspec(2, 2, hspace=0.35, wspace=0.22)
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf"]
    colours = {s: palette[i % len(palette)] for i, s in enumerate(symbols)}
    for i, symbol in enumerate(symbols):
        r, c = divmod(i, PANELS_PER_ROW)
        _price_panel(fig.add_subplot(prices[r, c]), data, symbol, vwap)
    _ranges_panel(fig.add_subplot(lower[0, 0]), data)
    _volume_panel(fig.add_subplot(lower[0, 1]), data, colours)
    _sentiment_panel(fig.add_subplot(lower[1, 0]), data)
    _alerts_panel(fig.add_subplot(lower[1, 1]), data)
    fig.suptitle(
        f"{data.market} — {data.day}: price (blue) and running VWAP (orange) per symbol"
        + (
            f" — the {len(data.symbols)} biggest movers of {data.universe}"
            if data.universe > len(data.symbols)
            else ""
        ),
        fontsize=12,
        x=0.01,
        ha="left",
    )
    fig.subplots_adjust(left=0.05, right=0.95, top=0.93, bottom=0.05)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    return _palette_png(buffer.getvalue())


def scaled_png(png: bytes, max_width: int) -> bytes:
    """The PNG at most `max_width` pixels wide (same aspect, Lanczos-resampled, palette kept
    small); unchanged when it is already narrower."""
    from PIL import Image  # matplotlib's own dependency

    with Image.open(io.BytesIO(png)) as image:
        if image.width <= max_width:
            return png
        height = round(image.height * max_width / image.width)
        scaled = image.convert("RGB").resize((max_width, height), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    scaled.save(out, format="PNG", optimize=True)
    return _palette_png(out.getvalue())


def _palette_png(png: bytes) -> bytes:
    """The PNG with a 256-colour palette: a third of the bytes (the UI's event log and the
    page embed it) and no visible change for a chart of flat colours."""
    from PIL import Image  # matplotlib's own dependency

    with Image.open(io.BytesIO(png)) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    small.save(out, format="PNG", optimize=True)
    return out.getvalue()
