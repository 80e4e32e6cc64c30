"""Notifications without Dagster: what a message says, and the channels that carry it.

A `Notification` is rendered once per channel: Slack `chat.postMessage` (mrkdwn text, posted
by `resources/slack.py` through slack_sdk), e-mail (plain text over SMTP), a webhook (JSON
with the notice's structured `data`, signed with HMAC-SHA256 when a secret is set: what a
trading bot subscribes to) and a local file of JSON lines (the default without a Slack token,
so the demo shows what would have been sent). Every sender raises a `SendError` subclass on
failure, with a message that never contains a secret (masked by `lib/redaction.py`): the
caller keeps the notification and tries again later.
"""

import datetime as dt
import hashlib
import hmac
import json
import smtplib
import ssl
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from finance_assets.lib import redaction
from finance_assets.lib.redaction import redact

DEFAULT_UI_URL = "http://127.0.0.1:3000"

# Slack shows up to ~4,000 characters of a message's text comfortably; stay well below.
MAX_TEXT_CHARS = 3500
MAX_FIELD_CHARS = 200
MAX_DETAIL_CHARS = 900
MAX_FIELDS = 12
# Metadata worth reading first when a check fails; the rest follow in their own order.
KEY_METADATA = ("failing_rows", "rows", "quarantine_rate", "max_quarantine_rate")


# -- errors ----------------------------------------------------------------------------------


class SendError(Exception):
    """A notification was not delivered; the caller keeps it and tries again later.

    `retry_after` (seconds) is set when the service said how long to wait.
    """

    def __init__(self, channel: str, reason: str, *, retry_after: float | None = None) -> None:
        super().__init__(f"{channel}: {reason}")
        self.channel = channel
        self.reason = reason
        self.retry_after = retry_after


class SlackRejected(SendError):
    """Slack answered `ok: false` (channel_not_found, not_in_channel, invalid_auth, ...)."""

    def __init__(self, error: str, *, status: int = 200) -> None:
        super().__init__("slack", f"Slack rejected the message: {error} (HTTP {status})")
        self.error = error


class SendRateLimited(SendError, redaction.RateLimited):
    """HTTP 429: the service asks us to wait `retry_after` seconds."""


class Unreachable(SendError):
    """Connection refused, DNS failure, timeout: nothing was delivered."""


class SmtpFailed(SendError):
    """The SMTP server refused the login or the message, or could not be reached."""


