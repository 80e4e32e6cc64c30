"""Notifications end to end: a failed blocking check and a failed run, in process, reach a Slack
stand-in (pytest-httpserver speaking `chat.postMessage` with Slack's real bodies), an SMTP
stand-in (aiosmtpd on loopback) or `notifications.jsonl`; failed sends are kept and delivered
exactly once later; the token and the SMTP password never show up anywhere."""

import datetime as dt
import email
import email.policy
import email.utils
import json
import logging
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from pytest_httpserver import HTTPServer

from finance_assets.defs.common.partitions import RANGE_END_TAG, RANGE_START_TAG
from finance_assets.defs.ops.notifications import (
    RUN_NOTICE_TAG,
    RUN_PENDING_TAG,
    Notifier,
    SlackChannel,
    build_check_failure_sensor,
    build_notification_defs,
    build_run_failure_sensor,
    build_run_notice_retry_sensor,
    build_run_success_sensor,
    content,
    delivery,
    notifier_from_env,
)
from finance_assets.lib import notify, redaction
from finance_assets.lib.providers.http import RateLimited as ProviderRateLimited

TOKEN = "xoxb-4242-unit-test-SECRET-token"
PASSWORD = "smtp-pa55word-SECRET"
POST = "/api/chat.postMessage"
CHANNEL = "#data-alerts"
UI = "http://dagster.test:3000"
DAY = "2026-11-18"
ASSET = ["us", "tiny_bars"]
LONG_SAMPLE = "| symbol | ts |\n|---|---|\n" + "| AAPL | 2026-11-18T14:30:00Z |\n" * 200

DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01")


@dg.asset(
    key=ASSET,
    partitions_def=DAYS,
    check_specs=[
        dg.AssetCheckSpec(
            "timestamps_strictly_increasing",
            asset=ASSET,
            blocking=True,
            description="bar timestamps strictly increase per symbol",
        ),
        dg.AssetCheckSpec("volume_non_negative", asset=ASSET, blocking=True),
        dg.AssetCheckSpec("few_symbols", asset=ASSET),
    ],
)
def tiny_bars(context: dg.AssetExecutionContext) -> Iterator[Any]:
    """A partitioned asset whose blocking check fails (one duplicated bar), like bars_5min."""
    yield dg.Output(1)
    yield dg.AssetCheckResult(check_name="volume_non_negative", passed=True)
    yield dg.AssetCheckResult(
        check_name="few_symbols", passed=False, severity=dg.AssetCheckSeverity.WARN
    )
    yield dg.AssetCheckResult(
        check_name="timestamps_strictly_increasing",
        passed=False,
        metadata={"failing_rows": 1, "rows": 391, "sample": dg.MetadataValue.md(LONG_SAMPLE)},
    )


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def instance() -> Iterator[dg.DagsterInstance]:
    """A persistent (temp, run-sharded SQLite) instance with one failed run."""
    with dg.instance_for_test() as inst:
        result = dg.materialize([tiny_bars], instance=inst, partition_key=DAY, raise_on_error=False)
        assert not result.success
        yield inst


def _run(instance: dg.DagsterInstance, *, success: bool) -> dg.DagsterRun:
    status = dg.DagsterRunStatus.SUCCESS if success else dg.DagsterRunStatus.FAILURE
    (run,) = instance.get_runs(filters=dg.RunsFilter(statuses=[status]), limit=1)
    return run


@pytest.fixture
def failed_run(instance: dg.DagsterInstance) -> dg.DagsterRun:
    """The failed run, its notification tags reset (run-notice tests write them)."""
    run = _run(instance, success=False)
    instance.add_run_tags(run.run_id, {RUN_NOTICE_TAG: "", RUN_PENDING_TAG: "0"})
    return instance.get_run_by_id(run.run_id)


@pytest.fixture
def slack_bodies(samples: Path) -> dict[str, Any]:
    """Slack's own chat.postMessage bodies, read in place from the shared samples."""
    folder = samples / "slack"
    return {
        "ok": json.loads((folder / "slack_chat_postMessage_ok.json").read_text()),
        "channel_not_found": json.loads(
            (folder / "slack_chat_postMessage_error_channel_not_found.json").read_text()
        ),
    }


