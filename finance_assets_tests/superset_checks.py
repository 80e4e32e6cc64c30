"""Superset's dashboards checked as a user sees them: shared by the dashboard test (Superset from
its own venv) and the container stack's test (the stack's superset service).

`check_dashboards` logs in with headless Chromium (Debian's, through Playwright; never a
downloaded browser), opens each market's dashboard and holds every chart's data, as the page
received it, to what the warehouse's `bi_*` views hold.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

import psycopg
import pytest

from finance_assets import dashboard
from finance_assets_tests.browser import CHROMIUM, CHROMIUM_ARGS

DEMO_DAYS = 6  # MIN_OBSERVATIONS (5) returns: the last session has a volatility and a z-score

sys.path.insert(0, str(dashboard.SUPERSET_DIR))
import bundle  # noqa: E402  (deployment/superset/bundle.py)

SPEC = bundle.load_spec()


def api(base: str, path: str, token: str | None = None, body: dict | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{base}{path}", data=data, headers=headers)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def login_token(base: str, user: str, password: str) -> str:
    body = {"username": user, "password": password, "provider": "db", "refresh": False}
    return api(base, "/api/v1/security/login", body=body)["access_token"]


def _warehouse_total(url: str, market: str, chart: dict) -> float:
    """What the chart should show, summed: each metric per session and series, added up."""
    dataset = chart["dataset"]
    keys = ", ".join(["trading_date", *chart["groupby"]])
    metrics = " + ".join(f"coalesce(sum(m{i}), 0)" for i in range(len(chart["metrics"])))
    inner = ", ".join(f"{e} AS m{i}" for i, e in enumerate(chart["metrics"].values()))
    query = f"SELECT {metrics} FROM (SELECT {inner} FROM {market}.{dataset} GROUP BY {keys}) AS t"
    with psycopg.connect(url) as conn:
        return float(conn.execute(query).fetchone()[0])


def _total(result: dict) -> float:
    """The sum of a chart-data answer's numbers, the time column left out."""
    return sum(
        float(value)
        for row in result["data"]
        for column, value in row.items()
        if column != bundle.SESSION_LABEL and isinstance(value, int | float) and value == value
    )


def browser_login(page, base: str, user: str, password: str) -> None:
    """Log the browser's context in, through Superset's login form endpoint, and make sure it
    holds.

    The form is posted from the context's own request client (it shares the browser's cookies),
    not by clicking the login page: that page reports its page view through a
    `/superset/log/` beacon, and when the beacon, sent anonymous, is answered after the login,
    its answer's session cookie replaces the logged-in one; the welcome page then loads and
    bounces back to /login (CI saw it twice, on a slow machine, with one worker and with two)."""
    request = page.context.request
    html = request.get(f"{base}/login/").text()
    found = re.search(r'id="csrf_token"\s+value="([^"]*)"', html)
    assert found, f"no csrf_token on {base}/login/: {html[:500]!r}"
    form = {"username": user, "password": password, "csrf_token": found.group(1)}
    answer = request.post(f"{base}/login/", form=form, max_redirects=0)
    where = answer.headers.get("location", "")
    assert answer.status == 302 and "/login" not in where, (answer.status, where)
    me = request.get(f"{base}/api/v1/me/")
    assert me.status == 200 and me.json()["result"]["username"] == user, (me.status, me.text())


def check_dashboards(base: str, user: str, password: str, url: str, shots: Path) -> None:
    """Log headless Chromium in (`browser_login`), open each market's dashboard, and check
    every chart: drawn (a canvas per chart, no error or "No results"), and its chart-data
    answer, as the page received it, adding up to what the warehouse holds."""
    sync_api = pytest.importorskip("playwright.sync_api")
    token = login_token(base, user, password)
    boards = api(base, "/api/v1/dashboard/?q=(page_size:100)", token)["result"]
    assert sorted(b["slug"] for b in boards) == ["market-uk", "market-us"]
    charts = api(base, "/api/v1/chart/?q=(page_size:100)", token)["result"]
    by_id = {c["id"]: c["slice_name"] for c in charts}
    spec_by_title = {c["title"]: c for c in SPEC["charts"].values()}
    expected = len(bundle.charts_of(SPEC))

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1600, "height": 2400})
            browser_login(page, base, user, password)
            for market in ("us", "uk"):
                answers: dict[int, dict] = {}

                def keep(response, answers=answers):
                    if "/api/v1/chart/data" not in response.url:
                        return
                    form = json.loads(response.request.post_data or "{}").get("form_data", {})
                    answers[form.get("slice_id")] = {"status": response.status, **response.json()}

                page.on("response", keep)
                page.goto(f"{base}/superset/dashboard/market-{market}/")
                try:
                    page.wait_for_function(
                        "document.querySelectorAll('.chart-container canvas').length"
                        f" >= {expected}",
                        timeout=240_000,
                    )
                except sync_api.TimeoutError:
                    # What the page showed instead, for the failure to say.
                    page.screenshot(path=str(shots / f"timeout-{market}.png"), full_page=True)
                    drawn = page.evaluate(
                        "document.querySelectorAll('.chart-container canvas').length"
                    )
                    text = page.inner_text("body")[:2000]
                    raise AssertionError(
                        f"{market}: {drawn} of {expected} charts drawn after 240 s; chart-data "
                        f"answers {sorted(answers)}; the page said: {text!r}; still logged in: "
                        f"{page.context.request.get(f'{base}/api/v1/me/').status == 200}"
                    ) from None
                page.wait_for_load_state("networkidle")
                page.remove_listener("response", keep)
                page.screenshot(path=str(shots / f"dashboard-{market}.png"), full_page=True)

                holders = page.locator(".dashboard-component-chart-holder")
                assert holders.count() == expected
                for text in ("No results", "Unexpected error", "error occurred"):
                    assert page.get_by_text(text).count() == 0, (market, text)
                assert len(answers) == expected, (market, sorted(answers))
                for slice_id, answer in answers.items():
                    title = by_id[slice_id]
                    assert answer["status"] == 200, (title, answer)
                    result = answer["result"][0]
                    assert not result.get("error"), (title, result["error"])
                    assert result["rowcount"] > 0, (market, title)
                    want = _warehouse_total(url, market, spec_by_title[title])
                    assert _total(result) == pytest.approx(want, rel=1e-6), (market, title)
        finally:
            browser.close()
