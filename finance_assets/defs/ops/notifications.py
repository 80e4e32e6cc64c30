"""Notifications: failed asset checks and run status, to Slack (or a local file) and e-mail.

- `check_failure_notifications` reads new asset-check evaluations from the instance's event
  log by storage id and posts one message per failed check (ERROR; WARN when configured).
  Its cursor advances past every event read, and whatever could not be delivered stays in the
  cursor's pending list until a later tick delivers it: nothing is missed, nothing sent twice.
- `run_failure_notifications` (and `run_success_notifications`, off unless NOTIFY_ON_SUCCESS)
  post a notice per finished run to the chat channel, and failures also by e-mail. Dagster
  advances a run-status sensor's cursor even when its function fails, so delivery state is kept
  on the run itself (tags `finance/notify*`) and `run_notification_retries` re-sends what is owed.

Open-source Dagster has no alert for failed checks, and dagster-slack's resource and
run-failure sensor take neither a base URL (for a Slack proxy or a stand-in) nor an EnvVar
token, so Slack is reached through slack_sdk directly (`lib/notify.py`).
"""

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from finance_assets.defs.market.partitions import RANGE_END_TAG, RANGE_START_TAG
from finance_assets.lib import notify
from finance_assets.lib.notify import Notification, SendError

CHAT, EMAIL = "chat", "email"
# Which logical channels each kind of notice goes to. A failed blocking check also fails its
# run, and the run's failure notice is what goes by e-mail: one mail per incident, not two.
ROUTES: Mapping[str, tuple[str, ...]] = {
    "check_failure": (CHAT,),
    "run_failure": (CHAT, EMAIL),
    "run_success": (CHAT,),
}
RUN_NOTICE_TAG = "finance/notify"
RUN_PENDING_TAG = "finance/notify_pending"
PARTITION_TAG = "dagster/partition"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def _now() -> float:
    # One clock for every sensor here, so tests can move time forward.
    return time.time()


class Notifier(dg.ConfigurableResource):
    """Where notifications go: Slack (with a bot token) or, without one, the Dagster log plus
    `notifications.jsonl`; and e-mail over SMTP when a host and recipients are configured."""

    slack_bot_token: str | None = None
    slack_channel: str | None = None
    slack_api_url: str = notify.SLACK_API_URL
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_from: str | None = None
    email_to: str | None = None  # comma-separated
    smtp_starttls: bool = True
    notifications_file: str = "data/notifications.jsonl"
    ui_url: str = notify.DEFAULT_UI_URL
    notify_check_warnings: bool = False
    timeout_seconds: float = 10.0

    def __repr_args__(self) -> Any:
        # pydantic's repr would print the token and the password wherever the resource is shown.
        for name, value in super().__repr_args__():
            secret = name in ("slack_bot_token", "smtp_password") and value
            yield name, (notify.REDACTED if secret else value)

    @property
    def chat_backend(self) -> str:
        return "slack" if self.slack_bot_token else "file"

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host and self.recipients)

    @property
    def recipients(self) -> list[str]:
        return [a.strip() for a in (self.email_to or "").split(",") if a.strip()]

    def channels(self, kind: str) -> list[str]:
        """The configured channels a notice of this kind goes to."""
        return [c for c in ROUTES[kind] if c == CHAT or (c == EMAIL and self.email_enabled)]

    def redact(self, text: str) -> str:
        return notify.redact(text, [self.slack_bot_token, self.smtp_password])

    def send(self, notification: Notification, channel: str, log: Any = None) -> None:
        """Delivers on one channel or raises `SendError` with a message free of secrets."""
        # Messages quote check metadata and step errors: mask secrets at this one choke point.
        notification = notification.redacted([self.slack_bot_token, self.smtp_password])
        try:
            if channel == CHAT and self.chat_backend == "file":
                # The local stand-in for Slack: the same message, in the log and in a file.
                if log is not None:
                    log.info(f"notification ({notification.kind}):\n{notification.plain_text()}")
                notify.FileSender(self.notifications_file).send(notification)
            elif channel == CHAT:
                notify.SlackSender(
                    self.slack_bot_token or "",
                    self.slack_channel or "",
                    base_url=self.slack_api_url or notify.SLACK_API_URL,
                    timeout=self.timeout_seconds,
                ).send(notification)
            elif channel == EMAIL:
                notify.SmtpSender(
                    self.smtp_host or "",
                    self.smtp_port,
                    sender=self.smtp_from or self.smtp_username or "finance-assets@localhost",
                    recipients=self.recipients,
                    username=self.smtp_username,
                    password=self.smtp_password,
                    starttls=self.smtp_starttls,
                    timeout=self.timeout_seconds,
                ).send(notification)
            else:
                raise ValueError(f"unknown notification channel {channel!r}")
        except SendError as err:
            err.args = (self.redact(str(err)),)
            err.reason = self.redact(err.reason)
            raise
        except Exception as err:
            # A bug or a misconfiguration must not cost the notice: report it like a failed send.
            raise SendError(channel, self.redact(f"{type(err).__name__}: {err}")) from None


