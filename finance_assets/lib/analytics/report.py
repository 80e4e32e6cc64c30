"""One market's daily report: the overview chart (PNG) and one self-contained HTML page (the
chart embedded as base64, tables of the day's numbers; no script, no external file)."""

from __future__ import annotations

import base64
import datetime as dt
import html
from zoneinfo import ZoneInfo

import polars as pl

from finance_assets.lib.analytics import charts, metrics
from finance_assets.lib.analytics.charts import DayData
from finance_assets.lib.schema import BAR_SCHEMA, DAILY_SUMMARY_SCHEMA
from finance_assets.lib.social import STOCK_SENTIMENT_SCHEMA
from finance_assets.lib.transforms import PRICE_ALERT_SCHEMA, agreement

OVERVIEW = "overview.png"
PAGE = "report.html"


def day_data(
    *,
    market: str,
    timezone: str,
    day: dt.date,
    bars: pl.DataFrame,
    summary: pl.DataFrame,
    sentiment: pl.DataFrame,
    alerts: pl.DataFrame,
    vendor_agreement: pl.DataFrame | None = None,
) -> DayData:
    """The report's inputs for `day`, from frames that may cover more days: `summary` the
    daily summary over the day and the sessions before it (for the volume z-scores);
    `vendor_agreement` (a market with a reference provider) the per-bar comparison over the
    day and the sessions before it. A table not written yet reads as a frame without columns:
    it stands for no rows."""
    bars = _or_empty(bars, BAR_SCHEMA)
    summary = _or_empty(summary, DAILY_SUMMARY_SCHEMA)
    sentiment = _or_empty(sentiment, STOCK_SENTIMENT_SCHEMA)
    alerts = _or_empty(alerts, PRICE_ALERT_SCHEMA)
    history = metrics.volume_zscores(summary.filter(pl.col("trading_date") <= day))
    sessions = history.get_column("trading_date").unique().sort()
    shown = sessions.tail(metrics.WINDOW + 1).to_list()
    local = pl.col("ts").dt.convert_time_zone(timezone).dt.date()
    today = summary.filter(pl.col("trading_date") == day)
    charted = pl.col("symbol").is_in(movers(today, MAX_CHARTED))
    return DayData(
        market=market,
        timezone=timezone,
        day=day,
        bars=bars.filter((local == day) & charted),
        history=history.filter(pl.col("trading_date").is_in(shown) & charted),
        summary=today.filter(charted).sort("symbol"),
        sentiment=sentiment.filter((pl.col("trading_date") == day) & charted),
        alerts=alerts.filter((local == day) & charted),
        universe=today.height,
        **_second_opinion(vendor_agreement, day, timezone),
    )


def _second_opinion(pairs: pl.DataFrame | None, day: dt.date, timezone: str) -> dict:
    """The agreement per day over the day and the sessions before it, and the day's
    disagreeing bars (none of it for a market without a reference provider)."""
    if pairs is None:
        return {}
    pairs = _or_empty(pairs, agreement.AGREEMENT_SCHEMA).filter(pl.col("trading_date") <= day)
    days = agreement.daily_agreement(pairs).tail(metrics.WINDOW + 1)
    today = pairs.filter(pl.col("trading_date") == day)
    return {
        "agreement": days,
        "disagreements": tuple(agreement.disagreements(today, ZoneInfo(timezone))),
    }


# An index universe (the S&P 500: 503 symbols) cannot be read as 503 price panels: past this
# many, the day's biggest movers are charted, and the page says so.
MAX_CHARTED = 10


def movers(summary: pl.DataFrame, limit: int) -> list[str]:
    """The `limit` symbols of a day's summary that moved most (|return|, else |open to close|),
    ties by symbol; every symbol when there are no more than `limit`."""
    if summary.height <= limit:
        return summary.get_column("symbol").to_list()
    moved = pl.coalesce("return_pct", "open_to_close_pct").abs().fill_null(0.0)
    ranked = summary.with_columns(_moved=moved).sort(["_moved", "symbol"], descending=[True, False])
    return ranked.get_column("symbol").head(limit).to_list()


