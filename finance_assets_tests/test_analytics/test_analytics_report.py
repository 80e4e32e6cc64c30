"""The daily report: its chart renders (a PNG of the expected size, not blank), its page opens
in headless Chromium (Debian's /usr/bin/chromium through Playwright, never a downloaded
browser), and the daily job of a demo day writes both beside the lake and shows the chart on
the materialisation."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl
import pytest
from PIL import Image

from finance_assets import demo
from finance_assets.lib import transforms
from finance_assets.lib.analytics import charts, metrics, publish, report

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DAY = dt.date(2026, 11, 18)


def _decoded(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image.convert("RGB")


def _assert_not_blank(image: Image.Image) -> None:
    pixels = np.asarray(image)
    # A blank or single-colour image has one colour and no spread; a chart has many of both.
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert colours > 30, colours
    assert pixels.std() > 20, pixels.std()
    # Ink on the page: a good share of pixels are not the white background.
    assert (pixels.min(axis=2) < 200).mean() > 0.03


def _synthetic_day(us, days: int = 25) -> report.DayData:
    rng = np.random.default_rng(3)
    sessions = us.sessions(DAY - dt.timedelta(days=40), DAY)[-days:]
    rows = []
    for symbol, price in zip(us.universe, [200.0, 400.0, 150.0, 300.0, 120.0], strict=True):
        for day in sessions:
            spike = 6 if symbol == us.universe[0] and day == sessions[-1] else 1
            for ts in us.bar_starts(*us.session_bounds(day)):
                open_ = price
                price *= float(np.exp(rng.normal(0, 0.002)))
                rows.append(
                    {
                        "symbol": symbol,
                        "ts": ts,
                        "open": open_,
                        "high": max(open_, price) * 1.001,
                        "low": min(open_, price) * 0.999,
                        "close": price,
                        "volume": int(rng.integers(1000, 1200)) * spike,
                    }
                )
    bars = pl.DataFrame(rows).with_columns(pl.col("ts").cast(pl.Datetime("us", "UTC")))
    summary = transforms.daily_summary(bars, us)
    return report.day_data(
        market=us.name,
        timezone=us.timezone,
        day=sessions[-1],
        bars=bars,
        summary=summary,
        sentiment=pl.DataFrame(),  # no sentiment table yet: the panel says so
        alerts=transforms.detect_price_moves(bars, us, 0.5),
    )


def test_the_overview_renders_at_its_size_and_is_not_blank(us):
    data = _synthetic_day(us)
    files = report.render(data)
    image = _decoded(files[report.OVERVIEW])
    assert image.size == charts.figure_size(5) == (1400, 1000)
    _assert_not_blank(image)
    assert len(files[report.OVERVIEW]) < 200_000
    # The unusual day is flagged, and the page embeds the very same PNG.
    today = data.history.filter(pl.col("trading_date") == data.day)
    flagged = today.filter(pl.col("unusual_volume")).get_column("symbol").to_list()
    assert flagged == [us.universe[0]]
    page = files[report.PAGE].decode()
    embedded = re.search(r'src="data:image/png;base64,([^"]+)"', page).group(1)
    assert base64.b64decode(embedded) == files[report.OVERVIEW]
    assert "<script" not in page and "http" not in page  # self-contained, nothing fetched


def test_the_volume_axis_holds_each_session_once_and_no_other_day(us):
    """One tick per trading session, in order, each date once: no weekend or holiday on the
    axis (a date axis plotted them as days and repeated dates between ticks)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    data = _synthetic_day(us)
    ax = Figure().add_subplot()
    charts._volume_panel(ax, data, dict.fromkeys(data.symbols, "#333333"))
    labels = [tick.get_text() for tick in ax.get_xticklabels()]
    sessions = sorted(set(data.history.get_column("trading_date").to_list()))
    assert labels == [f"{day:%m-%d}" for day in sessions]
    assert len(set(labels)) == len(labels)
    assert all(us.is_session(day) for day in sessions)
    # The 25 sessions span weekends (and Thanksgiving): none of those days is on the axis.
    span = (sessions[-1] - sessions[0]).days + 1
    assert span > len(sessions)
    assert list(ax.get_xticks()) == list(range(len(sessions)))