def _env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    value = environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (1/0, true/false)")


def notifier_from_env(environ: Mapping[str, str] | None = None) -> Notifier:
    """The notifier of this environment. Settings are `dg.EnvVar`s, so the UI shows variable
    names, never values; unset variables keep the local defaults (log + notifications.jsonl)."""
    environ = os.environ if environ is None else environ

    def env(name: str) -> str | None:
        return dg.EnvVar(name) if environ.get(name) else None

    if environ.get("SLACK_BOT_TOKEN") and not environ.get("SLACK_CHANNEL"):
        raise ValueError("SLACK_BOT_TOKEN is set but SLACK_CHANNEL is not (the channel to post to)")
    if environ.get("SMTP_HOST") and not environ.get("NOTIFY_EMAIL_TO"):
        raise ValueError("SMTP_HOST is set but NOTIFY_EMAIL_TO is not (comma-separated addresses)")
    port = environ.get("SMTP_PORT")
    if port and not port.strip().isdigit():
        raise ValueError(f"SMTP_PORT={port!r} is not a port number")
    data_dir = environ.get("FINANCE_DATA_DIR", "data")
    return Notifier(
        slack_bot_token=env("SLACK_BOT_TOKEN"),
        slack_channel=env("SLACK_CHANNEL"),
        slack_api_url=env("SLACK_API_URL") or notify.SLACK_API_URL,
        smtp_host=env("SMTP_HOST"),
        smtp_port=dg.EnvVar.int("SMTP_PORT") if port else 587,
        smtp_username=env("SMTP_USERNAME"),
        smtp_password=env("SMTP_PASSWORD"),
        smtp_from=env("SMTP_FROM"),
        email_to=env("NOTIFY_EMAIL_TO"),
        smtp_starttls=_env_bool(environ, "SMTP_STARTTLS", True),
        notifications_file=str(Path(data_dir) / "notifications.jsonl"),
        ui_url=env("DAGSTER_UI_URL") or notify.DEFAULT_UI_URL,
        notify_check_warnings=_env_bool(environ, "NOTIFY_CHECK_WARN", False),
    )


# -- delivery within one tick -----------------------------------------------------------------


class _Tick:
    """Sends for one sensor tick. A channel that fails once is not tried again in the same
    tick (one timeout per tick, not one per message), and a 429's Retry-After is honoured."""

    def __init__(self, notifier: Notifier, log: Any, hold: dict[str, float]) -> None:
        self.notifier, self.log, self.hold = notifier, log, hold
        now = _now()
        self.down = {ch: f"waiting until {until:.0f}" for ch, until in hold.items() if until > now}
        self.sent = 0
        self.errors: list[str] = []

    def deliver(self, notification: Notification, channels: Sequence[str]) -> list[str]:
        """Sends on each channel; returns the channels it could not deliver on."""
        undelivered = []
        for channel in channels:
            if channel in self.down:
                undelivered.append(channel)
                continue
            try:
                self.notifier.send(notification, channel, self.log)
            except SendError as err:
                self.down[channel] = err.reason
                if err.retry_after is not None:
                    self.hold[channel] = _now() + err.retry_after
                self.errors.append(str(err))
                self.log.error(
                    f"notification not delivered, kept for a later tick: {err} "
                    f"({notification.title})"
                )
                undelivered.append(channel)
            else:
                self.sent += 1
                self.log.info(f"notification sent ({channel}): {notification.title}")
        return undelivered

    def live_hold(self) -> dict[str, float]:
        now = _now()
        return {ch: round(until, 3) for ch, until in self.hold.items() if until > now}


