"""Price alerts delivered by the run that wrote them (issue 23), the sensor the retry path: each
alert reaches Slack (a stand-in on loopback) and the webhook receiver once, whichever of the run
and the sensor sees it, together or one after the other; what the run fails to deliver, the
sensor delivers."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import dagster as dg
import psycopg
import pytest
from dagster._core.test_utils import freeze_time
from werkzeug import Request, Response

from finance_assets.definitions import build_domain_defs
from finance_assets.defs.ops.notifications import Notifier, SlackChannel
from finance_assets.defs.warehouse import alerts as alerts_module
from finance_assets.defs.warehouse.alerts import (
    LEDGERS,
    RUN_LOCK_WAIT,
    _lock_key,
    build_price_alert_sensor,
    notify_new_alerts,
    run_channels,
)
from finance_assets.demo import range_tags
from finance_assets.lib.io.managers import WarehouseResource
from finance_assets.resources import build_resources
from finance_assets_tests.test_sensors.test_price_alert_notifications import (  # noqa: F401
    NOW,
    alerts,
)

HOOK = "/hooks/price-alerts"
SLACK = "/api/chat.postMessage"
# Slack's answers to chat.postMessage, as its API documents them.
SLACK_OK = json.dumps({"ok": True, "channel": "C1H9RESGL", "ts": "1503435956.000247"})
SLACK_CHANNEL_NOT_FOUND = json.dumps({"ok": False, "error": "channel_not_found"})


def _notifier(httpserver, tmp_path) -> Notifier:
    return Notifier(
        slack=SlackChannel(
            token="xoxb-test-token", channel="C1H9RESGL", base_url=httpserver.url_for("/api/")
        ),
        notifications_file=str(tmp_path / "notifications.jsonl"),
        webhook_url=httpserver.url_for(HOOK),
    )


def _delivered(httpserver, path: str) -> list[str]:
    return [
        request.get_data(as_text=True)
        for request, response in httpserver.log
        if request.path == path
        and response.status_code < 300
        and b'"ok": false' not in (response.get_data())
    ]


def _symbols(bodies: list[str]) -> list[str]:
    found = []
    for body in bodies:
        for symbol in ("AAPL", "MSFT", "TSLA"):
            if symbol in body:
                found.append(symbol)
    return sorted(found)


def test_run_and_sensor_together_deliver_each_alert_once(
    pg_url,
    us,
    alerts,  # noqa: F811
    httpserver,
    tmp_path,
):
    """The run delivers while the sensor evaluates: the ledger's lock lets one of them send."""

    def slow(answer: str, content_type: str):
        def handler(request: Request) -> Response:
            time.sleep(0.4)  # a send in flight while the other deliverer arrives
            return Response(answer, content_type=content_type)

        return handler

    httpserver.expect_request(SLACK).respond_with_handler(slow(SLACK_OK, "application/json"))
    httpserver.expect_request(HOOK, method="POST").respond_with_handler(slow("ok", "text/plain"))
    notifier = _notifier(httpserver, tmp_path)
    results: dict[str, dict[str, int]] = {}

    def run() -> None:
        results["run"] = notify_new_alerts(
            pg_url, us, notifier, NOW, wait=RUN_LOCK_WAIT, stop_at_failure=True
        )

    def sensor() -> None:
        results["sensor"] = notify_new_alerts(pg_url, us, notifier, NOW)

    first = threading.Thread(target=run)
    first.start()
    time.sleep(0.2)  # the run holds the chat ledger, sending its first alert
    second = threading.Thread(target=sensor)
    second.start()
    first.join(30)
    second.join(30)
    assert results["run"]["sent"] + results["sensor"]["sent"] == 4  # 2 alerts x 2 channels
    # Whatever the sensor left while the run held a ledger, its next tick finds delivered.
    assert notify_new_alerts(pg_url, us, notifier, NOW)["sent"] == 0
    assert _symbols(_delivered(httpserver, SLACK)) == ["AAPL", "MSFT"]
    assert _symbols(_delivered(httpserver, HOOK)) == ["AAPL", "MSFT"]


def test_a_run_waits_for_the_sensor_and_sends_nothing_it_sent(
    pg_url,
    us,
    alerts,  # noqa: F811
    httpserver,
    tmp_path,
):
    """The sensor is delivering when the run arrives: the run waits and finds the ledger full."""
    httpserver.expect_request(SLACK).respond_with_data(SLACK_OK, content_type="application/json")
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    notifier = _notifier(httpserver, tmp_path)
    lock = [alerts_module._LOCK_NAMESPACE, _lock_key("us", LEDGERS["chat"])]
    with psycopg.connect(pg_url, autocommit=True) as holder:
        # Another deliverer (the sensor) holds the chat ledger and sends the alerts.
        holder.execute("SELECT pg_advisory_lock(%s, %s)", lock)
        result: dict[str, dict[str, int]] = {}
        waiting = threading.Thread(
            target=lambda: result.update(
                run=notify_new_alerts(pg_url, us, notifier, NOW, wait=RUN_LOCK_WAIT)
            )
        )
        waiting.start()
        time.sleep(1.0)
        assert waiting.is_alive(), "the run did not wait for the ledger"
        sent_meanwhile = notify_new_alerts(pg_url, us, notifier, NOW)  # the sensor
        holder.execute("SELECT pg_advisory_unlock(%s, %s)", lock)
    waiting.join(30)
    # While the chat ledger was held, the webhook's was free: the second caller sent those.
    assert sent_meanwhile == {"sent": 2, "skipped": 1, "failed": 0}
    assert result["run"] == {"sent": 2, "skipped": 1, "failed": 0}  # chat, once released
    assert _symbols(_delivered(httpserver, SLACK)) == ["AAPL", "MSFT"]
    assert _symbols(_delivered(httpserver, HOOK)) == ["AAPL", "MSFT"]


