"""The Slack leg: dagster-slack's `SlackResource` (its `token` field and `get_client()`) with a
channel and a base URL.

The `token` field is a `dg.EnvVar` in the definitions, so the UI shows the variable's name;
`get_client()` points slack_sdk's client at `base_url` (an egress proxy, or the tests' local
Slack server), turns off slack_sdk's built-in retries (a failed post is kept by the sensor's
ledger and retried on a later tick instead of blocking this one: a Retry-After can be a minute)
and `post` maps Slack's answers onto `SendError`s free of the token. A resource of its own with
dagster-slack's one field rather than a subclass of it: dagster-slack imports slack_sdk's whole
client when the code location loads (~0.3 s of every load); here slack_sdk is imported when a
client is first built.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from urllib.error import URLError

import dagster as dg
from pydantic import Field

from finance_assets.lib import notify
from finance_assets.lib.notify import Notification, SendRateLimited, SlackRejected, Unreachable
from finance_assets.lib.redaction import (
    REDACTED,
    redact,
    redacting_logger,
    retry_after_from_headers,
)

if TYPE_CHECKING:
    from slack_sdk.web import WebClient

SLACK_API_URL = "https://slack.com/api/"
# slack_sdk logs through the logger it is given (it quotes unexpected response bodies): ours,
# scrubbed like every other logger that may see a secret.
_LOG = redacting_logger("finance_assets.notify.slack")


class SlackChannel(dg.ConfigurableResource):
    """Posts notifications to one Slack channel with a bot token (scope `chat:write`)."""

    token: str = Field(
        description="A Slack bot token (scope `chat:write`), as dagster-slack's SlackResource's."
    )
    channel: str = Field(description="Channel id or `#name`; the bot must be in it.")
    base_url: str = Field(
        default=SLACK_API_URL,
        description="Slack Web API base URL: Slack's, a proxy's or a stand-in's.",
    )
    timeout_seconds: float = 10.0

    def __repr_args__(self) -> Any:
        # pydantic's repr would print the token wherever the resource is shown.
        for name, value in super().__repr_args__():
            yield name, (REDACTED if name == "token" and value else value)

    def get_client(self) -> WebClient:
        """A `slack_sdk.WebClient` at `base_url`, without slack_sdk's own retry handlers."""
        from slack_sdk.web import WebClient

        return WebClient(
            token=self.token,
            base_url=self.base_url or SLACK_API_URL,
            timeout=int(max(1, self.timeout_seconds)),
            retry_handlers=[],
            logger=_LOG,
        )

    def post(self, notification: Notification) -> str:
        """`chat.postMessage`; returns Slack's message ts or raises a `SendError`."""
        if not self.channel:
            raise ValueError("a Slack channel is required (SLACK_CHANNEL)")
        from slack_sdk.errors import SlackApiError

        try:
            response = self.get_client().chat_postMessage(
                channel=self.channel,
                text=notification.slack_text(),
                unfurl_links=False,
                unfurl_media=False,
            )
        except SlackApiError as err:
            status = err.response.status_code
            # A proxy's HTML page ends up here too, quoted by slack_sdk: keep the start of it.
            error = notify.fit(
                str(err.response.get("error") or "unknown_error"), notify.MAX_FIELD_CHARS
            )
            if status == 429 or error in ("ratelimited", "rate_limited"):
                retry_after = retry_after_from_headers(
                    err.response.headers, dt.datetime.now(dt.UTC)
                )
                raise SendRateLimited(
                    "slack",
                    f"rate limited (HTTP {status}), retry after "
                    f"{'?' if retry_after is None else retry_after} s",
                    retry_after=retry_after,
                ) from None
            raise SlackRejected(redact(error, [self.token]), status=status) from None
        except (URLError, OSError, TimeoutError) as err:
            raise Unreachable(
                "slack", redact(f"cannot reach the Slack API: {err}", [self.token])
            ) from None
        return str(response.get("ts", ""))