def _or_empty(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> pl.DataFrame:
    return frame if frame.width else pl.DataFrame(schema=schema)


def _table(frame: pl.DataFrame, caption: str) -> str:
    if frame.is_empty():
        return f"<h2>{html.escape(caption)}</h2><p class='none'>none</p>"
    head = "".join(f"<th>{html.escape(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.iter_rows():
        cells = []
        for value in row:
            text = "" if value is None else f"{value:,.2f}" if isinstance(value, float) else value
            cells.append(f"<td>{html.escape(str(text))}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (
        f"<h2>{html.escape(caption)}</h2><table><thead><tr>{head}</tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )


def performance_table(data: DayData) -> pl.DataFrame:
    z = data.history.filter(pl.col("trading_date") == data.day).select(
        "symbol", "volume_zscore", "unusual_volume"
    )
    return (
        data.summary.join(z, on="symbol", how="left")
        .select(
            "symbol",
            "open",
            "high",
            "low",
            "close",
            "vwap",
            "return_pct",
            "open_to_close_pct",
            "range_pct",
            vwap_gap_pct=(pl.col("close") / pl.col("vwap") - 1) * 100,
            volume="volume",
            volume_zscore="volume_zscore",
            unusual_volume="unusual_volume",
        )
        .sort("symbol")
    )


def page_html(data: DayData, png: bytes) -> str:
    """The self-contained report page."""
    title = f"{data.market} — daily report {data.day}"
    sentiment = (
        data.sentiment.select(
            "symbol",
            "return_pct",
            "post_count",
            "mean_compound",
            "weighted_compound",
            "share_positive",
            "share_negative",
        ).sort("symbol")
        if data.sentiment.height
        else pl.DataFrame()
    )
    alerts = (
        data.alerts.sort("ts")
        .with_columns(time=pl.col("ts").dt.convert_time_zone(data.timezone).dt.strftime("%H:%M %Z"))
        .select("time", "symbol", "kind", "direction", "price", "reference", "change_pct")
        if data.alerts.height
        else pl.DataFrame()
    )
    image = base64.b64encode(png).decode()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5rem; color: #222; background: #fff; }}
img {{ max-width: 100%; border: 1px solid #ddd; }}
table {{ border-collapse: collapse; margin-bottom: 1rem; font-size: 0.9rem; }}
th, td {{ border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: right; }}
th {{ background: #f0f0f0; }} .none {{ color: #777; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Exchange time zone {html.escape(data.timezone)}. Unusual volume: z-score ≥
{metrics.UNUSUAL_VOLUME_Z:g} against the previous {metrics.WINDOW} sessions (at least
{metrics.MIN_OBSERVATIONS} of them).</p>
<img id="overview" alt="overview chart" src="data:image/png;base64,{image}">
{_table(performance_table(data), "Performance")}
{_table(sentiment, "Sentiment")}
{_table(alerts, "Price alerts")}
{_second_opinion_html(data)}
</body></html>
"""


def _second_opinion_html(data: DayData) -> str:
    """The agreement rate per day with the reference provider, and the day's differences."""
    if data.agreement is None:
        return ""
    days = data.agreement.select(
        "trading_date",
        "compared",
        "agreed",
        agreement_pct=pl.col("agreement_rate") * 100,
        max_close_diff_bp="max_close_diff_bp",
        missing_reference="missing_reference",
        missing_primary="missing_primary",
    )
    listed = "".join(f"<li>{html.escape(line)}</li>" for line in data.disagreements)
    today = (
        f"<ul id='disagreements'>{listed}</ul>"
        if listed
        else "<p class='none'>no disagreement on this session</p>"
    )
    return (
        _table(days, "Second opinion: agreement with the reference provider per session")
        + "<p>agreement = bars both providers had that agree within the tolerances, of the "
        "bars both had; an empty rate means nothing could be compared.</p>" + today
    )


def render(data: DayData) -> dict[str, bytes]:
    """The report's files: the overview PNG and the HTML page."""
    png = charts.overview_png(data, metrics.intraday_vwap(data.bars))
    return {OVERVIEW: png, PAGE: page_html(data, png).encode()}


# The UI shows Markdown metadata in a dialog at most 80 % of the window wide, scrolling what is
# wider: 960 px fits a 1280-px window whole (the HTML page keeps the full-size chart).
UI_IMAGE_WIDTH = 960


def markdown_image(png: bytes, caption: str, max_width: int = UI_IMAGE_WIDTH) -> str:
    """Markdown showing the PNG inline (how Dagster's tutorial shows a chart in the UI), scaled
    down to `max_width` pixels so the UI's dialog shows it whole."""
    shown = charts.scaled_png(png, max_width)
    return f"![{caption}](data:image/png;base64,{base64.b64encode(shown).decode()})"