# -- messages --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Notification:
    """One notice, independent of the channel that carries it."""

    kind: str  # "check_failure", "run_failure", "run_success", "price_alert"
    severity: str  # "ERROR", "WARN", "INFO"
    title: str
    fields: tuple[tuple[str, str], ...] = ()
    details: tuple[tuple[str, str], ...] = ()  # multi-line values: samples, errors
    links: tuple[tuple[str, str], ...] = ()  # (label, url)
    created_at: str = field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    # Structured values for machine channels (the webhook): numbers stay numbers.
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def subject(self) -> str:
        return f"[finance_assets] {self.title}"

    def slack_text(self) -> str:
        """Slack mrkdwn: a bold title, `field: value` lines, code blocks, links."""
        icon = {"ERROR": ":red_circle:", "WARN": ":large_orange_circle:"}.get(
            self.severity, ":large_green_circle:"
        )
        lines = [f"{icon} *{_slack_escape(self.title)}*"]
        lines += [f"*{_slack_escape(k)}:* {_slack_escape(v)}" for k, v in self.fields]
        for label, body in self.details:
            lines.append(f"*{_slack_escape(label)}:*\n```{_slack_escape(body)}```")
        if self.links:
            lines.append(" | ".join(f"<{url}|{_slack_escape(label)}>" for label, url in self.links))
        return fit("\n".join(lines), MAX_TEXT_CHARS)

    def plain_text(self) -> str:
        lines = [self.title, ""]
        lines += [f"{k}: {v}" for k, v in self.fields]
        for label, body in self.details:
            lines += ["", f"{label}:", body]
        if self.links:
            lines.append("")
            lines += [f"{label}: {url}" for label, url in self.links]
        return "\n".join(lines)

    def redacted(self, secrets: Iterable[str | None]) -> "Notification":
        """The same notice with secrets masked in every text it carries."""
        secrets = list(secrets)

        def clean(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
            return tuple((k, redact(v, secrets)) for k, v in pairs)

        return replace(
            self,
            title=redact(self.title, secrets),
            fields=clean(self.fields),
            details=clean(self.details),
        )

    def webhook_body(self) -> dict[str, Any]:
        """What the webhook posts: the notice's kind and title, and its structured data."""
        return {
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "created_at": self.created_at,
            "data": dict(self.data),
        }

    def as_record(self) -> dict[str, Any]:
        return {
            "created_at": self.created_at,
            "kind": self.kind,
            "severity": self.severity,
            "title": self.title,
            "fields": dict(self.fields),
            "details": dict(self.details),
            "links": dict(self.links),
            "text": self.plain_text(),
        }


def _slack_escape(text: str) -> str:
    # The three characters Slack's mrkdwn asks to escape; everything else is shown as is.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fit(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 20].rstrip() + f"\n… ({len(text) - limit + 20} more chars)"


def asset_url(ui_url: str, asset_path: Sequence[str]) -> str:
    """The asset's checks tab in the Dagster UI."""
    path = "/".join(quote(part, safe="") for part in asset_path)
    return f"{ui_url.rstrip('/')}/assets/{path}?view=checks"


def run_url(ui_url: str, run_id: str) -> str:
    return f"{ui_url.rstrip('/')}/runs/{run_id}"


def _split_metadata(
    metadata: Mapping[str, Any],
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Short values become fields (the key ones first), long or multi-line ones details."""
    ordered = [k for k in KEY_METADATA if k in metadata]
    ordered += [k for k in metadata if k not in KEY_METADATA]
    fields, details = [], []
    for key in ordered:
        value = metadata[key]
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        if "\n" in text or len(text) > MAX_FIELD_CHARS:
            details.append((key, fit(text, MAX_DETAIL_CHARS)))
        elif len(fields) < MAX_FIELDS:
            fields.append((key, text))
    return fields, details


def check_failure_notification(
    *,
    asset_path: Sequence[str],
    check_name: str,
    severity: str,
    partition: str | None,
    description: str | None,
    metadata: Mapping[str, Any],
    run_id: str | None,
    ui_url: str = DEFAULT_UI_URL,
) -> Notification:
    """A failed asset check: what failed, where, why, and links to the asset and the run."""
    asset = "/".join(asset_path)
    fields: list[tuple[str, str]] = [
        ("asset", asset),
        ("partition", partition or "(not partitioned)"),
        ("check", check_name),
        ("severity", severity),
    ]
    if description:
        fields.append(("description", fit(description, MAX_FIELD_CHARS * 2)))
    meta_fields, details = _split_metadata(metadata)
    fields += meta_fields
    fields.append(("run", run_id or "(none)"))
    links = [("asset in Dagster", asset_url(ui_url, asset_path))]
    if run_id:
        links.append(("run", run_url(ui_url, run_id)))
    where = f" [{partition}]" if partition else ""
    return Notification(
        kind="check_failure",
        severity=severity,
        title=f"Check {check_name} failed on {asset}{where}",
        fields=tuple(fields),
        details=tuple(details),
        links=tuple(links),
    )


def run_failure_notification(
    *,
    job_name: str,
    run_id: str,
    partition: str | None,
    message: str | None,
    step_errors: Sequence[tuple[str, str]] = (),
    ui_url: str = DEFAULT_UI_URL,
) -> Notification:
    """A failed run: the job, partition, the failure message and each failed step's error."""
    fields = _run_fields(job_name, run_id, partition)
    if message:
        fields.append(("failure", fit(message.strip().splitlines()[0], MAX_FIELD_CHARS * 2)))
    details = [
        (f"step {step}", fit(error.strip(), MAX_DETAIL_CHARS)) for step, error in step_errors
    ]
    return _run_notification(
        "run_failure",
        "ERROR",
        "Run failed",
        job_name,
        run_id,
        partition,
        fields,
        ui_url,
        details=tuple(details[:5]),
    )


def run_success_notification(
    *,
    job_name: str,
    run_id: str,
    partition: str | None,
    duration_seconds: float | None = None,
    ui_url: str = DEFAULT_UI_URL,
) -> Notification:
    fields = _run_fields(job_name, run_id, partition)
    if duration_seconds is not None:
        fields.append(("duration", f"{duration_seconds:.1f} s"))
    return _run_notification(
        "run_success", "INFO", "Run succeeded", job_name, run_id, partition, fields, ui_url
    )


def _run_fields(job_name: str, run_id: str, partition: str | None) -> list[tuple[str, str]]:
    fields = [("job", job_name), ("run", run_id)]
    if partition:
        fields.append(("partition", partition))
    return fields


def _run_notification(
    kind: str,
    severity: str,
    what: str,
    job_name: str,
    run_id: str,
    partition: str | None,
    fields: Sequence[tuple[str, str]],
    ui_url: str,
    details: tuple[tuple[str, str], ...] = (),
) -> Notification:
    """A run's notification: titled `what: job [partition]`, linking to the run."""
    where = f" [{partition}]" if partition else ""
    return Notification(
        kind=kind,
        severity=severity,
        title=f"{what}: {job_name}{where}",
        fields=tuple(fields),
        details=details,
        links=(("run in Dagster", run_url(ui_url, run_id)),),
    )


# -- senders ---------------------------------------------------------------------------------


class SmtpSender:
    """Plain-text e-mail over SMTP: STARTTLS when asked, implicit TLS on port 465."""

    name = "email"

    def __init__(
        self,
        host: str,
        port: int,
        *,
        sender: str,
        recipients: Sequence[str],
        username: str | None = None,
        password: str | None = None,
        starttls: bool = True,
        timeout: float = 10,
    ) -> None:
        if not recipients:
            raise ValueError("e-mail needs at least one recipient (NOTIFY_EMAIL_TO)")
        self.host, self.port = host, port
        self.sender, self.recipients = sender, list(recipients)
        self._username, self._password = username, password
        self.starttls, self.timeout = starttls, timeout

    def send(self, notification: Notification) -> str:
        msg = EmailMessage()
        msg["Subject"] = notification.subject
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg.set_content(notification.plain_text())
        try:
            if self.port == 465:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.starttls and self.port != 465:
                    smtp.starttls(context=ssl.create_default_context())
                if self._username:
                    smtp.login(self._username, self._password or "")
                refused = smtp.send_message(msg)
        except (smtplib.SMTPException, OSError, TimeoutError) as err:
            # smtplib's messages hold the server's reply, never the password; mask it anyway.
            reason = redact(f"{type(err).__name__}: {err}", [self._password])
            raise SmtpFailed("email", f"{self.host}:{self.port}: {reason}") from None
        if refused:
            raise SmtpFailed("email", f"recipients refused: {', '.join(sorted(refused))}")
        return msg["Message-ID"] or ""


class FileSender:
    """Appends each notification as one JSON line: the local stand-in for Slack."""

    name = "file"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def send(self, notification: Notification) -> str:
        line = json.dumps(notification.as_record(), ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # One write of a whole line in append mode: concurrent writers do not interleave.
            with self.path.open("a", encoding="utf-8") as f:
                f.write(line)
        except OSError as err:
            raise SendError("file", f"cannot append to {self.path}: {err}") from None
        return str(self.path)


# -- webhook ---------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Finance-Assets-Signature"
TIMESTAMP_HEADER = "X-Finance-Assets-Timestamp"


def webhook_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>"): a receiver recomputes it
    and compares in constant time; the timestamp lets it refuse replays."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


@dataclass(frozen=True)
class WebhookSender:
    """POSTs a notice as JSON to a URL (2xx = delivered); signed when `secret` is set."""

    url: str
    secret: str | None = None
    timeout: float = 10.0

    def send(self, notification: Notification) -> None:
        body = json.dumps(notification.webhook_body(), separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json"}
        if self.secret:
            timestamp = str(int(dt.datetime.now(dt.UTC).timestamp()))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = webhook_signature(self.secret, timestamp, body)
        try:
            answer = requests.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as err:
            raise Unreachable("webhook", f"{type(err).__name__}: {err}") from None
        if answer.status_code == 429:
            wait = answer.headers.get("Retry-After", "")
            raise SendRateLimited(
                "webhook",
                "HTTP 429 (rate limited)",
                retry_after=redaction.parse_retry_after(wait, dt.datetime.now(dt.UTC)),
            )
        if not 200 <= answer.status_code < 300:
            raise SendError("webhook", f"HTTP {answer.status_code}: {answer.text[:200]}")