def test_what_the_run_fails_to_deliver_the_sensor_delivers(
    pg_url,
    us,
    alerts,  # noqa: F811
    httpserver,
    tmp_path,
):
    httpserver.expect_ordered_request(SLACK).respond_with_data(
        SLACK_CHANNEL_NOT_FOUND, content_type="application/json"
    )
    httpserver.expect_ordered_request(HOOK, method="POST").respond_with_response(
        Response("upstream down", status=503)
    )
    notifier = _notifier(httpserver, tmp_path)
    # The run stops at each channel's first failure: one attempt per channel, nothing sent.
    ran = notify_new_alerts(pg_url, us, notifier, NOW, wait=RUN_LOCK_WAIT, stop_at_failure=True)
    assert ran == {"sent": 0, "skipped": 2, "failed": 2}
    assert len([r for r, _ in httpserver.log if r.path == SLACK]) == 1
    assert len([r for r, _ in httpserver.log if r.path == HOOK]) == 1
    httpserver.expect_request(SLACK).respond_with_data(SLACK_OK, content_type="application/json")
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    assert notify_new_alerts(pg_url, us, notifier, NOW) == {"sent": 4, "skipped": 0, "failed": 0}
    assert notify_new_alerts(pg_url, us, notifier, NOW)["sent"] == 0
    assert _symbols(_delivered(httpserver, SLACK)) == ["AAPL", "MSFT"]
    assert _symbols(_delivered(httpserver, HOOK)) == ["AAPL", "MSFT"]


@pytest.fixture
def defs(monkeypatch, tmp_path, pg_url, us):
    monkeypatch.setenv("FINANCE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FINANCE_PG_URL", pg_url)
    # Low enough that the simulated bars of one morning cross it.
    monkeypatch.setenv("FINANCE_PRICE_MOVE_PCT", "0.05")
    for name in (
        "FINANCE_SIM_FAULT_RATE",
        "FINANCE_ENV",
        "MARKET_DATA_PROVIDER",
        "SLACK_BOT_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS us CASCADE")
    return dg.Definitions.merge(
        build_domain_defs([us]), dg.Definitions(resources=build_resources())
    )


def test_the_tick_run_delivers_its_alerts_and_the_sensor_finds_none_left(
    defs, pg_url, us, tmp_path
):
    notifications = tmp_path / "data" / "notifications.jsonl"
    # Noon in New York: the morning's bars exist, and its alerts are hours old at most.
    with freeze_time(dt.datetime(2026, 11, 18, 17, 0, tzinfo=dt.UTC)):
        result = defs.resolve_job_def("us_bars_5min_job").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            tags=range_tags("2026-11-18-09:30", "2026-11-18-10:25"),
        )
        assert result.success
        with psycopg.connect(pg_url) as conn:
            stored = conn.execute("SELECT count(*) FROM us.price_alerts").fetchone()[0]
            sent = conn.execute(
                "SELECT count(*) FROM us.price_alert_notifications WHERE status = 'sent'"
            ).fetchone()[0]
        assert stored > 0
        # Delivered by the run itself (the success hook on price_moves), each alert once.
        lines = [json.loads(line) for line in notifications.read_text().splitlines()]
        assert len(lines) == stored == sent
        assert len({line["title"] + line["fields"]["time"] for line in lines}) == stored
        # The sensor's tick: nothing left to send.
        sensor = build_price_alert_sensor([us])
        resources = {
            "notifier": Notifier(notifications_file=str(notifications)),
            "warehouse": WarehouseResource(url=pg_url),
        }
        with dg.build_sensor_context(resources=resources) as context:
            skip = sensor(context)
        assert "'sent': 0" in skip.skip_message
    assert len(notifications.read_text().splitlines()) == stored


def test_a_run_without_the_slack_token_leaves_chat_to_the_sensor(tmp_path):
    """On AWS only the code server running the sensors has SLACK_BOT_TOKEN: a run's notifier
    falls back to the local file, which must not be recorded as chat's delivery."""
    without_token = Notifier(
        notifications_file=str(tmp_path / "n.jsonl"), webhook_url="http://127.0.0.1:9/hook"
    )
    assert run_channels(without_token, {"SLACK_CHANNEL": "#alerts"}) == ["webhook"]
    # No Slack configured anywhere: the file is chat, for the run as for the sensor.
    assert run_channels(without_token, {}) == ["chat", "webhook"]
    with_token = Notifier(slack=SlackChannel(token="xoxb-test-token", channel="#alerts"))
    assert run_channels(with_token, {"SLACK_CHANNEL": "#alerts"}) == ["chat"]


def test_a_tick_run_without_the_slack_token_sends_nothing_on_chat(
    defs, pg_url, tmp_path, monkeypatch
):
    monkeypatch.setenv("SLACK_CHANNEL", "#alerts")  # Slack is the sensor's (it has the token)
    with freeze_time(dt.datetime(2026, 11, 18, 17, 0, tzinfo=dt.UTC)):
        result = defs.resolve_job_def("us_bars_5min_job").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            tags=range_tags("2026-11-18-09:30", "2026-11-18-10:25"),
        )
    assert result.success
    assert not (tmp_path / "data" / "notifications.jsonl").exists()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM us.price_alerts").fetchone()[0] > 0
        ledger = conn.execute("SELECT to_regclass('us.price_alert_notifications')").fetchone()[0]
        if ledger is not None:
            assert (
                conn.execute("SELECT count(*) FROM us.price_alert_notifications").fetchone()[0] == 0
            )