def test_volume_zscores_match_a_hand_computation():
    volumes = [100, 110, 90, 105, 95, 300, 100]
    frame = pl.DataFrame(
        {
            "trading_date": [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(7)],
            "symbol": ["X"] * 7,
            "return_pct": [None, 1.0, -1.0, 0.5, -0.5, 2.0, 0.0],
            "volume": volumes,
        }
    )
    out = metrics.volume_zscores(frame)
    prior = np.array(volumes[:5], dtype=float)
    expected = (300 - prior.mean()) / prior.std(ddof=1)
    z = out.get_column("volume_zscore").to_list()
    assert z[:5] == [None] * 5  # fewer than MIN_OBSERVATIONS previous sessions
    assert z[5] == pytest.approx(expected)
    assert out.get_column("unusual_volume").to_list() == [False] * 5 + [True, False]


@pytest.fixture
def demo_day(env_defs, us, tmp_path):
    """One New York session materialised as `make demo` does (bars, posts, the daily job)."""
    defs, instance = env_defs
    runs = demo.run_market(defs, us, [DAY], instance, with_posts=True)
    assert runs.success, [demo.failure_reasons(r) for r in runs]
    return tmp_path / "data", instance


def test_the_daily_job_writes_the_report_beside_the_lake(demo_day, us, tmp_path, capsys):
    data_dir, instance = demo_day
    folder = Path(publish.report_store(data_dir / "reports", "us", DAY).uri())
    assert folder == data_dir / "reports" / "us" / f"dt={DAY}"
    png = (folder / report.OVERVIEW).read_bytes()
    image = _decoded(png)
    assert image.size == charts.figure_size(len(us.universe))
    _assert_not_blank(image)

    event = instance.get_latest_materialization_event(dg.AssetKey(["us", "market_report"]))
    meta = event.asset_materialization.metadata
    assert event.asset_materialization.partition == DAY.isoformat()
    assert meta["report"].value == str(folder / report.PAGE)
    assert meta["report_url"].value == f"file://{folder / report.PAGE}"
    chart = meta["chart"].value
    assert chart.startswith("![") and "data:image/png;base64," in chart
    # The UI's dialog (at most 80 % of a 1280-px window) shows the chart whole: the same chart
    # scaled down to 960 px, its aspect kept; the page keeps the full size.
    shown = _decoded(base64.b64decode(chart.split("base64,")[1].rstrip(")")))
    assert shown.width == 960 < image.width
    assert abs(shown.height / shown.width - image.height / image.width) < 0.01
    _assert_not_blank(shown)

    # `make demo` ends with the page's path.
    from finance_assets.definitions import build_domain_defs
    from finance_assets.resources import build_resources

    defs = dg.Definitions.merge(
        build_domain_defs([us]), dg.Definitions(resources=build_resources())
    )
    demo.print_reports(defs, {"us": DAY})
    assert capsys.readouterr().out.strip().endswith(f"us: {folder / report.PAGE}")

    # The page in a real browser: the chart loads at its size and the screenshot is not blank.
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium; .ci/run does)")
    sync_api = pytest.importorskip("playwright.sync_api")
    shot = tmp_path / "report.png"
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1100})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto((folder / report.PAGE).as_uri())
            width = page.evaluate("document.getElementById('overview').naturalWidth")
            assert width == image.size[0]
            assert page.locator("h1").inner_text().startswith(f"{us.name} — daily report {DAY}")
            assert page.locator("table").count() >= 2
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert all(url.startswith(("file:", "data:")) for url in requests), requests
    _assert_not_blank(Image.open(shot).convert("RGB"))


def test_an_index_universe_charts_its_biggest_movers(us):
    """The S&P 500 cannot be read as 503 price panels: past `MAX_CHARTED` symbols the report
    charts the day's biggest movers (|return|) and its title says of how many."""
    base = _synthetic_day(us)
    template = base.summary.row(0, named=True)
    returns = [0.5, -7.0, 1.0, 3.0, -0.2, 9.0, -4.0, 0.1, 2.5, -2.0, 6.0, -0.05]
    summary = pl.DataFrame(
        [{**template, "symbol": f"S{i:02d}", "return_pct": r} for i, r in enumerate(returns)],
        schema=base.summary.schema,
    )
    data = report.day_data(
        market=us.name,
        timezone=us.timezone,
        day=base.day,
        bars=base.bars,
        summary=summary,
        sentiment=pl.DataFrame(),
        alerts=pl.DataFrame(),
    )
    by_size = sorted(range(len(returns)), key=lambda i: (-abs(returns[i]), i))
    expected = sorted(f"S{i:02d}" for i in by_size[: report.MAX_CHARTED])
    assert data.symbols == expected and data.universe == len(returns)
    assert "S11" not in data.symbols and "S07" not in data.symbols  # the two smallest moves
    image = _decoded(report.render(data)[report.OVERVIEW])
    assert image.size == charts.figure_size(report.MAX_CHARTED)