# -- failed asset checks ----------------------------------------------------------------------


@dataclass
class _CheckCursor:
    """`last`: the last storage id read. `pending`: events read but not yet delivered on every
    channel (`{"id", "channels"}`). `hold`: channel -> time before which not to try (429).
    `since`: on a first start, events older than this are passed over (no flood of history)."""

    last: int = -1
    pending: list[dict[str, Any]] = field(default_factory=list)
    hold: dict[str, float] = field(default_factory=dict)
    since: float | None = None

    @classmethod
    def parse(cls, raw: str | None, lookback_seconds: float) -> "_CheckCursor":
        if not raw or not raw.strip():
            return cls(since=_now() - lookback_seconds)
        raw = raw.strip()
        if raw.lstrip("-").isdigit():
            return cls(last=int(raw))
        try:
            data = json.loads(raw)
            return cls(
                last=int(data["last"]),
                pending=[
                    {"id": int(p["id"]), "channels": [str(c) for c in p["channels"]]}
                    for p in data.get("pending", [])
                ],
                hold={str(k): float(v) for k, v in data.get("hold", {}).items()},
                since=None if data.get("since") is None else float(data["since"]),
            )
        except (ValueError, KeyError, TypeError):
            # Starting over would re-send or skip notices: refuse, visibly.
            raise ValueError(f"unreadable cursor {raw[:200]!r}") from None

    def dump(self, hold: dict[str, float]) -> str:
        """The plain storage id when nothing is owed, else a small JSON document."""
        if not self.pending and not hold and self.since is None:
            return str(self.last)
        data: dict[str, Any] = {"last": self.last, "pending": self.pending}
        if hold:
            data["hold"] = hold
        if self.since is not None:
            data["since"] = self.since
        return json.dumps(data, separators=(",", ":"))


def _plain(value: Any) -> Any:
    """A metadata value as text or JSON-able data (markdown samples stay markdown, a table
    sample becomes one line per row)."""
    if isinstance(value, dg.TableMetadataValue):
        names = [column.name for column in value.schema.columns]
        rows = [" | ".join(str(record.data.get(n)) for n in names) for record in value.records]
        return "\n".join([" | ".join(names), *rows])
    inner = getattr(value, "value", value)
    if isinstance(inner, (str, int, float, bool)) or inner is None:
        return inner
    if isinstance(inner, (dict, list, tuple)):
        return inner
    return str(inner)


def _run_partition(run: dg.DagsterRun | None) -> str | None:
    if run is None:
        return None
    tags = run.tags
    if tags.get(PARTITION_TAG):
        return tags[PARTITION_TAG]
    start, end = tags.get(RANGE_START_TAG), tags.get(RANGE_END_TAG)
    if start and end:
        return start if start == end else f"{start} … {end}"
    return None


def _spec_description(context: dg.SensorEvaluationContext, key: dg.AssetCheckKey) -> str | None:
    # The check's own description lives in its spec, in the code location, not in the event.
    try:
        repo = context.repository_def
        if repo is None or key not in repo.asset_graph.asset_check_keys:
            return None
        return repo.asset_graph.get_check_spec(key).description
    except Exception:
        return None


class _RunCache:
    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance = instance
        self._runs: dict[str, dg.DagsterRun | None] = {}

    def get(self, run_id: str) -> dg.DagsterRun | None:
        if run_id not in self._runs:
            self._runs[run_id] = self.instance.get_run_by_id(run_id)
        return self._runs[run_id]