def _slack(base_url: str) -> SlackChannel:
    return SlackChannel(token=TOKEN, channel=CHANNEL, base_url=base_url, timeout_seconds=5)


@pytest.fixture
def notifier(httpserver: HTTPServer, tmp_path: Path) -> Notifier:
    return Notifier(
        slack=_slack(httpserver.url_for("/api/")),
        notifications_file=str(tmp_path / "notifications.jsonl"),
        ui_url=UI,
        timeout_seconds=5,
    )


def _with(notifier: Notifier, **changes: Any) -> Notifier:
    """The same notifier with other settings (a resource is immutable)."""
    return Notifier(**{**notifier.model_dump(), **changes})


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Inbox:
    """aiosmtpd handler keeping every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield inbox, controller.port
    finally:
        controller.stop()


def _posts(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [json.loads(req.get_data()) for req, _ in httpserver.log if req.path == POST]


def _tick(
    sensor: dg.SensorDefinition,
    instance: dg.DagsterInstance,
    notifier: Notifier,
    cursor: str | None = None,
) -> str | None:
    # A context manager: the notifier has a nested resource (its Slack leg) to set up.
    with dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        resources={"notifier": notifier},
        definitions=dg.Definitions(assets=[tiny_bars]),
    ) as context:
        result = sensor(context)
        assert isinstance(result, dg.SkipReason)  # notifications never request runs
        return context.cursor


@contextmanager
def _run_failure_context(
    instance: dg.DagsterInstance, run: dg.DagsterRun, notifier: Notifier
) -> Iterator[dg.RunFailureSensorContext]:
    (failure,) = instance.get_records_for_run(
        run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE
    ).records
    with dg.build_run_status_sensor_context(
        sensor_name="run_failure_notifications",
        dagster_event=failure.event_log_entry.dagster_event,
        dagster_instance=instance,
        dagster_run=run,
        resources={"notifier": notifier},
    ) as context:
        yield context.for_run_failure()


def _on_failure(instance: dg.DagsterInstance, run: dg.DagsterRun, notifier: Notifier) -> None:
    """One evaluation of the run-failure sensor for `run`."""
    with _run_failure_context(instance, run, notifier) as context:
        build_run_failure_sensor()(context)


# -- failed asset checks ----------------------------------------------------------------------


def test_failed_check_posts_one_message_then_nothing(instance, httpserver, slack_bodies, notifier):
    httpserver.expect_request(POST, method="POST").respond_with_json(slack_bodies["ok"])
    sensor = build_check_failure_sensor()
    cursor = _tick(sensor, instance, notifier)
    (body,) = _posts(httpserver)
    assert body["channel"] == CHANNEL
    text = body["text"]
    run = _run(instance, success=False)
    for expected in (
        "us/tiny_bars",
        DAY,
        "timestamps_strictly_increasing",
        "ERROR",
        "bar timestamps strictly increase per symbol",  # the check spec's description
        "*failing_rows:* 1",
        run.run_id,
        f"{UI}/assets/us/tiny_bars?view=checks",
        f"{UI}/runs/{run.run_id}",
    ):
        assert expected in text, expected
    assert "AAPL" in text and "more chars" in text  # the sample, truncated
    assert len(text) <= notify.MAX_TEXT_CHARS
    assert "volume_non_negative" not in text and "few_symbols" not in text  # passed / WARN
    (request, _) = httpserver.log[0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert cursor is not None and cursor.isdigit()  # nothing owed: the last storage id

    assert _tick(sensor, instance, notifier, cursor) == cursor
    assert len(_posts(httpserver)) == 1


def test_warnings_are_sent_only_when_configured(instance, httpserver, slack_bodies, notifier):
    httpserver.expect_request(POST, method="POST").respond_with_json(slack_bodies["ok"])
    _tick(build_check_failure_sensor(), instance, notifier)
    assert len(_posts(httpserver)) == 1
    with_warnings = _with(notifier, notify_check_warnings=True)
    _tick(build_check_failure_sensor(), instance, with_warnings)
    texts = [p["text"] for p in _posts(httpserver)[1:]]
    assert len(texts) == 2
    assert any("few_symbols" in t and "WARN" in t for t in texts)


def test_channel_not_found_is_kept_and_delivered_once_later(
    instance, httpserver, slack_bodies, notifier, capfd
):
    # Slack answers logical errors with HTTP 200 and ok: false.
    httpserver.expect_oneshot_request(POST, method="POST").respond_with_json(
        slack_bodies["channel_not_found"]
    )
    httpserver.expect_request(POST, method="POST").respond_with_json(slack_bodies["ok"])
    sensor = build_check_failure_sensor()
    cursor = _tick(sensor, instance, notifier)
    assert len(_posts(httpserver)) == 1
    assert "channel_not_found" in capfd.readouterr().err  # the sensor's log
    owed = json.loads(cursor)
    assert owed["pending"] == [{"id": owed["last"], "channels": ["chat"]}]

    cursor = _tick(sensor, instance, notifier, cursor)  # the channel is back
    posts = _posts(httpserver)
    assert len(posts) == 2 and posts[1]["text"] == posts[0]["text"]
    assert cursor == str(owed["last"])

    assert _tick(sensor, instance, notifier, cursor) == cursor
    assert len(_posts(httpserver)) == 2


def test_rate_limit_waits_for_retry_after(
    instance, httpserver, slack_bodies, notifier, monkeypatch
):
    httpserver.expect_oneshot_request(POST, method="POST").respond_with_json(
        {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "30"}
    )
    httpserver.expect_request(POST, method="POST").respond_with_json(slack_bodies["ok"])
    sensor = build_check_failure_sensor()
    now = delivery.now()
    monkeypatch.setattr(delivery, "now", lambda: now)
    cursor = _tick(sensor, instance, notifier)
    assert json.loads(cursor)["hold"]["chat"] == pytest.approx(now + 30, abs=1)

    cursor = _tick(sensor, instance, notifier, cursor)  # 10 s later: still waiting
    assert len(_posts(httpserver)) == 1 and json.loads(cursor)["pending"]

    monkeypatch.setattr(delivery, "now", lambda: now + 31)
    cursor = _tick(sensor, instance, notifier, cursor)
    assert len(_posts(httpserver)) == 2
    assert cursor.isdigit()


def test_slack_and_provider_rate_limits_are_one_type(httpserver, notifier):
    # Slack's 429 with an HTTP-date Retry-After: the project-wide RateLimited and parser
    # (lib/redaction.py), the same the market-data providers raise and use.
    when = email.utils.format_datetime(
        dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=90), usegmt=True
    )
    httpserver.expect_request(POST, method="POST").respond_with_json(
        {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": when}
    )
    notice = notify.run_success_notification(job_name="j", run_id="r", partition=None)
    with pytest.raises(redaction.RateLimited) as caught:
        notifier.send(notice, "chat")
    assert isinstance(caught.value, notify.SendError)
    assert 80 <= caught.value.retry_after <= 90
    assert issubclass(ProviderRateLimited, redaction.RateLimited)


def test_unreachable_slack_is_retried_after_a_restart(instance, httpserver, slack_bodies, notifier):
    down = _with(notifier, slack=_slack(f"http://127.0.0.1:{_free_port()}/api/"))
    sensor = build_check_failure_sensor()
    cursor = _tick(sensor, instance, down)
    assert json.loads(cursor)["pending"]
    httpserver.expect_request(POST, method="POST").respond_with_json(slack_bodies["ok"])
    # A new process with the same cursor (what a daemon restart sees).
    cursor = _tick(build_check_failure_sensor(), instance, notifier, cursor)
    assert len(_posts(httpserver)) == 1 and cursor.isdigit()


def test_first_start_does_not_replay_old_history(instance, httpserver, notifier, monkeypatch):
    monkeypatch.setattr(delivery, "now", lambda: time.time() + 3 * 86400)
    cursor = _tick(build_check_failure_sensor(), instance, notifier)
    assert not httpserver.log and cursor.isdigit()  # read, passed over, not owed


def test_runless_check_evaluations_are_notified_too(httpserver, slack_bodies, notifier):
    # Evaluations a sensor records (the calendar-aware freshness checks) belong to no run.
    httpserver.expect_request(POST, method="POST").respond_with_json(slack_bodies["ok"])
    with dg.instance_for_test() as inst:
        inst.report_runless_asset_event(
            dg.AssetCheckEvaluation(
                asset_key=dg.AssetKey(["uk", "bars_5min"]),
                check_name="fresh",
                passed=False,
                severity=dg.AssetCheckSeverity.ERROR,
                description="partition 2026-11-18-15:55 is missing: the feed has stalled",
                metadata={"expected_partition": "2026-11-18-15:55"},
            )
        )
        _tick(build_check_failure_sensor(), inst, notifier)
    (post,) = _posts(httpserver)
    assert "uk/bars_5min" in post["text"] and "the feed has stalled" in post["text"]
    assert "*run:* (none)" in post["text"] and "/runs/" not in post["text"]


# -- without a Slack token --------------------------------------------------------------------


def test_without_a_token_messages_go_to_the_log_and_jsonl(instance, failed_run, tmp_path, capfd):
    local = notifier_from_env({"FINANCE_DATA_DIR": str(tmp_path)})
    local = _with(local, **{"ui_url": UI})
    assert local.chat_backend == "file"
    _tick(build_check_failure_sensor(), instance, local)
    _on_failure(instance, failed_run, local)
    log = capfd.readouterr().err
    lines = (tmp_path / "notifications.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["kind"] for r in records] == ["check_failure", "run_failure"]
    check = records[0]
    assert check["fields"]["asset"] == "us/tiny_bars"
    assert check["fields"]["partition"] == DAY
    assert check["fields"]["check"] == "timestamps_strictly_increasing"
    assert check["links"]["asset in Dagster"] == f"{UI}/assets/us/tiny_bars?view=checks"
    assert records[1]["fields"]["run"] == failed_run.run_id
    assert "Check timestamps_strictly_increasing failed on us/tiny_bars" in log
    assert f"Run failed: {failed_run.job_name}" in log


# -- run status -------------------------------------------------------------------------------


def test_run_failure_reaches_slack_and_the_smtp_standin(
    instance, failed_run, httpserver, slack_bodies, notifier, smtp
):
    inbox, port = smtp
    httpserver.expect_request(POST, method="POST").respond_with_json(slack_bodies["ok"])
    mailer = _with(
        notifier,
        **{
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "smtp_from": "dagster@example.test",
            "email_to": "ops@example.test, quant@example.test",
        },
    )
    _on_failure(instance, failed_run, mailer)
    (mail,) = inbox.messages
    assert mail["To"] == "ops@example.test, quant@example.test"
    assert mail["Subject"].startswith("[finance_assets] Run failed:")
    body = mail.get_content()
    assert failed_run.run_id in body and DAY in body
    assert "us__tiny_bars" in body and "timestamps_strictly_increasing" in body
    assert f"{UI}/runs/{failed_run.run_id}" in body
    (post,) = _posts(httpserver)
    assert "Run failed" in post["text"] and failed_run.run_id in post["text"]
    tags = instance.get_run_by_id(failed_run.run_id).tags
    assert tags[RUN_PENDING_TAG] == "0"
    assert json.loads(tags[RUN_NOTICE_TAG])["sent"] == ["chat", "email"]


def test_undelivered_email_is_retried_without_reposting_to_slack(
    instance, failed_run, httpserver, slack_bodies, notifier, smtp
):
    inbox, port = smtp
    httpserver.expect_request(POST, method="POST").respond_with_json(slack_bodies["ok"])
    settings = {"smtp_host": "127.0.0.1", "smtp_starttls": False, "email_to": "ops@example.test"}
    down = _with(notifier, **{**settings, "smtp_port": _free_port()})
    _on_failure(instance, failed_run, down)
    tags = instance.get_run_by_id(failed_run.run_id).tags
    assert tags[RUN_PENDING_TAG] == "1" and len(_posts(httpserver)) == 1

    up = _with(notifier, **{**settings, "smtp_port": port})
    retries = build_run_notice_retry_sensor()
    cursor = _tick(retries, instance, up)
    assert len(inbox.messages) == 1 and len(_posts(httpserver)) == 1
    assert instance.get_run_by_id(failed_run.run_id).tags[RUN_PENDING_TAG] == "0"
    _tick(retries, instance, up, cursor)
    assert len(inbox.messages) == 1 and len(_posts(httpserver)) == 1


def test_run_success_notice(instance, tmp_path):
    local = Notifier(notifications_file=str(tmp_path / "n.jsonl"), ui_url=UI)
    # A stored successful run is all the sensor reads (no need to execute one).
    run = dg.DagsterRun(
        job_name="us_daily",
        run_id="5ucce55",
        status=dg.DagsterRunStatus.SUCCESS,
        tags={content.PARTITION_TAG: DAY},
    )
    instance.add_run(run)
    with dg.build_run_status_sensor_context(
        sensor_name="run_success_notifications",
        dagster_event=dg.DagsterEvent(dg.DagsterEventType.RUN_SUCCESS.value, job_name="us_daily"),
        dagster_instance=instance,
        dagster_run=run,
        resources={"notifier": local},
    ) as context:
        build_run_success_sensor()(context)
    (record,) = [json.loads(line) for line in (tmp_path / "n.jsonl").read_text().splitlines()]
    assert record["kind"] == "run_success" and record["fields"]["run"] == run.run_id
    assert record["title"] == f"Run succeeded: us_daily [{DAY}]"
    assert json.loads(instance.get_run_by_id(run.run_id).tags[RUN_NOTICE_TAG])["sent"] == ["chat"]


# -- secrets ----------------------------------------------------------------------------------


def test_secrets_never_appear_in_logs_files_errors_or_cursors(
    instance, failed_run, httpserver, notifier, tmp_path, caplog, capfd
):
    seen_passwords = []

    def reject(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        seen_passwords.append(auth_data.password.decode())
        return AuthResult(success=False, handled=False)

    controller = Controller(
        Inbox(),
        hostname="127.0.0.1",
        port=_free_port(),
        authenticator=reject,
        auth_require_tls=False,
    )
    controller.start()
    try:
        # Every failure a sender can meet: ok:false, rate limit, a proxy's HTML 502, refused login.
        httpserver.expect_oneshot_request(POST).respond_with_json(
            {"ok": False, "error": "invalid_auth"}
        )
        httpserver.expect_oneshot_request(POST).respond_with_json(
            {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "0"}
        )
        httpserver.expect_request(POST).respond_with_data(
            f"<html>bad gateway for {TOKEN}</html>", status=502, content_type="text/html"
        )
        secret = _with(
            notifier,
            **{
                "smtp_host": "127.0.0.1",
                "smtp_port": controller.port,
                "smtp_starttls": False,
                "smtp_username": "dagster",
                "smtp_password": PASSWORD,
                "email_to": "ops@example.test",
            },
        )
        outputs: list[str] = [repr(secret), str(secret)]
        errors: list[str] = []
        sensor = build_check_failure_sensor()
        with caplog.at_level(logging.DEBUG):
            cursor = None
            for _ in range(3):
                cursor = _tick(sensor, instance, secret, cursor)
                outputs.append(cursor or "")
            _on_failure(instance, failed_run, secret)
            outputs.append(_tick(build_run_notice_retry_sensor(), instance, secret) or "")
            for channel in ("chat", "email"):
                with pytest.raises(notify.SendError) as err:
                    secret.send(
                        notify.run_success_notification(job_name="j", run_id="r", partition=None),
                        channel,
                    )
                errors += [str(err.value), repr(err.value), err.value.reason]
    finally:
        controller.stop()

    # The secrets were really used: the test would see them if anything leaked them.
    assert all(r.headers["Authorization"] == f"Bearer {TOKEN}" for r, _ in httpserver.log)
    assert seen_passwords and set(seen_passwords) == {PASSWORD}
    assert any("invalid_auth" in e for e in caplog.messages)
    assert any("SMTPAuthenticationError" in e for e in errors)
    captured = capfd.readouterr()
    outputs += [caplog.text, captured.out, captured.err, *errors]
    outputs += [json.dumps(instance.get_run_by_id(failed_run.run_id).tags)]
    outputs += [p.read_text() for p in tmp_path.rglob("*.jsonl")]
    for text in outputs:
        assert TOKEN not in text and PASSWORD not in text


# -- configuration ----------------------------------------------------------------------------


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    env = {
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_CHANNEL": CHANNEL,
        "SLACK_API_URL": "http://127.0.0.1:9/api/",
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": "2525",
        "SMTP_PASSWORD": PASSWORD,
        "NOTIFY_EMAIL_TO": "ops@example.test",
        "SMTP_STARTTLS": "0",
        "DAGSTER_UI_URL": UI,
        "NOTIFY_ON_SUCCESS": "1",
        "FINANCE_DATA_DIR": str(tmp_path),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    defs = build_notification_defs(env)
    dg.Definitions.validate_loadable(dg.Definitions.merge(defs, dg.Definitions(assets=[tiny_bars])))
    sensors = {s.name: s for s in defs.sensors}
    assert set(sensors) == {
        "check_failure_notifications",
        "run_failure_notifications",
        "run_success_notifications",
        "run_notification_retries",
    }
    assert sensors["run_success_notifications"].default_status == dg.DefaultSensorStatus.RUNNING
    # Secrets stay EnvVars in the definitions (the UI shows names); values resolve at run time.
    raw = defs.resources["notifier"]
    assert TOKEN not in repr(raw) and PASSWORD not in repr(raw)
    with dg.build_resources({"notifier": raw}) as resources:
        resolved = resources.notifier
    assert resolved.slack.token == TOKEN and resolved.smtp_port == 2525
    assert resolved.slack.base_url == "http://127.0.0.1:9/api/"
    assert resolved.channels("run_failure") == ["chat", "email"]
    assert not resolved.smtp_starttls and resolved.ui_url == UI

    quiet = build_notification_defs({"FINANCE_DATA_DIR": str(tmp_path)})
    (success,) = [s for s in quiet.sensors if s.name == "run_success_notifications"]
    assert success.default_status == dg.DefaultSensorStatus.STOPPED
    with pytest.raises(ValueError, match="SLACK_CHANNEL"):
        notifier_from_env({"SLACK_BOT_TOKEN": TOKEN})
    with pytest.raises(ValueError, match="NOTIFY_EMAIL_TO"):
        notifier_from_env({"SMTP_HOST": "mail"})
    with pytest.raises(ValueError, match="SMTP_PORT='smtp' is not a port number"):
        notifier_from_env({"SMTP_PORT": "smtp"})
    with pytest.raises(ValueError, match="NOTIFY_ON_SUCCESS='maybe' is not a boolean"):
        build_notification_defs({"NOTIFY_ON_SUCCESS": "maybe"})


def test_message_format_escapes_and_truncates():
    message = notify.check_failure_notification(
        asset_path=["uk", "bars 5min"],
        check_name="ohlc_consistent",
        severity="ERROR",
        partition="2026-11-16-08:00 … 2026-11-20-16:25",
        description="low <= open & close <= high",
        metadata={"quarantine_rate": 0.31, "sample": "x" * 5000, "extra": {"a": 1}},
        run_id=None,
        ui_url=UI + "/",
    )
    text = message.slack_text()
    assert "low &lt;= open &amp; close &lt;= high" in text
    assert f"<{UI}/assets/uk/bars%205min?view=checks|asset in Dagster>" in text
    assert "*quarantine_rate:* 0.31" in text and '*extra:* {"a": 1}' in text
    assert len(text) < 2000 and "more chars" in text
    assert "2026-11-16-08:00 … 2026-11-20-16:25" in message.title
    ranged = dg.DagsterRun(
        job_name="backfill",
        run_id="r1",
        tags={RANGE_START_TAG: "2026-11-16-09:30", RANGE_END_TAG: "2026-11-20-15:55"},
    )
    assert content.run_partition(ranged) == "2026-11-16-09:30 … 2026-11-20-15:55"
    leaky = notify.run_failure_notification(
        job_name="j",
        run_id="r",
        partition=None,
        message=f"connect to postgresql://u:{PASSWORD}@db/x failed",
        step_errors=[("s", f"token {TOKEN} refused")],
    )
    assert PASSWORD not in leaky.redacted([]).plain_text()
    assert TOKEN not in leaky.redacted([]).slack_text()
    # One redaction for the whole project (lib/redaction.py), one marker: ***.
    assert redaction.redact(f"postgresql://u:pw-{PASSWORD}@db/x {TOKEN}", [PASSWORD]) == (
        "postgresql://u:***@db/x ***"
    )
