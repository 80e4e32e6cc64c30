"""The `notifier` resource: which channels a notice goes to, and the one place it is sent from.

Chat is Slack (`slack`, `SlackChannel`: dagster-slack's `SlackResource` shape) when configured,
else the Dagster log plus `notifications.jsonl`; e-mail goes over SMTP when a host and
recipients are configured; price alerts also go to a webhook as signed JSON when its URL is
configured.
Every send passes through `Notifier.send`, which masks the secrets it holds before anything is
posted, logged or raised.
"""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from finance_assets.lib import notify
from finance_assets.lib.notify import Notification, SendError
from finance_assets.lib.redaction import REDACTED, redact
from finance_assets.resources.slack import SlackChannel

CHAT, EMAIL, WEBHOOK = "chat", "email", "webhook"
# Which logical channels each kind of notice goes to (a channel only where it is configured).
# A failed blocking check also fails its run, and the run's failure notice is what goes by
# e-mail: one mail per incident, not two. Price alerts go to chat and, for bots, the webhook.
ROUTES: Mapping[str, tuple[str, ...]] = {
    "check_failure": (CHAT,),
    "run_failure": (CHAT, EMAIL),
    "run_success": (CHAT, EMAIL),
    "price_alert": (CHAT, WEBHOOK),
}


class Notifier(dg.ConfigurableResource):
    """Where notifications go: Slack (`slack`) or, without it, the Dagster log plus
    `notifications.jsonl`; and e-mail over SMTP when a host and recipients are configured."""

    slack: SlackChannel | None = None
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
    timeout_seconds: float = 10.0  # SMTP and webhook; the Slack leg has its own
    # Price alerts as JSON for bots; the URL may carry a token, so it is masked like a secret.
    webhook_url: str | None = None
    webhook_secret: str | None = None

    def __repr_args__(self) -> Any:
        # pydantic's repr would print the password wherever the resource is shown (the Slack
        # token is masked by `SlackChannel`'s own repr).
        for name, value in super().__repr_args__():
            secret = name in ("smtp_password", "webhook_url", "webhook_secret")
            yield name, (REDACTED if secret and value else value)

    @property
    def chat_backend(self) -> str:
        return "slack" if self.slack is not None else "file"

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host and self.recipients)

    @property
    def recipients(self) -> list[str]:
        return [a.strip() for a in (self.email_to or "").split(",") if a.strip()]

    @property
    def secrets(self) -> list[str]:
        """The values this resource holds that must never be shown."""
        token = self.slack.token if self.slack is not None else None
        return [s for s in (token, self.smtp_password, self.webhook_secret, self.webhook_url) if s]

    def channels(self, kind: str) -> list[str]:
        """The configured channels a notice of this kind goes to."""
        configured = {CHAT: True, EMAIL: self.email_enabled, WEBHOOK: bool(self.webhook_url)}
        return [channel for channel in ROUTES[kind] if configured[channel]]

    def redact(self, text: str) -> str:
        return redact(text, self.secrets)

    def send(self, notification: Notification, channel: str, log: Any = None) -> None:
        """Delivers on one channel or raises `SendError` with a message free of secrets."""
        # Messages quote check metadata and step errors: mask secrets at this one choke point.
        notification = notification.redacted(self.secrets)
        try:
            if channel == CHAT and self.slack is None:
                # The local stand-in for Slack: the same message, in the log and in a file.
                if log is not None:
                    log.info(f"notification ({notification.kind}):\n{notification.plain_text()}")
                notify.FileSender(self.notifications_file).send(notification)
            elif channel == CHAT:
                self.slack.post(notification)
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
            elif channel == WEBHOOK:
                notify.WebhookSender(
                    self.webhook_url or "", self.webhook_secret, timeout=self.timeout_seconds
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