def _check_notification(
    context: dg.SensorEvaluationContext,
    entry: dg.EventLogEntry,
    runs: _RunCache,
    ui_url: str,
) -> Notification:
    evaluation = entry.dagster_event.asset_check_evaluation_data
    key = dg.AssetCheckKey(evaluation.asset_key, evaluation.check_name)
    run_id = entry.run_id or None
    try:
        partition = evaluation.partition or _run_partition(runs.get(run_id) if run_id else None)
        metadata = {k: _plain(v) for k, v in evaluation.metadata.items()}
        description = evaluation.description or _spec_description(context, key)
    except Exception as err:
        # Whatever goes wrong while enriching, the notice itself still goes out.
        context.log.warning(f"could not read details of {key.to_user_string()}: {err}")
        partition, metadata, description = evaluation.partition, {}, evaluation.description
    return notify.check_failure_notification(
        asset_path=evaluation.asset_key.path,
        check_name=evaluation.check_name,
        severity=evaluation.severity.value,
        partition=partition,
        description=description,
        metadata=metadata,
        run_id=run_id,
        ui_url=ui_url,
    )


def _wanted(entry: dg.EventLogEntry, include_warnings: bool) -> bool:
    evaluation = entry.dagster_event.asset_check_evaluation_data
    if evaluation.passed:
        return False
    severity = evaluation.severity
    return severity == dg.AssetCheckSeverity.ERROR or (
        include_warnings and severity == dg.AssetCheckSeverity.WARN
    )


def build_check_failure_sensor(
    name: str = "check_failure_notifications",
    *,
    minimum_interval_seconds: int = 30,
    batch_size: int = 200,
    max_pending: int = 200,
    initial_lookback_hours: float = 24.0,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """A sensor posting one message per failed asset check (ERROR, and WARN when the notifier
    says so), at least once and never twice, whatever the channel answers.

    On its very first tick it looks back `initial_lookback_hours` only. With `max_pending`
    notices owed it stops reading new events (the cursor stays) until the channel is back.
    """
    event_type = dg.DagsterEventType.ASSET_CHECK_EVALUATION

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Posts a message for every failed asset check (severity ERROR; WARN with "
            "NOTIFY_CHECK_WARN=1): asset, partition, check, metadata, run and a link. Cursor: "
            "the last event storage id, plus the notices still owed when a send failed."
        ),
    )
    def _check_failures(context: dg.SensorEvaluationContext, notifier: Notifier) -> dg.SkipReason:
        state = _CheckCursor.parse(context.cursor, initial_lookback_hours * 3600)
        storage = context.instance.event_log_storage
        tick = _Tick(notifier, context.log, dict(state.hold))
        runs = _RunCache(context.instance)
        configured = set(notifier.channels("check_failure"))

        # Notices owed from earlier ticks first, in the order their events happened.
        still_pending = []
        for item in state.pending:
            channels = [c for c in item["channels"] if c in configured]
            found = storage.get_logs_for_all_runs_by_log_id(
                after_cursor=item["id"] - 1, dagster_event_type=event_type, limit=1
            )
            entry = found.get(item["id"])
            if entry is None or not channels:
                context.log.warning(
                    f"dropping owed notice for event {item['id']}: "
                    + ("its run was deleted" if entry is None else "its channel is gone")
                )
                continue
            undelivered = tick.deliver(
                _check_notification(context, entry, runs, notifier.ui_url), channels
            )
            if undelivered:
                still_pending.append({"id": item["id"], "channels": undelivered})
        state.pending = still_pending

        read = 0
        if len(state.pending) < max_pending:
            # The index of the event log (global storage ids) also on run-sharded SQLite, where
            # `get_event_records` with an integer cursor is refused.
            events = storage.get_logs_for_all_runs_by_log_id(
                after_cursor=state.last, dagster_event_type=event_type, limit=batch_size
            )
            for storage_id in sorted(events):
                if len(state.pending) >= max_pending:
                    break
                entry = events[storage_id]
                state.last, read = storage_id, read + 1
                if state.since is not None and entry.timestamp < state.since:
                    continue
                if not _wanted(entry, notifier.notify_check_warnings):
                    continue
                notification = _check_notification(context, entry, runs, notifier.ui_url)
                undelivered = tick.deliver(notification, notifier.channels("check_failure"))
                if undelivered:
                    state.pending.append({"id": storage_id, "channels": undelivered})
            if len(events) < batch_size:
                state.since = None  # caught up with the history of a first start
        if len(state.pending) >= max_pending:
            context.log.error(f"{len(state.pending)} notices owed; not reading new events")

        context.update_cursor(state.dump(tick.live_hold()))
        return dg.SkipReason(
            f"read {read} check evaluation(s), sent {tick.sent} message(s), "
            f"{len(state.pending)} owed"
            + (f"; errors: {'; '.join(tick.errors)}" if tick.errors else "")
        )

    return _check_failures


