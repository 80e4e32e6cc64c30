import datetime as dt
import json

import polars as pl
import psycopg
import pytest

from finance_assets.defs.ops.notifications import Notifier, SlackChannel
from finance_assets.defs.warehouse.alerts import notify_new_alerts
from finance_assets.lib import transforms
from finance_assets.lib.io import postgres

NOW = dt.datetime(2026, 11, 18, 16, 0, tzinfo=dt.UTC)


@pytest.fixture
def alerts(pg_url):
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")
    rows = [
        (NOW - dt.timedelta(minutes=30), "AAPL", "vs_prev_close", "up", 101.2, 100.0, 1.2),
        (NOW - dt.timedelta(minutes=10), "MSFT", "vs_prev_bar", "down", 98.0, 99.5, -1.51),
        (NOW - dt.timedelta(days=3), "TSLA", "vs_prev_close", "down", 90.0, 92.0, -2.17),
    ]
    frame = pl.DataFrame(
        [
            dict(
                zip(
                    ["ts", "symbol", "kind", "direction", "price", "reference", "change_pct"],
                    r,
                    strict=True,
                )
            )
            | {"threshold_pct": 1.0}
            for r in rows
        ]
    ).with_columns(pl.col("ts").dt.cast_time_unit("us"))
    frame = transforms.conform(frame, transforms.PRICE_ALERT_SCHEMA)

    def write():
        postgres.replace_window(
            pg_url,
            frame,
            postgres.WindowTable("us", "price_alerts", "ts"),
            start=NOW - dt.timedelta(days=5),
            end=NOW,
            primary_key=transforms.PRICE_ALERT_KEY,
        )

    write()
    return write


def test_each_alert_is_sent_once_and_stale_ones_are_skipped(pg_url, us, alerts, tmp_path):
    notifier = Notifier(notifications_file=str(tmp_path / "notifications.jsonl"))
    counts = notify_new_alerts(pg_url, us, notifier, NOW)
    assert counts == {"sent": 2, "skipped": 1, "failed": 0}
    lines = [json.loads(x) for x in (tmp_path / "notifications.jsonl").read_text().splitlines()]
    assert [x["fields"]["symbol"] for x in lines] == ["AAPL", "MSFT"]
    assert lines[0]["title"] == "AAPL +1.20% vs the previous close (us)"
    assert lines[1]["fields"]["change"] == "-1.51% in one bar"
    # A re-run of the partition rewrites the same alerts: nothing is sent again.
    alerts()
    assert notify_new_alerts(pg_url, us, notifier, NOW) == {"sent": 0, "skipped": 0, "failed": 0}
    assert len((tmp_path / "notifications.jsonl").read_text().splitlines()) == 2


def test_a_failed_send_is_retried_not_lost(pg_url, us, alerts, httpserver, samples):
    slack = samples / "slack"
    httpserver.expect_oneshot_request("/api/chat.postMessage").respond_with_data(
        (slack / "slack_chat_postMessage_error_channel_not_found.json").read_text(),
        content_type="application/json",
    )
    notifier = Notifier(
        slack=SlackChannel(
            token="xoxb-test-token", channel="C1H9RESGL", base_url=httpserver.url_for("/api/")
        )
    )
    first = notify_new_alerts(pg_url, us, notifier, NOW)
    # channel_not_found, then no stand-in answer at all: both alerts stay owed.
    assert first == {"sent": 0, "skipped": 1, "failed": 2}
    httpserver.expect_request("/api/chat.postMessage").respond_with_data(
        (slack / "slack_chat_postMessage_ok.json").read_text(), content_type="application/json"
    )
    second = notify_new_alerts(pg_url, us, notifier, NOW)
    assert second == {"sent": 2, "skipped": 0, "failed": 0}
    assert notify_new_alerts(pg_url, us, notifier, NOW)["sent"] == 0
    delivered = [
        request.get_data(as_text=True)
        for request, response in httpserver.log
        if request.path == "/api/chat.postMessage" and b'"ok": true' in response.get_data()
    ]
    assert len(delivered) == 2
    assert sum("AAPL" in text for text in delivered) == 1
    assert all("xoxb-test-token" not in text for text in delivered)
