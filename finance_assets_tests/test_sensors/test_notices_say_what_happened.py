"""Notices that say what happened: a failure notice carries the provider's own error, not the
retry wrapper; success goes by e-mail too where e-mail is configured; price alerts reach a
webhook (a stand-in on loopback) as signed JSON, once per alert, retried until delivered."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import dagster as dg
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from finance_assets.defs.ops.notifications import Notifier, build_run_success_sensor, content
from finance_assets.defs.ops.notifications.settings import notifier_from_env
from finance_assets.defs.warehouse.alerts import notify_new_alerts
from finance_assets.lib import notify
from finance_assets_tests.test_sensors.test_notifications import smtp  # noqa: F401
from finance_assets_tests.test_sensors.test_price_alert_notifications import (  # noqa: F401
    NOW,
    alerts,
)

SECRET = "whsec-unit-test-SECRET"
HOOK = "/hooks/price-alerts"


def _hook_requests(server: HTTPServer) -> list[Any]:
    return [request for request, _ in server.log if request.path == HOOK]


def test_price_alerts_reach_the_webhook_signed_once_each(pg_url, us, alerts, httpserver, tmp_path):  # noqa: F811
    httpserver.expect_request(HOOK, method="POST").respond_with_data("", status=204)
    notifier = Notifier(
        notifications_file=str(tmp_path / "notifications.jsonl"),
        webhook_url=httpserver.url_for(HOOK),
        webhook_secret=SECRET,
    )
    # Two fresh alerts on two channels; the stale one skipped on both.
    assert notify_new_alerts(pg_url, us, notifier, NOW) == {"sent": 4, "skipped": 2, "failed": 0}
    received = _hook_requests(httpserver)
    assert len(received) == 2
    bodies = []
    for request in received:
        body = request.get_data()
        timestamp = request.headers[notify.TIMESTAMP_HEADER]
        expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
        assert request.headers[notify.SIGNATURE_HEADER] == f"sha256={expected.hexdigest()}"
        assert request.headers["Content-Type"] == "application/json"
        bodies.append(json.loads(body))
    aapl = next(b for b in bodies if b["data"]["symbol"] == "AAPL")
    assert aapl["kind"] == "price_alert"
    assert aapl["data"]["change_pct"] == pytest.approx(1.2)
    assert aapl["data"]["price"] == pytest.approx(101.2) and aapl["data"]["direction"] == "up"
    assert aapl["data"]["id"].startswith("us:AAPL:") and aapl["data"]["id"].endswith(
        ":vs_prev_close"
    )
    # A re-run rewrites the same alerts: nothing is posted again, on either channel.
    alerts()
    assert notify_new_alerts(pg_url, us, notifier, NOW)["sent"] == 0
    assert len(_hook_requests(httpserver)) == 2


def test_a_webhook_that_fails_is_retried_alone_until_delivered(
    pg_url,
    us,
    alerts,  # noqa: F811
    httpserver,
    tmp_path,
):
    httpserver.expect_ordered_request(HOOK, method="POST").respond_with_response(
        Response("upstream down", status=503)
    )
    httpserver.expect_ordered_request(HOOK, method="POST").respond_with_response(
        Response("upstream down", status=503)
    )
    notifier = Notifier(
        notifications_file=str(tmp_path / "notifications.jsonl"),
        webhook_url=httpserver.url_for(HOOK),
    )
    first = notify_new_alerts(pg_url, us, notifier, NOW)
    assert first == {"sent": 2, "skipped": 2, "failed": 2}  # chat sent, the webhook failed
    httpserver.expect_request(HOOK, method="POST").respond_with_data("ok")
    second = notify_new_alerts(pg_url, us, notifier, NOW)
    assert second == {"sent": 2, "skipped": 0, "failed": 0}  # the webhook only: chat had them
    chat = (tmp_path / "notifications.jsonl").read_text().splitlines()
    assert len(chat) == 2
    delivered = [r for r, answer in httpserver.log if r.path == HOOK and answer.status_code == 200]
    assert len(delivered) == 2
    # No signature without a secret; the bodies still carry the alerts' data.
    assert notify.SIGNATURE_HEADER not in delivered[0].headers
    assert {json.loads(r.get_data())["data"]["symbol"] for r in delivered} == {"AAPL", "MSFT"}


def test_webhook_settings_are_checked_and_never_shown(monkeypatch, tmp_path):
    env = {"FINANCE_DATA_DIR": str(tmp_path), "PRICE_ALERT_WEBHOOK_URL": "ftp://x.test/hook"}
    with pytest.raises(ValueError, match="PRICE_ALERT_WEBHOOK_URL is not an http"):
        notifier_from_env(env)
    with pytest.raises(ValueError, match="PRICE_ALERT_WEBHOOK_SECRET is set but"):
        notifier_from_env({"FINANCE_DATA_DIR": str(tmp_path), "PRICE_ALERT_WEBHOOK_SECRET": "x"})
    url = "https://hooks.example.test/T000/B000/tok3n-in-the-url"
    monkeypatch.setenv("PRICE_ALERT_WEBHOOK_URL", url)
    monkeypatch.setenv("PRICE_ALERT_WEBHOOK_SECRET", SECRET)
    resource = notifier_from_env(
        {
            "FINANCE_DATA_DIR": str(tmp_path),
            "PRICE_ALERT_WEBHOOK_URL": url,
            "PRICE_ALERT_WEBHOOK_SECRET": SECRET,
        }
    )
    with dg.build_resources({"notifier": resource}) as built:
        live = built.notifier
        assert live.channels("price_alert") == ["chat", "webhook"]
        assert url not in repr(live) and SECRET not in repr(live)
        assert url not in live.redact(f"POST {url} failed") and SECRET not in live.redact(SECRET)


@dg.asset(retry_policy=dg.RetryPolicy(max_retries=2, delay=0))
def quotes_of_a_delisted_symbol() -> None:
    raise ValueError("Alpha Vantage: Invalid API call for symbol ZZZZ (symbol not found)")


def test_a_failure_notice_carries_the_providers_error_not_the_retry_wrapper(tmp_path):
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [quotes_of_a_delisted_symbol], instance=instance, raise_on_error=False
        )
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        notifier = Notifier(notifications_file=str(tmp_path / "n.jsonl"))
        notice = content.run_notification(instance, run, "run_failure", notifier)
    text = notice.plain_text()
    assert "Invalid API call for symbol ZZZZ (symbol not found)" in text


def test_success_goes_by_email_where_email_is_configured(tmp_path, smtp):  # noqa: F811
    inbox, port = smtp
    notifier = Notifier(
        notifications_file=str(tmp_path / "n.jsonl"),
        smtp_host="127.0.0.1",
        smtp_port=port,
        smtp_starttls=False,
        email_to="ops@example.test",
    )
    with dg.instance_for_test() as instance:
        run = dg.DagsterRun(
            job_name="us_daily_job", run_id="5ucce55e", status=dg.DagsterRunStatus.SUCCESS
        )
        instance.add_run(run)
        with dg.build_run_status_sensor_context(
            sensor_name="run_success_notifications",
            dagster_event=dg.DagsterEvent(
                dg.DagsterEventType.RUN_SUCCESS.value, job_name="us_daily_job"
            ),
            dagster_instance=instance,
            dagster_run=run,
            resources={"notifier": notifier},
        ) as context:
            build_run_success_sensor()(context)
    (mail,) = inbox.messages
    assert mail["Subject"] == "[finance_assets] Run succeeded: us_daily_job"
    assert "5ucce55e" in mail.get_content()