# -- run status -------------------------------------------------------------------------------


def _run_state(run: dg.DagsterRun) -> dict[str, Any] | None:
    """This run's delivery state, or None. Re-executions copy their parent's tags: a state that
    names another run is the parent's, not this run's."""
    try:
        state = json.loads(run.tags.get(RUN_NOTICE_TAG, ""))
    except ValueError:
        return None
    return state if isinstance(state, dict) and state.get("run") == run.run_id else None


def _step_errors(instance: dg.DagsterInstance, run_id: str) -> tuple[str | None, list]:
    records = instance.get_records_for_run(
        run_id,
        of_type={dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.STEP_FAILURE},
        limit=50,
    ).records
    message, steps = None, []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.RUN_FAILURE:
            message = event.message
        else:
            error = event.step_failure_data.error
            steps.append((event.step_key or "?", error.message if error else event.message or ""))
    return message, steps


def _run_notification(
    instance: dg.DagsterInstance, run: dg.DagsterRun, kind: str, notifier: Notifier
) -> Notification:
    partition = _run_partition(run)
    if kind == "run_failure":
        try:
            message, steps = _step_errors(instance, run.run_id)
        except Exception as err:
            # Without the step errors the notice still goes out: the link leads to them.
            message, steps = f"(could not read the run's errors: {type(err).__name__})", []
        return notify.run_failure_notification(
            job_name=run.job_name,
            run_id=run.run_id,
            partition=partition,
            message=notifier.redact(message or ""),
            step_errors=[(step, notifier.redact(error)) for step, error in steps],
            ui_url=notifier.ui_url,
        )
    duration = None
    try:
        record = instance.get_run_record_by_id(run.run_id)
        if record is not None and record.start_time and record.end_time:
            duration = record.end_time - record.start_time
    except Exception:
        pass  # the duration is a nicety
    return notify.run_success_notification(
        job_name=run.job_name,
        run_id=run.run_id,
        partition=partition,
        duration_seconds=duration,
        ui_url=notifier.ui_url,
    )


def _notify_run(
    instance: dg.DagsterInstance, run: dg.DagsterRun, kind: str, notifier: Notifier, tick: _Tick
) -> list[str]:
    """Sends what this run is still owed and records it on the run; returns what is owed."""
    state = _run_state(run) or {"run": run.run_id, "kind": kind, "sent": [], "pending": []}
    todo = [c for c in notifier.channels(kind) if c not in state["sent"]]
    notification = _run_notification(instance, run, kind, notifier)
    undelivered = tick.deliver(notification, todo)
    state.update(
        kind=kind,
        sent=sorted(set(state["sent"]) | (set(todo) - set(undelivered))),
        pending=undelivered,
    )
    instance.add_run_tags(
        run.run_id,
        {
            RUN_NOTICE_TAG: json.dumps(state, separators=(",", ":")),
            RUN_PENDING_TAG: "1" if undelivered else "0",
        },
    )
    return undelivered


