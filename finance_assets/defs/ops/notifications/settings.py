"""The notifier of an environment, from its variables (docs/notifications.md lists them).

Settings become `dg.EnvVar`s, so the UI shows variable names, never values; unset variables keep
the local defaults (log + notifications.jsonl, no e-mail). Inconsistent settings are refused
when the code location loads, naming the variable.
"""

import os
from collections.abc import Mapping
from pathlib import Path

import dagster as dg

from finance_assets.lib import notify
from finance_assets.resources.notifier import Notifier
from finance_assets.resources.slack import SLACK_API_URL, SlackChannel

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off", "")


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """A boolean variable (1/0, true/false, yes/no, on/off); a clear error for anything else."""
    value = environ.get(name)
    if value is None:
        return default
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (1/0, true/false)")


def notifier_from_env(environ: Mapping[str, str] | None = None) -> Notifier:
    """The notifier of this environment (`os.environ` unless given)."""
    environ = os.environ if environ is None else environ

    def env(name: str) -> str | None:
        return dg.EnvVar(name) if environ.get(name) else None

    if environ.get("SLACK_BOT_TOKEN") and not environ.get("SLACK_CHANNEL"):
        raise ValueError("SLACK_BOT_TOKEN is set but SLACK_CHANNEL is not (the channel to post to)")
    if environ.get("SMTP_HOST") and not environ.get("NOTIFY_EMAIL_TO"):
        raise ValueError("SMTP_HOST is set but NOTIFY_EMAIL_TO is not (comma-separated addresses)")
    webhook = environ.get("PRICE_ALERT_WEBHOOK_URL", "").strip()
    if webhook and not webhook.lower().startswith(("http://", "https://")):
        raise ValueError("PRICE_ALERT_WEBHOOK_URL is not an http(s) URL (the value is not shown)")
    if environ.get("PRICE_ALERT_WEBHOOK_SECRET") and not webhook:
        raise ValueError(
            "PRICE_ALERT_WEBHOOK_SECRET is set but PRICE_ALERT_WEBHOOK_URL is not (where to post)"
        )
    port = environ.get("SMTP_PORT")
    if port and not port.strip().isdigit():
        raise ValueError(f"SMTP_PORT={port!r} is not a port number")
    slack = None
    if environ.get("SLACK_BOT_TOKEN"):
        slack = SlackChannel(
            token=dg.EnvVar("SLACK_BOT_TOKEN"),
            channel=dg.EnvVar("SLACK_CHANNEL"),
            base_url=env("SLACK_API_URL") or SLACK_API_URL,
        )
    data_dir = environ.get("FINANCE_DATA_DIR", "data")
    return Notifier(
        slack=slack,
        smtp_host=env("SMTP_HOST"),
        smtp_port=dg.EnvVar.int("SMTP_PORT") if port else 587,
        smtp_username=env("SMTP_USERNAME"),
        smtp_password=env("SMTP_PASSWORD"),
        smtp_from=env("SMTP_FROM"),
        email_to=env("NOTIFY_EMAIL_TO"),
        smtp_starttls=env_bool(environ, "SMTP_STARTTLS", True),
        notifications_file=str(Path(data_dir) / "notifications.jsonl"),
        ui_url=env("DAGSTER_UI_URL") or notify.DEFAULT_UI_URL,
        notify_check_warnings=env_bool(environ, "NOTIFY_CHECK_WARN", False),
        webhook_url=env("PRICE_ALERT_WEBHOOK_URL"),
        webhook_secret=env("PRICE_ALERT_WEBHOOK_SECRET"),
    )


def success_sensor_status(environ: Mapping[str, str] | None = None) -> dg.DefaultSensorStatus:
    """`run_success_notifications` runs by default only with NOTIFY_ON_SUCCESS set."""
    environ = os.environ if environ is None else environ
    on = env_bool(environ, "NOTIFY_ON_SUCCESS", False)
    return dg.DefaultSensorStatus.RUNNING if on else dg.DefaultSensorStatus.STOPPED