def build_run_failure_sensor(
    name: str = "run_failure_notifications",
    *,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """A notice per failed run of this code location, to the chat channel and by e-mail."""

    @dg.run_failure_sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Posts a notice for every failed run (chat channel and e-mail); what could "
        "not be delivered is re-sent by run_notification_retries.",
    )
    def _run_failures(context: dg.RunFailureSensorContext, notifier: Notifier) -> None:
        # Never raise: Dagster would advance past the run anyway. What is owed is on its tags.
        _notify_run(
            context.instance,
            context.dagster_run,
            "run_failure",
            notifier,
            _Tick(notifier, context.log, {}),
        )

    return _run_failures


def build_run_success_sensor(
    name: str = "run_success_notifications",
    *,
    minimum_interval_seconds: int = 30,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.STOPPED,
) -> dg.SensorDefinition:
    """A notice per successful run, to the chat channel; stopped unless NOTIFY_ON_SUCCESS."""

    @dg.run_status_sensor(
        run_status=dg.DagsterRunStatus.SUCCESS,
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Posts a notice for every successful run (NOTIFY_ON_SUCCESS=1 starts it).",
    )
    def _run_successes(context: dg.RunStatusSensorContext, notifier: Notifier) -> None:
        _notify_run(
            context.instance,
            context.dagster_run,
            "run_success",
            notifier,
            _Tick(notifier, context.log, {}),
        )

    return _run_successes


def build_run_notice_retry_sensor(
    name: str = "run_notification_retries",
    *,
    minimum_interval_seconds: int = 60,
    limit: int = 50,
    stale_after_seconds: float = 600,
    default_status: dg.DefaultSensorStatus = dg.DefaultSensorStatus.RUNNING,
) -> dg.SensorDefinition:
    """Re-sends run notices still owed (tag finance/notify_pending=1). Cursor: Retry-After holds."""

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description="Re-sends run failure/success notices that could not be delivered.",
    )
    def _retries(context: dg.SensorEvaluationContext, notifier: Notifier) -> dg.SkipReason:
        hold = json.loads(context.cursor) if context.cursor else {}
        tick = _Tick(notifier, context.log, {str(k): float(v) for k, v in hold.items()})
        records = context.instance.get_run_records(
            dg.RunsFilter(tags={RUN_PENDING_TAG: "1"}), limit=limit, ascending=True
        )
        owed = 0
        for record in records:
            run = record.dagster_run
            state = _run_state(run)
            if state is None:
                # A parent's tags copied by a re-execution. Leave a fresh failure to its sensor;
                # once that has had its chance, the copied flag only clutters this query.
                ended = record.end_time or record.update_timestamp.timestamp()
                if run.is_finished and _now() - ended > stale_after_seconds:
                    context.instance.add_run_tags(run.run_id, {RUN_PENDING_TAG: "0"})
                continue
            owed += len(_notify_run(context.instance, run, state["kind"], notifier, tick))
        context.update_cursor(json.dumps(tick.live_hold()))
        return dg.SkipReason(
            f"{len(records)} run(s) owed notices; sent {tick.sent}, {owed} still owed"
        )

    return _retries


def build_notification_defs(environ: Mapping[str, str] | None = None) -> dg.Definitions:
    """The notification sensors and the `notifier` resource they use."""
    environ = os.environ if environ is None else environ
    on_success = _env_bool(environ, "NOTIFY_ON_SUCCESS", False)
    return dg.Definitions(
        sensors=[
            build_check_failure_sensor(),
            build_run_failure_sensor(),
            build_run_success_sensor(
                default_status=dg.DefaultSensorStatus.RUNNING
                if on_success
                else dg.DefaultSensorStatus.STOPPED
            ),
            build_run_notice_retry_sensor(),
        ],
        resources={"notifier": notifier_from_env(environ)},
    )


__all__ = [
    "Notifier",
    "build_check_failure_sensor",
    "build_notification_defs",
    "build_run_failure_sensor",
    "build_run_notice_retry_sensor",
    "build_run_success_sensor",
    "notifier_from_env",
]
